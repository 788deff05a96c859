"""Early transcription bookkeeping (pure) and the first pass's pause span (real PocketSphinx)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamasr.actors import messages as m
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.refine.options import RefineOutput
from streamasr.actors.refine.speculation import MAX_AGE_S, Speculator

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
OUT = RefineOutput("turn on the light", (), 0.01, -0.2, 1.2, 6.0, 0.1)


def pause(uid: str, start: int, end: int) -> m.SpeechPaused:
    return m.SpeechPaused("s0", uid, start, end, 16000)


def job(uid: str, start: int, end: int) -> m.RefineJob:
    first = m.Transcript("s0", uid, 0, True, 1, "x", 0.0, 1.0, [], 0.0, {}, True)
    return m.RefineJob("s0", uid, start, end, 16000, 0, first)


def test_a_job_with_the_paused_span_takes_the_early_result() -> None:
    sp = Speculator()
    sp.paused(pause("s0:100", 100, 900), now_s=10.0)
    taken = sp.next_pause(now_s=10.1)
    assert taken is not None and taken.utterance_id == "s0:100"
    sp.store(taken, OUT, compute_s=0.2)
    early = sp.take(job("s0:100", 100, 900))
    assert early is not None and early.out is OUT and early.compute_s == 0.2
    assert (sp.runs, sp.hits, sp.misses) == (1, 1, 0)
    assert sp.take(job("s0:100", 100, 900)) is None  # used once


def test_speech_that_went_on_is_a_miss() -> None:
    sp = Speculator()
    sp.paused(pause("s0:100", 100, 900), now_s=0.0)
    msg = sp.next_pause(now_s=0.0)
    assert msg is not None
    sp.store(msg, OUT, compute_s=0.2)
    assert sp.take(job("s0:100", 100, 1500)) is None
    assert (sp.hits, sp.misses) == (0, 1)


def test_stale_pauses_are_dropped_and_newest_first() -> None:
    sp = Speculator()
    sp.paused(pause("s0:1", 1, 10), now_s=0.0)
    sp.paused(pause("s0:2", 2, 20), now_s=0.3)
    first = sp.next_pause(now_s=0.35)
    assert first is not None and first.utterance_id == "s0:2"
    assert sp.next_pause(now_s=0.0 + MAX_AGE_S + 0.01) is None  # s0:1 went stale


def test_an_endpoint_before_the_early_run_cancels_it() -> None:
    sp = Speculator()
    sp.paused(pause("s0:1", 1, 10), now_s=0.0)
    assert sp.take(job("s0:1", 1, 10)) is None
    assert sp.next_pause(now_s=0.0) is None


def test_a_span_already_transcribed_is_not_queued_again() -> None:
    sp = Speculator()
    msg = pause("s0:1", 1, 10)
    sp.store(msg, None, 0.1)
    sp.paused(msg, now_s=0.0)
    assert sp.next_pause(now_s=0.0) is None
    sp.forget_stream("s0")
    assert sp.take(job("s0:1", 1, 10)) is None


def test_pocketsphinx_pause_span_predicts_each_final() -> None:
    wav = AUDIO / "conversation1.wav"
    if not wav.exists():
        pytest.skip(f"shared audio missing: {wav}")
    pcm, _ = sf.read(wav, dtype="int16")
    stream = create_recognizer("pocketsphinx", {}).create_stream(0)
    predicted: tuple[int, int] | None = None
    pairs = []
    for i in range(0, len(pcm), 1600):
        stream.accept(np.asarray(pcm[i : i + 1600]))
        while True:
            if stream.is_endpoint():
                res = stream.finalize()
                if res is not None:
                    pairs.append((predicted, (res.start_frame, res.end_frame)))
                predicted = None
            elif stream.is_ready():
                stream.step()
            else:
                break
        predicted = stream.paused_span(300) or predicted  # type: ignore[attr-defined]
    assert len(pairs) >= 6
    assert all(p == f for p, f in pairs), pairs
