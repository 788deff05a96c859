"""Sliding-window latency aggregation with a fake clock."""

from __future__ import annotations

import pytest

from streamasr.supervisor.latency import LatencyWindow, Percentiles


class FakeClock:
    """A monotonic clock the test moves by hand (seconds)."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_nearest_rank_percentiles_of_one_to_hundred_ms() -> None:
    clock = FakeClock()
    win = LatencyWindow(10.0, clock)
    for k in range(1, 101):
        win.add("e2e", k / 1000)
    s = win.summary()["e2e"]
    assert (s.p50_s, s.p95_s, s.p99_s, s.max_s, s.count) == (0.050, 0.095, 0.099, 0.100, 100)
    assert s.over_budget_share is None


def test_single_sample_is_every_percentile() -> None:
    win = LatencyWindow(1.0, FakeClock())
    win.add("feature", 0.02)
    assert win.summary()["feature"] == Percentiles(0.02, 0.02, 0.02, 0.02, 1, None)


def test_over_budget_share_counts_strictly_greater_samples() -> None:
    win = LatencyWindow(10.0, FakeClock())
    for v in (0.05, 0.10, 0.15, 0.20):
        win.add("e2e", v)
    assert win.summary(budget_s=0.10)["e2e"].over_budget_share == 0.5
    assert win.summary(budget_s=1.0)["e2e"].over_budget_share == 0.0


def test_budget_per_stage_and_missing_stage_budget_is_none() -> None:
    win = LatencyWindow(10.0, FakeClock())
    win.add("feature", 0.03)
    win.add("inference", 0.30)
    summary = win.summary(budget_s={"inference": 0.2})
    assert summary["inference"].over_budget_share == 1.0
    assert summary["feature"].over_budget_share is None


def test_samples_older_than_the_window_are_dropped() -> None:
    clock = FakeClock()
    win = LatencyWindow(5.0, clock)
    win.add("e2e", 1.0)  # t = 0
    clock.t = 3.0
    win.add("e2e", 0.1)
    clock.t = 5.0
    assert win.summary()["e2e"].count == 2  # t = 0 is exactly at the edge: kept
    clock.t = 5.001
    s = win.summary()["e2e"]
    assert (s.count, s.max_s) == (1, 0.1)
    assert win.count("e2e") == 1


def test_stage_with_no_recent_samples_disappears() -> None:
    clock = FakeClock()
    win = LatencyWindow(1.0, clock)
    win.add("refine", 0.5)
    clock.t = 2.0
    assert win.summary() == {}
    assert win.count("refine") == 0


def test_memory_is_capped_per_stage_keeping_the_newest() -> None:
    win = LatencyWindow(100.0, FakeClock(), max_samples=10)
    for k in range(1000):
        win.add("e2e", float(k))
    assert win.count("e2e") == 10
    s = win.summary()["e2e"]
    assert (s.count, s.p50_s, s.max_s) == (10, 994.0, 999.0)


def test_explicit_old_timestamp_is_excluded_from_summary() -> None:
    clock = FakeClock(10.0)
    win = LatencyWindow(2.0, clock)
    win.add("e2e", 0.1, t=9.5)
    win.add("e2e", 9.0, t=1.0)  # arrives late, out of order, far outside the window
    s = win.summary()["e2e"]
    assert (s.count, s.max_s) == (1, 0.1)


def test_clear_drops_everything() -> None:
    win = LatencyWindow(1.0, FakeClock())
    win.add("e2e", 0.1)
    win.clear()
    assert win.summary() == {}


def test_non_finite_latency_is_rejected() -> None:
    win = LatencyWindow(1.0, FakeClock())
    with pytest.raises(ValueError, match=r"^latency for 'e2e' must be finite, got nan$"):
        win.add("e2e", float("nan"))


@pytest.mark.parametrize(
    ("window_s", "max_samples", "message"),
    [
        (0.0, 10, r"^window_s must be > 0, got 0.0$"),
        (1.0, 0, r"^max_samples must be >= 1, got 0$"),
    ],
)
def test_invalid_window_arguments_are_rejected(
    window_s: float, max_samples: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LatencyWindow(window_s, FakeClock(), max_samples)
