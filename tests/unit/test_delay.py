"""Fault injection: the added CPU work is spent in slices with heartbeats between them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from streamasr.actors.delay import DelayOverride


class _Runtime:
    """What DelayOverride uses of an ActorRuntime: its runtime dir, gauges and heartbeat."""

    def __init__(self, root: Path) -> None:
        self.runtime_dir = root
        self.gauges: dict[str, float] = {}
        self.beats: list[float] = []

    def heartbeat(self) -> None:
        self.beats.append(time.process_time())


def test_burn_spends_the_delay_and_heartbeats_between_slices(tmp_path: Path) -> None:
    rt = _Runtime(tmp_path)
    delay = DelayOverride(cast(Any, rt), "inference", 200.0)
    c0 = time.process_time()
    delay.burn()
    spent = time.process_time() - c0
    assert spent >= 0.2
    # a heartbeat chance at least every 50 ms of CPU, so a slow model is never taken for a
    # hung one however the cores are shared
    assert len(rt.beats) >= 4
    gaps = [b - a for a, b in zip([c0, *rt.beats], rt.beats, strict=False)]
    assert max(gaps) < 0.1, gaps


def test_the_override_file_sets_the_delay(tmp_path: Path) -> None:
    rt = _Runtime(tmp_path)
    delay = DelayOverride(cast(Any, rt), "refine", 0.0)
    (tmp_path / "refine.delay_ms").write_text("30")
    assert delay.check(0.0) and delay.delay_s == 0.03
    assert rt.gauges["delay_ms"] == 30.0
    delay.burn()
    assert rt.beats
