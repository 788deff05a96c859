"""Adaptive chunk size: a pure policy that picks the chunk length (ms) from measured load.

Every chunk costs a fixed overhead (doorbell, wake-up, Python dispatch, model call set-up) plus work
proportional to its length.  Small chunks give low latency - a sample waits at most one chunk before
it is processed - but the fixed overhead is paid more often; large chunks amortise it but add
latency.  The supervisor measures, per chunk size, the 95th-percentile processing time of a chunk
(``proc_ms_p95``) and how full the input ring is (``ring_fill_ratio``), and calls :func:`decide`.

Definitions:

* ``load = proc_ms_p95 / chunk_ms``: the share of real time the slowest stage spends on a chunk.
  Above 1 the pipeline cannot keep up at all; near 1 it has no margin for jitter.
* Estimated added latency ``= chunk_ms + proc_ms_p95``: the first sample of a chunk waits for the
  rest of the chunk, then for the chunk to be processed.

Policy, one step of the ladder ``steps_ms`` at a time:

* **Grow** when falling behind: ``load > up_load`` or ``ring_fill_ratio > high_fill``, seen on
  ``grow_after`` consecutive observations.  Growing is prompt because a ring that overflows loses
  audio, which costs more than latency.  Growth ignores the latency budget for the same reason.
* **Shrink** only when all hold: ``load < down_load`` and ``ring_fill_ratio < low_fill`` (real
  headroom, on ``shrink_after`` consecutive observations); the estimated latency is over
  ``budget_ms`` (latency matters - if the budget is already met, larger chunks are cheaper); the
  current per-chunk time would still be below ``up_load`` at the smaller size (conservatively
  assuming the cost is all fixed overhead, so a shrink never immediately triggers a grow); and at
  least ``dwell_s`` have passed since the last change.

Hysteresis comes from the gap between the thresholds (``down_load < up_load``,
``low_fill < high_fill``), the consecutive-observation counts and the dwell time: a shrink can only
happen ``dwell_s`` after any change, so the size can never oscillate faster than one cycle per
``dwell_s``.  Observations measured at another chunk size than the current one (still in flight
after a change) are ignored, and streaks restart after every change, so the caller should reset
its per-chunk statistics when the size changes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

__all__ = [
    "ChunkObservation",
    "ChunkPolicyOptions",
    "ChunkPolicyState",
    "decide",
    "initial_chunk_state",
]


@dataclass(frozen=True, slots=True)
class ChunkPolicyOptions:
    """Bounds, ladder and thresholds of the chunk policy.

    ``steps_ms`` is the ladder of allowed chunk lengths (milliseconds, strictly increasing, within
    ``[min_ms, max_ms]``).  ``budget_ms`` is the latency budget for chunking plus processing.
    Fill thresholds are ring fill ratios in ``[0, 1]``; load thresholds are ``proc_ms / chunk_ms``.
    ``dwell_s`` is the minimum time (seconds) since the last change before shrinking.
    """

    min_ms: int = 50
    max_ms: int = 200
    steps_ms: tuple[int, ...] = (50, 100, 150, 200)
    budget_ms: float = 100.0
    high_fill: float = 0.5
    low_fill: float = 0.1
    up_load: float = 0.8
    down_load: float = 0.4
    dwell_s: float = 2.0
    grow_after: int = 1
    shrink_after: int = 3

    def __post_init__(self) -> None:
        steps = self.steps_ms
        if not steps or any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("steps_ms must be non-empty and strictly increasing")
        if not 0 < self.min_ms <= steps[0] or steps[-1] > self.max_ms:
            raise ValueError(f"steps_ms {steps} must lie within [{self.min_ms}, {self.max_ms}] ms")
        if not 0.0 <= self.low_fill < self.high_fill <= 1.0:
            raise ValueError("fill thresholds need 0 <= low_fill < high_fill <= 1")
        if not 0.0 < self.down_load < self.up_load:
            raise ValueError("load thresholds need 0 < down_load < up_load")
        if self.budget_ms <= 0 or self.dwell_s < 0:
            raise ValueError("budget_ms must be > 0 and dwell_s >= 0")
        if self.grow_after < 1 or self.shrink_after < 1:
            raise ValueError("grow_after and shrink_after must be >= 1")


@dataclass(frozen=True, slots=True)
class ChunkObservation:
    """One measurement window.

    ``chunk_ms``: the chunk length the window was measured with (ms).  ``proc_ms_p95``: 95th
    percentile processing time per chunk of the slowest stage (ms).  ``ring_fill_ratio``: fill of
    the input ring in ``[0, 1]``.  ``now_s``: supervisor monotonic time (seconds).
    """

    chunk_ms: int
    proc_ms_p95: float
    ring_fill_ratio: float
    now_s: float


@dataclass(frozen=True, slots=True)
class ChunkPolicyState:
    """Current chunk length (ms), time of the last change (s), streaks, and why (for logs)."""

    options: ChunkPolicyOptions
    chunk_ms: int
    last_change_s: float | None = None
    behind_streak: int = 0
    headroom_streak: int = 0
    reason: str = "initial"


def initial_chunk_state(
    options: ChunkPolicyOptions, chunk_ms: int | None = None, now_s: float | None = None
) -> ChunkPolicyState:
    """Start at ``chunk_ms`` (default: the largest step, the safe end); the dwell counts from
    ``now_s`` (seconds) when given, else the first shrink needs no dwell."""
    chosen = options.steps_ms[-1] if chunk_ms is None else chunk_ms
    if chosen not in options.steps_ms:
        raise ValueError(f"chunk_ms {chosen} is not one of steps_ms {options.steps_ms}")
    return ChunkPolicyState(options, chosen, last_change_s=now_s)


def decide(state: ChunkPolicyState, obs: ChunkObservation) -> tuple[ChunkPolicyState, int]:
    """Fold one observation into the policy; return the new state and the chunk length (ms)."""
    o = state.options
    if obs.chunk_ms != state.chunk_ms:
        return replace(state, reason=f"ignored observation at {obs.chunk_ms} ms"), state.chunk_ms
    load = obs.proc_ms_p95 / obs.chunk_ms
    if load > o.up_load or obs.ring_fill_ratio > o.high_fill:
        return _behind(state, obs, load)
    if load < o.down_load and obs.ring_fill_ratio < o.low_fill:
        return _headroom(state, obs, load)
    steady = replace(state, behind_streak=0, headroom_streak=0, reason=f"steady, load {load:.2f}")
    return steady, state.chunk_ms


def _behind(
    state: ChunkPolicyState, obs: ChunkObservation, load: float
) -> tuple[ChunkPolicyState, int]:
    o = state.options
    streak = state.behind_streak + 1
    why = f"behind: load {load:.2f}, fill {obs.ring_fill_ratio:.2f}"
    i = o.steps_ms.index(state.chunk_ms)
    if i == len(o.steps_ms) - 1 or streak < o.grow_after:
        suffix = ", at max" if i == len(o.steps_ms) - 1 else ""
        new = replace(state, behind_streak=streak, headroom_streak=0, reason=why + suffix)
        return new, state.chunk_ms
    return _change(state, o.steps_ms[i + 1], obs.now_s, why)


def _headroom(
    state: ChunkPolicyState, obs: ChunkObservation, load: float
) -> tuple[ChunkPolicyState, int]:
    o = state.options
    streak = state.headroom_streak + 1
    i = o.steps_ms.index(state.chunk_ms)
    latency_ms = obs.chunk_ms + obs.proc_ms_p95
    since = None if state.last_change_s is None else obs.now_s - state.last_change_s
    if i == 0:
        why = "headroom, at min"
    elif latency_ms <= o.budget_ms:
        why = f"headroom, latency {latency_ms:.0f} ms within budget"
    elif obs.proc_ms_p95 / o.steps_ms[i - 1] >= o.up_load:
        why = f"headroom, but {o.steps_ms[i - 1]} ms would overload"
    elif streak < o.shrink_after:
        why = f"headroom {streak}/{o.shrink_after}"
    elif since is not None and since < o.dwell_s:
        why = f"headroom, dwell {since:.2f}/{o.dwell_s:g} s"
    else:
        return _change(state, o.steps_ms[i - 1], obs.now_s, f"headroom: load {load:.2f}")
    new = replace(state, behind_streak=0, headroom_streak=streak, reason=why)
    return new, state.chunk_ms


def _change(
    state: ChunkPolicyState, chunk_ms: int, now_s: float, why: str
) -> tuple[ChunkPolicyState, int]:
    reason = f"{why}: {state.chunk_ms} -> {chunk_ms} ms"
    new = ChunkPolicyState(state.options, chunk_ms, last_change_s=now_s, reason=reason)
    return new, chunk_ms
