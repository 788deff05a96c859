"""The wake gate's state machine and the supervisor's wake de-duplication, without processes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from streamasr.actors import messages as m
from streamasr.actors.errors import ConfigError
from streamasr.actors.inference.wake_gate import PHRASE_END_GUARD_S, WakeGate, gate_options
from streamasr.actors.wake.base import Detection
from streamasr.actors.wake.settings import WakeConfig
from streamasr.supervisor.wake_book import WakeBook

RATE = 16000


class ScriptedDetector:
    """A detector that fires at given absolute sample positions (the real one needs speech)."""

    def __init__(self, fire_at: dict[int, Detection]) -> None:
        self.fire_at = fire_at
        self.position_frame = 0
        self.resets: list[int] = []

    def accept(self, pcm: npt.NDArray[np.int16]) -> list[Detection]:
        start, self.position_frame = self.position_frame, self.position_frame + len(pcm)
        return [d for at, d in self.fire_at.items() if start < at <= self.position_frame]

    def reset(self, start_frame: int) -> None:
        self.resets.append(start_frame)
        self.position_frame = start_frame

    def close(self) -> None:
        pass


def gate(fire_at: dict[int, Detection], mode: str = "assistant", **wake: int) -> WakeGate:
    return WakeGate(ScriptedDetector(fire_at), gate_options(mode, WakeConfig(**wake), RATE))  # type: ignore[arg-type]


DET = Detection("hey computer", start_frame=RATE * 2, end_frame=RATE * 3, score=5.0)
CHUNK = np.zeros(RATE // 10, dtype=np.int16)


def listen_until_detection(g: WakeGate) -> tuple[Detection, int]:
    for i in range(100):
        det = g.listen(CHUNK)
        if det is not None:
            return det, (i + 1) * len(CHUNK)
    raise AssertionError("no detection")


def test_a_detection_opens_a_command_window_after_the_phrase() -> None:
    g = gate({RATE * 3 + 8000: DET})
    assert g.listening
    det, pos = listen_until_detection(g)
    start = g.open(det, "s0:wake:48000", pos, oldest_frame=0)
    assert not g.listening and g.wake_id == "s0:wake:48000"
    # pre-roll (1 s by default) would reach into the phrase: the command starts after it
    assert start == DET.end_frame + int(PHRASE_END_GUARD_S * RATE)


def test_preroll_is_measured_back_from_the_detection() -> None:
    g = gate({RATE * 5: DET}, preroll_ms=500)
    det, pos = listen_until_detection(g)
    assert g.open(det, "w", pos, oldest_frame=0) == pos - RATE // 2


def test_preroll_never_reaches_before_the_ring() -> None:
    g = gate({RATE * 3 + 4800: DET})
    det, pos = listen_until_detection(g)
    assert g.open(det, "w", pos, oldest_frame=RATE * 3 + 3000) == RATE * 3 + 3000


def test_timeout_only_while_no_utterance_and_limit_always() -> None:
    g = gate({RATE * 3 + 1600: DET}, command_timeout_ms=2000, max_command_ms=4000)
    det, pos = listen_until_detection(g)
    g.open(det, "w", pos, oldest_frame=0)
    end = DET.end_frame
    assert g.over(end + RATE, in_utterance=False) is None
    assert g.over(end + 2 * RATE, in_utterance=False) == "timeout"
    assert g.over(end + 2 * RATE, in_utterance=True) is None
    assert g.over(end + 4 * RATE, in_utterance=True) == "limit"


def test_close_resets_the_detector_where_listening_resumes() -> None:
    g = gate({RATE * 3 + 1600: DET})
    det, pos = listen_until_detection(g)
    g.open(det, "w", pos, oldest_frame=0)
    g.close(RATE * 7)
    assert g.listening and g.wake_id == ""
    assert g.detector.resets == [RATE * 7]  # type: ignore[attr-defined]
    assert g.over(RATE * 100, in_utterance=False) is None


def test_listening_commit_stays_behind_by_the_lookback() -> None:
    g = gate({})
    assert g.commit_target(RATE * 10) == RATE * 10 - g.options.lookback_frames
    assert g.options.lookback_frames >= 2 * RATE


def test_unknown_gate_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="gate: unknown mode 'sometimes'"):
        gate_options("sometimes", WakeConfig(), RATE)


def wake(wake_id: str, start_s: float, end_s: float, stream: str = "s0") -> m.WakeDetected:
    return m.WakeDetected(stream, wake_id, "hey computer", start_s, end_s, end_s + 0.4, 3.0, 0)


def test_book_drops_an_overlapping_repeat_and_maps_its_id() -> None:
    book = WakeBook()
    first = wake("s0:wake:48000", 2.0, 3.0)
    assert book.detected(first) is first
    assert book.detected(wake("s0:wake:48160", 2.02, 3.01)) is None
    assert book.repeats == 1
    t = m.Transcript(
        "s0", "s0:50000", 0, True, 1, "turn on", 3.1, 4.0, [], 0.1, {}, False, "s0:wake:48160"
    )
    assert book.transcript(t).wake_id == "s0:wake:48000"
    ended = book.ended(m.WakeEnded("s0", "s0:wake:48160", "final", 4.0))
    assert ended is not None and ended.wake_id == "s0:wake:48000"
    assert book.ended(m.WakeEnded("s0", "s0:wake:48000", "final", 4.0)) is None


def test_book_keeps_separate_phrases_and_streams() -> None:
    book = WakeBook()
    assert book.detected(wake("a", 2.0, 3.0)) is not None
    assert book.detected(wake("b", 3.5, 4.5)) is not None
    assert book.detected(wake("c", 2.0, 3.0, stream="s1")) is not None
    t = m.Transcript("s0", "s0:1", 0, True, 1, "x", 0.0, 1.0, [], 0.0, {}, False, "b")
    assert book.transcript(t) is t


def test_a_muted_gate_ignores_detections_until_the_mute_ends() -> None:
    """While the assistant's reply plays, the microphone hears it: detections are dropped
    (and counted), the detector keeps reading; after the mute they fire again."""
    import time

    second = Detection("hey computer", start_frame=RATE * 6, end_frame=RATE * 7, score=5.0)
    g = gate({RATE * 3 + 1600: DET, RATE * 7 + 1600: second})
    now = time.time_ns()
    g.mute(now + 10**9)
    for _ in range(50):  # 5 s captured during the reply: the first phrase goes by muted
        assert g.listen(CHUNK, now) is None
    assert (g.muted, g.detections) == (1, 0)
    g.mute(0)  # an earlier end never shortens a mute
    assert g.muted_until_ns == now + 10**9
    later = now + 2 * 10**9  # audio captured after the reply, however late it is decoded
    for _ in range(50):
        if (det := g.listen(CHUNK, later)) is not None:
            break
    assert det is second and g.detections == 1
