"""The one message schema: every message that crosses a ZeroMQ socket is defined here.

Each message is a frozen, slotted dataclass with a class-level ``KIND``. Encoding and
decoding are generic over :func:`dataclasses.fields`, so a field can never be silently
dropped: decoding rejects missing fields, unknown fields and values of the wrong type with a
:class:`~streamasr.actors.errors.ProtocolError` that says what was wrong.

Wire format (ZeroMQ multipart): ``[topic, msgpack(body)]`` where ``body`` is a map holding
``"kind"`` plus one entry per field (a field may carry ``metadata={"wire": name}`` to use
another key, e.g. ``pass`` which is a Python keyword). PCM never travels in these messages
between local actors; the rings carry it.

Units are in the field names: ``*_s`` seconds, ``*_ns`` nanoseconds (``time.time_ns`` for
wall clock, ``time.monotonic_ns`` where named ``mono``), ``*_frame`` absolute frame indices.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, overload

import msgpack

from streamasr.actors.errors import ProtocolError
from streamasr.actors.typed import coerce

#: Largest encoded message any socket of ours accepts, in bytes (``zmq.MAXMSGSIZE``).
MAX_MESSAGE_BYTES = 1 << 20


# --------------------------------------------------------------------------- control plane
@dataclass(frozen=True, slots=True)
class Ready:
    """Actor -> supervisor: rings attached, model warm, ready to work."""

    KIND: ClassVar[str] = "ready"
    actor_id: str
    pid: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Actor -> supervisor, every ``heartbeat_interval_s`` from the actor's main loop.

    ``counters`` holds the actor's monotonically growing counters (rejected chunks by reason,
    decode errors, ...); ``gauges`` its current values (chunk_ms, queue depth, ...).
    """

    KIND: ClassVar[str] = "heartbeat"
    actor_id: str
    pid: int
    t_ns: int
    rss_bytes: int
    cpu_percent: float
    state: str
    counters: dict[str, int]
    gauges: dict[str, float]


@dataclass(frozen=True, slots=True)
class SetChunk:
    """Supervisor -> capture/feature: switch to ``chunk_ms`` at the next chunk boundary."""

    KIND: ClassVar[str] = "set_chunk"
    chunk_ms: int


@dataclass(frozen=True, slots=True)
class Start:
    """Supervisor -> capture: every downstream actor is Ready; begin capturing."""

    KIND: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True)
class Promote:
    """Supervisor -> a warm standby: take over (attach the rings, resume, report Ready)."""

    KIND: ClassVar[str] = "promote"


@dataclass(frozen=True, slots=True)
class Stop:
    """Supervisor -> actor: finish the current step and exit 0."""

    KIND: ClassVar[str] = "stop"
    reason: str


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """A stream's source ended at ``end_frame`` (exclusive, in the sender's output ring).

    Capture sends it when a file/stdin source is exhausted; each stage forwards it (through
    the supervisor) once it has processed every frame before ``end_frame``.
    """

    KIND: ClassVar[str] = "eos"
    actor_id: str
    stream_id: str
    end_frame: int


@dataclass(frozen=True, slots=True)
class Gap:
    """Capture -> supervisor: frames that could not be captured, as exact stream positions."""

    KIND: ClassVar[str] = "gap"
    stream_id: str
    start_frame: int
    end_frame: int
    reason: str


@dataclass(frozen=True, slots=True)
class ActorError:
    """Actor -> supervisor: a failure the actor reports before it exits (one line)."""

    KIND: ClassVar[str] = "actor_error"
    actor_id: str
    message: str


@dataclass(frozen=True, slots=True)
class RefineJob:
    """Inference -> supervisor -> refine: transcribe frames [start_frame, end_frame)."""

    KIND: ClassVar[str] = "refine_job"
    stream_id: str
    utterance_id: str
    start_frame: int
    end_frame: int
    sample_rate_hz: int
    t_endpoint_ns: int
    first_pass: Transcript
    #: The first pass cut a monologue in a pause here and the speech went on: the next
    #: utterance starts at ``end_frame`` (no margin past it, see ``Result.continued``).
    continued: bool = False


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """Inference -> supervisor -> refine: the utterance in progress has paused.

    Its speech stopped and the first pass has since seen ``pause_ms`` of non-speech, though
    not yet the whole endpoint silence. If no more speech comes, the utterance's final will
    span ring frames ``[start_frame, end_frame)``: the second pass may transcribe that span
    now and hold the result until the :class:`RefineJob` with the same span arrives.
    """

    KIND: ClassVar[str] = "speech_paused"
    stream_id: str
    utterance_id: str
    start_frame: int
    end_frame: int
    sample_rate_hz: int


@dataclass(frozen=True, slots=True)
class StreamAttach:
    """Supervisor -> inference/refine: start serving a stream opened at run time.

    ``ring``: the stream's PCM ring; ``reader``: the reader slot to claim; ``bell``: the
    doorbell endpoint to bind ("" for none); ``deadline``: see :class:`OpenStream`.
    """

    KIND: ClassVar[str] = "stream_attach"
    stream_id: str
    ring: str
    reader: int
    bell: str
    gate: str = ""
    deadline: bool = True


@dataclass(frozen=True, slots=True)
class StreamDetach:
    """Supervisor -> inference/refine: the stream has ended; release its ring."""

    KIND: ClassVar[str] = "stream_detach"
    stream_id: str


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Front door (gateway, wyoming) -> supervisor: create a stream fed with model-rate PCM.

    Answered with :class:`StreamOpened`, or :class:`StreamRefused` (limits, duplicate id).
    ``deadline``: False for a stream the front door paces by the ring's room alone (a whole
    file sent faster than real time): its accurate finals never fall back to the first pass
    and get the thorough decode, as a file read with ``--fast`` does (see
    ``supervisor.plan.has_deadline``); the front door must then wait for room, never
    overwrite.
    """

    KIND: ClassVar[str] = "open_stream"
    stream_id: str
    name: str
    gate: str = ""
    deadline: bool = True


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """Supervisor -> front door: write float32 mono PCM at ``sample_rate_hz`` into ``ring``
    and ring ``bell`` after each write; send :class:`EndOfStream` when the client is done."""

    KIND: ClassVar[str] = "stream_opened"
    stream_id: str
    ring: str
    bell: str
    sample_rate_hz: int


@dataclass(frozen=True, slots=True)
class StreamRefused:
    """Supervisor -> front door: :class:`OpenStream` refused (limit, duplicate id, ...)."""

    KIND: ClassVar[str] = "stream_refused"
    stream_id: str
    reason: str


# ----------------------------------------------------------------------------- clients
@dataclass(frozen=True, slots=True)
class StatusRequest:
    """Client -> supervisor: ask for the current status (answered with StatusReply)."""

    KIND: ClassVar[str] = "status_request"


@dataclass(frozen=True, slots=True)
class StatusReply:
    """Supervisor -> client: the status table as nested maps (see supervisor.status)."""

    KIND: ClassVar[str] = "status_reply"
    status: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StopRequest:
    """Client -> supervisor: stop the pipeline (``down``)."""

    KIND: ClassVar[str] = "stop_request"
    reason: str


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """Client -> supervisor: the finals published so far (late joiners)."""

    KIND: ClassVar[str] = "history_request"


@dataclass(frozen=True, slots=True)
class HistoryReply:
    """Supervisor -> client: the finals published so far, oldest first."""

    KIND: ClassVar[str] = "history_reply"
    finals: list[Transcript]


# ------------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class Transcript:
    """A partial or final result for one utterance of one stream.

    Attributes:
        stream_id: which stream.
        utterance_id: ``"<stream_id>:<start_frame>"`` — stream-position based, so a
            re-decoded utterance after a restart carries the same id.
        seq: per-stream sequence number assigned by the supervisor when published (gaps mean
            the subscriber missed events).
        is_final: final (endpoint reached) or partial.
        passno: 1 for the streaming first pass, 2 for the accurate second pass (wire: ``pass``).
        text: the words.
        start_s, end_s: stream seconds of the utterance.
        words: ``[word, start_s, end_s, conf]`` lists.
        latency_s: seconds from the capture of the newest sample covered to publication.
        stages_s: seconds spent per stage: ``feature`` (capture -> conditioned PCM written),
            ``queue`` (waiting for the inference loop: wake-up, reading), ``wait`` (waiting
            while the engine decoded other streams or finalised an utterance), ``inference``
            (the engine's own call); the second pass adds ``refine_queue`` and ``refine``.
        provisional: a first-pass final that an accurate (pass 2) final will replace.
        wake_id: the :class:`WakeDetected` event that opened this command ("" when the
            stream is not wake-gated).
        committed_words: in a partial, how many leading words of ``text`` (split on
            whitespace) later partials of the utterance repeat unchanged (the final may
            still differ); 0 in finals.
        second_pass_words: how many leading words of ``text`` come from the second pass
            (Whisper); the words after them are the first pass's. The supervisor's merged
            partial stream sets it (see ``streamasr.supervisor.merge``): in a ``pass = 2``
            partial the rest is the first pass's guess for audio Whisper has not heard yet;
            a provisional final can start with Whisper partials' words too.
        language: the language of ``text`` (ISO 639-1, e.g. ``en``; ``[refine] language``,
            or the one Whisper detected where it is ``auto``; with ``task = "translate"``
            the text is English and this is still the language spoken).
    """

    KIND: ClassVar[str] = "transcript"
    stream_id: str
    utterance_id: str
    seq: int
    is_final: bool
    passno: int = field(metadata={"wire": "pass"})
    text: str
    start_s: float
    end_s: float
    words: list[list[Any]]
    latency_s: float
    stages_s: dict[str, float]
    provisional: bool = False
    wake_id: str = ""
    committed_words: int = 0
    second_pass_words: int = 0
    language: str = ""


@dataclass(frozen=True, slots=True)
class WakeDetected:
    """Inference -> supervisor -> subscribers (``wake.<stream_id>.detected``): a wake phrase.

    Attributes:
        stream_id: which stream.
        wake_id: ``"<stream_id>:wake:<end_frame>"`` — stream-position based, so a detection
            repeated by a replacement process after a restart carries the same id.
        phrase: the configured phrase that fired.
        start_s, end_s: stream seconds of the phrase.
        detected_s: stream seconds of the audio the detector had seen when it fired
            (``detected_s - end_s`` is the detection delay in audio time).
        score: the engine's confidence (higher is surer; engine-specific scale).
        t_ns: wall clock of the detection, ns since the epoch.
    """

    KIND: ClassVar[str] = "wake_detected"
    stream_id: str
    wake_id: str
    phrase: str
    start_s: float
    end_s: float
    detected_s: float
    score: float
    t_ns: int


@dataclass(frozen=True, slots=True)
class WakeEnded:
    """Inference -> supervisor -> subscribers (``wake.<stream_id>.ended``): back to listening.

    ``reason``: ``final`` (the command's final was sent), ``timeout`` (no command within
    the configured time), ``limit`` (the command ran past its longest allowed length and was
    cut there) or ``end_of_stream``. ``end_s``: stream seconds where listening resumes.
    """

    KIND: ClassVar[str] = "wake_ended"
    stream_id: str
    wake_id: str
    reason: str
    end_s: float


@dataclass(frozen=True, slots=True)
class Intent:
    """Assistant -> supervisor -> subscribers (``intent.<stream_id>.recognized`` or
    ``intent.<stream_id>.unknown``): what a command final means.

    Attributes:
        stream_id, utterance_id, wake_id: the final it was read from ("" wake_id: a stream
            without wake gating).
        name: the intent ("" when unknown).
        slots: slot name -> value as text.
        text: the final's text.
        confidence: the recogniser's confidence in the words, 0..1.
        reason: why it is unknown (``no_match``, ``low_confidence``, ``empty``); "" if known.
        guess: the intent a low-confidence command matched ("" otherwise).
        t_ns: wall clock when it was recognised, ns since the epoch.
    """

    KIND: ClassVar[str] = "intent"
    stream_id: str
    utterance_id: str
    wake_id: str
    name: str
    slots: dict[str, str]
    text: str
    confidence: float
    reason: str
    guess: str
    t_ns: int


@dataclass(frozen=True, slots=True)
class ActionDone:
    """Assistant -> supervisor -> subscribers (``action.<stream_id>``): an intent's action ran.

    Attributes:
        stream_id, utterance_id: the command's final.
        intent: the intent name (``unknown`` for the unknown-intent action).
        action: ``command``, ``http`` or ``none`` (the event is the action).
        ok: it succeeded (exit status 0, HTTP 2xx).
        status: exit status or HTTP status; -1 when it did not finish (timeout, could not
            start, connection failed) or was refused (too many running).
        output: its stdout or response body, at most 4 KiB of text.
        error: one line saying what went wrong ("" if ok).
        duration_s: how long it ran, seconds.
    """

    KIND: ClassVar[str] = "action_done"
    stream_id: str
    utterance_id: str
    intent: str
    action: str
    ok: bool
    status: int
    output: str
    error: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class Reply:
    """Assistant -> supervisor -> subscribers (``reply.<stream_id>``): the spoken response.

    Attributes:
        stream_id, utterance_id: the command's final.
        text: what was said.
        audio_s: length of the synthesised audio, seconds (0 when nothing was played).
        where: the output device, or the WAV file written.
        error: one line when it could not be synthesised or played ("" if it was).
        t_ns: wall clock when playing ended, ns since the epoch.
    """

    KIND: ClassVar[str] = "reply"
    stream_id: str
    utterance_id: str
    text: str
    audio_s: float
    where: str
    error: str
    t_ns: int


@dataclass(frozen=True, slots=True)
class WakeMute:
    """Assistant -> supervisor -> the stream's inference worker: ignore wake detections on
    ``stream_id`` until ``until_ns`` (wall clock, ns since the epoch), so the assistant's own
    spoken reply, heard by the microphone, cannot wake it."""

    KIND: ClassVar[str] = "wake_mute"
    stream_id: str
    until_ns: int


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Supervisor -> subscribers: ``actor.<id>.<event>`` / ``supervisor.<event>`` notices."""

    KIND: ClassVar[str] = "lifecycle"
    topic: str
    fields: dict[str, Any]
    t_ns: int


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """Supervisor -> subscribers: every final of ``stream_id`` has been published."""

    KIND: ClassVar[str] = "stream_ended"
    stream_id: str
    end_s: float


MESSAGE_TYPES: tuple[type[Any], ...] = (
    Ready,
    Heartbeat,
    SetChunk,
    Start,
    Promote,
    Stop,
    EndOfStream,
    Gap,
    ActorError,
    RefineJob,
    SpeechPaused,
    StreamAttach,
    StreamDetach,
    OpenStream,
    StreamOpened,
    StreamRefused,
    StatusRequest,
    StatusReply,
    StopRequest,
    HistoryRequest,
    HistoryReply,
    Transcript,
    WakeDetected,
    WakeEnded,
    Intent,
    ActionDone,
    Reply,
    WakeMute,
    Lifecycle,
    StreamEnded,
)
_BY_KIND: dict[str, type[Any]] = {t.KIND: t for t in MESSAGE_TYPES}
_HINTS: dict[type[Any], dict[str, Any]] = {}

M = TypeVar("M")


def _wire_name(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("wire", f.name))


def to_dict(msg: Any) -> dict[str, Any]:
    """Return ``msg`` as a plain map (``kind`` plus wire-named fields), nested messages too."""
    out: dict[str, Any] = {"kind": msg.KIND}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        out[_wire_name(f)] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def encode(msg: Any) -> bytes:
    """Encode a schema message to msgpack bytes."""
    if type(msg) not in _HINTS and type(msg) not in _BY_KIND.values():
        raise ProtocolError(f"not a schema message: {type(msg).__name__}")
    packed: bytes = msgpack.packb(to_dict(msg), use_bin_type=True)
    return packed


@overload
def decode(data: bytes, expected: None = None) -> Any: ...
@overload
def decode(data: bytes, expected: type[M]) -> M: ...
def decode(data: bytes, expected: type[Any] | None = None) -> Any:
    """Decode msgpack bytes into a schema message.

    Raises:
        ProtocolError: bytes that are not msgpack, not a map, an unknown ``kind``, a missing
            or unknown field, a value of the wrong type, or a kind other than ``expected``.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"not msgpack: {exc}") from None
    return from_dict(body, expected)


@overload
def from_dict(body: Any, expected: None = None) -> Any: ...
@overload
def from_dict(body: Any, expected: type[M]) -> M: ...
def from_dict(body: Any, expected: type[Any] | None = None) -> Any:
    """Build a schema message from a decoded map (see :func:`decode`)."""
    if not isinstance(body, dict):
        raise ProtocolError(f"message is a {type(body).__name__}, not a map")
    kind = body.get("kind")
    cls = _BY_KIND.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message kind {kind!r}")
    if expected is not None and cls is not expected:
        raise ProtocolError(f"expected {expected.KIND!r}, got {kind!r}")  # type: ignore[attr-defined]
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    known = {_wire_name(f) for f in fields} | {"kind"}
    unknown = sorted(str(k) for k in body if k not in known)
    if unknown:
        raise ProtocolError(f"{kind}: unknown field(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for f in fields:
        wire = _wire_name(f)
        if wire not in body:
            raise ProtocolError(f"{kind}: missing field {wire!r}")
        kwargs[f.name] = coerce(hints[f.name], body[wire], f"{kind}.{wire}", ProtocolError, _nested)
    return cls(**kwargs)


def _nested(cls: type[Any], value: Any, where: str) -> Any:
    """A message inside a message (``StatusReply``'s transcripts): decoded by kind."""
    if cls not in _BY_KIND.values():
        raise ProtocolError(f"{where}: expected {cls.__name__}, got {type(value).__name__}")
    return from_dict(value, cls)


def pack(topic: str, msg: Any) -> list[bytes]:
    """Return the multipart frames ``[topic, msgpack(msg)]``."""
    return [topic.encode(), encode(msg)]


@overload
def unpack(frames: list[bytes], expected: None = None) -> tuple[str, Any]: ...
@overload
def unpack(frames: list[bytes], expected: type[M]) -> tuple[str, M]: ...
def unpack(frames: list[bytes], expected: type[Any] | None = None) -> tuple[str, Any]:
    """Split and decode ``[topic, body]`` frames; ProtocolError on any other shape."""
    if len(frames) != 2:
        raise ProtocolError(f"expected 2 frames [topic, body], got {len(frames)}")
    try:
        topic = frames[0].decode()
    except UnicodeDecodeError:
        raise ProtocolError("topic is not UTF-8") from None
    return topic, decode(frames[1], expected)


def transcript_json(t: Transcript) -> dict[str, Any]:
    """The JSON object ``up --json`` and ``tail --json`` print for one transcript."""
    body = to_dict(t)
    body["kind"] = "final" if t.is_final else "partial"
    return body


def assistant_topic(msg: Intent | ActionDone | Reply) -> str:
    """The topic the supervisor publishes an assistant event on: ``intent.<stream>.recognized``
    or ``intent.<stream>.unknown``, ``action.<stream>``, ``reply.<stream>``."""
    if isinstance(msg, Intent):
        return f"intent.{msg.stream_id}.{'recognized' if msg.name else 'unknown'}"
    if isinstance(msg, ActionDone):
        return f"action.{msg.stream_id}"
    return f"reply.{msg.stream_id}"
