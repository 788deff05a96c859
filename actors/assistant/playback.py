"""Where a spoken reply goes: an audio output device (sounddevice) or a WAV file.

:func:`make_player` builds a :class:`Player` from the ``[tts]`` section. The device is checked
when the player is built, so a box without an output device is reported at startup, not at the
first reply. ``sounddevice`` is imported only by :class:`DevicePlayer`, so file output works
on a machine without PortAudio. Every failure is a one-line :class:`TtsError`.
"""

from __future__ import annotations

import os
import re
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.assistant.tts import Speech, TtsConfig, TtsError

__all__ = [
    "DevicePlayer",
    "FilePlayer",
    "PlayResult",
    "Player",
    "check_output",
    "make_player",
    "resample",
    "safe_stem",
]

_DEVICE: Final = "tts.output = 'device'"
#: Longest file name stem written by :class:`FilePlayer`, in characters.
_MAX_NAME_CHARS: Final = 100


@dataclass(frozen=True, slots=True)
class PlayResult:
    """A reply played: its length ``duration_s`` (seconds) and ``where`` it went (the device
    name or the WAV file's path)."""

    duration_s: float
    where: str


class Player(Protocol):
    """Plays or stores one reply."""

    def play(self, speech: Speech, name: str) -> PlayResult:
        """Play ``speech`` (``name`` labels it, e.g. a file name); blocks until done."""
        ...


def resample(samples: NDArray[np.int16], from_hz: int, to_hz: int) -> NDArray[np.int16]:
    """``samples`` at ``from_hz`` resampled to ``to_hz`` (Hz) by linear interpolation (enough
    for speech to a device that will not take the engine's rate)."""
    if from_hz == to_hz or len(samples) == 0:
        return samples
    count = max(1, round(len(samples) * to_hz / from_hz))
    positions = np.arange(count) * (from_hz / to_hz)
    out: NDArray[np.int16] = np.interp(
        positions, np.arange(len(samples)), samples.astype(np.float64)
    ).astype(np.int16)
    return out


def _import_sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # no libportaudio2
        raise TtsError(f"{_DEVICE}: PortAudio is not installed ({exc})") from exc
    except Exception as exc:  # sounddevice.PortAudioError from Pa_Initialize at import
        raise TtsError(f"{_DEVICE}: PortAudio failed to start ({exc})") from exc
    module: ModuleType = sounddevice
    return module


class DevicePlayer:
    """Plays through a sounddevice (PortAudio) output device, mono int16."""

    def __init__(self, device: str = ""):
        """Open nothing yet, but check now that ``device`` (a name, an index as a string, or
        ``""`` for the default) is an output device; raises :class:`TtsError`."""
        self._sd = _import_sounddevice()
        self._device: int | str | None = (
            int(device) if device.strip().isdigit() else (device or None)
        )
        try:
            info: Any = self._sd.query_devices(self._device, kind="output")
            self._sd.check_output_settings(device=self._device, channels=1, dtype="int16")
        except (self._sd.PortAudioError, ValueError) as exc:
            raise TtsError(f"{_DEVICE}: no audio output device ({_one_line(exc)})") from exc
        self.name = str(info["name"])
        """The device's name, as PortAudio gives it."""
        self._device_rate_hz = int(info["default_samplerate"])

    def play(self, speech: Speech, name: str) -> PlayResult:
        """Play ``speech`` to the end (``name`` is unused); raises :class:`TtsError`."""
        del name
        samples, rate = speech.samples, speech.sample_rate_hz
        if len(samples):
            try:
                self._sd.check_output_settings(
                    device=self._device, channels=1, dtype="int16", samplerate=rate
                )
            except (self._sd.PortAudioError, ValueError):
                samples = resample(samples, rate, self._device_rate_hz)
                rate = self._device_rate_hz
            try:
                self._sd.play(samples, samplerate=rate, device=self._device, blocking=True)
            except (self._sd.PortAudioError, ValueError) as exc:
                raise TtsError(f"{_DEVICE}: playback failed ({_one_line(exc)})") from exc
        return PlayResult(speech.duration_s, self.name)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def safe_stem(name: str) -> str:
    """``name`` as a file name stem of ``[A-Za-z0-9_.-]``: other characters become ``_``,
    leading dots are dropped (no ``..``, no hidden file), at most 100 characters; ``speech``
    if nothing is left."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".")[:_MAX_NAME_CHARS]
    return stem or "speech"


class FilePlayer:
    """Writes each reply as ``<output_dir>/<name>.wav``: 16-bit PCM mono at the speech's rate."""

    def __init__(self, output_dir: str):
        """Create ``output_dir`` now if it is missing; raises :class:`TtsError`."""
        self._dir = Path(output_dir).resolve()
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TtsError(f"tts.output_dir = {output_dir!r}: cannot create it ({exc})") from exc
        if not os.access(self._dir, os.W_OK | os.X_OK):
            raise TtsError(f"tts.output_dir = {output_dir!r}: not writable")

    def play(self, speech: Speech, name: str) -> PlayResult:
        """Write ``speech`` to ``<output_dir>/<safe name>.wav``, replacing a file of that name.

        The file appears whole (written beside it, then renamed). Raises :class:`TtsError`.
        """
        path = self._dir / f"{safe_stem(name)}.wav"
        try:
            fd, part = tempfile.mkstemp(dir=self._dir, prefix=".part-", suffix=".wav")
            try:
                os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the reply from other users
                with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as wav:
                    wav.setnchannels(1)
                    wav.setsampwidth(2)
                    wav.setframerate(speech.sample_rate_hz)
                    wav.writeframes(speech.samples.astype("<i2").tobytes())
                os.replace(part, path)
            except BaseException:
                os.unlink(part)
                raise
        except OSError as exc:
            raise TtsError(f"tts.output_dir: cannot write {path} ({exc})") from exc
        return PlayResult(speech.duration_s, str(path))


def make_player(cfg: TtsConfig) -> Player:
    """The player ``cfg.output`` names; raises ``ConfigError`` or :class:`TtsError` now."""
    cfg.validate()
    if cfg.output == "file":
        return FilePlayer(cfg.output_dir)
    return DevicePlayer(cfg.device)


def check_output(cfg: TtsConfig) -> None:
    """Check at startup, in any process, that the reply's output exists: the device (or the
    folder, created if missing) :func:`make_player` would use; nothing for ``engine = "none"``.
    Raises ``ConfigError`` or :class:`TtsError` (one line)."""
    cfg.validate()
    if cfg.engine != "none":
        make_player(cfg)
