"""The WebSocket gateway actor: Vosk-compatible, classic JSON and native streams on one port.

Paths: ``/`` (Vosk or classic JSON, decided by the first message), ``/v1/stream`` (native),
``/v1/status`` (a WebSocket that pushes the status map every second,
:mod:`~streamasr.actors.frontdoors.status_feed`), and plain HTTP ``/ui`` (live page),
``/metrics`` (Prometheus text), ``/healthz``; the OpenAI-compatible API
(``POST /v1/audio/transcriptions``, ``GET /v1/models``) on the same port through
:mod:`~streamasr.actors.frontdoors.openai_api` (``[openai]``). A browser may open the
WebSockets from the gateway's own origin or one listed in ``origins``
(:mod:`~streamasr.actors.frontdoors.origin`; refused with HTTP 403). Every accepted socket
takes a slot of the connection cap (:mod:`~streamasr.actors.frontdoors.admission`) until it
closes or its request goes to the HTTP API. Each stream connection is one run-time stream
(:class:`~streamasr.actors.frontdoors.base.FrontDoor`); the protocol logic lives in
:mod:`streamasr.actors.frontdoors.protocols`.

Nothing is lost and nothing grows without bound: when the stream's ring has no room for a
message's audio the connection stops reading its socket until there is (TCP backpressure);
TCP connections are capped at ``max_connections`` from accept, before any handshake
(refused with HTTP 503), opening handshakes at ``open_timeout_s``
(:mod:`~streamasr.actors.frontdoors.admission`); messages at ``max_message_bytes``,
streams at ``max_streams`` and status feeds at ``max_status_feeds`` (refused with close
code 1013), silence at ``idle_timeout_s`` (also a slow-loris bound); a malformed message
gets an error message and a close code and is counted in ``rt.counters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import itertools
import json
import logging
import ssl
import time
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from streamasr.actors import messages as m
from streamasr.actors.errors import ConfigError
from streamasr.actors.frontdoors import admission, openai_api, status_feed
from streamasr.actors.frontdoors import metrics as gateway_metrics
from streamasr.actors.frontdoors import protocols as gp
from streamasr.actors.frontdoors.base import FrontDoor, PcmStream, StreamRefused
from streamasr.actors.frontdoors.origin import origin_allowed
from streamasr.actors.frontdoors.ports import port_in_use_message
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import AudioConfig, GatewayConfig, RefineConfig

log = logging.getLogger(__name__)

#: Seconds between polls while waiting for ring room or for the supervisor to stop us.
POLL_S = 0.005
#: The paths that open a WebSocket (the rest is plain HTTP).
WEBSOCKET_PATHS = ("/", "/v1/stream", "/v1/status")
#: PCM-ring reader slots of inference and refine (``supervisor.plan.PCM_READER_*``).
READER_SLOTS_FAST = (0,)
READER_SLOTS_ACCURATE = (0, 1)
#: Seconds a finished stream may take to deliver its last finals.
DRAIN_TIMEOUT_S = 120.0
STATIC = {
    "/ui": ("ui.html", "text/html; charset=utf-8"),
    "/ui.js": ("ui.js", "text/javascript; charset=utf-8"),
    "/worklet.js": ("worklet.js", "text/javascript; charset=utf-8"),
}
COUNTERS = (
    "connections", "refused", "protocol_errors", "idle_timeouts", "auth_failures",
    "streams_opened", "streams_completed", "aborted", "oversize", "bytes_in", "frames_in",
    "backpressure_waits", "origin_refused", "status_feeds", "status_refused", "status_floods",
)  # fmt: skip


def token_presented(path: str, authorization: str, token: str) -> bool:
    """Whether a request presents ``token``: as ``?token=`` in ``path`` or as an
    ``Authorization: Bearer`` header (the scheme in any case, RFC 7235). Every credential
    the request carries is compared in constant time, and any one that matches is enough
    (a stale header does not shut out a correct query token)."""
    given = list(parse_qs(urlsplit(path).query).get("token", []))
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        given.append(credentials.strip())
    ok = False
    for g in given:
        ok |= hmac.compare_digest(g.encode(), token.encode())
    return ok


def request_authorised(request: Request, token: str) -> bool:
    """True if ``token`` is "" or ``request`` presents it (:func:`token_presented`), in its
    query or in any of its ``Authorization`` headers (a request may repeat the header)."""
    if not token:
        return True
    headers = request.headers.get_all("Authorization") or [""]
    return any(token_presented(request.path, h, token) for h in headers)


class IdleTimeout(gp.GatewayProtocolError):
    """A connection sent nothing for ``idle_timeout_s`` (closed with 1008, not an error)."""


def _response(status: int, body: bytes, content_type: str) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    headers["Cache-Control"] = "no-store"
    return Response(status, HTTPStatus(status).phrase, headers, body)


def browser_redirect(request: Request) -> Response | None:
    """A 302 to the live page ``/ui`` for a plain HTTP ``GET /`` (a browser opening the
    gateway's address), keeping the query; None for a WebSocket handshake or another path.

    Without it a browser would get the WebSockets library's 426 "Upgrade Required" text.
    """
    url = urlsplit(request.path)
    if url.path != "/" or "websocket" in request.headers.get("Upgrade", "").lower():
        return None
    response = _response(302, b"the live page is at /ui\n", "text/plain; charset=utf-8")
    response.headers["Location"] = f"/ui?{url.query}" if url.query else "/ui"
    return response


class Gateway:
    """Serves every connection of one gateway actor."""

    def __init__(
        self, rt: ActorRuntime, front: FrontDoor, opts: GatewayConfig, model_chunk_ms: int
    ) -> None:
        """Serve ``front``'s streams under ``opts``; advice starts at ``model_chunk_ms``."""
        self.rt, self.front, self.opts = rt, front, opts
        self.model_chunk_ms = model_chunk_ms
        for key in COUNTERS:
            rt.counters.setdefault(key, 0)
        self.live: set[str] = set()
        self.feeds = 0
        self._ids = itertools.count(1)
        accurate = rt.spec.section("refine", RefineConfig).finals == "accurate"
        self.reader_slots = READER_SLOTS_ACCURATE if accurate else READER_SLOTS_FAST

    def room_frames(self, stream: PcmStream) -> int:
        """Model-rate frames writable without loss, counting readers not attached yet.

        A fresh stream's readers (inference, refine) attach a little after the stream is
        opened; until then their cursors sit at 0, and counting them keeps the first
        seconds of a faster-than-real-time client from being overwritten.
        """
        ring = stream.ring
        w = ring.write_counter
        behind = max(w - ring.stats(i).read_counter for i in self.reader_slots)
        return min(stream.room_frames(), ring.capacity - behind)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to gateway counter ``key``."""
        self.rt.counters[key] = self.rt.counters.get(key, 0) + n

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """Plain HTTP routes and token checks before the WebSocket handshake."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            return _response(200, b"ok\n", "text/plain; charset=utf-8")
        if (redirect := browser_redirect(request)) is not None:
            return redirect
        if path in STATIC:
            name, ctype = STATIC[path]
            try:
                web = resources.files("streamasr.actors.frontdoors").joinpath("web")
                body = web.joinpath(name).read_bytes()
            except FileNotFoundError:
                return _response(404, b"not found\n", "text/plain; charset=utf-8")
            return _response(200, body, ctype)
        if not request_authorised(request, self.opts.token):
            self.count("auth_failures")
            return _response(401, b"missing or wrong token\n", "text/plain; charset=utf-8")
        if path == "/metrics":
            self.rt.gauges["live_streams"] = float(len(self.live))
            text = gateway_metrics.render(self.front.status, self.rt.counters, self.rt.gauges)
            return _response(200, text, gateway_metrics.CONTENT_TYPE)
        if path not in WEBSOCKET_PATHS:
            return _response(404, b"not found\n", "text/plain; charset=utf-8")
        host = ",".join(request.headers.get_all("Host"))
        if not origin_allowed(request.headers.get_all("Origin"), host, self.opts.origins):
            self.count("origin_refused")
            return _response(403, b"origin not allowed\n", "text/plain; charset=utf-8")
        return None

    async def handle(self, ws: ServerConnection) -> None:
        """One WebSocket connection."""
        path = urlsplit(ws.request.path if ws.request else "/").path
        if path == "/v1/status":
            await self._status_feed(ws)
            return
        self.count("connections")
        if len(self.live) >= self.opts.max_streams:
            self.count("refused")
            await self._fail(ws, f"stream limit reached ({self.opts.max_streams})", 1013)
            return
        sid = f"ws-{next(self._ids)}"
        self.live.add(sid)
        self.rt.gauges["live_streams"] = float(len(self.live))
        try:
            await Connection(self, ws, sid, path).run()
        finally:
            self.live.discard(sid)
            self.rt.gauges["live_streams"] = float(len(self.live))
            self.front.forget(sid)

    async def _fail(self, ws: ServerConnection, message: str, code: int) -> None:
        """Send the error message and close with ``code``. What the client sent before it
        saw the close is read and dropped meanwhile: unread, it would stop the socket from
        reading the client's close frame, and the close would wait for its timeout."""
        with contextlib.suppress(ConnectionClosed):
            await ws.send(gp.error_message(message, code))
            closing = asyncio.ensure_future(ws.close(code, message[:120]))
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed:
                await closing

    async def _status_feed(self, ws: ServerConnection) -> None:
        """``/v1/status``: at most ``max_status_feeds`` at once, each paced
        (:mod:`~streamasr.actors.frontdoors.status_feed`)."""
        if self.feeds >= self.opts.max_status_feeds:
            self.count("status_refused")
            limit = self.opts.max_status_feeds
            await self._fail(ws, f"status feed limit reached ({limit})", gp.CLOSE_TRY_AGAIN)
            return
        self.count("status_feeds")
        self.feeds += 1
        self.rt.gauges["status_feeds_open"] = float(self.feeds)
        try:
            pacer = status_feed.StatusPacer()
            await status_feed.run_feed(ws, self._status_json, pacer, lambda: self.rt.stopping)
        except status_feed.StatusFlood as exc:
            self.count("status_floods")
            await self._fail(ws, str(exc), exc.close_code)
        except ConnectionClosed:
            pass
        finally:
            self.feeds -= 1
            self.rt.gauges["status_feeds_open"] = float(self.feeds)

    def _status_json(self) -> str:
        status = dict(self.front.status)
        status["gateway"] = {"counters": dict(self.rt.counters), "live": len(self.live)}
        return json.dumps({"type": "status", "status": status}, default=str)


class Connection:
    """One client stream: reads messages, drives its session, forwards events."""

    def __init__(self, gw: Gateway, ws: ServerConnection, sid: str, path: str) -> None:
        """Serve ``ws`` as stream ``sid`` with the protocol of ``path``."""
        self.gw, self.ws, self.sid = gw, ws, sid
        self.session: gp.Session | None = None
        if path == "/v1/stream":
            self.session = gp.NativeSession(gp.ChunkAdvisor(gw.model_chunk_ms))
        self.stream: PcmStream | None = None
        self.pump: asyncio.Task[None] | None = None
        self.ended = asyncio.Event()

    async def run(self) -> None:
        """Read until the client finishes, fails or goes away; then deliver the rest."""
        try:
            finished = await self._read_loop()
            if finished:
                await self._drain()
        except gp.GatewayProtocolError as exc:
            if not isinstance(exc, IdleTimeout):
                self.gw.count("protocol_errors")
                self.gw.count(f"close_{exc.close_code}")
            await self.gw._fail(self.ws, str(exc), exc.close_code)
        except StreamRefused as exc:
            self.gw.count("refused")
            await self.gw._fail(self.ws, f"stream refused: {exc}", gp.CLOSE_TRY_AGAIN)
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:
                self.gw.count("protocol_errors")
                self.gw.count("oversize")
            self.gw.count("aborted")
        finally:
            if self.pump is not None:
                self.pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await self.pump

    async def _recv(self) -> str | bytes:
        try:
            return await asyncio.wait_for(self.ws.recv(), self.gw.opts.idle_timeout_s)
        except TimeoutError:
            self.gw.count("idle_timeouts")
            raise IdleTimeout(
                f"idle for {self.gw.opts.idle_timeout_s:g} s", gp.CLOSE_POLICY
            ) from None

    async def _read_loop(self) -> bool:
        """Messages until ``Finish`` (True) or stop (False)."""
        while not self.gw.rt.stopping:
            msg = await self._recv()
            self.gw.count("bytes_in", len(msg))
            if self.session is None:
                self.session = gp.choose_root_session(msg)
            session = self.session
            actions = self._parse(session, msg)
            if isinstance(session, gp.NativeSession) and isinstance(msg, bytes):
                frames = sum(len(a.frames) for a in actions if isinstance(a, gp.Write))
                actions = actions + session.observe(time.monotonic(), frames)
            for action in actions:
                if isinstance(action, gp.Finish):
                    return True
                await self._do(action)
        return False

    def _parse(self, session: gp.Session, msg: str | bytes) -> list[gp.Action]:
        """The session's actions for ``msg``. A value its checks did not foresee (a type
        nobody expected where a field is read) is a 1007 protocol error, logged in one line,
        never a traceback that ends the handler."""
        try:
            return session.on_text(msg) if isinstance(msg, str) else session.on_binary(msg)
        except gp.GatewayProtocolError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError) as exc:
            why = (str(exc).splitlines() or [""])[0][:200]
            log.warning(
                "gateway %s: message not understood: %s: %s", self.sid, type(exc).__name__, why
            )
            raise gp.GatewayProtocolError("malformed message", gp.CLOSE_INVALID) from None

    async def _do(self, action: gp.Action) -> None:
        session = self.session
        assert session is not None
        if isinstance(action, gp.Open):
            self.stream = await self.gw.front.open_stream(
                self.sid, action.name, action.sample_rate_hz, action.channels
            )
            self.gw.count("streams_opened")
            self.pump = asyncio.get_running_loop().create_task(self._pump_events())
        elif isinstance(action, gp.Write):
            await self._write(action)
        elif isinstance(action, gp.Reply):
            await self.ws.send(session.reply())
        elif isinstance(action, gp.Send):
            await self.ws.send(action.text)

    async def _write(self, action: gp.Write) -> None:
        """Write with backpressure: wait for ring room, never drop audio."""
        stream = self.stream
        assert stream is not None
        frames = action.frames
        ratio = stream.sample_rate_hz / stream.conditioner.in_rate_hz
        step = max(1, int(stream.ring.capacity // 4 / ratio))
        waited = False
        for i in range(0, len(frames), step):
            piece = frames[i : i + step]
            need = int(len(piece) * ratio) + 256
            while self.gw.room_frames(stream) < need and not self.gw.rt.stopping:
                waited = True
                await asyncio.sleep(POLL_S)
            stream.write(piece)
        self.gw.count("frames_in", len(frames))
        if waited:
            self.gw.count("backpressure_waits")
        session = self.session
        if isinstance(session, gp.NativeSession) and session.advisor is not None:
            session.advisor.backlog_s = stream.ring.capacity / stream.sample_rate_hz - (
                self.gw.room_frames(stream) / stream.sample_rate_hz
            )

    async def _pump_events(self) -> None:
        stream, session = self.stream, self.session
        assert stream is not None and session is not None
        while True:
            topic, msg = await stream.events.get()
            for text in session.on_event(topic, msg):
                await self.ws.send(text)
            if isinstance(msg, m.StreamEnded):
                self.ended.set()
                return

    async def _drain(self) -> None:
        """End the stream, wait for its last final, send the closing messages, close."""
        session = self.session
        assert session is not None
        if self.stream is not None:
            self.stream.end()
            closed = asyncio.ensure_future(self.ws.wait_closed())
            ended = asyncio.ensure_future(self.ended.wait())
            done, _ = await asyncio.wait(
                {closed, ended}, timeout=DRAIN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
            for f in (closed, ended):
                f.cancel()
            if ended not in done:
                self.gw.count("aborted")
                return
        self.gw.count("streams_completed")
        for text in session.on_ended():
            await self.ws.send(text)
        await self.ws.close(1000, "end of stream")


def _ssl_context(opts: GatewayConfig) -> ssl.SSLContext | None:
    if not opts.tls_cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"gateway.tls_cert: cannot load {opts.tls_cert}: {exc}") from None
    return ctx


async def _serve(rt: ActorRuntime) -> None:
    opts = rt.spec.section("gateway", GatewayConfig)
    chunk_ms = rt.spec.section("audio", AudioConfig).chunk_ms
    cap = admission.connection_cap(opts.max_connections, opts.max_streams, admission.nofile_limit())
    gate = admission.Admission(cap, opts.open_timeout_s, rt.counters, rt.gauges)
    ssl_ctx = _ssl_context(opts)
    # The opening deadline is the gate's (it counts what runs out); asyncio's TLS one too.
    tls: dict[str, Any] = (
        {"ssl": ssl_ctx, "ssl_handshake_timeout": opts.open_timeout_s} if ssl_ctx else {}
    )
    front = FrontDoor(rt)
    front.start()
    gw = Gateway(rt, front, opts, chunk_ms)
    rt.gauges["status_feeds_open"] = 0.0
    api = openai_api.for_gateway(gw, rt.spec, token_presented)  # None where [openai] is off
    routed = api.connection_class(opts.open_timeout_s) if api else ServerConnection
    try:
        server: Server = await serve(
            gw.handle,
            opts.host,
            opts.port,
            create_connection=gate.connection_class(routed),
            process_request=gw.process_request,
            max_size=opts.max_message_bytes,
            open_timeout=None,
            compression=None,
            **tls,
        )
    except OSError as exc:
        await front.stop()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(port_in_use_message("gateway", opts.port)) from None
        raise ConfigError(f"gateway: cannot listen on {opts.host}:{opts.port}: {exc}") from None
    port = next(iter(server.sockets)).getsockname()[1]
    rt.gauges["port"] = float(port)
    log.info("gateway listening on %s:%d", opts.host, port)
    rt.ready()
    try:
        while not rt.stopping:
            await asyncio.sleep(0.05)
    finally:
        if api is not None:
            await api.close()
        server.close()
        await server.wait_closed()
        await front.stop()


def run(rt: ActorRuntime) -> None:
    """Actor entry point: serve until SIGTERM or Stop."""
    asyncio.run(_serve(rt))
