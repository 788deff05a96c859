"""Silero speech gate and pause splitting, without Whisper."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamasr.actors.errors import AudioFormatError
from streamasr.actors.refine.vad import SpeechGate, split_at_pauses

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
SR = 16_000


@pytest.fixture(scope="module")
def gate() -> SpeechGate:
    return SpeechGate()


def _utterance(name: str) -> np.ndarray:
    path = AUDIO / "utterances" / name
    if not path.is_file():
        pytest.skip(f"shared test audio missing: {path}")
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SR
    return np.asarray(audio, dtype=np.float32)


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    k = np.arange(len(spec), dtype=np.float64)
    k[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(k), n)
    return np.asarray(x / np.std(x), dtype=np.float64)


def test_speech_is_detected_inside_its_span(gate: SpeechGate) -> None:
    audio = _utterance("utt03_awb.wav")
    padded = np.concatenate([np.zeros(SR, np.float32), audio, np.zeros(SR, np.float32)])
    spans = gate.speech_spans(padded)
    assert len(spans) == 1
    start, end = spans[0]
    assert SR - 4000 < start < SR + 8000
    assert end > SR + len(audio) // 2
    assert gate.has_speech(padded)


@pytest.mark.parametrize("level", [0.003, 0.03, 0.2])
def test_noise_and_silence_have_no_speech(gate: SpeechGate, level: float) -> None:
    rng = np.random.default_rng(7)
    white = (rng.standard_normal(10 * SR) * level).astype(np.float32)
    pink = (_pink(10 * SR, rng) * level).astype(np.float32)
    assert not gate.has_speech(white)
    assert not gate.has_speech(pink)
    assert not gate.has_speech(np.zeros(10 * SR, np.float32))


def test_too_short_and_bad_shape(gate: SpeechGate) -> None:
    assert not gate.has_speech(np.zeros(100, np.float32))
    with pytest.raises(AudioFormatError, match=r"VAD needs mono audio, got shape \(2, 1000\)"):
        gate.speech_spans(np.zeros((2, 1000), np.float32))


def test_split_at_pauses_cuts_in_the_quiet_gap() -> None:
    rng = np.random.default_rng(1)
    audio = rng.standard_normal(25 * SR).astype(np.float32)
    audio[int(8.0 * SR) : int(8.5 * SR)] = 0.0
    audio[int(17.2 * SR) : int(17.6 * SR)] = 0.0
    pieces = split_at_pauses(audio, max_samples=10 * SR, search_samples=4 * SR)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(audio)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    assert all(e - s <= 10 * SR for s, e in pieces)
    assert 8.0 * SR <= pieces[0][1] <= 8.5 * SR
    assert 17.2 * SR <= pieces[1][1] <= 17.6 * SR


def test_split_at_pauses_short_audio_and_bad_args() -> None:
    audio = np.ones(SR, np.float32)
    assert split_at_pauses(audio, 2 * SR, SR) == [(0, SR)]
    with pytest.raises(ValueError, match=r"need 0 < search_samples <= max_samples"):
        split_at_pauses(audio, SR, 2 * SR)
