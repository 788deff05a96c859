"""Where an actor's CPU time goes: CPU seconds by activity (pure bookkeeping; no sockets).

An actor wraps each kind of work in :meth:`CpuAccount.charge` ("first_pass" in inference,
"finals", "partials" and "early" in refine, "conditioning" in feature). The time charged is
the *process's* CPU time (``time.process_time``: every thread, so CTranslate2's and ONNX
Runtime's worker threads count too) between entering and leaving the block; an actor does
one kind of work at a time, so nothing is counted twice. Every heartbeat carries the totals
as counters ``cpu_ms_<activity>`` (milliseconds) next to ``cpu_ms``, the process's whole CPU
time (user + system): what no activity claims (the event loop, messages, heartbeats) is the
difference. ``status`` shows the account per actor; benchmarks divide it by audio seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

__all__ = ["CPU_PREFIX", "CpuAccount"]

#: Counter name prefix of an activity's CPU milliseconds (``cpu_ms`` alone: the process).
CPU_PREFIX = "cpu_ms_"


class CpuAccount:
    """CPU seconds per activity of this process, written into ``counters`` as it grows."""

    def __init__(self, counters: dict[str, int]) -> None:
        """Charge into ``counters`` (an actor's heartbeat counters)."""
        self._counters = counters
        self._seconds: dict[str, float] = {}
        self._open = False

    @contextlib.contextmanager
    def charge(self, activity: str) -> Iterator[None]:
        """Charge the process CPU time spent inside the block to ``activity``. A block
        nested in another charged block is the outer one's (not counted twice)."""
        if self._open:
            yield
            return
        self._open = True
        t0 = time.process_time()
        try:
            yield
        finally:
            self._open = False
            total = self._seconds.get(activity, 0.0) + time.process_time() - t0
            self._seconds[activity] = total
            self._counters[CPU_PREFIX + activity] = int(1000 * total)

    def seconds(self) -> dict[str, float]:
        """CPU seconds charged so far, by activity."""
        return dict(self._seconds)
