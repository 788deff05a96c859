"""The adaptive chunk-size policy as a pure function, with a fake clock."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from streamasr.supervisor.chunk_policy import (
    ChunkObservation,
    ChunkPolicyOptions,
    ChunkPolicyState,
    decide,
    initial_chunk_state,
)

OPTS = ChunkPolicyOptions()


def run(
    state: ChunkPolicyState, proc_ms: float, fill: float, start_s: float, n: int, dt_s: float = 0.5
) -> tuple[ChunkPolicyState, list[tuple[float, int]]]:
    """Feed ``n`` observations ``dt_s`` apart at the current size; return (time, chunk_ms) trace."""
    trace = []
    for k in range(n):
        t = start_s + k * dt_s
        state, chunk = decide(state, ChunkObservation(state.chunk_ms, proc_ms, fill, t))
        trace.append((t, chunk))
    return state, trace


def changes(trace: list[tuple[float, int]], start_ms: int) -> list[tuple[float, int, int]]:
    """(time, from_ms, to_ms) for every change in a trace."""
    out, prev = [], start_ms
    for t, chunk in trace:
        if chunk != prev:
            out.append((t, prev, chunk))
            prev = chunk
    return out


def test_headroom_shrinks_step_by_step_to_the_minimum() -> None:
    state = initial_chunk_state(OPTS, now_s=0.0)
    state, trace = run(state, proc_ms=5.0, fill=0.0, start_s=0.5, n=40)
    assert state.chunk_ms == 50
    steps = changes(trace, 200)
    assert [(a, b) for _, a, b in steps] == [(200, 150), (150, 100), (100, 50)]
    assert all(t2 - t1 >= OPTS.dwell_s for (t1, _, _), (t2, _, _) in itertools.pairwise(steps))


def test_shrink_waits_for_dwell_after_start() -> None:
    state = initial_chunk_state(OPTS, now_s=0.0)
    state, _ = run(state, proc_ms=5.0, fill=0.0, start_s=0.5, n=3)  # t = 0.5, 1.0, 1.5
    assert state.chunk_ms == 200
    assert state.reason == "headroom, dwell 1.50/2 s"
    state, chunk = decide(state, ChunkObservation(200, 5.0, 0.0, 2.0))
    assert chunk == 150


def test_shrink_needs_consecutive_headroom_observations() -> None:
    state = initial_chunk_state(OPTS)  # no dwell at start
    state, chunk = decide(state, ChunkObservation(200, 5.0, 0.0, 0.0))
    state, chunk = decide(state, ChunkObservation(200, 5.0, 0.0, 1.0))
    state, chunk = decide(state, ChunkObservation(200, 50.0, 0.0, 2.0))  # load 0.25 ok
    assert chunk == 150
    state = initial_chunk_state(OPTS)
    for t, proc in ((0.0, 5.0), (1.0, 5.0), (2.0, 100.0), (3.0, 5.0)):  # load 0.5: streak broken
        state, chunk = decide(state, ChunkObservation(200, proc, 0.0, t))
    assert chunk == 200
    assert state.headroom_streak == 1


def test_overload_grows_one_step_per_observation_up_to_the_maximum() -> None:
    state = initial_chunk_state(OPTS, chunk_ms=50)
    sizes = []
    for t in range(5):  # 12 ms overhead + 0.81 x real time: load > 0.8 at every size
        proc_ms = 12.0 + 0.75 * state.chunk_ms
        state, chunk = decide(state, ChunkObservation(state.chunk_ms, proc_ms, 0.0, float(t)))
        sizes.append(chunk)
    assert sizes == [100, 150, 200, 200, 200]
    assert state.reason == "behind: load 0.81, fill 0.00, at max"


def test_load_below_up_threshold_does_not_grow() -> None:
    state = initial_chunk_state(OPTS, chunk_ms=100)
    state, _ = run(state, proc_ms=80.0, fill=0.5, start_s=0.0, n=10)  # load 0.8 exactly
    assert state.chunk_ms == 100
    assert state.reason == "steady, load 0.80"


def test_full_ring_grows_even_with_low_load() -> None:
    state = initial_chunk_state(OPTS, chunk_ms=50)
    state, chunk = decide(state, ChunkObservation(50, 5.0, 0.6, 0.0))
    assert chunk == 100
    assert state.reason == "behind: load 0.10, fill 0.60: 50 -> 100 ms"


def test_grow_is_not_delayed_by_dwell() -> None:
    state = initial_chunk_state(OPTS, chunk_ms=50, now_s=0.0)
    state, chunk = decide(state, ChunkObservation(50, 45.0, 0.0, 0.01))
    assert chunk == 100


def test_no_shrink_when_latency_budget_is_already_met() -> None:
    opts = ChunkPolicyOptions(budget_ms=300.0)
    state = initial_chunk_state(opts)
    state, _ = run(state, proc_ms=5.0, fill=0.0, start_s=0.0, n=20)
    assert state.chunk_ms == 200
    assert state.reason == "headroom, latency 205 ms within budget"


def test_no_shrink_when_the_smaller_chunk_would_overload() -> None:
    opts = ChunkPolicyOptions(steps_ms=(50, 200))
    state = initial_chunk_state(opts)
    state, _ = run(state, proc_ms=60.0, fill=0.0, start_s=0.0, n=20)  # load 0.3 at 200 ms
    assert state.chunk_ms == 200  # 60 ms per 50 ms chunk would be load 1.2
    assert state.reason == "headroom, but 50 ms would overload"
    state, _ = run(state, proc_ms=39.0, fill=0.0, start_s=20.0, n=5)  # 39/50 = 0.78 fits
    assert state.chunk_ms == 50


def test_observation_at_a_stale_chunk_size_is_ignored() -> None:
    state = initial_chunk_state(OPTS, chunk_ms=100)
    new, chunk = decide(state, ChunkObservation(200, 500.0, 0.9, 0.0))
    assert chunk == 100
    assert new.reason == "ignored observation at 200 ms"


def test_between_thresholds_holds_size_and_resets_streaks() -> None:
    state = initial_chunk_state(OPTS, chunk_ms=100)
    state, _ = decide(state, ChunkObservation(100, 5.0, 0.0, 0.0))
    state, chunk = decide(state, ChunkObservation(100, 60.0, 0.3, 1.0))
    assert chunk == 100
    assert (state.behind_streak, state.headroom_streak) == (0, 0)


@pytest.mark.parametrize("seed", range(20))
def test_observations_near_thresholds_never_flap_faster_than_dwell(seed: int) -> None:
    rng = random.Random(seed)
    state = initial_chunk_state(OPTS, chunk_ms=100, now_s=0.0)
    history = [(0.0, 100)]
    for k in range(1, 2000):
        t = k * 0.05
        load = rng.choice((OPTS.down_load - 0.01, OPTS.up_load + 0.01, 0.6))
        fill = rng.choice((OPTS.low_fill - 0.01, OPTS.high_fill + 0.01, 0.3, 0.0))
        obs = ChunkObservation(state.chunk_ms, load * state.chunk_ms, fill, t)
        prev = state.chunk_ms
        state, chunk = decide(state, obs)
        assert chunk in OPTS.steps_ms
        assert abs(OPTS.steps_ms.index(chunk) - OPTS.steps_ms.index(prev)) <= 1
        if chunk < prev:
            assert t - history[-1][0] >= OPTS.dwell_s  # every shrink waits out the dwell
        if chunk != prev:
            history.append((t, chunk))
    shrinks = sum(1 for (_, a), (_, b) in itertools.pairwise(history) if b < a)
    assert 1 <= shrinks <= 100.0 / OPTS.dwell_s  # the mix does reach both thresholds


def test_bounds_hold_under_extreme_observations() -> None:
    rng = random.Random(7)
    state = initial_chunk_state(OPTS, now_s=0.0)
    for k in range(3000):
        obs = ChunkObservation(state.chunk_ms, rng.uniform(0, 1000), rng.random(), k * 0.1)
        state, chunk = decide(state, obs)
        assert OPTS.min_ms <= chunk <= OPTS.max_ms


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps_ms": ()}, r"^steps_ms must be non-empty and strictly increasing$"),
        ({"steps_ms": (100, 50)}, r"^steps_ms must be non-empty and strictly increasing$"),
        ({"steps_ms": (50, 250)}, r"^steps_ms \(50, 250\) must lie within \[50, 200\] ms$"),
        ({"low_fill": 0.6}, r"^fill thresholds need 0 <= low_fill < high_fill <= 1$"),
        ({"down_load": 0.9}, r"^load thresholds need 0 < down_load < up_load$"),
        ({"dwell_s": -1.0}, r"^budget_ms must be > 0 and dwell_s >= 0$"),
        ({"grow_after": 0}, r"^grow_after and shrink_after must be >= 1$"),
    ],
)
def test_invalid_options_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChunkPolicyOptions(**kwargs)


def test_initial_chunk_must_be_on_the_ladder() -> None:
    with pytest.raises(
        ValueError, match=r"^chunk_ms 75 is not one of steps_ms \(50, 100, 150, 200\)$"
    ):
        initial_chunk_state(OPTS, chunk_ms=75)
