"""read_frames: block reads of an audio file that never restart its decoder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamasr.actors.audio_file import read_frames
from streamasr.actors.capture.sources import sample_path


def _blocks(audio: sf.SoundFile, frames: int) -> list[np.ndarray]:
    out = []
    while len(block := read_frames(audio, frames)):
        assert block.dtype == np.float32 and block.shape[1] == audio.channels
        out.append(block)
    return out


def test_an_uploaded_mp3_in_memory_reads_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    """The OpenAI upload path: an MP3 in a BytesIO, read in 0.5 s blocks."""
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 (needs >= 1.1)")
    wav, rate_hz = sf.read(str(sample_path()), dtype="float32", always_2d=True)
    buf = io.BytesIO()
    sf.write(buf, wav, rate_hz, format="MP3")
    capfd.readouterr()
    with sf.SoundFile(io.BytesIO(buf.getvalue())) as audio:
        got = np.concatenate(_blocks(audio, rate_hz // 2))
        assert audio.tell() == len(got) == audio.frames
    assert "mpg123" not in capfd.readouterr().err
    whole, _ = sf.read(io.BytesIO(buf.getvalue()), dtype="float32", always_2d=True)
    assert float(np.abs(got - whole).max()) < 1e-6


def test_wav_blocks_equal_a_whole_read(tmp_path: Path) -> None:
    data = np.random.default_rng(1).uniform(-0.9, 0.9, (5003, 2)).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(str(path), data, 22050, subtype="PCM_16")
    with sf.SoundFile(str(path)) as audio:
        blocks = _blocks(audio, 1000)
        assert [len(b) for b in blocks] == [1000] * 5 + [3]
        assert read_frames(audio, 1000).shape == (0, 2)
        assert read_frames(audio, 0).shape == (0, 2)
        with pytest.raises(ValueError, match="frames must be >= 0"):
            read_frames(audio, -1)
    with pytest.raises(ValueError, match="closed file"):
        read_frames(audio, 10)
    np.testing.assert_array_equal(np.concatenate(blocks), sf.read(str(path), dtype="float32")[0])
