"""The gateway's ``/v1/status`` feed: the status map pushed every second, paced.

A feed sends the status map every ``period_s``. Any message from the client asks for one
now, but a feed replies at most once per ``min_interval_s``: requests in between are
coalesced into that one reply, never queued, so what a client can make the gateway send
is bounded by time, not by what it sends. Requests beyond a token bucket (``burst`` at
once, ``refill_per_s`` after) are a flood: the feed is closed (1008) and counted.
:class:`StatusPacer` is the pure timing rule (a clock is passed in); :func:`run_feed`
drives one connection with it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from streamasr.actors.frontdoors import protocols as gp

#: Seconds between pushes when nothing is asked.
PERIOD_S = 1.0
#: Seconds between two replies of one feed at least.
MIN_INTERVAL_S = 0.25
#: Requests a feed may send at once, and per second after that, before it is a flood.
BURST = 10
REFILL_PER_S = 4.0


class StatusFlood(gp.GatewayProtocolError):
    """A status client sent requests faster than the pacer allows (closed with 1008)."""


@dataclass
class StatusPacer:
    """When a status feed sends (see module docstring); times are monotonic seconds.

    Attributes:
        pending: a request is waiting for the next reply.
    """

    period_s: float = PERIOD_S
    min_interval_s: float = MIN_INTERVAL_S
    burst: int = BURST
    refill_per_s: float = REFILL_PER_S
    pending: bool = False
    _last_sent_s: float = -math.inf
    _tokens: float = field(init=False)
    _tokens_at_s: float = -math.inf

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)

    def request(self, now_s: float) -> bool:
        """A request arrived at ``now_s``: owe a reply; False if it is over the bucket."""
        if math.isfinite(self._tokens_at_s):
            refill = (now_s - self._tokens_at_s) * self.refill_per_s
            self._tokens = min(float(self.burst), self._tokens + refill)
        self._tokens_at_s = now_s
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self.pending = True
        return True

    def next_s(self) -> float:
        """When the next reply is due: the periodic push, or sooner for a pending request."""
        if self.pending:
            return self._last_sent_s + self.min_interval_s
        return self._last_sent_s + self.period_s

    def due(self, now_s: float) -> bool:
        """Whether to send now."""
        return now_s >= self.next_s()

    def sent(self, now_s: float) -> None:
        """A reply went out at ``now_s`` (it answers every pending request)."""
        self._last_sent_s = now_s
        self.pending = False


async def run_feed(
    ws: ServerConnection,
    snapshot: Callable[[], str],
    pacer: StatusPacer,
    stopping: Callable[[], bool],
) -> None:
    """Send ``snapshot()`` on ``ws`` as ``pacer`` says until ``stopping()`` or the client
    goes away.

    Raises:
        StatusFlood: the client sent requests faster than the pacer allows.
        websockets.exceptions.ConnectionClosed: the connection closed.
    """
    while not stopping():
        if pacer.due(time.monotonic()):
            await ws.send(snapshot())
            pacer.sent(time.monotonic())
        wait_s = max(0.0, pacer.next_s() - time.monotonic())
        try:
            await asyncio.wait_for(ws.recv(), wait_s)
        except TimeoutError:
            continue
        if not pacer.request(time.monotonic()):
            raise StatusFlood("too many status requests", gp.CLOSE_POLICY)
