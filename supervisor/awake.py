"""The supervisor's awake clock: monotonic seconds that stand still while it is not running.

The restart policy judges every deadline that waits for an actor's message (heartbeat, Ready)
on this clock, so an actor is hung only if no heartbeat of its was *read* for
``heartbeat_timeout_s`` of time the supervisor itself was awake and reading. A supervisor that
was stopped (SIGSTOP, a suspended VM, a box starving it of CPU) finds its actors' heartbeats
queued on its control socket when it resumes; the silence it saw meanwhile was its own.

The supervisor reads the clock several times per loop iteration and at least once per poll
(at most ``POLL_S`` apart). A gap between two reads longer than ``stall_after_s`` is a stall:
only ``stall_credit_s`` of it counts as awake time (:func:`awake_advance_s`). Crediting a
little rather than nothing keeps the policy live on a supervisor that stalls every iteration:
its children still age, slowly, and a really hung one is still convicted.

Depends on the standard library only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["POLL_S", "AwakeClock", "awake_advance_s"]

#: Longest wait of the supervisor's poll loop (seconds): the normal gap between two reads.
POLL_S = 0.05


def awake_advance_s(gap_s: float, stall_after_s: float, stall_credit_s: float) -> float:
    """Seconds of a gap between two reads of the clock that count as awake time.

    Args:
        gap_s: monotonic seconds between the two reads.
        stall_after_s: a longer gap is a stall (the supervisor was not running throughout).
        stall_credit_s: awake seconds a stall counts for (what one loop iteration takes
            normally: the supervisor surely ran at both ends of the gap).

    Returns:
        ``0`` for a gap that is not positive, the whole gap up to ``stall_after_s``, else
        ``min(gap_s, stall_credit_s)``.
    """
    if gap_s <= 0.0:
        return 0.0
    if gap_s <= stall_after_s:
        return gap_s
    return min(gap_s, stall_credit_s)


class AwakeClock:
    """Monotonic seconds the supervisor was awake; stalls are recorded for the caller to report."""

    def __init__(
        self,
        stall_after_s: float,
        stall_credit_s: float = POLL_S,
        source: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start at ``source()`` (so the awake clock equals it until the first stall).

        Args:
            stall_after_s: gap between two reads (seconds) above which the supervisor stalled.
            stall_credit_s: awake seconds a stall counts for.
            source: the real monotonic clock (seconds); injected by tests.
        """
        if not stall_after_s > 0 or stall_credit_s < 0 or stall_credit_s > stall_after_s:
            raise ValueError("need stall_after_s > 0 and 0 <= stall_credit_s <= stall_after_s")
        self._stall_after_s = stall_after_s
        self._stall_credit_s = stall_credit_s
        self._source = source
        self._real_s = source()
        self._awake_s = self._real_s
        self._stalls: list[float] = []

    def now(self) -> float:
        """The awake time now (seconds); a stall since the last read is recorded."""
        real_s = self._source()
        gap_s = real_s - self._real_s
        if gap_s > self._stall_after_s:
            self._stalls.append(gap_s)
        self._awake_s += awake_advance_s(gap_s, self._stall_after_s, self._stall_credit_s)
        self._real_s = max(self._real_s, real_s)
        return self._awake_s

    def take_stalls(self) -> list[float]:
        """The stalls (their gaps, seconds) seen since the last call, oldest first."""
        stalls, self._stalls = self._stalls, []
        return stalls
