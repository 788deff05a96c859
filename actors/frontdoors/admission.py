"""Which connections the gateway lets in: the connection cap and the opening deadline.

The cap counts the gateway's TCP connections from accept to close, whatever they turn
out to be (WebSocket streams, status feeds, plain HTTP requests). A connection over the
cap is answered ``503 Service Unavailable`` and closed as soon as it is accepted, before
anything it sends is read, so idle sockets cannot use up the process's open files
(``RLIMIT_NOFILE``; a gateway out of descriptors can neither accept nor open a stream's
ring). A connection must complete its opening handshake (request line, headers, and the
WebSocket upgrade or an HTTP answer) within ``open_timeout_s`` seconds of being accepted
or it is aborted; with TLS, the TLS handshake has the same time before that.

With TLS a connection is counted from accept, but asyncio hands it over only once its TLS
handshake is done: one over the cap gets its ``503`` then, or is aborted at the TLS
deadline. Its descriptor is held meanwhile (not counted), so on hostile networks let a
TLS-terminating proxy in front face them.

Counters (``rt.counters``): ``connection_cap_refused``, ``handshake_timeouts``; gauges:
``open_connections`` (held now), ``max_connections`` (the cap in force).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import MutableMapping
from enum import Enum
from typing import Any, ClassVar

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from streamasr.actors.errors import ConfigError

log = logging.getLogger(__name__)

#: Descriptors a gateway needs besides its client sockets (about 16 measured idle: ZeroMQ,
#: the event loop, stdio; the rest is headroom).
FD_RESERVE = 64
#: Descriptors each open stream needs besides its socket (ring segment, doorbell: 2 measured).
FDS_PER_STREAM = 4
#: Seconds past ``open_timeout_s`` after which a connection asyncio never handed over (a
#: failed TLS handshake) gives its slot back.
UNMADE_GRACE_S = 1.0


def nofile_limit() -> int:
    """This process's soft open-file limit (``RLIMIT_NOFILE``); unlimited reads as 2**20."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 1 << 20 if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)


def connection_cap(configured: int, max_streams: int, nofile: int) -> int:
    """The connection cap: ``configured``, or when it is 0, ``2 * max_streams + 32``
    (each stream, plus as many again for refusals, status feeds and scrapes in flight).

    Either way it must fit the open-file budget ``nofile - FD_RESERVE - FDS_PER_STREAM *
    max_streams``; the derived cap is held to half of it.

    Raises:
        ConfigError: the cap (configured, or ``max_streams + 1`` at least) does not fit.
    """
    budget = nofile - FD_RESERVE - FDS_PER_STREAM * max_streams
    if configured:
        if configured > budget:
            raise ConfigError(
                f"gateway.max_connections: {configured} does not fit the open-file limit "
                f"({nofile} - {FD_RESERVE} reserved - {FDS_PER_STREAM} per stream = "
                f"{budget}); raise `ulimit -n` or lower it"
            )
        return configured
    cap = min(2 * max_streams + 32, budget // 2)
    if cap <= max_streams:
        raise ConfigError(
            f"gateway.max_streams: {max_streams} streams do not fit the open-file limit "
            f"({nofile}); raise `ulimit -n` or lower max_streams"
        )
    return cap


class Admission:
    """The slots of one gateway's connection cap, and its counters.

    Attributes:
        cap: connections held at most.
        open_timeout_s: seconds a connection has for its opening handshake.
        held: connections holding a slot now.
    """

    def __init__(
        self,
        cap: int,
        open_timeout_s: float,
        counters: MutableMapping[str, int],
        gauges: MutableMapping[str, float],
    ) -> None:
        """``cap`` slots; counts into ``counters``, reports levels in ``gauges``."""
        self.cap, self.open_timeout_s = cap, open_timeout_s
        self.counters, self.gauges = counters, gauges
        self.held = 0
        for key in ("connection_cap_refused", "handshake_timeouts"):
            counters.setdefault(key, 0)
        gauges["max_connections"] = float(cap)
        gauges["open_connections"] = 0.0

    def take(self) -> bool:
        """Take a slot if one is free; a refusal is counted."""
        if self.held >= self.cap:
            if not self.counters["connection_cap_refused"]:
                log.warning(
                    "connection cap reached (%d): connections over it are refused "
                    "(counted as connection_cap_refused)",
                    self.cap,
                )
            self.counters["connection_cap_refused"] += 1
            return False
        self.held += 1
        self.gauges["open_connections"] = float(self.held)
        return True

    def release(self) -> None:
        """Give a slot back."""
        self.held -= 1
        self.gauges["open_connections"] = float(self.held)

    def refusal(self) -> bytes:
        """The raw ``503`` answer of a connection over the cap."""
        body = f"connection limit reached ({self.cap})\n".encode()
        headers = Headers(
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
                ("Retry-After", "1"),
            ]
        )
        return Response(503, "Service Unavailable", headers, body).serialize()

    def connection_class(
        self, base: type[ServerConnection] = ServerConnection
    ) -> type[ServerConnection]:
        """A :class:`GatedConnection` subclass bound to these slots (``serve``'s
        ``create_connection``), over ``base`` (a connection class that may route requests
        elsewhere, see :mod:`.http_route`: the gate acts first)."""
        bases = (GatedConnection,) if base is ServerConnection else (GatedConnection, base)
        return type("BoundGatedConnection", bases, {"admission": self})


class _Slot(Enum):
    HELD = "held"  # counted against the cap
    REFUSED = "refused"  # over the cap at accept: answered 503 once handed over
    EXPIRED = "expired"  # never handed over by its deadline: slot given back
    CLOSED = "closed"


class GatedConnection(ServerConnection):
    """A websockets server connection that takes a slot when accepted (see module
    docstring); use :meth:`Admission.connection_class`."""

    admission: ClassVar[Admission]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Called by asyncio at accept (before any TLS handshake): take a slot."""
        super().__init__(*args, **kwargs)
        gate = self.admission
        self.slot = _Slot.HELD if gate.take() else _Slot.REFUSED
        self._unmade = self.loop.call_later(gate.open_timeout_s + UNMADE_GRACE_S, self._expire)

    def _expire(self) -> None:
        if self.slot is _Slot.HELD:
            self.admission.release()
            self.slot = _Slot.EXPIRED

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Serve the connection, or answer 503 and close it if it is over the cap."""
        self._unmade.cancel()
        if self.slot is _Slot.EXPIRED:
            self.slot = _Slot.HELD if self.admission.take() else _Slot.REFUSED
        if self.slot is _Slot.HELD:
            super().connection_made(transport)  # starts the handshake and the handler
            return
        # The base connection's state, without a handler: nothing will read this socket.
        super(ServerConnection, self).connection_made(transport)
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.admission.refusal())
        transport.close()

    def handed_off(self) -> None:
        """Another protocol took the transport (an HTTP API request): give the slot back
        now, since this connection will not see the socket close."""
        self._unmade.cancel()
        if self.slot is _Slot.HELD:
            self.admission.release()
        self.slot = _Slot.CLOSED

    def connection_lost(self, exc: Exception | None) -> None:
        """Give the slot back."""
        self._unmade.cancel()
        if self.slot is _Slot.HELD:
            self.admission.release()
        self.slot = _Slot.CLOSED
        super().connection_lost(exc)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        """The opening handshake within ``open_timeout_s`` (counted when it runs out;
        websockets then aborts the connection)."""
        try:
            async with asyncio.timeout(self.admission.open_timeout_s):
                await super().handshake(*args, **kwargs)
        except TimeoutError:
            self.admission.counters["handshake_timeouts"] += 1
            raise
