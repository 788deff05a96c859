"""The pause tracker inside an utterance: runs of quiet frames and the quietest of them."""

from __future__ import annotations

import numpy as np

from streamasr.actors.asr.pauses import PauseTracker

FRAME = 480  # 30 ms at 16 kHz


def _frame(rms: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, rms, FRAME), -32768, 32767).astype(np.int16)


def _speech(t: PauseTracker) -> None:
    """40 frames of speech at varied levels (they set the pause threshold, about 3000)."""
    for i in range(40):
        t.add(_frame((1500, 6000)[i % 2], i), speech=True)


def test_a_run_of_quiet_frames_and_its_quietest_frame() -> None:
    t = PauseTracker()
    _speech(t)
    assert t.run == 0
    # a pause: fading tail, silence, then a weak onset ("the", an "f") still below the level
    levels = [200, 40, 10, 30, 150, 300]
    for i, rms in enumerate(levels):
        t.add(_frame(rms, 100 + i), speech=True)
    assert t.run == len(levels)
    assert t.quietest_back == len(levels) - 1 - levels.index(10)
    t.add(_frame(6000, 200), speech=True)  # loud speech ends the run
    assert t.run == 0


def test_non_speech_frames_count_as_pause_whatever_their_energy() -> None:
    t = PauseTracker()
    _speech(t)
    t.add(_frame(6000, 50), speech=False)
    t.add(_frame(100, 51), speech=False)
    assert t.run == 2 and t.quietest_back == 0
