"""Streams that front doors (WebSocket gateway, Wyoming server) open and close at run time.

A front-door actor asks for a stream with :class:`OpenStream`; within that door's own
``max_streams`` (each door has its own share: a Wyoming server full of idle clients never
takes the gateway's), the supervisor creates the stream's PCM ring (it owns every
segment), tells the inference and refine actors to attach (:class:`StreamAttach`), and
answers with :class:`StreamOpened`. The front door writes
model-rate PCM into the ring and ends the stream with :class:`EndOfStream`, which travels
the chain ``front door -> inference -> refine`` like a local stream's; when the last stage
has drained it, the stream is detached everywhere and its ring unlinked. If the front door
dies, its streams are ended at whatever their rings hold, so nothing leaks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamasr.actors import messages as m
from streamasr.actors.doorbell import ipc_path
from streamasr.ringbuf import Ring, RingError
from streamasr.supervisor.config import Config
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.plan import (
    PCM_READER_INFERENCE,
    PCM_READER_REFINE,
    RingPlan,
    inference_ids,
    pcm_ring_s,
    pow2_at_least,
)

log = logging.getLogger(__name__)

Send = Callable[[str, Any], None]

#: Gates a front door may ask for: none, wake-gated commands, wake detection only.
GATES = ("", "assistant", "detect")


@dataclass
class DynamicStream:
    """A stream opened at run time: who feeds it, its ring and doorbell."""

    owner: str
    name: str
    ring_plan: RingPlan
    ring: Ring
    bell: str
    gate: str = ""
    worker: str = "inference"  # the inference worker that decodes it
    deadline: bool = True  # False: paced by ring room alone (see OpenStream.deadline)


class DynamicStreams:
    """Opens, attaches, re-attaches and closes run-time streams."""

    def __init__(
        self, cfg: Config, paths: InstancePaths, send: Send, workers: list[str] | None = None
    ) -> None:
        """``send(actor_id, message)`` delivers control messages to actors; ``workers``: the
        plan's inference workers (default: as the plan would deal them on this machine)."""
        self._cfg = cfg
        self._paths = paths
        self._send = send
        self.streams: dict[str, DynamicStream] = {}
        self.refused = 0
        self.workers = workers or inference_ids(cfg)
        #: local streams per worker (dealt in turn, as the plan does)
        self._local = {w: 0 for w in self.workers}
        for i, _ in enumerate(cfg.sources()):
            self._local[self.workers[i % len(self.workers)]] += 1

    def chain(self, stream_id: str) -> tuple[str, ...] | None:
        """The actors a dynamic stream's end-of-stream passes through."""
        d = self.streams.get(stream_id)
        if d is None:
            return None
        tail = ("refine",) if self._cfg.refine.finals == "accurate" else ()
        return (d.owner, d.worker, *tail)

    def open(self, owner: str, msg: m.OpenStream, local_ids: set[str]) -> Any:
        """Create the stream; return the reply for the owner (StreamOpened or StreamRefused)."""
        sid = msg.stream_id
        limit = self._cfg.door_stream_limits().get(owner, 0)
        if not sid.replace("-", "").replace("_", "").isalnum() or len(sid) > 64:
            return self._refuse(owner, sid, f"bad stream id {sid[:64]!r}")
        if sid in self.streams or sid in local_ids:
            return self._refuse(owner, sid, f"stream {sid} already exists")
        if limit == 0:
            return self._refuse(owner, sid, f"{owner} is not a front door")
        if self.held_by(owner) >= limit:
            return self._refuse(owner, sid, f"stream limit reached ({limit})")
        if msg.gate not in GATES:
            return self._refuse(owner, sid, f"unknown gate {msg.gate[:32]!r}")
        rate = self._cfg.audio.sample_rate_hz
        plan = RingPlan(
            sid,
            "pcm",
            self._paths.segment(sid, "pcm"),
            pow2_at_least(int(pcm_ring_s(self._cfg, msg.deadline) * rate)),
            (1,),
            rate,
        )
        try:
            ring = plan.create()
        except RingError as exc:  # e.g. a segment of that name left by someone else
            return self._refuse(owner, sid, f"cannot create the ring of stream {sid}: {exc}")
        try:
            # the decoders have not attached yet: hold their slots so a front door pacing
            # itself on the ring's room waits for them instead of overwriting the stream's
            # first seconds
            ring.reserve_reader(PCM_READER_INFERENCE)
            if self._cfg.refine.finals == "accurate":
                ring.reserve_reader(PCM_READER_REFINE)
        except BaseException:
            ring.close()
            ring.unlink()
            raise
        bell = self._paths.bell(f"{sid}-pcm", 0)
        worker = self._least_loaded()
        self.streams[sid] = DynamicStream(
            owner, msg.name, plan, ring, bell, msg.gate, worker, msg.deadline
        )
        self.attach_all(worker)
        self.attach_all("refine")
        log.info("stream %s opened by %s", sid, owner)
        return m.StreamOpened(stream_id=sid, ring=plan.name, bell=bell, sample_rate_hz=rate)

    def held_by(self, owner: str) -> int:
        """Streams ``owner`` holds now, those still draining their last finals included."""
        return sum(1 for d in self.streams.values() if d.owner == owner)

    def _refuse(self, owner: str, stream_id: str, why: str) -> m.StreamRefused:
        self.refused += 1
        log.warning("refused a stream for %s: %s", owner, why)
        return m.StreamRefused(stream_id=stream_id[:64], reason=why)

    def _least_loaded(self) -> str:
        """The inference worker with the fewest streams (local and run-time)."""
        load = dict(self._local)
        for d in self.streams.values():
            load[d.worker] += 1
        return min(self.workers, key=lambda w: (load[w], self.workers.index(w)))

    def attach_all(self, actor_id: str) -> None:
        """(Re-)send the open streams ``actor_id`` serves (after it starts or restarts):
        an inference worker gets its own, refine every one."""
        if actor_id == "refine" and self._cfg.refine.finals == "accurate":
            for sid, d in self.streams.items():
                ring = d.ring_plan.name
                attach = m.StreamAttach(sid, ring, PCM_READER_REFINE, "", deadline=d.deadline)
                self._send(actor_id, attach)
        elif actor_id in self.workers:
            for sid, d in self.streams.items():
                if d.worker == actor_id:
                    ring, bell = d.ring_plan.name, d.bell
                    attach = m.StreamAttach(
                        sid, ring, PCM_READER_INFERENCE, bell, d.gate, d.deadline
                    )
                    self._send(actor_id, attach)

    def close(self, stream_id: str) -> None:
        """Detach the stream everywhere, unlink its ring and remove its doorbell's socket
        file (the worker removes it too when it closes the doorbell; this covers a worker
        killed before it could)."""
        d = self.streams.pop(stream_id, None)
        if d is None:
            return
        for actor_id in (d.worker, "refine"):
            self._send(actor_id, m.StreamDetach(stream_id))
        d.ring.close()
        d.ring.unlink()
        bell = ipc_path(d.bell)
        if bell is not None:
            bell.unlink(missing_ok=True)
        log.info("stream %s closed", stream_id)

    def owned_by(self, owner: str) -> list[tuple[str, int]]:
        """(stream id, frames written) of every stream ``owner`` feeds."""
        return [(sid, d.ring.write_counter) for sid, d in self.streams.items() if d.owner == owner]

    def close_all(self) -> None:
        """Unlink every ring (supervisor shutdown)."""
        for sid in list(self.streams):
            d = self.streams.pop(sid)
            d.ring.close()
            d.ring.unlink()
