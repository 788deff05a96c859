"""Plain HTTP requests and WebSocket handshakes on one port, routed by the request line.

Why: the ``websockets`` server (v14 and later, 17 here) parses every request as a WebSocket
handshake — a GET without a body. A request with a body (``Content-Length`` > 0,
``Transfer-Encoding``) is refused by its parser before ``process_request`` sees it, so it
cannot serve ``POST /v1/audio/transcriptions``. aiohttp's low-level server
(:class:`aiohttp.web.Server`) speaks the whole of HTTP/1.1 (bodies, chunked encoding,
``Expect: 100-continue``, multipart) and is, like a websockets connection, an asyncio
protocol factory.

How: :func:`routing_connection` makes the class that websockets' ``serve()`` instantiates
for each accepted connection (its documented ``create_connection`` hook). It holds
websockets back until the request line has arrived, then either carries on as the
websockets connection it is (GETs outside the HTTP routes: the three WebSocket protocols,
``/v1/status``, ``/ui``, ``/metrics``, ``/healthz``, all unchanged), or gives the
transport, with the bytes already read, to a new HTTP protocol (asyncio's
``transport.set_protocol``) — aiohttp then serves the connection to its end. One listening
socket, TLS included (the transport handed over is the TLS one), no extra hop per WebSocket
frame, and no private API of either library.

Alternatives weighed: moving the port to aiohttp (the gateway's three WebSocket protocols,
their backpressure and tests would move to another library's WebSocket code: invasive); a
second port (OpenAI clients take one base URL, and operators would open two); a proxy in
front that copies bytes (a hop for every frame of every real-time stream).

Bounds: a connection that sends no complete request line within ``open_timeout_s`` (or more
than :data:`MAX_REQUEST_LINE` bytes without one) is handed to websockets, which answers and
closes it, or closed when it said nothing at all — the slow-loris bound websockets applies
to its own handshakes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Literal

from websockets.asyncio.server import ServerConnection

#: Longest request line read before routing, bytes (websockets' own limit is 8 KiB).
MAX_REQUEST_LINE: Final = 8192

#: ``wants_http(method, path)``: whether a request goes to the HTTP protocol.
Router = Callable[[str, str], bool]
#: Makes the HTTP protocol for one connection (e.g. an :class:`aiohttp.web.Server`).
HttpFactory = Callable[[], asyncio.BaseProtocol]


def request_target(line: bytes) -> tuple[str, str]:
    """Method and path (without the query) of an HTTP request line; ``("", "")`` if it is
    not one."""
    parts = line.strip().split(b" ")
    if len(parts) != 3 or not parts[0].isalpha():
        return "", ""
    path = parts[1].split(b"?", 1)[0]
    return parts[0].decode("ascii", "replace"), path.decode("latin-1")


def routing_connection(
    wants_http: Router, http: HttpFactory, open_timeout_s: float
) -> type[ServerConnection]:
    """A websockets connection class that sends the requests ``wants_http`` picks to a
    protocol from ``http`` (see the module docstring)."""

    class RoutingConnection(ServerConnection):
        """A websockets connection that may hand its transport to an HTTP protocol."""

        _state: Literal["reading", "websocket", "http", "closed"]
        _head: bytearray
        _raw: asyncio.Transport
        _timer: asyncio.TimerHandle

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            """Wait for the request line before anyone sees the connection."""
            assert isinstance(transport, asyncio.Transport)
            self._state, self._head, self._raw = "reading", bytearray(), transport
            self._timer = self.loop.call_later(open_timeout_s, self._line_expired)

        def _line_expired(self) -> None:
            if self._state != "reading":
                return
            if self._head:  # a partial request line: websockets answers it and closes
                self._route_websocket()
            else:
                self._drop()

        def _drop(self) -> None:
            self._state = "closed"
            self._raw.abort()

        def _route_websocket(self) -> None:
            self._timer.cancel()
            self._state = "websocket"
            head, self._head = bytes(self._head), bytearray()
            super().connection_made(self._raw)
            if head:
                super().data_received(head)

        def data_received(self, data: bytes) -> None:
            """Route on the first request line; then whoever took the connection reads."""
            if self._state != "reading":
                if self._state == "websocket":
                    super().data_received(data)
                return
            self._head += data
            end = self._head.find(b"\n")
            if end < 0 and len(self._head) <= MAX_REQUEST_LINE:
                return
            method, path = request_target(bytes(self._head[:end]) if end >= 0 else b"")
            if method and wants_http(method, path):
                self._timer.cancel()
                self._state = "http"
                head, self._head = bytes(self._head), bytearray()
                proto = http()
                self.handed_off()
                self._raw.set_protocol(proto)
                proto.connection_made(self._raw)
                assert isinstance(proto, asyncio.Protocol)
                proto.data_received(head)
            else:
                self._route_websocket()

        def handed_off(self) -> None:
            """Hook: the transport went to the HTTP protocol (a connection cap gives its
            slot back here)."""

        def eof_received(self) -> None:
            """EOF before a request line closes the connection; after, websockets decides."""
            if self._state == "websocket":
                super().eof_received()
                return
            self._timer.cancel()
            self._state = "closed"

        def connection_lost(self, exc: Exception | None) -> None:
            """Only a connection websockets has seen is its business."""
            self._timer.cancel()
            if self._state == "websocket":
                super().connection_lost(exc)
            else:
                self._state = "closed"

    return RoutingConnection
