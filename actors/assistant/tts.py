"""Text to speech for the assistant's spoken reply: flite, espeak-ng or a Wyoming TTS server.

:func:`make_synthesizer` builds a :class:`Synthesizer` from the ``[tts]`` section
(:class:`TtsConfig`); its :meth:`~Synthesizer.synthesize` turns one reply into
:class:`Speech` (mono int16 samples at the engine's own rate: flite 8 or 16 kHz by voice,
espeak-ng 22.05 kHz, Wyoming whatever the server sends). The programs run as an argv list,
never through a shell, with the text as its own argument after the option that takes it, so a
reply beginning with "-" is spoken, not parsed. A missing program is reported when the
synthesizer is built (at startup), not at the first reply. Every failure is a one-line
:class:`TtsError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.assistant.settings import ENGINES, OUTPUTS, TtsConfig, tcp_address
from streamasr.actors.errors import AudioFormatError, StreamAsrError

__all__ = [
    "ENGINES",
    "OUTPUTS",
    "EspeakSynthesizer",
    "FliteSynthesizer",
    "Speech",
    "Synthesizer",
    "TtsConfig",
    "TtsError",
    "WyomingSynthesizer",
    "clean_text",
    "make_synthesizer",
    "wav_to_speech",
]

logger = logging.getLogger(__name__)

#: Debian package holding each engine's program.
_PACKAGES: Final = {"flite": "flite", "espeak-ng": "espeak-ng"}
#: Rate (Hz) given to the empty :class:`Speech` of a reply with nothing to say.
_EMPTY_RATE_HZ: Final = 16000
#: Most bytes of a Wyoming event's JSON data section, and of one audio chunk's payload.
_MAX_DATA_BYTES: Final = 64 * 1024
_MAX_PAYLOAD_BYTES: Final = 1024 * 1024
#: Accepted Wyoming audio formats: rate (Hz), sample width (bytes), channels.
_RATES_HZ: Final = (1000, 384000)
_WIDTHS: Final = (1, 2, 4)
_MAX_CHANNELS: Final = 8
#: Error prefixes naming the config key to blame.
_FLITE: Final = "tts.engine = 'flite'"
_ESPEAK: Final = "tts.engine = 'espeak-ng'"


class TtsError(StreamAsrError):
    """Speech synthesis or playback failed; the one-line message names the ``tts`` key."""


@dataclass(frozen=True, slots=True, eq=False)
class Speech:
    """Synthesised audio: mono int16 ``samples`` at ``sample_rate_hz`` (Hz)."""

    samples: NDArray[np.int16] = field(repr=False)
    sample_rate_hz: int

    def __post_init__(self) -> None:
        """Reject anything but a 1-D int16 array and a positive rate."""
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise AudioFormatError(
                f"speech must be 1-D int16, got {self.samples.ndim}-D {self.samples.dtype}"
            )
        if self.sample_rate_hz <= 0:
            raise AudioFormatError(f"speech sample rate must be > 0 Hz, got {self.sample_rate_hz}")

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate_hz


class Synthesizer(Protocol):
    """Turns one reply into speech."""

    def synthesize(self, text: str) -> Speech:
        """Speak ``text`` (cleaned and cut to ``max_text_chars``); raises :class:`TtsError`."""
        ...


def clean_text(text: str, max_chars: int) -> str:
    """``text`` on one line (control characters and runs of whitespace become one space), cut
    to at most ``max_chars`` characters at the last word boundary (mid-word only when a single
    word is longer than ``max_chars``)."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(line) <= max_chars:
        return line
    cut = line[: max_chars + 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut[:max_chars]
    logger.debug("tts: reply of %d characters cut to %d", len(line), len(head))
    return head[:max_chars].rstrip()


def _empty() -> Speech:
    return Speech(np.zeros(0, dtype=np.int16), _EMPTY_RATE_HZ)


def _to_mono_int16(raw: bytes, width: int, channels: int) -> NDArray[np.int16]:
    """Interleaved PCM (``width`` bytes a sample: 1 unsigned, 2 or 4 signed little-endian) as
    mono int16, channels averaged; a trailing partial frame is dropped."""
    frame = width * channels
    raw = raw[: len(raw) - len(raw) % frame]
    wide: NDArray[Any]
    if width == 1:
        wide = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        wide = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 4:
        wide = np.frombuffer(raw, dtype="<i4").astype(np.int64) >> 16
    else:
        raise AudioFormatError(f"unsupported sample width {width} bytes")
    if channels > 1:
        wide = wide.reshape(-1, channels).mean(axis=1)
    out: NDArray[np.int16] = np.clip(wide, -32768, 32767).astype(np.int16)
    return out


def wav_to_speech(data: bytes) -> Speech:
    """A RIFF/WAVE file's PCM as :class:`Speech`.

    A ``data`` chunk whose declared length runs past the end (espeak-ng writes 0x7ffff000 when
    it streams to stdout) is read to the end of the bytes. Raises :class:`AudioFormatError`.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a RIFF/WAVE file")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        tag, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = data[pos + 8 : pos + 8 + size]
        if tag == b"fmt ":
            if len(body) < 16:
                raise AudioFormatError("WAVE fmt chunk too short")
            code = int.from_bytes(body[0:2], "little")
            channels = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            bits = int.from_bytes(body[14:16], "little")
            if code != 1 or bits not in (8, 16, 32) or not channels or not rate:
                raise AudioFormatError(f"unsupported WAVE format {code}, {bits} bits")
            fmt = (rate, bits // 8, channels)
        elif tag == b"data":
            if fmt is None:
                raise AudioFormatError("WAVE data before fmt")
            rate, width, channels = fmt
            return Speech(_to_mono_int16(body, width, channels), rate)
        pos += 8 + size + size % 2
    raise AudioFormatError("WAVE file has no data chunk")


def _program(engine: str) -> str:
    path = shutil.which(engine)
    if path is None:
        raise TtsError(
            f"tts.engine = {engine!r}: the {engine} program is not installed "
            f"(apt-get install {_PACKAGES[engine]})"
        )
    return path


def _run(where: str, argv: list[str], timeout_s: float) -> bytes:
    """Run ``argv`` (no shell) for at most ``timeout_s`` seconds; its stdout, or a one-line
    :class:`TtsError` starting with ``where`` (the config key to blame)."""
    name = os.path.basename(argv[0])
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TtsError(f"{where}: {name} gave no speech within {timeout_s:g} s") from exc
    except OSError as exc:
        raise TtsError(f"{where}: cannot run {name} ({exc})") from exc
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        raise TtsError(f"{where}: {name} failed (exit {done.returncode}: {lines[-1][:200]})")
    return done.stdout


def _parse(where: str, wav: bytes) -> Speech:
    try:
        return wav_to_speech(wav)
    except AudioFormatError as exc:
        raise TtsError(f"{where}: unreadable audio ({exc})") from exc


class FliteSynthesizer:
    """flite (``flite -voice V -t TEXT -o FILE.wav``): 8 kHz (kal) or 16 kHz voices."""

    def __init__(self, voice: str = "", timeout_s: float = 10.0, max_text_chars: int = 500):
        """Find flite and check ``voice`` ("" = kal) is built in or a voice file."""
        self._flite = _program("flite")
        self._voice = voice
        self._timeout_s = timeout_s
        self._max_chars = max_text_chars
        if voice and not os.path.isfile(voice):
            listing = _run(_FLITE, [self._flite, "-lv"], timeout_s).decode(errors="replace")
            voices = listing.partition(":")[2].split()
            if voice not in voices:
                raise TtsError(
                    f"tts.voice = {voice!r}: flite has no such voice "
                    f"(built in: {', '.join(voices)}; or a .flitevox file path)"
                )

    def synthesize(self, text: str) -> Speech:
        """Speak ``text`` through flite; raises :class:`TtsError`."""
        line = clean_text(text, self._max_chars)
        if not line:
            return _empty()
        voice = ["-voice", self._voice] if self._voice else []
        with tempfile.TemporaryDirectory(prefix="streamasr-tts-") as folder:
            path = os.path.join(folder, "reply.wav")
            _run(_FLITE, [self._flite, *voice, "-o", path, "-t", line], self._timeout_s)
            try:
                with open(path, "rb") as wav:
                    data = wav.read()
            except OSError as exc:
                raise TtsError(f"{_FLITE}: flite wrote no audio ({exc})") from exc
        return _parse(_FLITE, data)


class EspeakSynthesizer:
    """espeak-ng (``espeak-ng --stdout -v V -- TEXT``): 22.05 kHz."""

    def __init__(self, voice: str = "", timeout_s: float = 10.0, max_text_chars: int = 500):
        """Find espeak-ng and check it accepts ``voice`` ("" = its default)."""
        self._espeak = _program("espeak-ng")
        self._voice = ["-v", voice] if voice else []
        self._timeout_s = timeout_s
        self._max_chars = max_text_chars
        if voice:  # -q: synthesise nothing, play nothing; fails on an unknown voice
            _run(f"tts.voice = {voice!r}", [self._espeak, "-q", *self._voice, "--", ""], timeout_s)

    def synthesize(self, text: str) -> Speech:
        """Speak ``text`` through espeak-ng; raises :class:`TtsError`."""
        line = clean_text(text, self._max_chars)
        if not line:
            return _empty()
        argv = [self._espeak, "--stdout", *self._voice, "--", line]
        return _parse(_ESPEAK, _run(_ESPEAK, argv, self._timeout_s))


class WyomingSynthesizer:
    """A Wyoming TTS server (wyoming-piper): sends ``synthesize``, collects ``audio-chunk``
    events until ``audio-stop``.

    Each reply opens its own connection inside ``asyncio.run``, so :meth:`synthesize` must not
    be called from a thread running an event loop. The reply is bounded: ``timeout_s`` for the
    whole exchange, ``max_audio_s`` seconds of audio, 1 MiB per chunk, 64 KiB of JSON per event.
    """

    def __init__(
        self,
        uri: str,
        voice: str = "",
        timeout_s: float = 10.0,
        max_text_chars: int = 500,
        max_audio_s: float = 60.0,
    ):
        """Talk to the server at ``uri`` (``tcp://host:port``); nothing is sent until a reply."""
        address = tcp_address(uri)
        if address is None:
            raise TtsError(f"tts.wyoming = {uri!r}: must be tcp://host:port")
        self._uri = uri
        self._address = address
        self._voice = voice
        self._timeout_s = timeout_s
        self._max_chars = max_text_chars
        self._max_audio_s = max_audio_s

    def synthesize(self, text: str) -> Speech:
        """Speak ``text`` through the server; raises :class:`TtsError`."""
        line = clean_text(text, self._max_chars)
        if not line:
            return _empty()
        where = f"tts.wyoming = {self._uri!r}"
        try:
            return asyncio.run(asyncio.wait_for(self._converse(line), self._timeout_s))
        except TimeoutError as exc:
            raise TtsError(f"{where}: no complete reply within {self._timeout_s:g} s") from exc
        except TtsError as exc:
            raise TtsError(f"{where}: {exc}") from exc
        except (OSError, EOFError) as exc:
            raise TtsError(f"{where}: connection failed ({exc or type(exc).__name__})") from exc

    async def _converse(self, text: str) -> Speech:
        from wyoming.event import async_write_event
        from wyoming.tts import Synthesize, SynthesizeVoice

        reader, writer = await asyncio.open_connection(*self._address, limit=_MAX_DATA_BYTES)
        try:
            voice = SynthesizeVoice(name=self._voice) if self._voice else None
            await async_write_event(Synthesize(text=text, voice=voice).event(), writer)
            return await self._collect(reader)
        finally:
            writer.transport.abort()  # at once: nothing of ours is left to send

    async def _collect(self, reader: asyncio.StreamReader) -> Speech:
        """Audio chunks until ``audio-stop``, converted to mono int16 as they arrive."""
        parts: list[NDArray[np.int16]] = []
        fmt: tuple[int, int, int] | None = None
        frames = 0
        while True:
            kind, data, payload = await _read_event(reader)
            if kind == "audio-stop":
                break
            if kind == "error":
                message = " ".join(str(data.get("text", "")).split())[:200]
                raise TtsError(f"server error ({message or 'no message'})")
            if kind != "audio-chunk":
                continue
            chunk_fmt = _chunk_format(data)
            if fmt is not None and chunk_fmt != fmt:
                raise TtsError("audio format changed within one reply")
            fmt = chunk_fmt
            samples = _to_mono_int16(payload, fmt[1], fmt[2])
            frames += len(samples)
            if frames > self._max_audio_s * fmt[0]:
                raise TtsError(f"reply longer than {self._max_audio_s:g} s of audio")
            parts.append(samples)
        if fmt is None:
            return _empty()
        return Speech(np.concatenate(parts) if parts else np.zeros(0, np.int16), fmt[0])


async def _read_event(reader: asyncio.StreamReader) -> tuple[str, dict[str, Any], bytes]:
    """One Wyoming event as ``(type, data, payload)``, with every length bounded.

    Like ``wyoming.event.async_read_event``, but a peer cannot make it read an unbounded data
    section or payload, and a malformed event is an error rather than the end of the stream.
    """
    try:
        line = await reader.readline()  # at most _MAX_DATA_BYTES: the reader's limit
    except ValueError as exc:
        raise TtsError("event header line too long") from exc
    if not line:
        raise TtsError("server closed the connection before audio-stop")
    try:
        header = json.loads(line)
        kind, data = header["type"], header.get("data") or {}
        data_length = int(header.get("data_length") or 0)
        payload_length = int(header.get("payload_length") or 0)
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise ValueError("bad type or data")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TtsError(f"malformed event header ({type(exc).__name__})") from exc
    if not 0 <= data_length <= _MAX_DATA_BYTES or not 0 <= payload_length <= _MAX_PAYLOAD_BYTES:
        raise TtsError(f"event {kind[:40]!r} too large")
    if data_length:
        try:
            extra = json.loads(await reader.readexactly(data_length))
            data.update(extra)
        except (ValueError, TypeError) as exc:
            raise TtsError(f"malformed event data ({type(exc).__name__})") from exc
    payload = await reader.readexactly(payload_length) if payload_length else b""
    return kind, data, payload


def _chunk_format(data: dict[str, Any]) -> tuple[int, int, int]:
    """``(rate Hz, width bytes, channels)`` of an ``audio-chunk``, checked."""
    rate, width, channels = (data.get(key) for key in ("rate", "width", "channels"))
    if not (
        isinstance(rate, int)
        and isinstance(width, int)
        and isinstance(channels, int)
        and _RATES_HZ[0] <= rate <= _RATES_HZ[1]
        and width in _WIDTHS
        and 1 <= channels <= _MAX_CHANNELS
    ):
        raise TtsError("unsupported audio format in audio-chunk")
    return rate, width, channels


def make_synthesizer(cfg: TtsConfig) -> Synthesizer | None:
    """The synthesizer ``cfg`` names, or None for ``engine = "none"``.

    Validates ``cfg`` and checks the program (and voice) now, so a missing one is reported at
    startup: raises ``ConfigError`` or :class:`TtsError`.
    """
    cfg.validate()
    if cfg.engine == "flite":
        return FliteSynthesizer(cfg.voice, cfg.timeout_s, cfg.max_text_chars)
    if cfg.engine == "espeak-ng":
        return EspeakSynthesizer(cfg.voice, cfg.timeout_s, cfg.max_text_chars)
    if cfg.engine == "wyoming":
        return WyomingSynthesizer(cfg.wyoming, cfg.voice, cfg.timeout_s, cfg.max_text_chars)
    return None
