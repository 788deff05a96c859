"""The ``POST /v1/audio/transcriptions`` form: read within bounds, then validated.

:func:`read_form` reads the ``multipart/form-data`` body part by part from aiohttp's
reader, holding at most ``max_upload_bytes`` of file (then 413) and
:data:`MAX_FIELD_BYTES` per text field, :data:`MAX_PARTS` parts; :func:`parse_form` (pure)
turns the fields into a :class:`TranscriptionRequest` or an :class:`ApiError` (400) naming
the field, as OpenAI does. Fields: ``file`` (required), ``model`` (required), ``language``,
``prompt``, ``response_format`` (``json`` | ``text`` | ``srt`` | ``vtt`` |
``verbose_json``), ``timestamp_granularities[]`` (``word`` | ``segment``, only with
``verbose_json``), ``stream`` (``true``: server-sent events), ``temperature``; others
OpenAI defines (``include[]``, ``chunking_strategy``) are accepted and ignored.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from streamasr.actors.frontdoors.openai_errors import ApiError
from streamasr.actors.settings import WHISPER_LANGUAGES

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]
RESPONSE_FORMATS: Final[tuple[ResponseFormat, ...]] = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES: Final = ("word", "segment")
#: How a request names English (the default ``[refine] language``).
LANGUAGES: Final = ("en", "english")
#: Bytes a text field may hold.
MAX_FIELD_BYTES: Final = 64 * 1024
#: Parts a form may have.
MAX_PARTS: Final = 32
#: Bytes read from the socket at a time.
CHUNK_BYTES: Final = 64 * 1024
#: Bytes of form overhead (boundaries, part headers, text fields) allowed beyond the file.
FORM_SLACK_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    """The ``file`` part: its bytes and the name the client gave it."""

    data: bytes
    filename: str


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    """A validated transcription request.

    Attributes:
        upload: the audio file.
        model: the model id asked for (one :func:`parse_form` accepted).
        language: ``"en"`` or ``""`` (not given).
        prompt: the client's prompt (accepted; the pipeline prompts Whisper with each
            utterance's preceding text itself).
        response_format: how the transcript is returned.
        granularities: ``word`` / ``segment`` timestamps wanted in ``verbose_json``.
        stream: answer with server-sent events.
    """

    upload: Upload
    model: str
    language: str
    prompt: str
    response_format: ResponseFormat
    granularities: frozenset[str]
    stream: bool


def _one(fields: Mapping[str, Sequence[str]], name: str, default: str = "") -> str:
    values = fields.get(name, ())
    if len(values) > 1:
        raise ApiError(400, f"'{name}' given {len(values)} times", param=name, code="invalid_value")
    return values[0].strip() if values else default


def _serves(language: str, served: str) -> bool:
    """Whether a request's ``language`` is what the pipeline transcribes."""
    if served == "en":
        return language in LANGUAGES
    if served == "auto":
        return language in WHISPER_LANGUAGES
    return language == served


def _bool(value: str, name: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0", ""):
        return False
    raise ApiError(400, f"'{name}' must be true or false", param=name, code="invalid_value")


def parse_form(
    fields: Mapping[str, Sequence[str]],
    upload: Upload | None,
    models: Sequence[str],
    served: str = "en",
) -> TranscriptionRequest:
    """Validate a transcription form (``fields``: name -> values, in order); ``served``:
    the pipeline's ``[refine] language`` (``auto``: any of Whisper's).

    Raises:
        ApiError: 400 naming the first field at fault.
    """
    if upload is None:
        raise ApiError(400, "'file' is required (an audio file)", param="file", code="missing")
    model = _one(fields, "model")
    if not model:
        raise ApiError(400, "'model' is required", param="model", code="missing")
    if model not in models:
        raise ApiError(
            400,
            f"model '{model[:64]}' does not exist (use one of: {', '.join(models)})",
            param="model",
            code="model_not_found",
        )
    language = _one(fields, "language").lower()
    if language and not _serves(language, served):
        raise ApiError(
            400,
            f"language '{language[:16]}' is not supported (this server transcribes: {served})",
            param="language",
            code="unsupported_language",
        )
    fmt = _one(fields, "response_format", "json")
    if fmt not in RESPONSE_FORMATS:
        raise ApiError(
            400,
            f"response_format '{fmt[:32]}' is not one of {', '.join(RESPONSE_FORMATS)}",
            param="response_format",
            code="invalid_value",
        )
    wanted = [g.strip() for g in fields.get("timestamp_granularities[]", ())]
    wanted += [g.strip() for g in fields.get("timestamp_granularities", ())]
    bad = [g for g in wanted if g not in GRANULARITIES]
    if bad:
        raise ApiError(
            400,
            f"timestamp_granularities: '{bad[0][:16]}' is not word or segment",
            param="timestamp_granularities",
            code="invalid_value",
        )
    if wanted and fmt != "verbose_json":
        raise ApiError(
            400,
            "response_format must be set verbose_json to use timestamp granularities",
            param="timestamp_granularities",
            code="invalid_value",
        )
    temperature = _one(fields, "temperature", "0")
    try:
        t = float(temperature)
    except ValueError:
        t = math.nan
    if not 0.0 <= t <= 1.0:
        raise ApiError(
            400, "temperature must be a number in 0..1", param="temperature", code="invalid_value"
        )
    return TranscriptionRequest(
        upload=upload,
        model=model,
        language=("en" if language == "english" else language) if language else "",
        prompt=_one(fields, "prompt"),
        response_format=fmt,
        granularities=frozenset(wanted or ["segment"]),
        stream=_bool(_one(fields, "stream"), "stream"),
    )


async def _read_part(part: BodyPartReader, limit: int, what: str, idle_s: float) -> bytes:
    """Up to ``limit`` bytes of ``part``; more raises :class:`ApiError` (413 for the file).
    Each read may take ``idle_s`` seconds at most."""
    out = bytearray()
    while True:
        async with asyncio.timeout(idle_s):
            chunk = await part.read_chunk(CHUNK_BYTES)
        if not chunk:
            break
        out += chunk
        if len(out) > limit:
            if what == "file":
                raise ApiError(
                    413,
                    f"file is larger than the {limit} bytes this server accepts",
                    param="file",
                    code="file_too_large",
                    counter="oversize",
                )
            raise ApiError(
                400, f"'{what}' is longer than {limit} bytes", param=what, code="invalid_value"
            )
    return bytes(out)


async def read_form(
    request: web.BaseRequest, max_upload_bytes: int, idle_s: float
) -> tuple[dict[str, list[str]], Upload | None]:
    """Read the multipart form of ``request``: text fields and the ``file`` part.

    Raises:
        ApiError: 400 (not multipart, malformed, too many parts, a long field), 408 (no
            byte of the body for ``idle_s`` seconds: a stalled or slow-loris client), 413
            (the file is over ``max_upload_bytes``).
    """
    if request.content_type != "multipart/form-data":
        raise ApiError(
            400,
            f"expected a multipart/form-data body, got '{request.content_type[:64]}'",
            code="invalid_content_type",
        )
    fields: dict[str, list[str]] = {}
    upload: Upload | None = None
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS + 1):
            async with asyncio.timeout(idle_s):
                part = await reader.next()
            if part is None:
                return fields, upload
            if not isinstance(part, BodyPartReader) or not part.name:
                raise ApiError(400, "every form part needs a name (no nested multipart)")
            if part.name == "file":
                if upload is not None:
                    raise ApiError(400, "'file' given twice", param="file", code="invalid_value")
                data = await _read_part(part, max_upload_bytes, "file", idle_s)
                upload = Upload(data, part.filename or "")
            else:
                raw = await _read_part(part, MAX_FIELD_BYTES, part.name[:64], idle_s)
                text = raw.decode("utf-8", errors="replace")
                fields.setdefault(part.name[:64], []).append(text)
    except (ValueError, RuntimeError, AssertionError, HttpProcessingError) as exc:
        # aiohttp's multipart reader raises these for a body that is not a well-formed form
        # (AssertionError: a part header that is not a form-data disposition)
        raise ApiError(400, f"malformed multipart/form-data body: {exc}"[:200]) from None
    except TimeoutError:
        raise ApiError(
            408, f"the request body stalled for {idle_s:g} s", counter="idle_timeouts"
        ) from None
    except RequestPayloadError as exc:  # the body ended early (client gone, bad chunking)
        raise ApiError(400, f"incomplete request body: {exc}"[:200]) from None
    raise ApiError(400, f"more than {MAX_PARTS} form parts")
