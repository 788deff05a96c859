"""Stage arithmetic of the inference actor (pure functions, nanosecond wall clocks)."""

from __future__ import annotations

import pytest

from streamasr.actors.doorbell import Stamp
from streamasr.actors.inference.stream import engine_wait_s, stage_split

MS = 1_000_000  # ns


def test_stages_add_up_to_the_latency() -> None:
    # captured at 0, conditioned at 1 ms, the engine busy with another stream until 9 ms,
    # this chunk's own call took 12 ms, emitted at 25 ms
    stamp = Stamp(1600, 1000 * MS, 1001 * MS)
    waited = engine_wait_s(stamp, start_ns=1010 * MS, busy_until_ns=1009 * MS)
    assert waited == pytest.approx(0.008)
    total, st = stage_split(stamp, 0.012, waited, now_ns=1025 * MS)
    assert total == pytest.approx(0.025)
    expected = {"feature": 0.001, "wait": 0.008, "inference": 0.012, "queue": 0.004}
    assert st == pytest.approx(expected)
    assert sum(st.values()) == pytest.approx(total)


def test_no_wait_when_the_engine_was_idle_before_the_chunk_arrived() -> None:
    stamp = Stamp(1600, 1000 * MS, 1001 * MS)
    assert engine_wait_s(stamp, start_ns=1002 * MS, busy_until_ns=990 * MS) == 0.0
    # the engine's last call ended after this call began (it was this stream's own): capped
    assert engine_wait_s(stamp, start_ns=1003 * MS, busy_until_ns=1020 * MS) == pytest.approx(0.002)


def test_wait_never_exceeds_what_the_clock_allows() -> None:
    stamp = Stamp(1600, 1000 * MS, 0)  # no feature stamp: ready at capture
    total, st = stage_split(stamp, 0.010, 0.050, now_ns=1030 * MS)
    assert st["wait"] == pytest.approx(0.020) and st["queue"] == 0.0 and st["feature"] == 0.0
    assert total == pytest.approx(0.030)


def test_without_a_capture_clock_only_the_compute_is_known() -> None:
    assert stage_split(Stamp(0, 0, 0), 0.01, 0.0, now_ns=5 * MS) == (0.01, {"inference": 0.01})
    assert engine_wait_s(Stamp(0, 0, 0), 5 * MS, 9 * MS) == 0.0
