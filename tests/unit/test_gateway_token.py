"""The gateway's token check: where a client may present the token, and what it may not
shut out."""

from __future__ import annotations

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from streamasr.actors.frontdoors.gateway import request_authorised, token_presented

TOKEN = "s3cret"


@pytest.mark.parametrize(
    ("path", "authorization", "ok"),
    [
        ("/v1/stream", "", False),
        ("/v1/stream?token=s3cret", "", True),
        ("/v1/stream?token=wrong", "", False),
        ("/v1/stream", "Bearer s3cret", True),
        ("/v1/stream", "bearer s3cret", True),  # the scheme is case-insensitive (RFC 7235)
        ("/v1/stream", "BEARER  s3cret ", True),
        ("/v1/stream", "Bearer wrong", False),
        ("/v1/stream", "Basic czNjcmV0", False),
        ("/v1/stream", "Bearer", False),
        ("/v1/stream?token=s3cret", "Bearer stale", True),  # a correct query token counts
        ("/v1/stream?token=wrong", "Bearer s3cret", True),
        ("/v1/stream?token=s3cret&token=x", "", True),
        ("/v1/stream?token=", "Bearer ", False),
    ],
)
def test_token_presented(path: str, authorization: str, ok: bool) -> None:
    assert token_presented(path, authorization, TOKEN) is ok


@pytest.mark.parametrize(
    ("path", "authorizations", "ok"),
    [
        ("/", [], False),
        ("/", ["Bearer wrong", "Bearer s3cret"], True),  # a repeated header: any one matches
        ("/", ["Bearer wrong", "Bearer stale"], False),
        ("/?token=s3cret", ["Bearer wrong", "Bearer stale"], True),
    ],
)
def test_request_authorised_reads_every_authorization_header(
    path: str, authorizations: list[str], ok: bool
) -> None:
    request = Request(path, Headers([("Authorization", a) for a in authorizations]))
    assert request_authorised(request, TOKEN) is ok
    assert request_authorised(request, "") is True  # no token configured
