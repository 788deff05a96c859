"""Fault injection shared by the inference and refine actors: CPU work added to each model
call, so a test or an operator can make a model slower than real time without a restart.

The work is spent in slices with a heartbeat between them: it simulates a model too slow for
real time (a throughput fault), not a hung one. Spent in one block, a 1 s delay on a box
whose cores are shared three ways took over 5 s of wall time and the actor was killed as
hung (hangs have their own tests: SIGSTOP)."""

from __future__ import annotations

import contextlib
import time

from streamasr.actors.runtime import ActorRuntime

__all__ = ["DelayOverride", "burn_cpu"]

#: CPU seconds burnt between two heartbeat checks.
_SLICE_S = 0.05


def burn_cpu(seconds: float) -> None:
    """Spend ``seconds`` of this process's CPU time (simulates a heavier model)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class DelayOverride:
    """Fault injection: CPU work added to each model call (a model slower than real time).

    ``delay_ms`` comes from the config; the file ``<runtime_dir>/<name>.delay_ms`` overrides
    it while it exists (read at most every 0.5 s), so a test or an operator can load a
    running actor and take the load away again without a restart.
    """

    def __init__(self, rt: ActorRuntime, name: str, delay_ms: float) -> None:
        """``name``: the override file's stem (``inference``, ``refine``)."""
        self.rt = rt
        self.configured_ms = delay_ms
        self.delay_s = delay_ms / 1000.0
        self.file = rt.runtime_dir / f"{name}.delay_ms"
        self._next_check_s = 0.0

    def check(self, now_s: float) -> bool:
        """Re-read the override (``now_s``: monotonic seconds); True if the delay changed."""
        if now_s < self._next_check_s:
            return False
        self._next_check_s = now_s + 0.5
        delay_ms = self.configured_ms
        with contextlib.suppress(OSError, ValueError):
            delay_ms = float(self.file.read_text().strip())
        changed = delay_ms / 1000.0 != self.delay_s
        self.delay_s = delay_ms / 1000.0
        self.rt.gauges["delay_ms"] = delay_ms
        return changed

    def burn(self) -> None:
        """Spend the current delay of this process's CPU time, heartbeating when one is due."""
        left = self.delay_s
        while left > 0:
            burn_cpu(min(_SLICE_S, left))
            left -= _SLICE_S
            self.rt.heartbeat()
