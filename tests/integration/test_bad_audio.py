"""Bad audio on the wire (NaN/Inf, beyond full scale, DC offset) is repaired and counted,
never crashes the pipeline, and the speech around it is still transcribed."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import EventReader, Instance, last_finals, wait_until

from streamasr.actors import messages as m
from streamasr.actors.capture.sources import sample_path
from streamasr.supervisor.client import Subscriber

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_nan_inf_and_clipping_are_counted_and_speech_survives(instance: Instance) -> None:
    audio, rate = sf.read(str(sample_path()), dtype="float32")
    bad = audio.copy()
    bad[100:600] = np.nan  # silence before the first sentence: 500 NaN samples
    bad[700:710] = np.inf
    bad[2000:2100] = 3.0  # far beyond full scale (in a later chunk than the NaNs)
    bad += np.float32(0.01)  # a DC offset throughout
    instance.write_config('[refine]\nfinals = "fast"\n[feature]\ndc_block = true\n')
    statuses: list[dict[str, object]] = []
    sub = Subscriber(f"ipc://{instance.root / 'events'}", topics=("status",))
    try:
        up = EventReader(
            instance.popen(
                "up",
                "--source",
                "-",
                "--rate",
                str(rate),
                "--format",
                "f32le",
                "--json",
                stdin=subprocess.PIPE,
            )
        )
        assert up.proc.stdin is not None
        wait_until(lambda: (instance.root / "control").exists(), 60, "the supervisor")
        up.proc.stdin.buffer.write(bad.astype("<f4").tobytes())
        up.proc.stdin.close()
        while up.proc.poll() is None:
            item = sub.recv(timeout_s=0.5)
            if item is not None and isinstance(item[1], m.StatusReply):
                statuses.append(item[1].status)
        assert up.finish(timeout_s=30) == 0, up.stderr()
    finally:
        sub.close()
    feature = next(a for a in statuses[-1]["actors"] if a["id"] == "feature")  # type: ignore[index]
    counters = feature["counters"]
    assert counters["nan_inf_samples"] == 510
    assert counters["rejected_chunks"] == 1  # > 5% of its samples were NaN/Inf: silenced
    assert counters["clipped_samples"] == 100
    assert all(a["restarts"] == 0 for a in statuses[-1]["actors"])  # type: ignore[index]
    texts = " ".join(str(f["text"]) for f in last_finals(up.events)).lower()
    for word in ("fox", "kitchen", "weather"):
        assert word in texts, texts
