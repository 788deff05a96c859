"""Tests of the streaming conditioner: exact streaming resampling, validation counters."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from numpy.typing import NDArray

from streamasr.actors.conditioning import Conditioner, ConditionerOptions, to_int16
from streamasr.actors.errors import AudioFormatError

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"


def _noise(n: int, channels: int, seed: int = 0) -> NDArray[np.float32]:
    return (np.random.default_rng(seed).standard_normal((n, channels)) * 0.1).astype(np.float32)


def _run(cond: Conditioner, x: NDArray[np.float32], sizes: list[int]) -> NDArray[np.float32]:
    outs, i, k = [], 0, 0
    while i < x.shape[0]:
        n = sizes[k % len(sizes)]
        outs.append(cond.process(x[i : i + n]))
        i, k = i + n, k + 1
    outs.append(cond.flush())
    return np.concatenate(outs)


def _one_shot(x: NDArray[np.float32], in_hz: int, out_hz: int) -> NDArray[np.float32]:
    mono: NDArray[np.float32] = x.mean(axis=1, dtype=np.float32)
    if in_hz == out_hz:
        return mono
    out: NDArray[np.float32] = soxr.resample(mono, in_hz, out_hz, quality="HQ")
    return out


@pytest.mark.parametrize("chunk_ms", [50, 100, 200])
@pytest.mark.parametrize(("in_hz", "channels"), [(48000, 2), (44100, 1), (8000, 1), (16000, 1)])
def test_streaming_equals_one_shot(chunk_ms: int, in_hz: int, channels: int) -> None:
    x = _noise(in_hz * 2 + 37, channels)
    out = _run(Conditioner(in_hz, channels), x, [in_hz * chunk_ms // 1000])
    ref = _one_shot(x, in_hz, 16000)
    assert out.size == round(x.shape[0] * 16000 / in_hz) == ref.size
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize(("in_hz", "n_frames"), [(48000, 96_011), (22050, 12_345), (44100, 7)])
def test_irregular_chunks_exact_length(in_hz: int, n_frames: int) -> None:
    rng = np.random.default_rng(3)
    sizes = [int(v) for v in rng.integers(0, 5000, size=100)] + [1, 0, 2]
    x = _noise(n_frames, 2, seed=4)
    cond = Conditioner(in_hz, 2)
    out = _run(cond, x, sizes)
    assert out.size == round(n_frames * 16000 / in_hz)
    np.testing.assert_allclose(out, _one_shot(x, in_hz, 16000), atol=1e-6, rtol=0)
    c = cond.counters
    assert c.frames_in == n_frames and c.samples_out == out.size


def test_flush_starts_a_new_stream() -> None:
    cond = Conditioner(48000, 1)
    x = _noise(4801, 1)
    first = np.concatenate([cond.process(x), cond.flush()])
    second = np.concatenate([cond.process(x), cond.flush()])
    assert first.size == second.size == 1600
    np.testing.assert_array_equal(first, second)


def test_48k_stereo_file_matches_16k_file() -> None:
    """conversation1_48k_stereo is conversation1 upsampled (identical channels, 1 frame short)."""
    src, ref16 = AUDIO / "conversation1_48k_stereo.wav", AUDIO / "conversation1.wav"
    if not src.is_file() or not ref16.is_file():
        pytest.skip(f"shared test audio not found under {AUDIO}")
    x, rate = sf.read(str(src), dtype="float32", always_2d=True)
    ref, _ = sf.read(str(ref16), dtype="float32")
    assert rate == 48000 and x.shape[1] == 2
    out = _run(Conditioner(48000, 2), np.asarray(x, dtype=np.float32), [4800])
    assert out.size == round(x.shape[0] / 3)
    n = min(out.size, ref.size)
    assert abs(out.size - ref.size) <= 1
    lags = {
        lag: np.corrcoef(out[max(0, lag) : n + min(0, lag)], ref[max(0, -lag) : n - max(0, lag)])[
            0, 1
        ]
        for lag in (-2, -1, 0, 1, 2)
    }
    best = max(lags, key=lambda k: lags[k])
    assert best == 0
    assert lags[0] > 0.999
    assert float(np.sqrt(np.mean((out[:n] - ref[:n]) ** 2))) < 0.01


def test_nan_inf_replaced_and_counted() -> None:
    cond = Conditioner(16000, 2)
    x = np.full((1000, 2), 0.25, dtype=np.float32)
    x[10, 0], x[20, 1], x[30, 0] = np.nan, np.inf, -np.inf
    out = cond.process(x)
    assert np.isfinite(out).all()
    assert out[10] == pytest.approx(0.125) and out[11] == pytest.approx(0.25)
    c = cond.counters
    assert (c.nan_inf_samples, c.rejected_chunks, c.clipped_samples) == (3, 0, 0)


def test_mostly_bad_chunk_is_rejected_as_silence() -> None:
    cond = Conditioner(16000, 1, options=ConditionerOptions(reject_bad_fraction=0.05))
    x = np.full((100, 1), 0.5, dtype=np.float32)
    x[:6] = np.nan  # 6 % bad > 5 %
    out = cond.process(x)
    np.testing.assert_array_equal(out, np.zeros(100, dtype=np.float32))
    c = cond.counters
    assert (c.nan_inf_samples, c.rejected_chunks) == (6, 1)


def test_out_of_range_is_clipped_and_counted() -> None:
    cond = Conditioner(16000, 1)
    x = np.array([[0.5], [1.5], [-2.0], [1.0]], dtype=np.float32)
    np.testing.assert_array_equal(cond.process(x), [0.5, 1.0, -1.0, 1.0])
    assert cond.counters.clipped_samples == 2


def test_empty_chunk_is_a_no_op() -> None:
    cond = Conditioner(48000, 2)
    out = cond.process(np.zeros((0, 2), dtype=np.float32))
    assert out.shape == (0,) and out.dtype == np.float32
    assert cond.flush().size == 0
    c = cond.counters
    assert (c.empty_chunks, c.chunks_in, c.frames_in, c.samples_out) == (1, 0, 0, 0)


@pytest.mark.parametrize(
    ("chunk", "message"),
    [
        (np.zeros((10, 2), dtype=np.float64), "expected float32 samples, got float64"),
        (np.zeros((10, 2), dtype=np.int16), "expected float32 samples, got int16"),
        (np.zeros((10, 3), dtype=np.float32), r"expected shape \(n, 2\), got \(10, 3\)"),
        (np.zeros(10, dtype=np.float32), r"expected shape \(n, 2\), got \(10,\)"),
        ([0.0, 0.1], "expected a numpy array, got list"),
    ],
)
def test_wrong_format_raises(chunk: object, message: str) -> None:
    cond = Conditioner(48000, 2)
    with pytest.raises(AudioFormatError, match=message):
        cond.process(chunk)  # type: ignore[arg-type,unused-ignore]
    assert cond.counters.frames_in == 0


def test_bad_construction_raises() -> None:
    with pytest.raises(AudioFormatError, match="sample rates must be > 0 Hz, got in=0 out=16000"):
        Conditioner(0, 1)
    with pytest.raises(AudioFormatError, match="channel count must be >= 1, got 0"):
        Conditioner(16000, 0)


def test_dc_removal_removes_offset_and_keeps_speech_band() -> None:
    rate = 16000
    t = np.arange(rate * 2) / rate
    tone = 0.3 * np.sin(2 * np.pi * 300 * t)
    x = (tone + 0.2).astype(np.float32)[:, None]
    cond = Conditioner(rate, 1, options=ConditionerOptions(remove_dc=True, dc_cutoff_hz=20.0))
    out = _run(cond, x, [333, 1600, 17])
    settled = out[rate:]  # after 1 s the offset's transient has decayed (tau = 8 ms)
    assert abs(float(settled.mean())) < 1e-3
    gain = float(np.sqrt(2 * np.mean(settled**2))) / 0.3
    assert 0.99 < gain < 1.01


def test_dc_filter_matches_direct_recursion() -> None:
    x = _noise(1000, 1, seed=9)
    cond = Conditioner(16000, 1, options=ConditionerOptions(remove_dc=True, dc_cutoff_hz=50.0))
    out = _run(cond, x, [100, 7, 300])
    a = math.exp(-2 * math.pi * 50.0 / 16000)
    ref, y, xp = np.empty(1000), 0.0, float(x[0, 0])
    for i, v in enumerate(x[:, 0].astype(np.float64)):
        y = a * y + v - xp
        xp = float(v)
        ref[i] = y
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_to_int16_scales_and_clips() -> None:
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.7, -3.0, np.float32(1 / 32767)], dtype=np.float32)
    np.testing.assert_array_equal(
        to_int16(x), np.array([0, 16384, -16384, 32767, -32767, 32767, -32767, 1], np.int16)
    )
    assert to_int16(x).dtype == np.int16
