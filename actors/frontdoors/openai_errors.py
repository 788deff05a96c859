"""Errors of the OpenAI-compatible API, in OpenAI's JSON shape.

Every refusal is one :class:`ApiError`: an HTTP status and the body OpenAI's clients parse,
``{"error": {"message", "type", "param", "code"}}`` (the official ``openai`` package turns a
400 into ``BadRequestError``, 401 ``AuthenticationError``, 404 ``NotFoundError``, 413
``APIStatusError``, 429 ``RateLimitError``, 5xx ``InternalServerError``), and the counter it
adds to, so no bad request ends in a traceback or goes uncounted.
"""

from __future__ import annotations

import json
from typing import Any, Final

from streamasr.actors.errors import StreamAsrError

#: OpenAI's error types by status class.
INVALID_REQUEST: Final = "invalid_request_error"
SERVER_ERROR: Final = "server_error"


class ApiError(StreamAsrError):
    """A request the API refuses or cannot serve.

    Attributes:
        status: the HTTP status code.
        param: the form field at fault (None when it is not one field).
        code: OpenAI's machine-readable code (``invalid_api_key``, ``invalid_value``, ...).
        counter: the gateway counter this refusal adds to (``api_<counter>``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        counter: str = "bad_requests",
    ) -> None:
        """``message`` is the one line the client reads."""
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.counter = counter

    @property
    def error_type(self) -> str:
        """``server_error`` for 5xx statuses, else ``invalid_request_error``."""
        return SERVER_ERROR if self.status >= 500 else INVALID_REQUEST

    def body(self) -> dict[str, Any]:
        """The error object: ``{"error": {"message", "type", "param", "code"}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def json(self) -> str:
        """:meth:`body` as JSON text."""
        return json.dumps(self.body())
