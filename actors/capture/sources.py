"""Audio capture sources read by the capture actor: audio file, raw PCM on stdin, and the
format probe for every source kind (microphone included).

Every source produces float32 blocks shaped ``(n_frames, channels)`` in ``[-1, 1]`` at the
source's native sample rate; conversion to the pipeline rate is the job of
:mod:`streamasr.actors.conditioning`.

Pull sources (:class:`FileSource`, :class:`RawPcmSource`) offer
``read_block() -> NDArray | None`` (``None`` = end of source). They never sleep: real-time
pacing is a separate :class:`Pacer` the capture loop consults (``--fast`` means: no pacer).

The microphone (a push source: PortAudio calls back from its own thread) is
:mod:`streamasr.actors.capture.mic`; the shared types are in
:mod:`streamasr.actors.capture.formats`. The test-only stand-ins (``FileMic``,
``FaultTrigger``, ``FailingSource``) are in :mod:`streamasr.actors.capture.testing_sources`,
which builds on this module (never the other way round).

``sounddevice`` is imported lazily, so file and stdin capture work on a machine without
PortAudio; a missing PortAudio or input device becomes a :class:`DeviceError` whose one-line
message says what to do instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

from streamasr.actors.audio_file import read_frames
from streamasr.actors.capture.formats import FILE_MIC_PREFIX, RAW_FORMATS, SourceFormat
from streamasr.actors.capture.mic import NO_DEVICE_MSG, list_input_devices
from streamasr.actors.capture.mic import import_sounddevice as _import_sounddevice
from streamasr.actors.errors import AudioFormatError, ConfigError, DeviceError

__all__ = [
    "FileSource",
    "Pacer",
    "RawPcmSource",
    "check_audio_file",
    "probe_source",
    "sample_path",
]

logger = logging.getLogger(__name__)


def sample_path() -> Path:
    """Path of the packaged speech sample (16 kHz mono int16 WAV; transcript in sample.txt)."""
    ref = resources.files("streamasr.actors").joinpath("data", "sample.wav")
    return Path(str(ref))


def _probe_mic(device: str | int | None, max_channels: int) -> SourceFormat:
    """Default rate and channel count (capped to ``max_channels``) of an input device.

    A ``"file-mic:<path>"`` device (test facility, see
    :class:`~streamasr.actors.capture.testing_sources.FileMic`) has its file's
    rate and channel count (capped the same way).
    """
    if isinstance(device, str) and device.startswith(FILE_MIC_PREFIX):
        fmt = probe_source(device[len(FILE_MIC_PREFIX) :])
        return SourceFormat(fmt.sample_rate_hz, max(1, min(fmt.channels, max_channels)))
    sd = _import_sounddevice()
    if not list_input_devices():
        raise DeviceError(NO_DEVICE_MSG)
    try:
        info = sd.query_devices(device, kind="input")
    except (ValueError, sd.PortAudioError) as exc:
        raise DeviceError(
            f"input device {device!r} not usable ({exc}); see --list-devices"
        ) from exc
    channels = max(1, min(int(info["max_input_channels"]), max_channels))
    return SourceFormat(round(float(info["default_samplerate"])), channels)


def _check_raw_args(
    raw_rate_hz: int | None, raw_channels: int | None, raw_format: str | None
) -> tuple[int, int, str]:
    """Validate the raw-PCM description given for ``--source -``."""
    if raw_rate_hz is None or raw_rate_hz <= 0:
        raise ConfigError(f"capture.raw_rate_hz: must be a positive integer, got {raw_rate_hz!r}")
    channels = 1 if raw_channels is None else raw_channels
    if channels <= 0:
        raise ConfigError(f"capture.raw_channels: must be >= 1, got {channels!r}")
    fmt = "s16le" if raw_format is None else raw_format
    if fmt not in RAW_FORMATS:
        raise ConfigError(f"capture.raw_format: must be one of {sorted(RAW_FORMATS)}, got {fmt!r}")
    return raw_rate_hz, channels, fmt


def check_audio_file(path: str | Path) -> Path:
    """``path`` as a :class:`Path` if it names a regular file (not yet read).

    Raises:
        DeviceError: one line saying what ``path`` is instead: missing, a directory, or some
            other kind of file.
    """
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        raise DeviceError(f"{path} is a directory, not an audio file")
    if p.exists():
        raise DeviceError(f"{path} is not a regular file, not an audio file")
    raise DeviceError(f"audio file not found: {path}")


def probe_source(
    spec: str,
    *,
    raw_rate_hz: int | None = None,
    raw_channels: int | None = None,
    raw_format: str | None = None,
    device: str | int | None = None,
) -> SourceFormat:
    """Native format of the source named by ``spec``.

    Args:
        spec: ``"mic"`` (``device``, or PortAudio's default input), ``"-"`` (raw PCM on stdin
            described by the ``raw_*`` arguments) or the path of a WAV/FLAC/OGG/MP3 file.
        raw_rate_hz: stdin sample rate in Hz (required for ``"-"``).
        raw_channels: stdin channels (default 1); for ``"mic"``, the most channels to open
            (default 1).
        raw_format: stdin sample format, one of :data:`RAW_FORMATS` (default ``s16le``).
        device: PortAudio device index or name substring for ``"mic"``.

    Raises:
        DeviceError: no PortAudio / no input device / file missing or a directory.
        AudioFormatError: the file is not readable audio.
        ConfigError: raw arguments missing or invalid.
    """
    if spec == "mic":
        return _probe_mic(device, 1 if raw_channels is None else raw_channels)
    if spec == "-":
        rate, channels, _ = _check_raw_args(raw_rate_hz, raw_channels, raw_format)
        return SourceFormat(rate, channels)
    path = check_audio_file(spec)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioFormatError(f"cannot read audio file {spec}: {exc}") from exc
    return SourceFormat(int(info.samplerate), int(info.channels))


class FileSource:
    """Blocks of float32 frames read from an audio file (any rate, channels, int or float).

    Blocks are read with :func:`~streamasr.actors.audio_file.read_frames`, so an MP3 decodes
    straight through (no decoder restart, no libmpg123 messages, the samples of a whole-file
    read). Only :meth:`seek` (resuming after a restart) restarts the MP3 decoder; libmpg123
    may print a line for the frame it lands on.
    """

    def __init__(self, path: str | Path, block_frames: int) -> None:
        """Open ``path``; each block holds ``block_frames`` frames (the last may be shorter)."""
        if block_frames <= 0:
            raise ValueError(f"block_frames must be > 0, got {block_frames}")
        check_audio_file(path)
        try:
            self._file = sf.SoundFile(str(path))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioFormatError(f"cannot read audio file {path}: {exc}") from exc
        self._block_frames = block_frames
        self._format = SourceFormat(int(self._file.samplerate), int(self._file.channels))
        self.frames_read = 0

    @property
    def format(self) -> SourceFormat:
        """Native rate (Hz) and channels of the file."""
        return self._format

    @property
    def frames(self) -> int:
        """Length of the file in frames."""
        return int(self._file.frames)

    def seek(self, frame: int) -> int:
        """Position the next block at absolute file ``frame`` (clamped to the file's end).

        Returns the frame actually positioned at; :attr:`frames_read` becomes that frame.
        """
        if frame < 0:
            raise ValueError(f"frame must be >= 0, got {frame}")
        target = min(frame, int(self._file.frames))
        self._file.seek(target)
        self.frames_read = target
        return target

    def read_block(self) -> NDArray[np.float32] | None:
        """Next ``(n, channels)`` float32 block, ``None`` at end of file."""
        block = read_frames(self._file, self._block_frames)
        if block.shape[0] == 0:
            return None
        self.frames_read += int(block.shape[0])
        return block

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RawPcmSource:
    """Blocks of float32 frames decoded from a raw little-endian PCM byte stream (stdin).

    Short reads (pipes) are accumulated until a whole block or end of stream. A trailing
    partial frame at end of stream cannot be decoded: its byte count is kept in
    ``trailing_bytes`` and logged once as a warning.
    """

    def __init__(
        self, stream: BinaryIO, fmt: str, channels: int, block_frames: int, sample_rate_hz: int = 0
    ) -> None:
        """Decode ``fmt`` (see :data:`RAW_FORMATS`) with ``channels`` per frame from ``stream``.

        ``sample_rate_hz`` is only recorded in :attr:`format` (0 = unknown).
        """
        if fmt not in RAW_FORMATS:
            raise ConfigError(
                f"capture.raw_format: must be one of {sorted(RAW_FORMATS)}, got {fmt!r}"
            )
        if channels <= 0 or block_frames <= 0:
            raise ValueError(
                f"channels and block_frames must be > 0, got {channels}, {block_frames}"
            )
        dtype, self._scale = RAW_FORMATS[fmt]
        self._dtype = np.dtype(dtype)
        self._stream = stream
        self._channels = channels
        self._frame_bytes = self._dtype.itemsize * channels
        self._block_bytes = self._frame_bytes * block_frames
        self._pending = bytearray()
        self._eof = False
        self._format = SourceFormat(sample_rate_hz, channels)
        self.frames_read = 0
        self.trailing_bytes = 0

    @property
    def format(self) -> SourceFormat:
        """Rate (as given, Hz) and channels of the stream."""
        return self._format

    def _fill(self) -> None:
        """Read until a whole block is pending or the stream ends."""
        while not self._eof and len(self._pending) < self._block_bytes:
            data = self._stream.read(self._block_bytes - len(self._pending))
            if not data:
                self._eof = True
            else:
                self._pending += data

    def read_block(self) -> NDArray[np.float32] | None:
        """Next ``(n, channels)`` float32 block, ``None`` at end of stream."""
        self._fill()
        usable = len(self._pending) - len(self._pending) % self._frame_bytes
        if usable == 0:
            if self._eof and self._pending and self.trailing_bytes == 0:
                self.trailing_bytes = len(self._pending)
                logger.warning(
                    "raw PCM stream ended with a partial frame: %d byte(s) dropped "
                    "(frame size %d bytes)",
                    self.trailing_bytes,
                    self._frame_bytes,
                )
            return None
        raw = np.frombuffer(bytes(self._pending[:usable]), dtype=self._dtype)
        del self._pending[:usable]
        block = raw.astype(np.float32).reshape(-1, self._channels)
        if self._scale != 1.0:
            block *= np.float32(self._scale)
        self.frames_read += int(block.shape[0])
        return block

    def close(self) -> None:
        """Close the byte stream."""
        self._stream.close()


class Pacer:
    """Tells a pull loop how long to wait so frames are released in real time.

    The clock starts at the first :meth:`delay_s` call (or :meth:`reset`); frame ``i`` is due
    at ``t0 + i / sample_rate_hz``.
    """

    def __init__(self, sample_rate_hz: int, clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` returns monotonic seconds (injected for tests)."""
        if sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be > 0, got {sample_rate_hz}")
        self._rate = float(sample_rate_hz)
        self._clock = clock
        self._t0: float | None = None

    def reset(self) -> None:
        """Restart the schedule: frame 0 is due now."""
        self._t0 = self._clock()

    def delay_s(self, frame_index: int) -> float:
        """Seconds until ``frame_index`` is due (0.0 when already due or late)."""
        if self._t0 is None:
            self.reset()
        assert self._t0 is not None
        return max(0.0, self._t0 + frame_index / self._rate - self._clock())

    def lag_s(self, frame_index: int) -> float:
        """Seconds ``frame_index`` is late (0.0 when not yet due)."""
        if self._t0 is None:
            return 0.0
        return max(0.0, self._clock() - (self._t0 + frame_index / self._rate))
