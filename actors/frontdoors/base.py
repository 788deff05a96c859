"""What every front door (WebSocket gateway, Wyoming server) shares: run-time streams.

A front door is an actor that serves remote clients from an asyncio loop. For each client
stream it asks the supervisor for a stream (:meth:`FrontDoor.open_stream`), gets back a
:class:`PcmStream` — a conditioner (any rate/channels -> model-rate mono float32) writing
into the stream's PCM ring and ringing its doorbell — and an asyncio queue of that stream's
events (transcripts, ``stream.<id>.ended``) from the supervisor's PUB socket. Ending the
stream (:meth:`PcmStream.end`) flushes the resampler and sends :class:`EndOfStream`; the
supervisor closes the stream once its last final is out. The conditioner's repairs (NaN/Inf,
clipping) are added to the front door's actor counters under the feature stage's names
(:data:`REPAIR_COUNTERS`), so status and ``/metrics`` show them like a local stream's.

:class:`FrontDoor` pumps the actor's control socket and the event subscription every
``PUMP_INTERVAL_S`` from the event loop (heartbeats included), so the asyncio code never
blocks on ZeroMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
from numpy.typing import NDArray

from streamasr.actors import messages as m
from streamasr.actors.conditioning import Conditioner
from streamasr.actors.doorbell import Bell, Stamp
from streamasr.actors.errors import ProtocolError, StreamAsrError
from streamasr.actors.runtime import ActorRuntime
from streamasr.ringbuf import Ring, RingError

log = logging.getLogger(__name__)

#: Seconds between pumps of the control and event sockets.
PUMP_INTERVAL_S = 0.005
#: The conditioner's repairs a front door reports as actor counters, under the names the
#: feature stage uses for a local stream's: NaN/Inf samples replaced by 0, blocks silenced
#: for too many of them, samples clipped to full scale, empty blocks.
REPAIR_COUNTERS = ("nan_inf_samples", "rejected_chunks", "clipped_samples", "empty_chunks")


class StreamRefused(StreamAsrError):
    """The supervisor would not open a stream (limit reached, duplicate id, ...)."""


@dataclass
class PcmStream:
    """The writing end of one run-time stream.

    Attributes:
        stream_id: the stream's id on every event.
        events: transcripts and the final ``StreamEnded`` of this stream, in order.
        frames_written: model-rate frames written so far (the stream position).
        reported: the conditioner's repair counts already added to the actor's counters.
    """

    stream_id: str
    ring: Ring
    bell: Bell
    conditioner: Conditioner
    rt: ActorRuntime
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    ended: bool = False
    reported: dict[str, int] = field(default_factory=dict)

    @property
    def frames_written(self) -> int:
        """Model-rate frames written (stream position)."""
        return self.ring.write_counter

    @property
    def sample_rate_hz(self) -> int:
        """Model rate of the ring, Hz."""
        return self.ring.sample_rate_hz

    def room_frames(self) -> int:
        """Model-rate frames that can be written before the slowest reader loses audio."""
        return self.ring.writable

    def write(self, frames: NDArray[np.float32]) -> int:
        """Condition ``frames`` (``(n, channels)`` float32 at the client's rate) and write
        them; returns model-rate frames written. Bad samples are repaired by the
        conditioner and counted in the actor's :data:`REPAIR_COUNTERS`."""
        out = self.conditioner.process(frames)
        self._count_repairs()
        return self._put(out)

    def _count_repairs(self) -> None:
        """Add the conditioner's new repairs to the actor's counters (heartbeat, status,
        ``/metrics``), so a front door's streams count like a local one's."""
        now = self.conditioner.counters
        for key in REPAIR_COUNTERS:
            value = int(getattr(now, key))
            delta = value - self.reported.get(key, 0)
            if delta:
                self.rt.counters[key] = self.rt.counters.get(key, 0) + delta
                self.reported[key] = value

    def _put(self, out: NDArray[np.float32]) -> int:
        if out.size:
            self.ring.write(out.reshape(-1, 1))
            self.bell.ring(Stamp(self.ring.write_counter, time.time_ns(), time.time_ns()))
        return int(out.size)

    def end(self) -> None:
        """Flush the resampler and tell the supervisor the stream is complete."""
        if self.ended:
            return
        self.ended = True
        self._put(self.conditioner.flush())
        self.rt.send(m.EndOfStream(self.rt.spec.actor_id, self.stream_id, self.ring.write_counter))

    def close(self) -> None:
        """Release the ring and doorbell (after the stream has ended)."""
        self.bell.close()
        self.ring.close()


class FrontDoor:
    """Opens run-time streams and routes their events, from inside an asyncio loop."""

    def __init__(self, rt: ActorRuntime) -> None:
        """Subscribe to the supervisor's events (endpoint in ``options["events_endpoint"]``)."""
        self.rt = rt
        self.sub = rt.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 100000)
        self.sub.setsockopt(zmq.MAXMSGSIZE, 64 * m.MAX_MESSAGE_BYTES)
        for topic in (b"transcript.", b"stream.", b"wake.", b"status"):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.connect(rt.spec.options["events_endpoint"])
        for key in REPAIR_COUNTERS:
            rt.counters.setdefault(key, 0)
        self.streams: dict[str, PcmStream] = {}
        self.status: dict[str, Any] = {}
        self._waiting: dict[str, asyncio.Future[Any]] = {}
        self._pump_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start pumping (call from the running event loop)."""
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())

    async def stop(self) -> None:
        """Stop pumping and close the subscription."""
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        self.sub.close(0)

    async def open_stream(
        self,
        stream_id: str,
        name: str,
        in_rate_hz: int,
        channels: int,
        timeout_s: float = 5.0,
        gate: str = "",
        deadline: bool = True,
    ) -> PcmStream:
        """Ask the supervisor for a stream fed at ``in_rate_hz`` with ``channels``.

        ``gate``: ``""`` (transcribe everything), ``detect`` (wake-word detection only) or
        ``assistant`` (wake-gated commands). ``deadline=False``: a whole file the caller
        writes only where there is room (every final accurate, see ``m.OpenStream``).

        Every way out but a returned stream or a refusal ends the stream at frame 0
        (:meth:`_abandon`): a timeout, a cancellation, a ring or doorbell that cannot be
        attached. So whatever the supervisor opened, or opens late, is closed again.

        Raises:
            StreamRefused: the supervisor refused, did not answer within ``timeout_s``
                (seconds), or its ring cannot be attached.
        """
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[stream_id] = fut
        self.rt.send(m.OpenStream(stream_id=stream_id, name=name, gate=gate, deadline=deadline))
        try:
            reply = await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            self._abandon(stream_id)
            raise StreamRefused(f"no answer opening stream {stream_id}") from None
        except asyncio.CancelledError:
            self._abandon(stream_id)
            raise
        finally:
            self._waiting.pop(stream_id, None)
        if isinstance(reply, m.StreamRefused):
            raise StreamRefused(reply.reason)
        ring: Ring | None = None
        try:
            conditioner = Conditioner(in_rate_hz, channels, reply.sample_rate_hz)
            ring = Ring.attach(reply.ring)
            bell = Bell(self.rt.ctx, reply.bell)
        except BaseException as exc:
            if ring is not None:
                ring.close()
            self._abandon(stream_id)
            if isinstance(exc, RingError):  # the supervisor closed it again meanwhile
                raise StreamRefused(f"cannot attach stream {stream_id}: {exc}") from exc
            raise
        stream = PcmStream(stream_id, ring, bell, conditioner, self.rt)
        self.streams[stream_id] = stream
        return stream

    def _abandon(self, stream_id: str) -> None:
        """Give up an open that will not be used: end the stream at frame 0.

        The supervisor may still open it (a stalled or busy supervisor answers late, and the
        late :class:`StreamOpened` finds nobody waiting). This end travels on the same socket
        after the :class:`OpenStream`, so the supervisor reads it after the open and closes
        what it opened (ring, segment, decoders, slot) the way any ended stream is closed; an
        open it refused or never made leaves nothing to close.
        """
        self.rt.send(m.EndOfStream(self.rt.spec.actor_id, stream_id, 0))

    def forget(self, stream_id: str) -> None:
        """Drop a stream whose events are no longer wanted (after its end or an abort)."""
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            if not stream.ended:
                stream.end()
            stream.close()

    async def _pump(self) -> None:
        while True:
            self.rt.wait(0)
            for msg in self.rt.inbox:
                self._on_control(msg)
            self.rt.inbox.clear()
            self._drain_events()
            await asyncio.sleep(PUMP_INTERVAL_S)

    def _on_control(self, msg: Any) -> None:
        if isinstance(msg, (m.StreamOpened, m.StreamRefused)):
            fut = self._waiting.get(msg.stream_id)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    def _drain_events(self) -> None:
        for _ in range(1000):
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                topic, msg = m.unpack(frames)
            except ProtocolError:
                self.rt.counters["protocol_errors"] += 1
                continue
            if topic == "status":
                self.status = msg.status
                continue
            sid = getattr(msg, "stream_id", None)
            stream = self.streams.get(sid) if isinstance(sid, str) else None
            if stream is not None:
                stream.events.put_nowait((topic, msg))
