"""Sans-I/O state machines of the WebSocket gateway's three protocols.

Each session turns client messages into :data:`Action` lists (open the stream, write audio,
reply now, finish) and run-time events (``transcript.<sid>``, ``stream.<sid>.ended``) into
the text messages to send. The gateway executes the actions in order; no socket is needed
to test a session.

* :class:`VoskSession` — Vosk-server compatible (path ``/``): ``{"config": {"sample_rate":
  N}}`` (no reply), binary 16-bit little-endian PCM (exactly one reply each: the oldest
  final not yet sent, else the current ``{"partial": ...}``), ``{"eof": 1}`` (every final
  left, at least one ``{"text": ...}`` reply, then close).
* :class:`ClassicSession` — the classic JSON protocol (path ``/``, chosen when the first
  message has a ``"type"``): ``{"type": "audio", "audio": <hex float32>, "is_final": b}``
  (one ``{"type": "transcription", ...}`` reply each) and ``{"type": "end"}``.
* :class:`NativeSession` — path ``/v1/stream``: a JSON start message, binary PCM
  (``s16le``/``f32le``), ``{"type": "end"}``; every event is forwarded as JSON, plus
  ``{"type": "advice", "chunk_ms": N}`` from a :class:`ChunkAdvisor`.

Errors raise :class:`GatewayProtocolError` carrying the WebSocket close code: 1003
(unsupported data: wrong frame type or sample format), 1007 (invalid payload: bad JSON,
hex, PCM length, values), 1008 (policy: messages out of order).
"""

from __future__ import annotations

import binascii
import json
import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from streamasr.actors import messages as m
from streamasr.actors.errors import ProtocolError

CLOSE_UNSUPPORTED: Final = 1003
CLOSE_INVALID: Final = 1007
CLOSE_POLICY: Final = 1008
CLOSE_TRY_AGAIN: Final = 1013
#: Accepted client sample rates, Hz.
MIN_RATE_HZ: Final = 8000
MAX_RATE_HZ: Final = 192000
MAX_CHANNELS: Final = 8
FORMATS: Final[dict[str, np.dtype[Any]]] = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}


class GatewayProtocolError(ProtocolError):
    """A client message the protocol does not allow; ``close_code`` ends the connection."""

    def __init__(self, message: str, close_code: int) -> None:
        """``message`` goes to the client; ``close_code`` is the WebSocket close code."""
        super().__init__(message)
        self.close_code = close_code


@dataclass(frozen=True, slots=True)
class Open:
    """Open the run-time stream: client audio at ``sample_rate_hz`` with ``channels``."""

    sample_rate_hz: int
    channels: int
    name: str


@dataclass(frozen=True, slots=True)
class Write:
    """Write ``frames`` (float32 ``(n, channels)`` at the client rate), waiting for room."""

    frames: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Reply:
    """Send :meth:`Session.reply` now (after the writes before it)."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``text`` now."""

    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    """End the stream; stop reading; send :meth:`Session.on_ended` once it has ended."""


Action = Open | Write | Reply | Send | Finish


def error_message(message: str, code: int) -> str:
    """The JSON error every protocol sends before closing with ``code``."""
    return json.dumps({"type": "error", "code": code, "message": message})


def _json(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, an integer past 4300 digits
        raise GatewayProtocolError("malformed JSON message", CLOSE_INVALID) from None
    if not isinstance(obj, dict):
        raise GatewayProtocolError("a JSON message must be an object", CLOSE_INVALID)
    return obj


def _rate(value: Any) -> int:
    """A JSON ``sample_rate`` (Hz): an integer, or a float with no fraction, in range.

    Compared without converting first: an integer of 400 digits does not fit a float."""
    whole = type(value) is int or (
        type(value) is float and math.isfinite(value) and value.is_integer()
    )
    if not whole or not MIN_RATE_HZ <= value <= MAX_RATE_HZ:
        raise GatewayProtocolError(
            f"sample_rate must be an integer in {MIN_RATE_HZ}..{MAX_RATE_HZ} Hz", CLOSE_INVALID
        )
    return int(value)


def decode_pcm(data: bytes, fmt: str, channels: int) -> NDArray[np.float32]:
    """PCM bytes (``s16le``/``f32le``, interleaved) to float32 ``(n, channels)`` in [-1, 1].

    Raises:
        GatewayProtocolError: 1007 if the length is not a whole number of frames.
    """
    dt = FORMATS[fmt]
    frame_bytes = dt.itemsize * channels
    if len(data) % frame_bytes:
        raise GatewayProtocolError(
            f"PCM message of {len(data)} bytes is not a whole number of "
            f"{frame_bytes}-byte frames ({fmt}, {channels} ch)",
            CLOSE_INVALID,
        )
    raw = np.frombuffer(data, dtype=dt)
    out: NDArray[np.float32] = raw.astype(np.float32)
    if fmt == "s16le":
        out /= np.float32(32768.0)
    return out.reshape(-1, channels)


class TranscriptBook:
    """Finals not yet sent and the current partial (Vosk and classic reply-per-message).

    Only final finals count (``provisional`` ones are replaced by the accurate pass); empty
    finals (noise, retractions) are not sent.
    """

    def __init__(self) -> None:
        """Start with no finals and an empty partial."""
        self.unsent: deque[m.Transcript] = deque()
        self.partial = ""

    def add(self, t: m.Transcript) -> None:
        """Record a transcript event."""
        if not t.is_final:
            self.partial = t.text
            return
        self.partial = ""
        if not t.provisional and t.text.strip():
            self.unsent.append(t)


class Session:
    """Base of the three protocol state machines."""

    def __init__(self) -> None:
        """A session that has not opened its stream."""
        self.opened = False
        self.finished = False

    def on_text(self, text: str) -> list[Action]:
        """Actions for a text message."""
        raise GatewayProtocolError("text messages are not accepted here", CLOSE_UNSUPPORTED)

    def on_binary(self, data: bytes) -> list[Action]:
        """Actions for a binary message."""
        raise GatewayProtocolError("binary messages are not accepted here", CLOSE_UNSUPPORTED)

    def on_event(self, topic: str, msg: Any) -> list[str]:
        """Messages to send now for a run-time event of this stream."""
        return []

    def reply(self) -> str:
        """The reply owed to the last audio message."""
        raise NotImplementedError

    def on_ended(self) -> list[str]:
        """The last messages, once the stream has ended."""
        return []


class _ReplySession(Session):
    """What the Vosk and classic protocols share: mono audio at ``rate_hz``, one reply per
    audio message (the oldest unsent final, else the current partial), and the finals left
    at the end. Subclasses format the two kinds of reply."""

    def __init__(self, default_rate_hz: int = 16000, name: str = "") -> None:
        """Mono audio at ``default_rate_hz`` (Hz) unless the client says otherwise."""
        super().__init__()
        self.rate_hz = default_rate_hz
        self.name = name
        self.book = TranscriptBook()

    def _audio(self, frames: NDArray[np.float32]) -> list[Action]:
        """Open the stream on the first audio, write ``frames``, owe a reply."""
        acts: list[Action] = []
        if not self.opened:
            self.opened = True
            acts.append(Open(self.rate_hz, 1, self.name))
        if len(frames):
            acts.append(Write(frames))
        acts.append(Reply())
        return acts

    def on_event(self, topic: str, msg: Any) -> list[str]:
        """Keep transcripts for the replies."""
        if isinstance(msg, m.Transcript):
            self.book.add(msg)
        return []

    def _final(self, t: m.Transcript) -> str:
        raise NotImplementedError

    def _partial(self, text: str) -> str:
        raise NotImplementedError

    def reply(self) -> str:
        """The oldest unsent final, else the current partial."""
        if self.book.unsent:
            return self._final(self.book.unsent.popleft())
        return self._partial(self.book.partial)

    def on_ended(self) -> list[str]:
        """Every final not yet sent."""
        out = [self._final(t) for t in self.book.unsent]
        self.book.unsent.clear()
        return out


class VoskSession(_ReplySession):
    """Vosk-server compatible protocol (see module docstring): 16-bit mono audio at
    ``default_rate_hz`` unless a config message says otherwise."""

    def on_text(self, text: str) -> list[Action]:
        """``{"config": {...}}`` (before audio) or ``{"eof": 1}``."""
        obj = _json(text)
        if "eof" in obj:
            self.finished = True
            return [Finish()]
        if "config" in obj:
            if self.opened:
                raise GatewayProtocolError("config after audio", CLOSE_POLICY)
            cfg = obj["config"]
            if not isinstance(cfg, dict):
                raise GatewayProtocolError("config must be an object", CLOSE_INVALID)
            if "sample_rate" in cfg:
                self.rate_hz = _rate(cfg["sample_rate"])
            return []
        raise GatewayProtocolError("expected a config or eof message", CLOSE_POLICY)

    def on_binary(self, data: bytes) -> list[Action]:
        """16-bit PCM: write it, then reply."""
        return self._audio(decode_pcm(data, "s16le", 1))

    @staticmethod
    def result(t: m.Transcript) -> str:
        """A Vosk ``result`` message for final ``t``."""
        words = [
            {"conf": float(w[3]), "end": float(w[2]), "start": float(w[1]), "word": str(w[0])}
            for w in t.words
        ]
        return json.dumps({"result": words, "text": t.text})

    def _final(self, t: m.Transcript) -> str:
        return self.result(t)

    def _partial(self, text: str) -> str:
        return json.dumps({"partial": text})

    def on_ended(self) -> list[str]:
        """Every final left (or one empty result, as Vosk's ``FinalResult``)."""
        return super().on_ended() or [json.dumps({"text": ""})]


class ClassicSession(_ReplySession):
    """The classic JSON protocol (see module docstring): float32 mono audio at
    ``default_rate_hz`` unless an audio message gives ``sample_rate``."""

    def on_text(self, text: str) -> list[Action]:
        """``audio`` or ``end`` messages."""
        obj = _json(text)
        kind = obj.get("type")
        if kind == "end":
            self.finished = True
            return [Finish()]
        if kind != "audio":
            raise GatewayProtocolError(f"unknown message type {str(kind)[:40]!r}", CLOSE_POLICY)
        audio = obj.get("audio")
        if not isinstance(audio, str):
            raise GatewayProtocolError("audio must be a hex string", CLOSE_INVALID)
        try:
            raw = binascii.unhexlify(audio)
        except (binascii.Error, ValueError):
            raise GatewayProtocolError("audio is not valid hex", CLOSE_INVALID) from None
        frames = decode_pcm(raw, "f32le", 1)
        if "sample_rate" in obj:
            if not self.opened:
                self.rate_hz = _rate(obj["sample_rate"])
            elif _rate(obj["sample_rate"]) != self.rate_hz:
                raise GatewayProtocolError("sample_rate changed mid-stream", CLOSE_POLICY)
        return self._audio(frames)

    @staticmethod
    def transcription(text: str, t: m.Transcript | None) -> str:
        """A ``transcription`` message (a final when ``t`` is given)."""
        obj: dict[str, Any] = {"type": "transcription", "text": text, "is_final": t is not None}
        if t is not None:
            obj.update(utterance_id=t.utterance_id, start_s=t.start_s, end_s=t.end_s)
        return json.dumps(obj)

    def _final(self, t: m.Transcript) -> str:
        return self.transcription(t.text, t)

    def _partial(self, text: str) -> str:
        return self.transcription(text, None)


def transcript_json(t: m.Transcript) -> str:
    """A transcript as the native protocol's ``partial``/``final`` message."""
    return json.dumps(
        {
            "type": "final" if t.is_final else "partial",
            "utterance_id": t.utterance_id,
            "seq": t.seq,
            "text": t.text,
            "start_s": t.start_s,
            "end_s": t.end_s,
            "words": t.words,
            "latency_s": t.latency_s,
            "pass": t.passno,
            "provisional": t.provisional,
        }
    )


class NativeSession(Session):
    """The native protocol at ``/v1/stream`` (see module docstring)."""

    def __init__(self, advisor: ChunkAdvisor | None = None) -> None:
        """``advisor`` (optional) turns message arrivals into chunk-size advice."""
        super().__init__()
        self.format = "s16le"
        self.channels = 1
        self.rate_hz = 16000
        self.advisor = advisor

    def on_text(self, text: str) -> list[Action]:
        """The start message (first) or ``{"type": "end"}``."""
        obj = _json(text)
        kind = obj.get("type", "start")
        if kind == "end":
            if not self.opened:
                raise GatewayProtocolError("end before start", CLOSE_POLICY)
            self.finished = True
            return [Finish()]
        if kind != "start":
            raise GatewayProtocolError(f"unknown message type {str(kind)[:40]!r}", CLOSE_POLICY)
        if self.opened:
            raise GatewayProtocolError("start sent twice", CLOSE_POLICY)
        fmt = obj.get("format", "s16le")
        if not isinstance(fmt, str):
            raise GatewayProtocolError("format must be a string: s16le or f32le", CLOSE_INVALID)
        if fmt not in FORMATS:
            raise GatewayProtocolError(
                f"unsupported format {str(fmt)[:20]!r} (s16le or f32le)", CLOSE_UNSUPPORTED
            )
        channels = obj.get("channels", 1)
        if isinstance(channels, bool) or not isinstance(channels, int):
            raise GatewayProtocolError("channels must be an integer", CLOSE_INVALID)
        if not 1 <= channels <= MAX_CHANNELS:
            raise GatewayProtocolError(f"channels must be in 1..{MAX_CHANNELS}", CLOSE_INVALID)
        name = obj.get("name", "")
        if not isinstance(name, str) or len(name) > 200:
            raise GatewayProtocolError("name must be a string of <= 200 chars", CLOSE_INVALID)
        self.format, self.channels = str(fmt), channels
        self.rate_hz = _rate(obj.get("sample_rate", 16000))
        self.opened = True
        acts: list[Action] = [Open(self.rate_hz, channels, name)]
        if self.advisor is not None:
            acts.append(Send(advice_json(self.advisor.chunk_ms)))
        return acts

    def on_binary(self, data: bytes) -> list[Action]:
        """PCM in the announced format."""
        if not self.opened:
            raise GatewayProtocolError("audio before the start message", CLOSE_POLICY)
        frames = decode_pcm(data, self.format, self.channels)
        return [Write(frames)] if len(frames) else []

    def observe(self, t_s: float, frames: int) -> list[Action]:
        """Record the arrival of ``frames`` frames at monotonic ``t_s``; maybe advise."""
        if self.advisor is None or not frames:
            return []
        advice = self.advisor.observe(t_s, frames / self.rate_hz)
        return [] if advice is None else [Send(advice_json(advice))]

    def on_event(self, topic: str, msg: Any) -> list[str]:
        """Every transcript, as it comes."""
        return [transcript_json(msg)] if isinstance(msg, m.Transcript) else []

    def on_ended(self) -> list[str]:
        """The closing ``end`` message."""
        return [json.dumps({"type": "end"})]


def advice_json(chunk_ms: int) -> str:
    """The native ``advice`` message."""
    return json.dumps({"type": "advice", "chunk_ms": chunk_ms})


def choose_root_session(first: str | bytes, default_rate_hz: int = 16000) -> Session:
    """The protocol of a ``/`` connection, decided by its first message.

    A JSON object with a ``"type"`` is the classic protocol; anything else (binary audio,
    ``config``, ``eof``, even garbage, which then fails in the Vosk session) is Vosk.
    """
    if isinstance(first, str):
        try:
            obj = json.loads(first)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and "type" in obj:
            return ClassicSession(default_rate_hz)
    return VoskSession(default_rate_hz)


class ChunkAdvisor:
    """Network-aware chunk size: advice from a connection's arrival jitter and backlog.

    Jitter is the spread of inter-arrival deviations ``(t_i - t_{i-1}) - d_{i-1}`` (seconds
    between messages minus the audio seconds the previous one carried) about their median,
    over the last ``window`` messages: its 95th percentile. A jittery link gets larger
    chunks (fewer, fuller messages ride out the bursts: ``2 x jitter``); a link whose
    messages wait for ring room (``backlog_s``, reported by the gateway) too. Advice is
    clamped to ``min_ms..max_ms``, rounded to 10 ms, and re-sent only when it moves by at
    least ``step_ms`` and ``hold_s`` after the previous one.
    """

    def __init__(
        self,
        initial_ms: int = 100,
        min_ms: int = 50,
        max_ms: int = 200,
        window: int = 50,
        step_ms: int = 20,
        hold_s: float = 1.0,
    ) -> None:
        """Start at ``initial_ms`` (clamped)."""
        self.min_ms, self.max_ms, self.step_ms, self.hold_s = min_ms, max_ms, step_ms, hold_s
        self.chunk_ms = self._clamp(initial_ms)
        self.devs: deque[float] = deque(maxlen=window)
        self.backlog_s = 0.0
        self._last: tuple[float, float] | None = None
        self._last_advice_s = -math.inf

    def _clamp(self, ms: float) -> int:
        return int(min(self.max_ms, max(self.min_ms, round(ms / 10.0) * 10)))

    def jitter_s(self) -> float:
        """95th percentile of the absolute deviation from the median inter-arrival error."""
        if len(self.devs) < 5:
            return 0.0
        a = np.asarray(self.devs)
        return float(np.percentile(np.abs(a - np.median(a)), 95))

    def observe(self, t_s: float, audio_s: float) -> int | None:
        """A message carrying ``audio_s`` seconds arrived at ``t_s``; new advice or None."""
        if self._last is not None:
            t0, d0 = self._last
            self.devs.append((t_s - t0) - d0)
        self._last = (t_s, audio_s)
        want = self._clamp(max(2e3 * self.jitter_s(), 0.5e3 * self.backlog_s, self.min_ms))
        if abs(want - self.chunk_ms) < self.step_ms or t_s - self._last_advice_s < self.hold_s:
            return None
        self.chunk_ms, self._last_advice_s = want, t_s
        return want
