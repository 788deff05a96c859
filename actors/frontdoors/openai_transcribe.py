"""One uploaded file through the supervised pipeline, as fast as it takes it.

:func:`open_audio` decodes the upload's header with soundfile (WAV, FLAC, OGG, MP3: what
libsndfile reads) and refuses what is not audio, or too short, too long, at a rate or with
channels the gateway does not take (:class:`ApiError` 400). :func:`transcribe` opens a
run-time stream *without a deadline* (``OpenStream.deadline``: every final is Whisper's,
with the thorough decode, as ``up --source FILE --fast`` gives), writes the file into it in
blocks of :data:`BLOCK_S` — each only once the ring has room for it (the gateway's
backpressure: nothing is overwritten, nothing dropped, the ring's counters account for
every frame) — and yields the stream's finals as they come, one :class:`Segment` per
utterance, until the stream has ended. The file is decoded block by block, so memory holds
the upload's bytes and one block, whatever the file decodes to.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncGenerator
from typing import Any, Final, Protocol

import soundfile as sf

from streamasr.actors import messages as m
from streamasr.actors.audio_file import read_frames
from streamasr.actors.frontdoors import protocols as gp
from streamasr.actors.frontdoors.base import FrontDoor, PcmStream, StreamRefused
from streamasr.actors.frontdoors.openai_errors import ApiError
from streamasr.actors.frontdoors.openai_formats import Segment
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import GatewayConfig

#: Seconds of audio written at a time.
BLOCK_S: Final = 0.5
#: Seconds between polls while waiting for ring room (as the WebSocket gateway).
POLL_S: Final = 0.005
#: Seconds the ring may stay full before the upload fails (the pipeline is stuck).
STALL_TIMEOUT_S: Final = 120.0
#: Seconds without an event, once the whole file is written, before the upload fails.
DRAIN_TIMEOUT_S: Final = 120.0
#: Shortest audio accepted, seconds (as OpenAI).
MIN_AUDIO_S: Final = 0.1
#: What the error for a file that is not audio names.
FORMATS: Final = "wav, flac, ogg, mp3"


class StreamHost(Protocol):
    """What a transcription needs of the gateway that runs it."""

    rt: ActorRuntime
    front: FrontDoor
    opts: GatewayConfig
    live: set[str]

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to gateway counter ``key``."""

    def room_frames(self, stream: PcmStream) -> int:
        """Model-rate frames writable without loss (readers not attached yet counted)."""


def _bad_audio(message: str) -> ApiError:
    return ApiError(400, message, param="file", code="invalid_file", counter="bad_audio")


def open_audio(data: bytes, max_audio_s: float) -> sf.SoundFile:
    """The upload as a soundfile reader, positioned at its first frame.

    Raises:
        ApiError: 400 for an empty file, one libsndfile cannot decode, a rate outside
            8000..192000 Hz, more than 8 channels, less than :data:`MIN_AUDIO_S` or more
            than ``max_audio_s`` seconds.
    """
    if not data:
        raise _bad_audio("the file is empty (0 bytes)")
    try:
        audio = sf.SoundFile(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise _bad_audio(
            f"invalid file format: not audio this server decodes ({FORMATS})"
        ) from None
    rate, channels = int(audio.samplerate), int(audio.channels)
    if not gp.MIN_RATE_HZ <= rate <= gp.MAX_RATE_HZ:
        audio.close()
        raise _bad_audio(f"sample rate {rate} Hz is outside {gp.MIN_RATE_HZ}..{gp.MAX_RATE_HZ}")
    if not 1 <= channels <= gp.MAX_CHANNELS:
        audio.close()
        raise _bad_audio(f"{channels} channels (at most {gp.MAX_CHANNELS})")
    if 0 <= audio.frames < MIN_AUDIO_S * rate:
        audio.close()
        raise _bad_audio(f"audio file is too short (minimum {MIN_AUDIO_S:g} s)")
    if audio.frames > max_audio_s * rate:
        audio.close()
        raise _bad_audio(f"audio is longer than {max_audio_s:g} s")
    return audio


async def _wait_for_room(host: StreamHost, stream: PcmStream, need: int) -> bool:
    """Wait until ``need`` model-rate frames fit; True if it had to wait.

    Raises:
        ApiError: 503 if the gateway stops or the ring stays full :data:`STALL_TIMEOUT_S`.
    """
    deadline = time.monotonic() + STALL_TIMEOUT_S
    waited = False
    while host.room_frames(stream) < need:
        if host.rt.stopping:
            raise ApiError(503, "the server is shutting down", counter="aborted")
        if time.monotonic() > deadline:
            raise ApiError(
                503, f"the pipeline took no audio for {STALL_TIMEOUT_S:g} s", counter="stalled"
            )
        waited = True
        await asyncio.sleep(POLL_S)
    return waited


async def _write_all(
    host: StreamHost, stream: PcmStream, audio: sf.SoundFile, max_audio_s: float
) -> None:
    """Decode and write ``audio`` block by block, each once there is room; then end."""
    rate = int(audio.samplerate)
    block = max(1, int(BLOCK_S * rate))
    ratio = stream.sample_rate_hz / rate
    written = 0
    while True:
        try:
            frames = read_frames(audio, block)
        except (sf.LibsndfileError, RuntimeError) as exc:
            where = f"{written / rate:.1f} s"
            raise _bad_audio(f"the audio cannot be decoded past {where}: {exc}") from None
        if not len(frames):
            break
        written += len(frames)
        if written > max_audio_s * rate:
            raise _bad_audio(f"audio is longer than {max_audio_s:g} s")
        if await _wait_for_room(host, stream, int(len(frames) * ratio) + 256):
            host.count("backpressure_waits")
        stream.write(frames)
        host.count("frames_in", len(frames))
        await asyncio.sleep(0)  # let events and other connections through
    stream.end()


def _final(msg: Any) -> m.Transcript | None:
    """``msg`` if it is a final that stays (not a provisional one the accurate pass replaces)."""
    if isinstance(msg, m.Transcript) and msg.is_final and not msg.provisional:
        return msg
    return None


async def transcribe(
    host: StreamHost, audio: sf.SoundFile, stream_id: str, name: str, max_audio_s: float
) -> AsyncGenerator[Segment, None]:
    """The finals of ``audio`` as a stream without a deadline, one per utterance with words,
    in the order they come (utterance order); returns when the stream has ended.

    Closing the generator early (the client went away) ends the stream at what was written.

    Raises:
        ApiError: 429 (the supervisor refused the stream), 400 (the audio fails to decode
            part-way), 503 (the pipeline stalled or the gateway stops), 504 (no end).
    """
    try:
        stream = await host.front.open_stream(
            stream_id, name, int(audio.samplerate), int(audio.channels), deadline=False
        )
    except StreamRefused as exc:
        raise ApiError(
            429, f"stream refused: {exc}", code="rate_limit_exceeded", counter="refused"
        ) from None
    host.count("streams_opened")
    writer = asyncio.get_running_loop().create_task(_write_all(host, stream, audio, max_audio_s))
    event: asyncio.Task[tuple[str, Any]] | None = None
    seen: set[str] = set()
    try:
        while True:
            if event is None:
                event = asyncio.get_running_loop().create_task(stream.events.get())
            waits: set[asyncio.Task[Any]] = {event} if writer.done() else {event, writer}
            timeout = DRAIN_TIMEOUT_S if writer.done() else None
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if writer in done:
                writer.result()  # raises what stopped the writing
            if event not in done:
                if not done:
                    raise ApiError(504, "the pipeline did not finish the transcript in time")
                continue
            _, msg = event.result()
            event = None
            if isinstance(msg, m.StreamEnded):
                host.count("streams_completed")
                return
            final = _final(msg)
            if final is not None and final.utterance_id not in seen:
                seen.add(final.utterance_id)
                segment = Segment.of(final)
                if segment.text:
                    yield segment
    finally:
        for task in (writer, event):
            if task is not None and not task.done():
                task.cancel()
        host.front.forget(stream_id)
        audio.close()
