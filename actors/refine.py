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
pending job still needs, and otherwise a little behind where the first pass's cursor was
half a second ago (jobs travel through the supervisor; the first pass dates utterance starts
back): a file source paced by backpressure (``--fast``) waits for it, and for a live source
the ring's loss counters show when the second pass fell too far behind. An utterance longer
than the ring is refined from the part still held (counted as ``partial_audio``); one with
nothing left falls back (``lost_audio``). Streams opened at run time arrive as
:class:`StreamAttach` / :class:`StreamDetach`.
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


#: Seconds an observed first-pass cursor must age before the refine cursor follows it: a
#: job for audio before that cursor was sent before the observation and travels through
#: the supervisor, so it has this long to arrive before its audio may be overwritten.
FOLLOW_HOLD_S = 0.5

#: Seconds kept behind the first pass's cursor beyond the margin: the first pass commits
#: its cursor while it is still deciding whether speech began, and then dates the utterance
#: start back by its pre-roll (measured: up to ~0.4 s before the committed cursor).
FOLLOW_LOOKBACK_S = 2.0


class _Stream:
    """One stream's PCM ring and the first-pass cursor positions seen on it (internal)."""

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.seen: deque[tuple[float, int]] = deque()

    def follow_target(self, now_s: float, hold_s: float) -> int:
        """Newest first-pass cursor observed at least ``hold_s`` before ``now_s`` (-1: none)."""
        cursor = self.ring.stats(PCM_READER_INFERENCE).read_counter
        if not self.seen or self.seen[-1][1] != cursor:
            self.seen.append((now_s, cursor))
        target = -1
        while self.seen and self.seen[0][0] <= now_s - hold_s:
            target = self.seen.popleft()[1]
        if target >= 0:
            self.seen.appendleft((now_s - hold_s, target))
        return target

    def release(self, pending: list[m.RefineJob], margin_s: float, now_s: float) -> None:
        """Move the cursor past audio that no queued and no travelling job can need.

        With jobs queued, that is the oldest one's start less the margin; without, the first
        pass's cursor as it was ``FOLLOW_HOLD_S`` ago, less the margin and
        ``FOLLOW_LOOKBACK_S`` (a fast source waits on this cursor; a live one counts what it
        overwrites before the cursor moves).
        """
        ring = self.ring
        margin = int(margin_s * ring.sample_rate_hz)
        follow = self.follow_target(now_s, FOLLOW_HOLD_S)
        if pending:
            target = min(j.start_frame for j in pending) - margin
        elif follow >= 0:
            target = follow - margin - int(FOLLOW_LOOKBACK_S * ring.sample_rate_hz)
        else:
            return
        target = min(max(target, ring.read_counter), ring.write_counter)
        if target != ring.read_counter:
            ring.seek(target)


def _attach_spec_rings(rt: ActorRuntime) -> dict[str, _Stream]:
    """The streams of the spawn spec (ring roles ``in:<stream_id>``)."""
    return {
        role[3:]: _Stream(Ring.attach(ref.name, reader=ref.reader))
        for role, ref in rt.spec.rings.items()
        if role.startswith("in:")
    }


def _control(streams: dict[str, _Stream], msg: object) -> None:
    """Streams opened or closed at run time."""
    if isinstance(msg, m.StreamAttach) and msg.stream_id not in streams:
        try:
            streams[msg.stream_id] = _Stream(Ring.attach(msg.ring, reader=msg.reader))
        except RingError as exc:  # closed again before we got here
            log.warning("cannot attach stream %s: %s", msg.stream_id, exc)
    elif isinstance(msg, m.StreamDetach) and msg.stream_id in streams:
        streams.pop(msg.stream_id).ring.close()


def run(rt: ActorRuntime) -> None:
    """Actor main."""
    cfg = rt.spec.options["refine"]
    margin_s = float(cfg["margin_s"])
    streams = _attach_spec_rings(rt)
    refiner = WhisperRefiner(RefineOptions(model=cfg["model"], cpu_threads=cfg["cpu_threads"]))
    refiner.warm_up()
    queue: deque[m.RefineJob] = deque()
    eos: list[m.EndOfStream] = []
    for name in ("refined", "fallbacks", "no_speech", "lost_audio", "partial_audio"):
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
                else:
                    _control(streams, msg)
            _shed(rt, queue, int(cfg["max_queue"]), float(cfg["budget_s"]))
            rt.gauges["queue"] = len(queue)
            if queue:
                batch = [queue.popleft() for _ in range(min(MAX_BATCH, len(queue)))]
                _refine(rt, {k: s.ring for k, s in streams.items()}, refiner, batch, margin_s)
            else:
                for done in eos:
                    rt.send(m.EndOfStream(rt.spec.actor_id, done.stream_id, done.end_frame))
                eos.clear()
            now_s = time.monotonic()
            for sid, st in streams.items():
                st.release([j for j in queue if j.stream_id == sid], margin_s, now_s)
    finally:
        for st in streams.values():
            st.ring.close()


def _shed(rt: ActorRuntime, queue: deque[m.RefineJob], max_queue: int, budget_s: float) -> None:
    """Fall back to first-pass finals for jobs beyond the bound or past the budget."""
    now = time.time_ns()
    while queue and (len(queue) > max_queue or now - queue[0].t_endpoint_ns > budget_s * 1e9):
        reason = "over_queue" if len(queue) > max_queue else "over_budget"
        job = queue.popleft()
        rt.counters["fallbacks"] += 1
        rt.counters[reason] = rt.counters.get(reason, 0) + 1
        log.info("utterance %s falls back to its first-pass final (%s)", job.utterance_id, reason)
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
        got = _audio(ring, job, margin_s) if ring is not None else None
        if got is None:
            log.warning(
                "utterance %s: audio [%d, %d) no longer in the ring (cursor %s, written %s)",
                job.utterance_id,
                job.start_frame,
                job.end_frame,
                ring.read_counter if ring is not None else None,
                ring.write_counter if ring is not None else None,
            )
            rt.counters["lost_audio"] += 1
            rt.counters["fallbacks"] += 1
            rt.send(dataclasses.replace(job.first_pass, provisional=False))
            continue
        audio, start = got
        if start > job.start_frame:
            rt.counters["partial_audio"] = rt.counters.get("partial_audio", 0) + 1
            log.warning(
                "utterance %s: only its last %.1f s were still in the ring",
                job.utterance_id,
                len(audio) / job.sample_rate_hz,
            )
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


def _audio(ring: Ring, job: m.RefineJob, margin_s: float) -> tuple[np.ndarray, int] | None:
    """The job's samples plus margins from the ring and the stream position of the first.

    When the head of the utterance was overwritten already (an utterance longer than the
    ring holds, or a job that arrived too late), the part from this reader's cursor on is
    returned: the writer never overwrites audio at or after the cursor. None if nothing of
    the utterance is left.
    """
    margin = int(margin_s * job.sample_rate_hz)
    end = min(ring.write_counter, job.end_frame + margin)
    for start in (max(0, job.start_frame - margin), ring.read_counter):
        if start >= end:
            break
        out = np.empty((end - start, 1), dtype=np.float32)
        try:
            n = ring.read_at(start, out)
        except RingError:
            continue
        return np.ascontiguousarray(out[:n, 0]), start
    return None


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
