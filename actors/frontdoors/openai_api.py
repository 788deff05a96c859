"""The OpenAI-compatible transcription API, served on the WebSocket gateway's port.

Routes (see :func:`wants_http` for what reaches this module rather than websockets):

* ``POST /v1/audio/transcriptions`` — a ``multipart/form-data`` form as OpenAI's
  (:mod:`.openai_form`); the file is transcribed through the supervised pipeline as a stream
  without a deadline (:mod:`.openai_transcribe`): faster than real time, every final
  Whisper's, the same words as ``up --source FILE --fast``. Answered in the
  ``response_format`` asked for (:mod:`.openai_formats`), or with ``stream=true`` as
  server-sent events: a ``transcript.text.delta`` per utterance as its final comes, then
  ``transcript.text.done``.
* ``GET /v1/models`` (and ``/v1/models/<id>``) — the model this pipeline serves:
  ``whisper-<[refine] model>`` with accurate finals (``whisper-1`` is accepted as its alias,
  for clients that hard-code it), ``pocketsphinx-en-us`` with first-pass finals only.

The gateway's rules hold: its ``token`` (``Authorization: Bearer``, or ``?token=``), its
``max_streams`` (an upload holds a slot from the moment it is authorised, like a WebSocket
connection), its counters (``streams_opened``, ``streams_completed``, ``frames_in``,
``backpressure_waits``, ``aborted``) and rings' loss accounting. Every refusal is OpenAI's
error JSON with a status (400 bad form or audio, 401 token, 404, 405, 408 stalled body, 413
over ``[openai] max_upload_bytes``, 429 stream limit, 5xx) and a counter ``api_<reason>``
(plus ``api_status_<status>``); nothing is answered with a traceback. Each response closes its
connection, so the next request on a new one is routed afresh (see :mod:`.http_route`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
from collections.abc import AsyncGenerator, Callable
from pathlib import PurePath
from typing import Any, Final

from aiohttp import web
from websockets.asyncio.server import ServerConnection

from streamasr.actors.frontdoors import http_route
from streamasr.actors.frontdoors import openai_formats as fmt
from streamasr.actors.frontdoors.openai_errors import ApiError
from streamasr.actors.frontdoors.openai_form import (
    FORM_SLACK_BYTES,
    TranscriptionRequest,
    parse_form,
    read_form,
)
from streamasr.actors.frontdoors.openai_transcribe import StreamHost, open_audio, transcribe
from streamasr.actors.settings import OpenAIConfig, RefineConfig
from streamasr.actors.spec import ActorSpec

log = logging.getLogger(__name__)

TRANSCRIPTIONS: Final = "/v1/audio/transcriptions"
MODELS: Final = "/v1/models"
#: Paths served here with what is under them (every other GET goes to websockets).
PREFIXES: Final = ("/v1/audio", MODELS)
#: Model ids accepted as the Whisper model whatever its name.
ALIASES: Final = ("whisper-1",)
#: Seconds to finish open responses when the gateway stops.
SHUTDOWN_S: Final = 2.0

#: ``token_presented(path, authorization, token)`` of the gateway.
TokenCheck = Callable[[str, str, str], bool]


def wants_http(method: str, path: str) -> bool:
    """Whether a request goes to this API: every method but GET (websockets serves only
    GET), and GETs under :data:`PREFIXES`."""
    return method != "GET" or any(path == p or path.startswith(p + "/") for p in PREFIXES)


def model_ids(refine: RefineConfig) -> tuple[str, ...]:
    """The listed model id, then the accepted aliases."""
    if refine.finals != "accurate":
        return ("pocketsphinx-en-us",)
    name = PurePath(refine.model).name or "base"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "base"
    listed = slug if slug.startswith("whisper") else f"whisper-{slug}"
    return (listed, *(a for a in ALIASES if a != listed))


def for_gateway(host: StreamHost, spec: ActorSpec, token_presented: TokenCheck) -> OpenAIApi | None:
    """The API of the gateway ``host`` with ``spec``'s ``[openai]`` and ``[refine]``
    sections; None where ``[openai] enabled`` is false."""
    opts = spec.section("openai", OpenAIConfig)
    if not opts.enabled:
        return None
    return OpenAIApi(host, opts, spec.section("refine", RefineConfig), token_presented)


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "streamasr"}


class OpenAIApi:
    """The API's request handler, over the gateway's streams and counters."""

    def __init__(
        self,
        host: StreamHost,
        opts: OpenAIConfig,
        refine: RefineConfig,
        token_presented: TokenCheck,
    ) -> None:
        """Serve ``host``'s pipeline with ``opts``; ``token_presented`` checks credentials."""
        self.host, self.opts = host, opts
        self.models = model_ids(refine)
        self.language = refine.language  # the one transcribed; "auto": Whisper detects it
        self.task = refine.task
        self._token_presented = token_presented
        self._ids = itertools.count(1)
        self._server: web.Server | None = None

    def server(self) -> web.Server:
        """aiohttp's low-level server (an asyncio protocol factory), made once in the loop.

        Bodies are not decompressed (``Content-Encoding`` is no way past the size cap) and a
        handler is cancelled when its client goes away (its stream then ends at once).
        """
        if self._server is None:
            self._server = web.Server(
                self.handle,
                handler_cancellation=True,
                auto_decompress=False,
                keepalive_timeout=self.host.opts.idle_timeout_s,
                access_log=None,
            )
        return self._server

    def connection_class(self, open_timeout_s: float) -> type[ServerConnection]:
        """What websockets' ``serve(create_connection=...)`` takes: a connection that sends
        this API's requests here (see :mod:`.http_route`); ``open_timeout_s``: seconds a
        client has to send its request line."""
        return http_route.routing_connection(wants_http, self.server(), open_timeout_s)

    async def close(self) -> None:
        """Close every HTTP connection (the gateway is stopping)."""
        if self._server is not None:
            await self._server.shutdown(SHUTDOWN_S)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the gateway counter ``api_<key>``."""
        self.host.count(f"api_{key}", n)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one request (every error in OpenAI's shape); close the connection after."""
        self.count("requests")
        try:
            resp = await self._dispatch(request)
        except ApiError as exc:
            resp = self._refusal(exc)
        except (asyncio.CancelledError, ConnectionError):
            self.host.count("aborted")
            raise
        except Exception:
            log.exception("OpenAI API: %s %s failed", request.method, request.path)
            resp = self._refusal(ApiError(500, "internal error", counter="internal_errors"))
        resp.force_close()
        return resp

    def _refusal(self, exc: ApiError) -> web.Response:
        self.count(exc.counter)
        self.count(f"status_{exc.status}")
        resp = _json(exc.status, exc.body())
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    def _authorise(self, request: web.BaseRequest) -> None:
        token = self.host.opts.token
        auth = request.headers.get("Authorization", "")
        if token and not self._token_presented(request.path_qs, auth, token):
            raise ApiError(
                401,
                "missing or wrong API key (Authorization: Bearer <the gateway's token>)",
                code="invalid_api_key",
                counter="auth_failures",
            )

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == MODELS or path.startswith(MODELS + "/"):
            if request.method not in ("GET", "HEAD"):
                raise ApiError(405, f"{request.method} is not allowed on {MODELS}")
            self._authorise(request)
            return self._models(path)
        if path == TRANSCRIPTIONS:
            if request.method != "POST":
                raise ApiError(405, f"{request.method[:16]} is not allowed on {path} (POST)")
            self._authorise(request)
            return await self._transcription(request)
        raise ApiError(404, f"no route {request.method[:16]} {path[:100]}", counter="not_found")

    def _models(self, path: str) -> web.Response:
        if path == MODELS:
            return _json(200, {"object": "list", "data": [_model(self.models[0])]})
        wanted = path[len(MODELS) + 1 :]
        if wanted not in self.models:
            raise ApiError(404, f"model '{wanted[:64]}' does not exist", code="model_not_found")
        return _json(200, _model(wanted))

    async def _transcription(self, request: web.BaseRequest) -> web.StreamResponse:
        limit = self.opts.max_upload_bytes
        if request.content_length is not None and request.content_length > limit + FORM_SLACK_BYTES:
            raise ApiError(
                413,
                f"request body of {request.content_length} bytes is over the {limit}-byte limit",
                code="file_too_large",
                counter="oversize",
            )
        host = self.host
        if len(host.live) >= host.opts.max_streams:
            raise ApiError(
                429,
                f"stream limit reached ({host.opts.max_streams})",
                code="rate_limit_exceeded",
                counter="refused",
            )
        sid = f"oai-{next(self._ids)}"
        host.live.add(sid)
        host.rt.gauges["live_streams"] = float(len(host.live))
        try:
            if request.headers.get("Expect", "").lower() == "100-continue":
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            fields, upload = await read_form(request, limit, host.opts.idle_timeout_s)
            host.count("bytes_in", len(upload.data) if upload is not None else 0)
            req = parse_form(fields, upload, self.models, self.language)
            if req.stream:
                return await self._stream(request, req, sid)
            return await self._whole(req, sid)
        finally:
            host.live.discard(sid)
            host.rt.gauges["live_streams"] = float(len(host.live))

    def _run(
        self, req: TranscriptionRequest, sid: str
    ) -> tuple[float, AsyncGenerator[fmt.Segment, None]]:
        """The upload's duration (seconds) and its segments (an async generator to close).

        Raises:
            ApiError: 400 if the file is not audio the pipeline takes (nothing opened yet).
        """
        audio = open_audio(req.upload.data, self.opts.max_audio_s)
        name = f"openai {PurePath(req.upload.filename).name}"[:64]
        duration_s = audio.frames / audio.samplerate
        return duration_s, transcribe(self.host, audio, sid, name, self.opts.max_audio_s)

    async def _whole(self, req: TranscriptionRequest, sid: str) -> web.Response:
        segments: list[fmt.Segment] = []
        duration_s, run = self._run(req, sid)
        async with contextlib.aclosing(run) as segs:
            async for segment in segs:
                segments.append(segment)
        segments.sort(key=lambda s: s.start_s)
        spoken = "english" if self.language == "en" else self.language
        body, ctype = fmt.render(
            req.response_format, segments, duration_s, req.granularities, spoken, self.task
        )
        self.count("transcriptions")
        return web.Response(
            status=200,
            body=body.encode(),
            headers={"Content-Type": ctype, "Cache-Control": "no-store"},
        )

    async def _stream(
        self, request: web.BaseRequest, req: TranscriptionRequest, sid: str
    ) -> web.StreamResponse:
        _, run = self._run(req, sid)  # a file that is not audio is refused before the stream
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        resp.force_close()
        await resp.prepare(request)
        segments: list[fmt.Segment] = []
        try:
            async with contextlib.aclosing(run) as segs:
                async for segment in segs:
                    await resp.write(fmt.sse(fmt.delta_event(segment, first=not segments)))
                    segments.append(segment)
            await resp.write(fmt.sse(fmt.done_event(segments)))
            self.count("transcriptions")
        except ApiError as exc:  # the status is sent: the error goes as an event
            self.count(exc.counter)
            await resp.write(fmt.sse(exc.body()))
        await resp.write_eof()
        return resp
