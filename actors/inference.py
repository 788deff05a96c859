"""Inference actor: the model-rate PCM ring -> a streaming recogniser -> transcript events.

Loads and warms the recogniser before it reports Ready. Decoder state lives across chunks;
partials are sent when the hypothesis changes, finals at each endpoint (pass 1), and with
``finals = "accurate"`` each final's exact stream positions go to the refine actor as a
:class:`RefineJob`.

Crash safety: the actor reads with ``read_at`` from its own position and moves its shared
ring cursor (the commit point) only to positions where the recogniser was idle between
utterances. A replacement process resumes from that cursor and re-decodes the utterance
that was in flight from audio the ring still holds; the supervisor drops a re-decoded final
it has already published (same stream, overlapping times).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.asr.base import Recognizer, RecognizerStream
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.asr.types import Result
from streamasr.actors.conditioning import to_int16
from streamasr.actors.doorbell import Listener, Stamp
from streamasr.actors.runtime import ActorRuntime
from streamasr.ringbuf import Ring
from streamasr.ringbuf.errors import RingError

log = logging.getLogger(__name__)

#: Most frames decoded per loop iteration (keeps heartbeats and control responsive).
MAX_STEP_S = 0.5


@dataclass(slots=True)
class _State:
    """Decoding position and bookkeeping of the one stream this actor serves."""

    stream: RecognizerStream
    pos: int
    rate: int
    last_partial: str = ""
    eos_at: int | None = None
    stamps: deque[Stamp] = field(default_factory=lambda: deque(maxlen=1024))
    stamp: Stamp = field(default_factory=lambda: Stamp(0, 0, 0))


def run(rt: ActorRuntime) -> None:
    """Actor main."""
    ref = rt.spec.rings["in"]
    ring = Ring.attach(ref.name, reader=ref.reader)
    listener = Listener(rt.ctx, rt.spec.bells["in"])
    rt.poller.register(listener.socket)
    inf = rt.spec.options["inference"]
    backend = inf["backend"]
    recognizer = create_recognizer(backend, inf.get(backend, {}))
    recognizer.warm_up()
    st = _State(
        stream=recognizer.create_stream(start_frame=ring.read_counter),
        pos=ring.read_counter,
        rate=ring.sample_rate_hz,
    )
    accurate = rt.spec.options["refine"]["finals"] == "accurate"
    buf = np.empty((int(MAX_STEP_S * ring.sample_rate_hz), 1), dtype=np.float32)
    rt.ready()
    try:
        while not rt.stopping:
            msgs, ready = rt.poll(0.05)
            if listener.socket in ready:
                st.stamps.extend(listener.drain())
            for msg in msgs:
                if isinstance(msg, m.EndOfStream):
                    st.eos_at = msg.end_frame
            while not rt.stopping and _decode_available(rt, ring, recognizer, st, buf, accurate):
                rt.heartbeat()
            if st.eos_at is not None and st.pos >= st.eos_at:
                _finish(rt, ring, st, accurate, force=True)
                log.info("end of stream at frame %d", st.pos)
                rt.send(m.EndOfStream(rt.spec.actor_id, rt.spec.stream_id, st.pos))
                st.eos_at = None
                rt.state = "ended"
    finally:
        listener.close()
        ring.close()


def _decode_available(
    rt: ActorRuntime,
    ring: Ring,
    recognizer: Recognizer,
    st: _State,
    buf: np.ndarray,
    accurate: bool,
) -> bool:
    """Decode up to MAX_STEP_S of new audio; return True if more may be waiting."""
    avail = ring.write_counter - st.pos
    if avail <= 0:
        return False
    n = min(avail, buf.shape[0])
    try:
        got = ring.read_at(st.pos, buf[:n])
    except RingError:  # audio we had not decoded yet was overwritten
        oldest = ring.write_counter - ring.capacity + ring.capacity // 8
        rt.counters["frames_lost"] = rt.counters.get("frames_lost", 0) + oldest - st.pos
        log.warning("inference fell %d frames behind; resuming there", oldest - st.pos)
        _finish(rt, ring, st, accurate, force=True)
        st.stream = recognizer.create_stream(start_frame=oldest)
        st.pos = oldest
        return True
    if got == 0:
        return False
    t0 = time.perf_counter()
    samples = to_int16(buf[:got, 0])
    st.stream.accept(samples)
    st.pos += got
    while st.stamps and st.stamps[0].end_frame <= st.pos:
        st.stamp = st.stamps.popleft()
    while st.stream.is_ready():
        st.stream.step()
        if st.stream.is_endpoint():
            _finish(rt, ring, st, accurate, force=False)
    compute_s = time.perf_counter() - t0
    _send_partial(rt, st, compute_s)
    rt.counters["frames_decoded"] = st.pos
    rt.gauges["backlog_s"] = (ring.write_counter - st.pos) / ring.sample_rate_hz
    _commit(ring, st)
    return bool(got == n and n == buf.shape[0])


def _commit(ring: Ring, st: _State) -> None:
    """Move the shared cursor to where a replacement may safely resume."""
    start = st.stream.utterance_start_frame
    if start is None and st.stream.result() is None:
        ring.seek(st.stream.position_frame)


def _stages(st: _State, now_ns: int, compute_s: float) -> tuple[float, dict[str, float]]:
    s = st.stamp
    if s.t_capture_ns == 0:
        return compute_s, {"inference": compute_s}
    feature_s = max(0.0, (s.t_feature_ns - s.t_capture_ns) / 1e9) if s.t_feature_ns else 0.0
    queue_s = max(0.0, (now_ns - (s.t_feature_ns or s.t_capture_ns)) / 1e9 - compute_s)
    total = max(0.0, (now_ns - s.t_capture_ns) / 1e9)
    return total, {"feature": feature_s, "queue": queue_s, "inference": compute_s}


def _send_partial(rt: ActorRuntime, st: _State, compute_s: float) -> None:
    res = st.stream.result()
    text = res.text if res is not None else ""
    if res is None or text == st.last_partial:
        return
    st.last_partial = text
    rt.send(_transcript(rt, res, st, compute_s, is_final=False))


def _transcript(
    rt: ActorRuntime,
    res: Result,
    st: _State,
    compute_s: float,
    *,
    is_final: bool,
    provisional: bool = False,
) -> m.Transcript:
    rate = st.rate
    latency, stages = _stages(st, time.time_ns(), compute_s)
    return m.Transcript(
        stream_id=rt.spec.stream_id,
        utterance_id=f"{rt.spec.stream_id}:{res.start_frame}",
        seq=0,
        is_final=is_final,
        passno=1,
        text=res.text,
        start_s=res.start_frame / rate,
        end_s=res.end_frame / rate,
        words=[[w.word, w.start_s, w.end_s, w.conf] for w in res.words],
        latency_s=latency,
        stages_s=stages,
        provisional=provisional,
    )


def _finish(rt: ActorRuntime, ring: Ring, st: _State, accurate: bool, *, force: bool) -> None:
    """Finalize the utterance in progress and send its final (and refine job)."""
    if not force and not st.stream.is_endpoint():
        return
    res = st.stream.finalize()
    st.last_partial = ""
    if res is None or not res.text:
        return
    final = _transcript(rt, res, st, 0.0, is_final=True, provisional=accurate)
    rt.send(final)
    rt.counters["finals"] = rt.counters.get("finals", 0) + 1
    if accurate:
        rt.send(
            m.RefineJob(
                stream_id=rt.spec.stream_id,
                utterance_id=final.utterance_id,
                start_frame=res.start_frame,
                end_frame=res.end_frame,
                sample_rate_hz=ring.sample_rate_hz,
                t_endpoint_ns=time.time_ns(),
                first_pass=final,
            )
        )
