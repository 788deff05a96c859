"""The capture actor's pure core: reopen backoff, capture clock, gap silence, exact resume,
and the test-only fault-injection sources (FaultTrigger, FileMic)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from numpy.typing import NDArray

from streamasr.actors.capture.actor import _skip
from streamasr.actors.capture.core import (
    ClockAnchor,
    ClockFile,
    ReopenBackoff,
    comfort_noise,
    fill_gap,
    noise_floor,
)
from streamasr.actors.capture.formats import SourceFormat
from streamasr.actors.capture.sources import FileSource, RawPcmSource, probe_source
from streamasr.actors.capture.testing_sources import FaultTrigger, FileMic
from streamasr.actors.errors import ConfigError, DeviceError
from streamasr.actors.settings import SourceConfig
from streamasr.actors.typed import from_table
from streamasr.ringbuf import Ring


class FakeClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _wav(path: Path, frames: int, rate: int = 16000, channels: int = 1) -> NDArray[np.float32]:
    """Write a deterministic int16 WAV; return its samples as float32 (n, channels)."""
    rng = np.random.default_rng(frames)
    data = rng.integers(-20000, 20000, size=(frames, channels), dtype=np.int16)
    sf.write(str(path), data, rate, subtype="PCM_16")
    return (data.astype(np.float32) / 32768.0).astype(np.float32)


# --- ReopenBackoff ----------------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_and_counts() -> None:
    clock = FakeClock()
    b = ReopenBackoff(SourceConfig(), clock)
    assert not b.down and not b.attempt_due()
    assert b.device_failed() == pytest.approx(0.2)
    assert b.down and b.device_errors == 1
    clock.advance(0.19)
    assert not b.attempt_due()
    assert b.seconds_to_attempt() == pytest.approx(0.01)
    clock.advance(0.01)
    assert b.attempt_due()
    delays = [b.attempt_failed() for _ in range(7)]
    assert delays == pytest.approx([0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0])
    assert b.reopen_attempts == 7 and b.device_errors == 1
    clock.advance(5.0)
    b.opened()
    assert not b.down and b.reopen_attempts == 8
    assert b.down_s() == pytest.approx(5.2)


def test_backoff_flapping_device_keeps_backing_off_until_stable() -> None:
    clock = FakeClock()
    opts = SourceConfig(reopen_stable_s=10.0)
    b = ReopenBackoff(opts, clock)
    b.opened()  # the first open is not a reopen attempt
    assert b.reopen_attempts == 0
    assert b.device_failed() == pytest.approx(0.2)
    clock.advance(0.2)
    b.opened()
    clock.advance(1.0)  # up only 1 s: not stable, the streak goes on
    assert b.device_failed() == pytest.approx(0.4)
    clock.advance(0.4)
    b.opened()
    clock.advance(10.0)  # stable now: the next failure starts over
    assert b.device_failed() == pytest.approx(0.2)
    assert b.device_errors == 3
    assert b.down_s() == pytest.approx(0.6)
    clock.advance(0.1)
    assert b.down_s() == pytest.approx(0.7)


def test_backoff_outage_of_a_restarted_process_is_due_at_once() -> None:
    clock = FakeClock()
    b = ReopenBackoff(SourceConfig(), clock)
    b.begin_outage()
    assert b.down and b.attempt_due() and b.device_errors == 0
    clock.advance(0.5)
    b.opened()
    assert b.reopen_attempts == 1 and b.down_s() == pytest.approx(0.5)


def test_backoff_never_overflows() -> None:
    clock = FakeClock()
    b = ReopenBackoff(SourceConfig(reopen_initial_s=0.001, reopen_max_s=1e9), clock)
    b.device_failed()
    for _ in range(5000):
        delay = b.attempt_failed()
    assert delay == 1e9


def test_live_options_validation_and_mapping() -> None:
    """The live-source settings are ``[source]``'s own (one definition, checked at load)."""
    with pytest.raises(ConfigError, match=r"^source\.reopen_initial_s: must be > 0$"):
        SourceConfig(reopen_initial_s=0.0).validate()
    with pytest.raises(ConfigError, match=r"^source\.reopen_factor: must be >= 1$"):
        SourceConfig(reopen_factor=0.5).validate()
    with pytest.raises(
        ConfigError, match=r"^source\.reopen_max_s: must be >= source\.reopen_initial_s$"
    ):
        SourceConfig(reopen_initial_s=2.0, reopen_max_s=1.0).validate()
    with pytest.raises(
        ConfigError, match=r"^source\.gap_fill: must be one of comfort_noise, zeros$"
    ):
        SourceConfig(gap_fill="pink").validate()  # type: ignore[arg-type]
    table = {"kind": "mic", "device": "", "stall_s": 1, "reopen_max_s": 2}
    opts = from_table(SourceConfig, table, "source")
    assert (opts.stall_s, opts.reopen_max_s, opts.reopen_initial_s) == (1.0, 2.0, 0.2)
    assert opts.gap_fill == "comfort_noise"
    assert from_table(SourceConfig, {"gap_fill": "zeros"}, "source").gap_fill == "zeros"


# --- capture clock ----------------------------------------------------------------------------


def test_clock_anchor_due_frame() -> None:
    a = ClockAnchor(frame=48000, t_s=10.0)
    assert a.due_frame(10.0, 16000) == 48000
    assert a.due_frame(11.25, 16000) == 48000 + 20000
    assert a.due_frame(9.0, 16000) == 48000  # a clock behind the anchor never goes back


def test_clock_file_roundtrip_owner_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "capture-s0.clock"
    cf = ClockFile(path, "123:streamasr-x-s0-audio")
    assert cf.load() is None
    cf.save(ClockAnchor(16000, 5.5))
    assert cf.load() == ClockAnchor(16000, 5.5)
    assert ClockFile(path, "999:streamasr-x-s0-audio").load() is None
    path.write_text("{not json")
    assert cf.load() is None
    path.write_text('{"owner": "123:streamasr-x-s0-audio", "frame": "x", "t_s": 1}')
    assert cf.load() is None
    cf.remove()
    cf.remove()
    assert not path.exists()


def test_fill_gap_is_chunked_and_exact() -> None:
    name = f"streamasr-captest{os.getpid()}-audio"
    ring = Ring.create(name, 1024, np.float32, (2,), max_readers=1, sample_rate_hz=16000)
    try:
        ring.write(np.ones((300, 2), np.float32))
        zeros = np.zeros((512, 2), np.float32)
        assert fill_gap(ring, 5000, zeros) == 5000
        assert ring.write_counter == 5300
        out = np.full((1024, 2), 7.0, np.float32)
        assert ring.read_at(5300 - 1024, out) == 1024
        assert not out.any()
        assert fill_gap(ring, 0, zeros) == 0 and ring.write_counter == 5300
        with pytest.raises(ValueError, match=r"fill block must hold 1\.\.1024 frames, has 2048"):
            fill_gap(ring, 10, np.zeros((2048, 2), np.float32))
    finally:
        ring.close()
        ring.unlink()


def test_noise_floor_is_the_quiet_level_not_the_speech() -> None:
    rng = np.random.default_rng(1)
    quiet = rng.normal(0, 0.001, (16000, 1))
    loud = rng.normal(0, 0.3, (16000, 1))
    floor = noise_floor(np.concatenate([quiet, loud]).astype(np.float32), 16000)
    assert 0.0009 < floor < 0.0011
    assert noise_floor(loud.astype(np.float32), 16000) == 0.02  # capped at -34 dBFS
    assert noise_floor(np.zeros((319, 1), np.float32), 16000) == 0.0  # less than one block


def test_comfort_noise_level_seed_and_zeros() -> None:
    a = comfort_noise(0.001, 16000, 2, seed=7)
    assert a.dtype == np.float32 and a.shape == (16000, 2)
    assert 0.00095 < float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) < 0.00105
    np.testing.assert_array_equal(a, comfort_noise(0.001, 16000, 2, seed=7))
    assert not comfort_noise(0.0, 10, 1, seed=7).any()


# --- exact resume of a file -------------------------------------------------------------------


@pytest.mark.parametrize("resume", [0, 1, 1599, 1600, 12345, 19999, 20000, 25000])
def test_skip_resumes_a_file_at_the_exact_frame(tmp_path: Path, resume: int) -> None:
    path = tmp_path / "a.wav"
    data = _wav(path, 20000)
    with FileSource(path, 1600) as src:
        assert _skip(src, resume) == min(resume, 20000)
        first = src.read_block()
        if resume >= 20000:
            assert first is None
        else:
            assert first is not None
            np.testing.assert_array_equal(first, data[resume : resume + 1600])
            assert src.frames_read == resume + first.shape[0]


def test_file_seek_rejects_negative(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    _wav(path, 100)
    with FileSource(path, 10) as src, pytest.raises(ValueError, match="frame must be >= 0, got -1"):
        src.seek(-1)


def test_skip_does_not_consume_a_byte_stream() -> None:
    raw = np.arange(100, dtype="<i2").tobytes()
    src = RawPcmSource(io.BytesIO(raw), "s16le", 1, 100, 16000)
    assert _skip(src, 40) == 0
    block = src.read_block()
    assert block is not None and block.shape == (100, 1)


# --- fault injection --------------------------------------------------------------------------


def test_fault_trigger_takes_the_device_down_for_the_given_time(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "fault-capture"
    trig = FaultTrigger(path, clock)
    trig.check()
    path.write_text("0.5\n")
    with pytest.raises(DeviceError, match=r"^injected fault: device down for another 0\.500 s$"):
        trig.check()
    assert not path.exists() and trig.triggered == 1
    clock.advance(0.4)
    with pytest.raises(DeviceError, match=r"another 0\.100 s"):
        trig.check()
    clock.advance(0.1)
    trig.check()
    path.write_text("soon")
    with pytest.raises(DeviceError, match=r"another 1\.000 s"):
        trig.check()


def _wait_until(pred: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_file_mic_plays_from_the_stream_position_in_real_time(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    data = _wav(path, 4800, channels=2)
    got: list[NDArray[np.float32]] = []
    mic = FileMic(
        lambda block, n, status: got.append(block.copy()),
        SourceFormat(16000, 1),
        path,
        start_frame=800,
        block_frames=320,
    )
    t0 = time.monotonic()
    mic.start()
    assert _wait_until(lambda: mic.ended, 5.0)
    elapsed = time.monotonic() - t0
    mic.raise_if_failed()
    mic.close()
    assert not mic.active
    played = np.concatenate(got)
    np.testing.assert_array_equal(played, data[800:, :1])
    assert mic.frames_captured == 4000
    assert {b.shape[0] for b in got[:-1]} == {320}
    assert elapsed >= 0.25  # 4000 frames at 16 kHz take 0.25 s


def test_file_mic_fails_on_command_and_refuses_to_reopen(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    _wav(path, 160000)
    fault = tmp_path / "fault-capture"
    trig = FaultTrigger(fault)
    frames: list[int] = []
    mic = FileMic(lambda b, n, s: frames.append(n), SourceFormat(16000, 1), path, trigger=trig)
    mic.start()
    assert _wait_until(lambda: len(frames) >= 2, 5.0)
    fault.write_text("30")
    assert _wait_until(lambda: mic.error is not None, 5.0)
    with pytest.raises(DeviceError, match=r"^injected fault: device down for another"):
        mic.raise_if_failed()
    assert _wait_until(lambda: not mic.active, 5.0)
    mic.close()
    again = FileMic(lambda b, n, s: None, SourceFormat(16000, 1), path, trigger=trig)
    with pytest.raises(DeviceError, match=r"^injected fault: device down for another"):
        again.start()
    assert not again.active


def test_file_mic_rejects_another_rate(tmp_path: Path) -> None:
    path = tmp_path / "8k.wav"
    _wav(path, 800, rate=8000)
    mic = FileMic(lambda b, n, s: None, SourceFormat(16000, 1), path)
    with pytest.raises(DeviceError, match=r"rate 8000 Hz, expected 16000 Hz$"):
        mic.start()


def test_probe_file_mic_device(tmp_path: Path) -> None:
    path = tmp_path / "st.wav"
    _wav(path, 100, rate=48000, channels=2)
    assert probe_source("mic", device=f"file-mic:{path}") == SourceFormat(48000, 1)
    assert probe_source("mic", device=f"file-mic:{path}", raw_channels=2) == SourceFormat(48000, 2)
    with pytest.raises(DeviceError, match=r"audio file not found: /no/such\.wav"):
        probe_source("mic", device="file-mic:/no/such.wav")
