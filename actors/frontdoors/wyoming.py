"""The Wyoming server: speech-to-text for Home Assistant over the Wyoming protocol (TCP).

Each connection is served by a :class:`WyomingHandler` (``wyoming.server.AsyncEventHandler``)
on one asyncio loop. The events it understands:

* ``describe`` -> ``info``: one ASR program (``streamasr``, language ``en``, models
  ``pocketsphinx`` and ``whisper-base``, ``supports_transcript_streaming``) and one wake
  program, one model per ``[wake]`` phrase, named as Home Assistant knows them
  (:mod:`.wyoming_info`: ``microWakeWord`` / ``okay_nabu`` for the default engine).
* ``detect`` (optional ``names``: models by name, ``okay_nabu``; ``Okay Nabu`` and
  ``okay nabu`` are accepted too), ``audio-start``, ``audio-chunk``..., ``audio-stop`` -> a
  run-time stream in wake-detection mode: ``detection`` (``name`` = the model's name,
  ``timestamp`` = ms of stream time where it ended) as soon as a phrase is found, and again
  for every later one in the same session (the engine's ``refractory_ms`` keeps one phrase
  from firing twice); after ``audio-stop``, ``not-detected`` if none was. A ``detect`` that
  names only models this server does not detect gets ``error`` (code ``bad-request``,
  listing the served ones; counted in ``unknown_wake_models``) rather than a session that
  could never fire; names among several that are not served are dropped.
* ``ping`` -> ``pong``.
* ``transcribe`` (optional; ``language`` ``en``, ``en-US`` ... or none: any other is answered
  with ``error``, code ``bad-request``, rather than English text labelled as that
  language), ``audio-start``, ``audio-chunk``..., ``audio-stop`` -> a
  run-time stream opened through :class:`~streamasr.actors.frontdoors.base.FrontDoor` (supervised
  and loss-accounted like any other stream), then ``transcript-start`` at once,
  ``transcript-chunk`` events while the audio is still coming, and after ``audio-stop``
  (once the supervisor reports ``stream.<id>.ended``) the ``transcript`` with the whole
  text and ``transcript-stop``. That order is the one the Wyoming reference servers use.
  A client joins the chunk texts as they come (each chunk after the first starts with a
  space), so a chunk carries only words that will not change (:mod:`.wyoming_chunks`): the
  words an utterance's partials have *committed* (agreed by two Whisper runs) as soon as
  they are, and the rest of each final as it comes.
  The ``transcript`` carries the finals' text (with accurate finals, Whisper's): the same
  words as the chunks, except where a final rewrote a committed word already sent (chunks
  cannot be retracted; the transcript, which the client acts on, has the final's word).

Audio may come at any rate, sample width (1 = unsigned 8-bit, 2, 3, 4 = signed
little-endian) and channel count; it is converted to float32 ``(frames, channels)`` and
handed to the stream's conditioner. Backpressure: a chunk waits (and with it the client,
through TCP) until the stream's ring has room; past ``BACKPRESSURE_TIMEOUT_S`` it is
written anyway and the ring counts the loss.

A malformed event or an out-of-order one gets an ``error`` event and closes that connection
only (its stream is ended); every other connection carries on. Bounds: at most ``[wyoming]
max_streams`` streams at once (an ``audio-start`` past it is answered ``error`` code
``busy``, counter ``refused``; the supervisor gives each front door its own share, so idle
Wyoming clients never take the gateway's streams), and a connection that sends no whole
event for ``idle_timeout_s`` is answered ``error`` code ``timeout`` and closed, its stream
ended and released (counter ``idle_timeouts``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.wake import Detect, Detection, NotDetected

from streamasr.actors import messages as m
from streamasr.actors.errors import AudioFormatError, ConfigError, StreamAsrError
from streamasr.actors.frontdoors.base import FrontDoor, PcmStream, StreamRefused
from streamasr.actors.frontdoors.ports import port_in_use_message
from streamasr.actors.frontdoors.wyoming_audio import check_format, pcm_to_float
from streamasr.actors.frontdoors.wyoming_chunks import ChunkComposer
from streamasr.actors.frontdoors.wyoming_info import (
    LANGUAGES,
    build_info,
    name_key,
    package_version,
    served_languages,
    wake_name,
)
from streamasr.actors.frontdoors.wyoming_read import EventTooLarge, MalformedEvent, read_event
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import RefineConfig, WyomingConfig
from streamasr.actors.spec import ActorSpec
from streamasr.actors.wake.settings import WakeConfig

log = logging.getLogger(__name__)

#: Seconds a chunk waits for ring room before it is written anyway (the ring counts the loss).
BACKPRESSURE_TIMEOUT_S = 10.0
#: Seconds ``audio-start`` waits for every other actor of the pipeline to be running.
READY_TIMEOUT_S = 120.0
#: Seconds to wait for ``stream.<id>.ended`` after ``audio-stop``, on top of the audio length.
END_TIMEOUT_S = 60.0
#: Largest piece (input frames) handed to the conditioner at once: 0.25 s at 48 kHz.
MAX_PIECE_FRAMES = 12000
#: Counters reported from the start (0 until something happens), in status and ``/metrics``.
COUNTERS = (
    "connections", "transcriptions", "detect_sessions", "detections", "client_errors",
    "unknown_wake_models",
    "refused", "idle_timeouts", "oversized_events", "malformed_events", "abandoned_streams",
    "backpressure_waits",
)  # fmt: skip


class ClientError(StreamAsrError):
    """A Wyoming client sent something malformed or out of order (the text says what)."""


@dataclass(frozen=True, slots=True)
class WyomingOptions:
    """What the Wyoming server reads of the config: ``[wyoming]`` itself, and of the others.

    Attributes:
        server: ``[wyoming]`` (listen address, port, concurrent transcriptions).
        finals: ``[refine] finals``: ``accurate`` (Whisper pass 2) or ``fast`` (first pass).
        engine: ``[wake] engine``: names the wake program and its models.
        phrases: ``[wake] phrases`` (the engine's defaults if empty): what ``detect``
            sessions listen for.
        language: ``[refine] language``: the one language transcribed.
    """

    server: WyomingConfig = field(default_factory=WyomingConfig)
    finals: str = "accurate"
    engine: str = "micro"
    phrases: tuple[str, ...] = ()
    language: str = "en"

    @classmethod
    def from_spec(cls, spec: ActorSpec) -> WyomingOptions:
        """Read from the actor spec's ``wyoming``, ``refine`` and ``wake`` sections."""
        wake = spec.section("wake", WakeConfig)
        refine = spec.section("refine", RefineConfig)
        return cls(
            spec.section("wyoming", WyomingConfig),
            refine.finals,
            wake.engine,
            wake.wake_phrases(),
            refine.language,
        )


class StreamLimit(ClientError):
    """A client asked for a stream while the server holds ``[wyoming] max_streams``."""


class IdleTimeout(ClientError):
    """A client sent nothing for ``[wyoming] idle_timeout_s``."""


@dataclass
class _Shared:
    """What every connection of one server shares.

    Attributes:
        server: ``[wyoming]`` (``max_streams``, ``idle_timeout_s``).
        live: ids of the streams this server holds (reserved from before ``open_stream``
            until the job is finished), never more than ``server.max_streams``.
    """

    rt: ActorRuntime
    door: FrontDoor
    info: Event
    server: WyomingConfig = field(default_factory=WyomingConfig)
    engine: str = "micro"
    served: tuple[str, ...] = ()  # the wake model names ``detect`` may ask for
    language: str = "en"  # the one language transcribed (``[refine] language``)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    handlers: set[WyomingHandler] = field(default_factory=set)
    live: set[str] = field(default_factory=set)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to heartbeat counter ``name``."""
        self.rt.counters[name] = self.rt.counters.get(name, 0) + n

    def reserve(self) -> str:
        """A new stream id, counted against ``max_streams`` at once (before any await, so
        concurrent ``audio-start`` events cannot overshoot).

        Raises:
            StreamLimit: the server already holds ``max_streams`` streams.
        """
        if len(self.live) >= self.server.max_streams:
            raise StreamLimit(f"stream limit reached ({self.server.max_streams})")
        sid = f"wy{os.getpid()}-{next(self.ids)}"
        self.live.add(sid)
        self.rt.gauges["live_streams"] = float(len(self.live))
        return sid

    def release(self, sid: str) -> None:
        """Give a stream's slot back (idempotent)."""
        self.live.discard(sid)
        self.rt.gauges["live_streams"] = float(len(self.live))


@dataclass
class _Job:
    """One transcription in progress on a connection."""

    stream: PcmStream
    rate_hz: int
    width: int
    channels: int
    chunks: ChunkComposer = field(default_factory=ChunkComposer)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    forwarder: asyncio.Task[None] | None = None
    frames_in: int = 0
    detect: list[str] | None = None  # wake detection session: name_key()s asked for ([] = any)
    detected: int = 0  # detections sent in this session


class WyomingHandler(AsyncEventHandler):
    """Serves one Wyoming connection (one transcription at a time)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, shared: _Shared
    ) -> None:
        """Register with the server's shared state."""
        super().__init__(reader, writer)
        self.shared = shared
        self.job: _Job | None = None
        self.language = served_language(None, shared.language)
        self.detect: list[str] | None = None  # set by ``detect`` for the next audio
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "client"
        shared.handlers.add(self)
        shared.count("connections")

    async def run(self) -> None:
        """Serve until the client leaves; a broken connection never escapes this task.

        Events are read with :func:`.wyoming_read.read_event` (sizes checked before reading:
        the ``wyoming`` package's reader holds whatever length a client declares); an
        oversized event is answered with an ``error`` event and ends the connection, and so
        do a malformed one (code ``bad-request``) and ``idle_timeout_s`` seconds without a
        whole event (code ``timeout``)."""
        try:
            while True:
                event = await self._next_event()
                if event is None or not await self.handle_event(event):
                    break
        except EventTooLarge as exc:
            self.shared.count("client_errors")
            self.shared.count("oversized_events")
            log.warning("wyoming %s: %s; connection closed", self.peer, exc)
            await self._say_error(str(exc), "too-large")
        except IdleTimeout as exc:
            self.shared.count("idle_timeouts")
            log.info("wyoming %s: %s; connection closed", self.peer, exc)
            await self._say_error(str(exc), "timeout")
        except MalformedEvent as exc:
            self.shared.count("client_errors")
            self.shared.count("malformed_events")
            log.info("wyoming %s: %s; connection closed", self.peer, exc)
            await self._say_error(str(exc), "bad-request")
        except (OSError, ValueError, KeyError, TypeError, asyncio.IncompleteReadError) as exc:
            self.shared.count("client_errors")
            log.info("wyoming %s: connection dropped: %s", self.peer, exc)
        finally:
            await self.disconnect()
            self.writer.close()
            self.shared.handlers.discard(self)

    async def _next_event(self) -> Event | None:
        """The client's next event (None at its end), within ``idle_timeout_s``.

        Raises:
            IdleTimeout: no whole event arrived in time.
        """
        timeout_s = self.shared.server.idle_timeout_s
        try:
            return await asyncio.wait_for(read_event(self.reader), timeout_s)
        except TimeoutError:
            raise IdleTimeout(f"idle for {timeout_s:g} s") from None

    async def _say_error(self, text: str, code: str) -> None:
        """Send an ``error`` event, if the connection still takes one."""
        with contextlib.suppress(OSError, RuntimeError):
            await self.write_event(Error(text=text, code=code).event())

    async def handle_event(self, event: Event) -> bool:
        """Dispatch one event; on a client error answer ``error`` and close this connection."""
        try:
            return await self._dispatch(event)
        except (ClientError, AudioFormatError, StreamRefused, KeyError, TypeError) as exc:
            busy = isinstance(exc, (StreamRefused, StreamLimit))
            code = "busy" if busy else "bad-request"
            self.shared.count("refused" if busy else "client_errors")
            log.info("wyoming %s: %s (%s)", self.peer, exc, event.type)
            with contextlib.suppress(OSError):
                await self.write_event(Error(text=_one_line(exc), code=code).event())
            return False

    async def _dispatch(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self.shared.info)
        elif Ping.is_type(event.type):
            await self.write_event(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(event.type):
            if self.job is not None:
                raise ClientError("transcribe while audio is streaming")
            asked = Transcribe.from_event(event).language
            self.language = served_language(asked, self.shared.language)
            self.detect = None
        elif Detect.is_type(event.type):
            if self.job is not None:
                raise ClientError("detect while audio is streaming")
            self.detect = self._served(Detect.from_event(event).names or [])
        elif AudioStart.is_type(event.type):
            await self._start(AudioStart.from_event(event))
        elif AudioChunk.is_type(event.type):
            await self._chunk(AudioChunk.from_event(event))
        elif AudioStop.is_type(event.type):
            await self._stop()
        else:
            self.shared.count("ignored_events")
            log.debug("wyoming %s: ignored %s", self.peer, event.type)
        return True

    def _served(self, names: list[str]) -> list[str]:
        """The :func:`name_key` of each of ``names`` this server detects ([] for none asked:
        any); the others are logged and dropped.

        Raises:
            ClientError: none of ``names`` is served (the session could never detect).
        """
        served = {name_key(n) for n in self.shared.served}
        keys = [name_key(n) for n in names]
        unknown = [n for n, k in zip(names, keys, strict=True) if k not in served]
        if unknown and len(unknown) == len(names):
            self.shared.count("unknown_wake_models")
            offer = ", ".join(self.shared.served) or "none ([wake] is not configured)"
            asked = ", ".join(unknown)
            raise ClientError(f"wake model {asked} is not served here; served: {offer}")
        if unknown:
            log.info("wyoming %s: detect: ignoring models not served: %s", self.peer, unknown)
        return [k for k in keys if k in served]

    async def _start(self, start: AudioStart) -> None:
        if self.job is not None:
            raise ClientError("audio-start while audio is already streaming")
        check_format(start.rate, start.width, start.channels)
        sid = self.shared.reserve()
        detect, self.detect = self.detect, None
        try:
            await self._pipeline_ready()
            stream = await self.shared.door.open_stream(
                sid,
                f"wyoming {self.peer}",
                start.rate,
                start.channels,
                gate="detect" if detect is not None else "",
            )
        except BaseException:
            self.shared.release(sid)
            raise
        self.job = _Job(stream, start.rate, start.width, start.channels, detect=detect)
        self.job.forwarder = asyncio.get_running_loop().create_task(self._forward(self.job))
        if detect is None:
            await self.write_event(TranscriptStart(language=self.language).event())

    async def _pipeline_ready(self) -> None:
        """Wait until the status map shows every other actor running.

        A stream opened earlier would be written before the first pass has attached to its
        ring, and the audio would be overwritten unread.
        """
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not pipeline_running(self.shared.door.status, self.shared.rt.spec.actor_id):
            if time.monotonic() > deadline:
                raise ClientError(f"the pipeline is not running after {READY_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)

    async def _chunk(self, chunk: AudioChunk) -> None:
        job = self.job
        if job is None:
            raise ClientError("audio-chunk before audio-start")
        if (chunk.rate, chunk.width, chunk.channels) != (job.rate_hz, job.width, job.channels):
            raise ClientError(
                f"audio-chunk format {chunk.rate} Hz/{chunk.width} B/{chunk.channels} ch "
                f"differs from audio-start's {job.rate_hz} Hz/{job.width} B/{job.channels} ch"
            )
        frames = pcm_to_float(chunk.audio, chunk.width, chunk.channels)
        for i in range(0, len(frames), MAX_PIECE_FRAMES):
            await self._write(job, frames[i : i + MAX_PIECE_FRAMES])

    async def _write(self, job: _Job, frames: NDArray[np.float32]) -> None:
        need = int(len(frames) * job.stream.sample_rate_hz / job.rate_hz) + 256
        if job.stream.room_frames() < need:
            self.shared.count("backpressure_waits")
            deadline = time.monotonic() + BACKPRESSURE_TIMEOUT_S
            while job.stream.room_frames() < need and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        job.stream.write(frames)
        job.frames_in += len(frames)

    async def _stop(self) -> None:
        job = self.job
        if job is None:
            raise ClientError("audio-stop before audio-start")
        job.stream.end()
        timeout_s = END_TIMEOUT_S + job.frames_in / job.rate_hz
        try:
            await asyncio.wait_for(job.ended.wait(), timeout_s)
        except TimeoutError:
            raise ClientError(f"no transcript within {timeout_s:.0f} s") from None
        finally:
            self._finish_job()
        if job.detect is not None:
            if not job.detected:
                await self.write_event(NotDetected().event())
            self.shared.count("detect_sessions")
            return
        await self.write_event(Transcript(text=job.chunks.text, language=self.language).event())
        await self.write_event(TranscriptStop().event())
        self.shared.count("transcriptions")

    async def _forward(self, job: _Job) -> None:
        """Send the job's transcript chunks (:class:`.ChunkComposer`: committed words of
        partials as they commit, the rest of each final) until its stream has ended."""
        while True:
            _, msg = await job.stream.events.get()
            if isinstance(msg, m.StreamEnded):
                await self._send_chunk(job.chunks.end())
                job.ended.set()
                return
            if isinstance(msg, m.WakeDetected):
                await self._detection(job, msg)
            elif isinstance(msg, m.Transcript):
                if msg.is_final and msg.language and self.shared.language == "auto":
                    self.language = msg.language  # what Whisper heard
                await self._send_chunk(job.chunks.add(msg))

    async def _send_chunk(self, text: str) -> None:
        """Send ``transcript-chunk`` with ``text`` (nothing for ""), if the connection takes it."""
        if text:
            with contextlib.suppress(OSError):
                await self.write_event(TranscriptChunk(text=text).event())

    async def _detection(self, job: _Job, wake: m.WakeDetected) -> None:
        """Answer each phrase a detect session asked for with ``detection`` (every one: a
        satellite that stays in the session hears its second wake word too)."""
        name = wake_name(self.shared.engine, wake.phrase)
        if job.detect is None or (job.detect and name_key(name) not in job.detect):
            return
        job.detected += 1
        self.shared.count("detections")
        event = Detection(name=name, timestamp=round(wake.end_s * 1000)).event()
        with contextlib.suppress(OSError):
            await self.write_event(event)

    def _finish_job(self) -> None:
        job, self.job = self.job, None
        if job is None:
            return
        if job.forwarder is not None and not job.ended.is_set():
            job.forwarder.cancel()
        self.shared.door.forget(job.stream.stream_id)
        self.shared.release(job.stream.stream_id)

    async def disconnect(self) -> None:
        """The client left (or the connection was closed): end its stream, if any."""
        if self.job is not None:
            log.info("wyoming %s: left mid-stream; ending %s", self.peer, self.job.stream.stream_id)
            self.shared.count("abandoned_streams")
            self._finish_job()


def pipeline_running(status: dict[str, Any], me: str) -> bool:
    """True when ``status`` (the supervisor's status map) shows every actor but ``me`` running."""
    actors = status.get("actors") or []
    return bool(actors) and all(a.get("state") == "running" for a in actors if a.get("id") != me)


def served_language(asked: str | None, served: str = LANGUAGES[0]) -> str:
    """The language a ``transcribe`` asked for, if it is ``served`` (None or "": that one;
    ``de-DE`` is ``de``).

    Raises:
        ClientError: another language: said, rather than answering text in the served
            language as if it were the one asked for.
    """
    if served == "auto" and not asked:
        return ""  # said by the transcript: the language Whisper heard
    code = (asked or served).strip().lower().replace("_", "-").split("-")[0]
    if code == served or (served == "auto" and code in served_languages(served)):
        return code
    raise ClientError(f"language {asked!r} is not served here; served: {served}")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"missing field {text}"
    return text.splitlines()[0][:300]


async def _serve(rt: ActorRuntime, opts: WyomingOptions) -> None:
    door = FrontDoor(rt)
    door.start()
    info = build_info(
        opts.finals, opts.engine, opts.phrases, package_version(), opts.language
    ).event()
    served = tuple(wake_name(opts.engine, p) for p in opts.phrases)
    shared = _Shared(rt, door, info, opts.server, opts.engine, served, opts.language)
    for key in COUNTERS:
        rt.counters.setdefault(key, 0)
    host, port = opts.server.host, opts.server.port
    server = AsyncTcpServer(host, port)
    try:
        await server.start(lambda r, w: WyomingHandler(r, w, shared))
    except OSError as exc:
        await door.stop()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(port_in_use_message("wyoming", port)) from None
        raise ConfigError(
            f"wyoming.port: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    log.info("wyoming: listening on %s:%d", host, port)
    rt.ready()
    try:
        while not rt.stopping:
            rt.gauges["connections"] = float(len(shared.handlers))
            await asyncio.sleep(0.05)
    finally:
        await server.stop()
        for handler in list(shared.handlers):
            await handler.disconnect()
        for sid in list(door.streams):
            door.forget(sid)
        await door.stop()


def run(rt: ActorRuntime) -> None:
    """Actor entry point: serve Wyoming on ``[wyoming] host:port`` until told to stop."""
    opts = WyomingOptions.from_spec(rt.spec)
    asyncio.run(_serve(rt, opts))
