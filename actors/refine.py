"""Refine actor: the accurate second pass (Whisper) over each first-pass utterance.

Jobs arrive from the supervisor (which forwards the inference actor's :class:`RefineJob`
and re-sends the ones in flight if this actor is restarted). Each job's audio is taken from
the PCM ring by its exact stream positions plus ``margin_s``; jobs waiting together are
transcribed as one batch. The accurate final (``pass = 2``) replaces the provisional one
under the same utterance id; a segment the speech gate rejects yields an empty final (the
provisional text was noise). When the queue passes ``max_queue`` or a job waits longer than
``budget_s``, its first-pass final is re-issued as the final (``pass = 1``) and counted as a
fallback, so the queue stays bounded and accurate finals resume when the load drops.

The actor holds a reader slot on the PCM ring whose cursor it keeps at the oldest audio a
pending job still needs: a file source paced by backpressure (``--fast``) waits for it, and
for a live source the ring's loss counters show when the second pass fell too far behind.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.whisper.refiner import RefineOptions, RefineOutput, WhisperRefiner
from streamasr.ringbuf import Ring
from streamasr.ringbuf.errors import RingError

log = logging.getLogger(__name__)

#: Reader slot of the first pass on the PCM ring (see supervisor.plan).
PCM_READER_INFERENCE = 0

#: Most utterances encoded together in one batch.
MAX_BATCH = 4


def run(rt: ActorRuntime) -> None:
    """Actor main."""
    cfg = rt.spec.options["refine"]
    rings = {
        role[3:]: Ring.attach(ref.name, reader=ref.reader)
        for role, ref in rt.spec.rings.items()
        if role.startswith("in:")
    }
    refiner = WhisperRefiner(RefineOptions(model=cfg["model"], cpu_threads=cfg["cpu_threads"]))
    refiner.warm_up()
    queue: deque[m.RefineJob] = deque()
    eos: list[m.EndOfStream] = []
    for name in ("refined", "fallbacks", "no_speech", "lost_audio"):
        rt.counters[name] = 0
    rt.ready()
    try:
        while not rt.stopping:
            msgs, _ = rt.poll(0 if queue else 0.1)
            for msg in msgs:
                if isinstance(msg, m.RefineJob):
                    queue.append(msg)
                elif isinstance(msg, m.EndOfStream):
                    eos.append(msg)
            _shed(rt, queue, int(cfg["max_queue"]), float(cfg["budget_s"]))
            rt.gauges["queue"] = len(queue)
            if queue:
                batch = [queue.popleft() for _ in range(min(MAX_BATCH, len(queue)))]
                _refine(rt, rings, refiner, batch, float(cfg["margin_s"]))
                for sid, ring in rings.items():
                    _release(
                        ring,
                        [j for j in queue if j.stream_id == sid],
                        max((j.end_frame for j in batch if j.stream_id == sid), default=-1),
                        float(cfg["margin_s"]),
                    )
            else:
                for ring in rings.values():
                    _follow_first_pass(ring, float(cfg["margin_s"]))
                for done in eos:
                    rt.send(m.EndOfStream(rt.spec.actor_id, done.stream_id, done.end_frame))
                eos.clear()
    finally:
        for ring in rings.values():
            ring.close()


def _release(ring: Ring, pending: list[m.RefineJob], done_frame: int, margin_s: float) -> None:
    """Move a stream's ring cursor past audio no pending job needs (fast sources wait on it).

    ``pending``: that stream's jobs still queued; ``done_frame``: end of the last job just
    done for it (-1 if none was).
    """
    if pending:
        job = pending[0]
        target = job.start_frame - int(margin_s * job.sample_rate_hz)
    elif done_frame >= 0:
        target = done_frame
    else:
        return
    oldest = max(0, ring.write_counter - ring.capacity)
    target = min(max(target, oldest, ring.read_counter), ring.write_counter)
    if target != ring.read_counter:
        ring.seek(target)


def _follow_first_pass(ring: Ring, margin_s: float) -> None:
    """With nothing queued, keep the cursor just behind the first pass's commit point.

    No future job can start before the inference reader's cursor (it only moves past audio
    that holds no unfinished utterance), so the audio before it minus the margin is free.
    """
    inference_cursor = ring.stats(PCM_READER_INFERENCE).read_counter
    target = inference_cursor - int(margin_s * ring.sample_rate_hz)
    if target > ring.read_counter:
        ring.seek(min(target, ring.write_counter))


def _shed(rt: ActorRuntime, queue: deque[m.RefineJob], max_queue: int, budget_s: float) -> None:
    """Fall back to first-pass finals for jobs beyond the bound or past the budget."""
    now = time.time_ns()
    while queue and (len(queue) > max_queue or now - queue[0].t_endpoint_ns > budget_s * 1e9):
        job = queue.popleft()
        rt.counters["fallbacks"] += 1
        rt.send(dataclasses.replace(job.first_pass, provisional=False))


def _refine(
    rt: ActorRuntime,
    rings: dict[str, Ring],
    refiner: WhisperRefiner,
    batch: list[m.RefineJob],
    margin_s: float,
) -> None:
    items: list[tuple[np.ndarray, float]] = []
    jobs: list[m.RefineJob] = []
    for job in batch:
        ring = rings.get(job.stream_id)
        audio = _audio(ring, job, margin_s) if ring is not None else None
        if audio is None:
            rt.counters["lost_audio"] += 1
            rt.counters["fallbacks"] += 1
            rt.send(dataclasses.replace(job.first_pass, provisional=False))
            continue
        start = max(0, job.start_frame - int(margin_s * job.sample_rate_hz))
        items.append((audio, start / job.sample_rate_hz))
        jobs.append(job)
    if not jobs:
        return
    t0 = time.perf_counter()
    outs = refiner.transcribe_batch(items)
    compute_s = (time.perf_counter() - t0) / len(jobs)
    for job, out in zip(jobs, outs, strict=True):
        rt.send(_final(job, out, compute_s))
        rt.counters["refined" if out is not None else "no_speech"] += 1


def _audio(ring: Ring, job: m.RefineJob, margin_s: float) -> np.ndarray | None:
    """The job's samples plus margins from the ring, or None if they were overwritten."""
    margin = int(margin_s * job.sample_rate_hz)
    start = max(0, job.start_frame - margin)
    end = min(ring.write_counter, job.end_frame + margin)
    out = np.empty((end - start, 1), dtype=np.float32)
    try:
        n = ring.read_at(start, out)
    except RingError:
        return None
    return np.ascontiguousarray(out[:n, 0])


def _final(job: m.RefineJob, out: RefineOutput | None, compute_s: float) -> m.Transcript:
    first = job.first_pass
    waited_s = (time.time_ns() - job.t_endpoint_ns) / 1e9
    stages = {**first.stages_s, "refine_queue": max(0.0, waited_s - compute_s), "refine": compute_s}
    return dataclasses.replace(
        first,
        passno=2,
        provisional=False,
        text=out.text.strip() if out is not None else "",
        words=[[w.word, w.start_s, w.end_s, w.conf] for w in out.words] if out else [],
        latency_s=first.latency_s + waited_s,
        stages_s=stages,
    )
