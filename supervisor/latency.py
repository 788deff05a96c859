"""Sliding-window latency aggregation per pipeline stage (pure; the clock is injected).

The supervisor adds one sample per measured latency (seconds) under a stage name such as
``"capture_to_feature"`` or ``"end_to_end"`` and asks for a :meth:`LatencyWindow.summary` when it
reports status or decides on the chunk size.  Memory is bounded twice over: samples older than
``window_s`` are dropped, and each stage keeps at most ``max_samples`` (the oldest go first), so a
burst cannot grow the window without limit.  Percentiles use the nearest-rank method (the reported
p95 is a latency that was actually observed, never an interpolation between two).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["LatencyWindow", "Percentiles"]


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Latency statistics of one stage over the window; all values in seconds.

    ``over_budget_share`` is the fraction of samples strictly above the stage's budget, or ``None``
    when no budget was given for the stage.
    """

    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float
    count: int
    over_budget_share: float | None


class LatencyWindow:
    """Latency samples of the last ``window_s`` seconds, at most ``max_samples`` per stage.

    ``clock`` returns monotonic seconds (default :func:`time.monotonic`); sample times ``t`` use
    the same clock.  Samples should arrive roughly in time order: eviction scans from the oldest
    end, and :meth:`summary` filters by time, so a late sample never distorts a summary.
    """

    def __init__(
        self,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_samples: int = 4096,
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if max_samples < 1:
            raise ValueError(f"max_samples must be >= 1, got {max_samples}")
        self._window_s = window_s
        self._clock = clock
        self._max_samples = max_samples
        self._stages: dict[str, deque[tuple[float, float]]] = {}

    @property
    def window_s(self) -> float:
        """Length of the window in seconds."""
        return self._window_s

    def add(self, stage: str, value_s: float, t: float | None = None) -> None:
        """Record a latency of ``value_s`` seconds for ``stage`` at time ``t`` (default: now)."""
        if not math.isfinite(value_s):
            raise ValueError(f"latency for {stage!r} must be finite, got {value_s}")
        now = self._clock() if t is None else t
        samples = self._stages.get(stage)
        if samples is None:
            samples = self._stages[stage] = deque(maxlen=self._max_samples)
        samples.append((now, value_s))
        self._evict(stage, samples, self._clock() if t is not None else now)

    def count(self, stage: str) -> int:
        """Samples currently held for ``stage`` (before time filtering)."""
        samples = self._stages.get(stage)
        return 0 if samples is None else len(samples)

    def summary(
        self, budget_s: float | Mapping[str, float] | None = None
    ) -> dict[str, Percentiles]:
        """Percentiles per stage with at least one sample in the window.

        ``budget_s``: one budget (seconds) for every stage, a budget per stage name, or ``None``.
        """
        now = self._clock()
        out: dict[str, Percentiles] = {}
        for stage in list(self._stages):
            samples = self._stages[stage]
            self._evict(stage, samples, now)
            cutoff = now - self._window_s
            values = np.array([v for t, v in samples if t >= cutoff], dtype=np.float64)
            if values.size:
                out[stage] = _percentiles(values, _budget_for(budget_s, stage))
        return out

    def clear(self) -> None:
        """Drop every sample (e.g. after the chunk size changed)."""
        self._stages.clear()

    def _evict(self, stage: str, samples: deque[tuple[float, float]], now: float) -> None:
        cutoff = now - self._window_s
        while samples and samples[0][0] < cutoff:
            samples.popleft()
        if not samples:
            del self._stages[stage]


def _budget_for(budget_s: float | Mapping[str, float] | None, stage: str) -> float | None:
    if budget_s is None or isinstance(budget_s, float | int):
        return budget_s
    return budget_s.get(stage)


def _percentiles(values: np.ndarray, budget_s: float | None) -> Percentiles:
    """Nearest-rank percentiles of a non-empty array of seconds."""
    ordered = np.sort(values)
    n = ordered.size

    def rank(q: float) -> float:
        return float(ordered[max(0, math.ceil(q * n) - 1)])

    share = None if budget_s is None else float(np.count_nonzero(ordered > budget_s)) / n
    return Percentiles(rank(0.50), rank(0.95), rank(0.99), float(ordered[-1]), n, share)
