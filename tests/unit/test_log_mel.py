"""Tests of the log-mel feature core: streaming equals offline for any chunking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from numpy.typing import NDArray

from streamasr.actors.asr.log_mel import (
    LogMelOptions,
    StreamingLogMel,
    frame_count,
    log_mel_offline,
    mel_filterbank,
)
from streamasr.actors.errors import AudioFormatError

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
OPTS = LogMelOptions()


@pytest.fixture(scope="module")
def speech() -> NDArray[np.float32]:
    """Ten seconds of conversation1 (16 kHz mono), or noise if shared audio is absent."""
    path = AUDIO / "conversation1.wav"
    if not path.is_file():
        pytest.skip(f"shared test audio not found at {path}")
    x, rate = sf.read(str(path), dtype="float32", frames=160_000 + 123)
    assert rate == 16000
    return np.asarray(x, dtype=np.float32)


def _stream(
    x: NDArray[np.float32], sizes: list[int], opts: LogMelOptions = OPTS
) -> tuple[NDArray[np.float32], StreamingLogMel]:
    ext = StreamingLogMel(opts)
    outs, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out = ext.accept(x[i : i + n])
        assert out.shape[1] == opts.n_mels and out.dtype == np.float32
        outs.append(out)
        i, k = i + n, k + 1
    outs.append(ext.flush())
    return np.concatenate(outs), ext


@pytest.mark.parametrize("chunk_ms", [50, 100, 200])
def test_streaming_equals_offline_fixed_chunks(speech: NDArray[np.float32], chunk_ms: int) -> None:
    offline = log_mel_offline(speech, OPTS)
    streamed, ext = _stream(speech, [16 * chunk_ms])
    assert offline.shape == (1 + (speech.size - 400) // 160, 80)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0)
    assert ext.frames_emitted == offline.shape[0]


def test_streaming_equals_offline_irregular_chunks(speech: NDArray[np.float32]) -> None:
    rng = np.random.default_rng(7)
    sizes = [int(v) for v in rng.integers(1, 4000, size=200)] + [1, 7, 399, 400, 401, 0]
    rng.shuffle(sizes)
    offline = log_mel_offline(speech, OPTS)
    streamed, _ = _stream(speech, sizes)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_samples", [0, 1, 239, 240, 241, 399, 400, 401, 560, 16_001])
@pytest.mark.parametrize("pad_end", [False, True])
def test_streaming_equals_offline_edge_lengths(n_samples: int, pad_end: bool) -> None:
    opts = LogMelOptions(pad_end=pad_end)
    x = (np.random.default_rng(n_samples).standard_normal(n_samples) * 0.1).astype(np.float32)
    offline = log_mel_offline(x, opts)
    assert offline.shape == (frame_count(n_samples, opts), 80)
    streamed, ext = _stream(x, [97, 13, 250], opts)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, atol=1e-5, rtol=0)
    assert ext.frames_emitted == offline.shape[0]


def test_frame_count_no_centre_padding() -> None:
    assert frame_count(399, OPTS) == 0
    assert frame_count(400, OPTS) == 1
    assert frame_count(559, OPTS) == 1
    assert frame_count(560, OPTS) == 2
    padded = LogMelOptions(pad_end=True)
    assert frame_count(1, padded) == 1
    assert frame_count(401, padded) == 2
    assert frame_count(560, padded) == 2


def test_frame_i_covers_its_own_samples_only() -> None:
    """Changing sample j alters exactly the frames whose window contains j."""
    x = (np.random.default_rng(1).standard_normal(2000) * 0.1).astype(np.float32)
    y = x.copy()
    y[1000] += 0.5
    changed = np.flatnonzero(
        np.abs(log_mel_offline(x, OPTS) - log_mel_offline(y, OPTS)).max(axis=1) > 0
    )
    expected = [i for i in range(frame_count(2000, OPTS)) if i * 160 <= 1000 < i * 160 + 400]
    assert changed.tolist() == expected


def test_matches_torch_stft_reference() -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is the optional extra streamasr[torch]")
    x = (np.random.default_rng(2).standard_normal(8000) * 0.1).astype(np.float32)
    spec = torch.stft(
        torch.from_numpy(x.astype(np.float64)),
        n_fft=400,
        hop_length=160,
        window=torch.hann_window(400, dtype=torch.float64),
        center=False,
        return_complex=True,
    )
    mel = torch.from_numpy(mel_filterbank(OPTS).copy()) @ (spec.abs() ** 2)
    ref = torch.log(torch.clamp(mel, min=1e-10)).T.numpy()
    np.testing.assert_allclose(log_mel_offline(x, OPTS), ref, atol=1e-5, rtol=0)


def test_slaney_filterbank_matches_whisper() -> None:
    from faster_whisper.feature_extractor import FeatureExtractor

    whisper = FeatureExtractor(feature_size=80).mel_filters
    np.testing.assert_allclose(mel_filterbank(OPTS), whisper, atol=1e-7)


def test_log_floor_and_log10() -> None:
    silence = np.zeros(400, dtype=np.float32)
    np.testing.assert_array_equal(log_mel_offline(silence, OPTS), np.float32(np.log(1e-10)))
    base10 = log_mel_offline(silence, LogMelOptions(log10=True))
    np.testing.assert_allclose(base10, -10.0)


def test_rejects_wrong_dtype_and_shape() -> None:
    ext = StreamingLogMel()
    with pytest.raises(
        AudioFormatError, match=r"expected 1-D float32 samples, got float64 \(10,\)"
    ):
        ext.accept(np.zeros(10))
    with pytest.raises(AudioFormatError, match=r"got float32 \(10, 2\)"):
        log_mel_offline(np.zeros((10, 2), dtype=np.float32), OPTS)
    assert ext.samples_accepted == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hop_length": 500}, r"hop_length \(500\) must be <= n_fft \(400\)"),
        ({"n_mels": 0}, "n_fft, hop_length and n_mels must be > 0"),
    ],
)
def test_options_validation(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LogMelOptions(**kwargs)
