"""Tests of the capture sources: file, raw PCM, pacing, fault injection, microphone.

The microphone tests run in a child Python with ``ALSA_CONFIG_PATH`` pointing at a config in
``tmp_path``: an empty one (PortAudio sees no device) or one that defines an ALSA ``null``
capture device (a virtual microphone that delivers silence as fast as it is read). PortAudio
enumerates devices when ``sounddevice`` is imported, hence the child process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sounddevice as sd
import soundfile as sf
from numpy.typing import NDArray

from streamasr.actors.capture.formats import SourceFormat
from streamasr.actors.capture.mic import MicSource
from streamasr.actors.capture.sources import (
    FileSource,
    Pacer,
    RawPcmSource,
    probe_source,
    sample_path,
)
from streamasr.actors.capture.testing_sources import FailingSource
from streamasr.actors.errors import AudioFormatError, ConfigError, DeviceError

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
ALSA_BASE = Path("/usr/share/alsa/alsa.conf")
VIRTUAL_MIC_CONF = """
<{base}>
pcm.virtmic {{
    type null
    hint {{ show on description "streamasr test null capture" }}
}}
"""


def _read_all(src: FileSource | RawPcmSource | FailingSource) -> NDArray[np.float32]:
    blocks = []
    while (block := src.read_block()) is not None:
        assert block.dtype == np.float32 and block.ndim == 2
        blocks.append(block)
    return np.concatenate(blocks) if blocks else np.zeros((0, src.format.channels), np.float32)


# --- packaged sample -------------------------------------------------------------------------


def test_sample_is_shipped_16k_mono_int16() -> None:
    path = sample_path()
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 7.0 < info.duration < 12.0
    assert path.stat().st_size < 360_000
    lines = path.with_name("sample.txt").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "The quick brown fox jumps over the lazy dog.",
        "Please turn on the kitchen lights.",
        "What is the weather like tomorrow morning?",
    ]
    x, _ = sf.read(str(path), dtype="float32")
    tail = x[-8000:]  # last 0.5 s is silence
    assert float(np.abs(tail).max()) < 0.01
    assert float(np.sqrt(np.mean(x**2))) > 0.05


# --- probe_source ----------------------------------------------------------------------------


def test_probe_file_formats(tmp_path: Path) -> None:
    assert probe_source(str(sample_path())) == SourceFormat(16000, 1)
    flac = tmp_path / "x.flac"
    sf.write(str(flac), np.zeros((100, 3), np.int16), 22050)
    assert probe_source(str(flac)) == SourceFormat(22050, 3)


def test_probe_missing_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"^audio file not found: .*nope\.wav$"):
        probe_source(str(tmp_path / "nope.wav"))
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    with pytest.raises(AudioFormatError, match=r"^cannot read audio file .*junk\.wav: "):
        probe_source(str(junk))
    with pytest.raises(AudioFormatError, match="cannot read audio file"):
        FileSource(junk, 100)


def test_probe_raw_stdin() -> None:
    fmt = probe_source("-", raw_rate_hz=8000, raw_channels=2, raw_format="s32le")
    assert fmt == SourceFormat(8000, 2)
    assert probe_source("-", raw_rate_hz=16000) == SourceFormat(16000, 1)
    with pytest.raises(ConfigError, match=r"capture\.raw_rate_hz: must be a positive integer"):
        probe_source("-")
    with pytest.raises(ConfigError, match=r"capture\.raw_format: must be one of .*got 'u8'"):
        probe_source("-", raw_rate_hz=16000, raw_format="u8")
    with pytest.raises(ConfigError, match=r"capture\.raw_channels: must be >= 1, got 0"):
        probe_source("-", raw_rate_hz=16000, raw_channels=0)


# --- FileSource ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subtype", "rate", "channels"),
    [("PCM_16", 48000, 2), ("FLOAT", 8000, 1), ("PCM_24", 44100, 3)],
)
def test_file_source_blocks(tmp_path: Path, subtype: str, rate: int, channels: int) -> None:
    data = (np.random.default_rng(0).uniform(-0.9, 0.9, (10_007, channels))).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(str(path), data, rate, subtype=subtype)
    expected, _ = sf.read(str(path), dtype="float32", always_2d=True)
    with FileSource(path, 1000) as src:
        assert src.format == SourceFormat(rate, channels)
        first = src.read_block()
        assert first is not None and first.shape == (1000, channels)
        rest = _read_all(src)
        assert src.read_block() is None
        assert src.frames_read == 10_007
    got = np.concatenate([first, rest])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got, data, atol=1e-4)


def test_file_source_shared_48k_stereo() -> None:
    path = AUDIO / "conversation1_48k_stereo.wav"
    if not path.is_file():
        pytest.skip(f"shared test audio not found at {path}")
    with FileSource(path, 4800) as src:
        assert src.format == SourceFormat(48000, 2)
        assert _read_all(src).shape == (sf.info(str(path)).frames, 2)


def sample_as_mp3(tmp_path: Path) -> tuple[Path, NDArray[np.float32]]:
    """The packaged sample encoded as MP3 by libsndfile, and the WAV's samples."""
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 (needs >= 1.1)")
    wav, rate_hz = sf.read(str(sample_path()), dtype="float32", always_2d=True)
    path = tmp_path / "sample.mp3"
    sf.write(str(path), wav, rate_hz, format="MP3")
    return path, wav


def test_file_source_reads_an_mp3_without_libmpg123_messages(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """soundfile's ``read`` seeks after every block, which restarts libmpg123 without its bit
    reservoir: ~50 "part2_3_length ... too large" lines on the C stderr for this 10 s file in
    100 ms blocks, and samples up to 1.5e-3 off a whole-file read. FileSource reads
    straight through."""
    path, wav = sample_as_mp3(tmp_path)
    capfd.readouterr()
    with FileSource(path, 1600) as src:
        assert src.format == SourceFormat(16000, 1)
        blocks = _read_all(src)
        assert src.frames_read == src.frames == len(wav)
    assert "mpg123" not in capfd.readouterr().err
    whole, _ = sf.read(str(path), dtype="float32", always_2d=True)
    assert blocks.shape == whole.shape == wav.shape
    assert float(np.abs(blocks - whole).max()) < 1e-6  # libmpg123's float rounding only
    # the audio the MP3 was made from (lossy: 1.7 % relative RMS error measured)
    assert float(np.corrcoef(blocks[:, 0], wav[:, 0])[0, 1]) > 0.999


def test_file_source_resumes_an_mp3_mid_file(tmp_path: Path) -> None:
    path, wav = sample_as_mp3(tmp_path)
    with FileSource(path, 1600) as src:
        assert src.seek(80_000) == 80_000 and src.frames_read == 80_000
        rest = _read_all(src)
    assert rest.shape == (len(wav) - 80_000, 1)
    assert float(np.corrcoef(rest[:, 0], wav[80_000:, 0])[0, 1]) > 0.999


def test_a_directory_is_not_an_audio_file(tmp_path: Path) -> None:
    expected = rf"^{tmp_path} is a directory, not an audio file$"
    with pytest.raises(DeviceError, match=expected):
        probe_source(str(tmp_path))
    with pytest.raises(DeviceError, match=expected):
        FileSource(tmp_path, 100)


def test_file_source_missing() -> None:
    with pytest.raises(DeviceError, match=r"audio file not found: /no/such\.wav"):
        FileSource("/no/such.wav", 100)
    with pytest.raises(ValueError, match="block_frames must be > 0, got 0"):
        FileSource(sample_path(), 0)


# --- RawPcmSource ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("s16le", np.array([0, 16384, -32768, 32767], "<i2"), [0.0, 0.5, -1.0, 32767 / 32768]),
        ("s32le", np.array([0, 1 << 30, -(1 << 31), 1 << 16], "<i4"), [0.0, 0.5, -1.0, 2**-15]),
        ("f32le", np.array([0.0, 0.5, -1.0, 0.25], "<f4"), [0.0, 0.5, -1.0, 0.25]),
    ],
)
def test_raw_formats(fmt: str, raw: NDArray[np.generic], expected: list[float]) -> None:
    src = RawPcmSource(
        io.BytesIO(raw.tobytes()), fmt, channels=2, block_frames=1, sample_rate_hz=8000
    )
    assert src.format == SourceFormat(8000, 2)
    got = _read_all(src)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got.ravel(), expected, rtol=0, atol=1e-7)


def test_raw_partial_reads_from_pipe() -> None:
    """A pipe delivers bytes in odd pieces; blocks still come out whole and in order."""
    samples = (np.arange(3001, dtype=np.int32) % 2000 - 1000).astype("<i2")
    payload = samples.tobytes()
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb", buffering=0) as out:
            for i in range(0, len(payload), 333):  # odd sizes split frames and samples
                out.write(payload[i : i + 333])

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(r, "rb", buffering=0) as stream:
        src = RawPcmSource(stream, "s16le", channels=1, block_frames=500)
        blocks = []
        while (block := src.read_block()) is not None:
            blocks.append(block)
    thread.join(timeout=10)
    assert [b.shape[0] for b in blocks] == [500] * 6 + [1]
    np.testing.assert_array_equal(np.concatenate(blocks)[:, 0] * 32768, samples)
    assert src.trailing_bytes == 0


def test_raw_trailing_partial_frame_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    data = np.arange(10, dtype="<i2").tobytes() + b"\x01\x02\x03"  # 2.5 stereo frames + 3 B
    src = RawPcmSource(io.BytesIO(data), "s16le", channels=2, block_frames=100)
    with caplog.at_level(logging.WARNING, logger="streamasr.actors.capture.sources"):
        got = _read_all(src)
    assert got.shape == (5, 2)
    assert src.trailing_bytes == 3
    assert "partial frame: 3 byte(s) dropped (frame size 4 bytes)" in caplog.text


def test_raw_bad_format() -> None:
    with pytest.raises(
        ConfigError, match=r"must be one of \['f32le', 's16le', 's32le'\], got 'u8'"
    ):
        RawPcmSource(io.BytesIO(b""), "u8", 1, 10)


# --- Pacer, FailingSource --------------------------------------------------------------------


def test_pacer_with_fake_clock() -> None:
    now = [100.0]
    pacer = Pacer(16000, clock=lambda: now[0])
    assert pacer.lag_s(0) == 0.0
    assert pacer.delay_s(0) == 0.0  # starts the schedule at t=100
    assert pacer.delay_s(1600) == pytest.approx(0.1)
    now[0] = 100.05
    assert pacer.delay_s(1600) == pytest.approx(0.05)
    now[0] = 100.3
    assert pacer.delay_s(1600) == 0.0
    assert pacer.lag_s(1600) == pytest.approx(0.2)
    pacer.reset()
    assert pacer.delay_s(16000) == pytest.approx(1.0)


def test_failing_source_raises_after_n_blocks() -> None:
    src = FailingSource(FileSource(sample_path(), 1600), fail_after_blocks=3)
    assert src.format == SourceFormat(16000, 1)
    for _ in range(3):
        assert src.read_block() is not None
    with pytest.raises(DeviceError, match="injected failure: device unplugged"):
        src.read_block()
    src.close()


def test_failing_source_on_command() -> None:
    src = FailingSource(FileSource(sample_path(), 16000), fail_after_blocks=None)
    assert src.read_block() is not None
    src.fail_now()
    with pytest.raises(DeviceError, match="injected failure"):
        src.read_block()
    assert src.blocks_read == 1


# --- MicSource -------------------------------------------------------------------------------


def test_callback_counts_status_flags_and_feeds_sink() -> None:
    got: list[tuple[float, int, bool]] = []

    def sink(indata: NDArray[np.float32], frames: int, status: sd.CallbackFlags) -> None:
        got.append((float(indata[0, 0]), frames, bool(status)))

    mic = MicSource(sink, SourceFormat(16000, 1))
    block = np.full((160, 1), 0.5, np.float32)
    mic.handle_block(block, 160, None, sd.CallbackFlags())
    overflow = sd.CallbackFlags()
    overflow.input_overflow = True
    both = sd.CallbackFlags()
    both.input_overflow = both.input_underflow = True
    mic.handle_block(block, 160, None, overflow)
    mic.handle_block(block, 160, None, both)
    assert (mic.callbacks, mic.frames_captured) == (3, 480)
    assert (mic.input_overflows, mic.input_underflows, mic.priming_outputs) == (2, 1, 0)
    assert got == [(0.5, 160, False), (0.5, 160, True), (0.5, 160, True)]


def test_callback_sink_error_aborts_and_is_reported() -> None:
    def sink(indata: NDArray[np.float32], frames: int, status: sd.CallbackFlags) -> None:
        raise RuntimeError("ring detached")

    mic = MicSource(sink, SourceFormat(16000, 1))
    with pytest.raises(sd.CallbackAbort):
        mic.handle_block(np.zeros((1, 1), np.float32), 1, None, sd.CallbackFlags())
    with pytest.raises(DeviceError, match=r"capture sink failed: RuntimeError\('ring detached'\)"):
        mic.raise_if_failed()


def _run_child(script: str, alsa_conf: Path) -> dict[str, Any]:
    env = dict(os.environ, ALSA_CONFIG_PATH=str(alsa_conf))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


NO_DEVICE_SCRIPT = """
import json
from streamasr.actors.errors import DeviceError
from streamasr.actors.capture.formats import SourceFormat
from streamasr.actors.capture.mic import MicSource, list_input_devices
from streamasr.actors.capture.sources import probe_source
out = {"devices": list_input_devices()}
for name, call in [("probe", lambda: probe_source("mic")),
                   ("start", lambda: MicSource(lambda *a: None, SourceFormat(16000, 1)).start())]:
    try:
        call()
        out[name] = "no error"
    except DeviceError as exc:
        out[name] = str(exc)
print(json.dumps(out))
"""


def test_no_input_device_error() -> None:
    """With ALSA's stock config (no user .asoundrc) and no sound card, PortAudio sees none."""
    if not ALSA_BASE.is_file():
        pytest.skip(f"ALSA base config {ALSA_BASE} not installed")
    out = _run_child(NO_DEVICE_SCRIPT, ALSA_BASE)
    if out["devices"]:
        pytest.skip(f"this machine has input devices: {out['devices']}")
    expected = (
        "no input device found (PortAudio sees none); use --source FILE.wav "
        "or --source - for raw PCM on stdin"
    )
    assert out["probe"] == expected
    assert out["start"] == expected


VIRTUAL_MIC_SCRIPT = """
import json, threading, time
import numpy as np
from streamasr.actors.capture.mic import MicSource, list_input_devices
from streamasr.actors.capture.sources import probe_source
devices = [d for d in list_input_devices() if d["name"] == "virtmic"]
fmt = probe_source("mic", device="virtmic", raw_channels=2)
ring = np.full((32000, fmt.channels), 7.0, np.float32)
pos = [0]
done = threading.Event()
def sink(indata, frames, status):
    n = min(frames, ring.shape[0] - pos[0])
    ring[pos[0]:pos[0] + n] = indata[:n]
    pos[0] += n
    if pos[0] >= ring.shape[0]:
        done.set()
mic = MicSource(sink, fmt, device="virtmic", block_frames=160)
with mic:
    ok = done.wait(20)
    active = mic.active
    mic.raise_if_failed()
print(json.dumps({"devices": devices, "format": [fmt.sample_rate_hz, fmt.channels],
                  "ok": ok, "active": active, "after_close": mic.active,
                  "callbacks": mic.callbacks, "frames": mic.frames_captured,
                  "filled": pos[0], "sentinels_left": int(np.count_nonzero(ring == 7.0))}))
"""


def test_virtual_alsa_microphone(tmp_path: Path) -> None:
    if not ALSA_BASE.is_file():
        pytest.skip(f"ALSA base config {ALSA_BASE} not installed")
    conf = tmp_path / "asound.conf"
    conf.write_text(VIRTUAL_MIC_CONF.format(base=ALSA_BASE))
    out = _run_child(VIRTUAL_MIC_SCRIPT, conf)
    devices = out["devices"]
    assert isinstance(devices, list) and len(devices) == 1
    assert devices[0]["channels"] > 0
    assert out["format"] == [int(devices[0]["default_rate_hz"]), 2]  # capped to 2 channels
    assert out["ok"] is True and out["active"] is True and out["after_close"] is False
    assert out["filled"] == 32000
    assert out["frames"] >= 32000 and out["callbacks"] >= 32000 // 160
    assert out["sentinels_left"] == 0  # every frame of the buffer was written by the sink


BROKEN_PORTAUDIO_SCRIPT = """
import json
from streamasr.actors.errors import DeviceError
from streamasr.actors.capture.mic import list_input_devices
try:
    list_input_devices()
    print(json.dumps({"error": None}))
except DeviceError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def test_portaudio_init_failure_is_device_error(tmp_path: Path) -> None:
    """An ALSA config that breaks Pa_Initialize (raised at ``import sounddevice``)."""
    if not ALSA_BASE.is_file():
        pytest.skip(f"ALSA base config {ALSA_BASE} not installed")
    conf = tmp_path / "asound.conf"
    conf.write_text(f"<{ALSA_BASE}>\npcm.cards {{}}\n")
    error = _run_child(BROKEN_PORTAUDIO_SCRIPT, conf)["error"]
    assert isinstance(error, str)
    assert error.startswith("PortAudio failed to initialise (Error initializing PortAudio")
    assert error.endswith("or use --source FILE.wav or --source - for raw PCM on stdin")
