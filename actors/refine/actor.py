"""Refine actor: the accurate second pass (Whisper) over each first-pass utterance.

Jobs arrive from the supervisor (which forwards the inference actor's :class:`RefineJob`
and re-sends the ones in flight if this actor is restarted). Each job's audio is taken from
the PCM ring by its exact stream positions plus ``margin_s``; jobs waiting together are
transcribed as one batch. The accurate final (``pass = 2``) replaces the provisional one
under the same utterance id; a segment the speech gate rejects yields an empty final (the
provisional text was noise). When the queue passes ``max_queue`` or a job waits longer than
``budget_s``, its first-pass final is re-issued as the final (``pass = 1``) and counted as a
fallback, so the queue stays bounded and accurate finals resume when the load drops (a job
past the budget that an early transcription already answers is answered from it). Where
nothing runs at real time (only files or stdin read with ``--fast``, no front door: the plan's
``deadline`` is false) there is no budget: backpressure bounds the queue, every final is
Whisper's. A run-time stream opened without a deadline (``StreamAttach.deadline`` false:
a front door sending a whole file as fast as the ring takes it) is treated so too, alone:
its jobs are never shed and get the thorough decode (and it gets no Whisper partials), while
live streams keep their budget.

The actor holds a reader slot on the PCM ring whose cursor it keeps at the oldest audio a
pending job still needs, and otherwise a little behind where the first pass's cursor was
half a second ago (jobs travel through the supervisor; the first pass dates utterance starts
back): a file source paced by backpressure (``--fast``) waits for it, and for a live source
the ring's loss counters show when the second pass fell too far behind. An utterance longer
than the ring is refined from the part still held (counted as ``partial_audio``); one with
nothing left falls back (``lost_audio``). Streams opened at run time arrive as
:class:`StreamAttach` / :class:`StreamDetach`.

Early transcription (:mod:`~streamasr.actors.refine.speculation`): when the first pass
reports that an utterance's speech has paused (:class:`SpeechPaused`, 300 ms into the 600 ms
endpoint silence) and nothing else is waiting, its span is transcribed at once; the job that
follows with the same span is answered from that result (counters ``early_runs``,
``early_hits``, ``early_misses``), so the accurate final follows the endpoint immediately.

Accurate partials (``partials = "auto"``): the supervisor also forwards the first pass's
partials; a :class:`~streamasr.actors.refine.partials.PartialScheduler` tracks each
stream's utterance in progress and, every ``partial_interval_ms`` when the job queue is
empty and the measured compute leaves headroom, the audio so far is transcribed again
(:meth:`WhisperRefiner.transcribe_draft`) and local agreement decides the text of a
``pass = 2`` partial under the same utterance id. Without headroom no Whisper partials are
made (counted: ``partials_paused`` / ``partials_resumed``) and the first pass's partials are
shown. ``delay_ms`` (or the file ``<runtime_dir>/refine.delay_ms``, read live) adds CPU work
to every Whisper call: fault injection for tests.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.delay import DelayOverride
from streamasr.actors.errors import RingError
from streamasr.actors.refine.events import (
    agree,
    confident,
    final_transcript,
    partial_transcript,
)
from streamasr.actors.refine.options import RefineOptions, RefineOutput
from streamasr.actors.refine.partials import PartialOptions, PartialScheduler
from streamasr.actors.refine.refiner import WhisperRefiner
from streamasr.actors.refine.speculation import Speculator
from streamasr.actors.refine.stream import RefineStream, read_span, take_batch
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import RefineConfig
from streamasr.ringbuf import Ring

log = logging.getLogger(__name__)

#: Most utterances encoded together in one batch.
MAX_BATCH = 4

#: Seconds without early transcriptions after a fallback (the second pass is behind).
EARLY_OFF_S = 5.0

#: The VAD-trimmed second view is decoded only when the first view's mean token
#: log-probability is below this (see ``RefineOptions.trim_view_logprob``): about half the
#: utterances are confident enough to skip it, which shortens their accurate finals.
TRIM_VIEW_LOGPROB = -0.5


def _attach_spec_rings(rt: ActorRuntime) -> dict[str, RefineStream]:
    """The streams of the spawn spec (ring roles ``in:<stream_id>``)."""
    return {
        role[3:]: RefineStream(Ring.attach(ref.name, reader=ref.reader))
        for role, ref in rt.spec.rings.items()
        if role.startswith("in:")
    }


def _control(streams: dict[str, RefineStream], msg: object) -> None:
    """Streams opened or closed at run time."""
    if isinstance(msg, m.StreamAttach) and msg.stream_id not in streams:
        try:
            streams[msg.stream_id] = RefineStream(Ring.attach(msg.ring, reader=msg.reader))
        except RingError as exc:  # closed again before we got here
            log.warning("cannot attach stream %s: %s", msg.stream_id, exc)
    elif isinstance(msg, m.StreamDetach) and msg.stream_id in streams:
        streams.pop(msg.stream_id).ring.close()


@dataclasses.dataclass(slots=True)
class _Actor:
    """What the loop works with (internal)."""

    rt: ActorRuntime
    streams: dict[str, RefineStream]
    refiner: WhisperRefiner
    load: DelayOverride
    margin_s: float
    sched: PartialScheduler | None
    early: Speculator = dataclasses.field(default_factory=Speculator)
    fallbacks_seen: int = 0
    early_off_until_s: float = 0.0
    #: ``budget_s`` where finals have a deadline, else None (see supervisor.plan).
    budget_s: float | None = None
    #: Run-time streams without a deadline (``StreamAttach.deadline`` false).
    no_deadline: set[str] = dataclasses.field(default_factory=set)
    #: The first pass only segments (``RefineConfig.whisper_led``): its finals have no text,
    #: and every job's span is speech as far as it knows.
    whisper_led: bool = False

    def rings(self) -> dict[str, Ring]:
        return {k: s.ring for k, s in self.streams.items()}

    def heard_words(self, job: m.RefineJob) -> bool:
        """Whether the first pass heard speech in ``job``'s span (words, or, when it only
        segments, the span itself)."""
        return self.whisper_led or bool(job.first_pass.text.strip())


def _scheduler(cfg: Mapping[str, Any]) -> PartialScheduler | None:
    """The accurate-partials scheduler, or None when they are off."""
    if cfg.get("partials", "off") != "auto":
        return None
    interval_ms = float(cfg.get("partial_interval_ms", 500))
    return PartialScheduler(PartialOptions(interval_s=interval_ms / 1000.0))


def run(rt: ActorRuntime) -> None:
    """Actor main."""
    cfg = rt.spec.options["refine"]
    opts = RefineOptions(
        model=cfg["model"],
        cpu_threads=cfg["cpu_threads"],
        trim_view_logprob=TRIM_VIEW_LOGPROB,
        wide_view=bool(cfg.get("wide_view", True)),
        beam_size=int(cfg.get("beam_size", 1)),
        unsure_beam_size=int(cfg.get("unsure_beam_size", 5)),
        language=str(cfg.get("language", "en")),
        task=str(cfg.get("task", "transcribe")),
    )
    with rt.cpu.charge("startup"):  # the model loaded and warmed
        refiner = WhisperRefiner(opts)
        refiner.warm_up()
    refiner.progress = rt.heartbeat
    act = _Actor(
        rt,
        _attach_spec_rings(rt),
        refiner,
        DelayOverride(rt, "refine", float(cfg.get("delay_ms", 0.0))),
        float(cfg["margin_s"]),
        _scheduler(cfg),
        whisper_led=rt.spec.section("refine", RefineConfig).whisper_led(),
    )
    queue: deque[m.RefineJob] = deque()
    eos: list[m.EndOfStream] = []
    if rt.spec.options.get("deadline", True):
        act.budget_s = float(cfg["budget_s"])
    for name in (
        "refined",
        "fallbacks",
        "no_speech",
        "first_pass_kept",
        "lost_audio",
        "partial_audio",
    ):
        rt.counters[name] = 0
    if act.sched is not None:
        for name in ("partial_runs", "partials", "partials_paused", "partials_resumed"):
            rt.counters[name] = 0
    rt.ready()
    try:
        while not rt.stopping:
            msgs, _ = rt.poll(0 if queue else _idle_wait_s(act.sched))
            _receive(act, msgs, queue, eos)
            if act.budget_s is not None:
                _shed(act, queue, int(cfg["max_queue"]), act.budget_s)
            rt.gauges["queue"] = len(queue)
            if queue:
                rates = {k: st.rate for k, st in act.streams.items()}
                with rt.cpu.charge("finals"):
                    _refine(act, take_batch(queue, MAX_BATCH, rates))
            else:
                for done in eos:
                    rt.send(m.EndOfStream(rt.spec.actor_id, done.stream_id, done.end_frame))
                eos.clear()
                with rt.cpu.charge("early"):
                    early = _transcribe_early(act)
                if not early:
                    with rt.cpu.charge("partials"):
                        _partial(act)
            now_s = time.monotonic()
            for sid, st in act.streams.items():
                st.release([j for j in queue if j.stream_id == sid], act.margin_s, now_s)
    finally:
        for st in act.streams.values():
            st.ring.close()


def _idle_wait_s(sched: PartialScheduler | None) -> float:
    """Poll timeout with an empty queue: until the next partial run is due (20-100 ms)."""
    due = sched.next_due_s() if sched is not None and not sched.paused else None
    if due is None:
        return 0.1
    return max(0.02, min(0.1, due - time.monotonic()))


def _receive(
    act: _Actor, msgs: list[object], queue: deque[m.RefineJob], eos: list[m.EndOfStream]
) -> None:
    """Sort the messages of one poll into the queue, the scheduler and stream control."""
    now_s = time.monotonic()
    if act.load.check(now_s) and act.sched is not None:
        act.sched.forget_measurements()  # run times at the old load no longer apply
    for msg in msgs:
        if isinstance(msg, m.SpeechPaused):
            act.early.paused(msg, now_s)
        elif isinstance(msg, m.RefineJob):
            if msg.stream_id not in act.streams:
                _unattached(act, msg)
                continue
            queue.append(msg)
            if (job_st := act.streams.get(msg.stream_id)) is not None:
                job_st.job(msg)
            if act.sched is not None:
                act.sched.finish(msg.stream_id, msg.utterance_id)
        elif isinstance(msg, m.Transcript):
            st = act.streams.get(msg.stream_id)
            if st is not None and not msg.is_final:
                st.partial(msg)
            # no Whisper partials for a stream without a deadline: nobody watches a whole
            # file being sent, and its finals come sooner without them
            if act.sched is not None and st is not None and msg.stream_id not in act.no_deadline:
                act.sched.update(msg, st.ring.sample_rate_hz, now_s)
        elif isinstance(msg, m.EndOfStream):
            eos.append(msg)
        else:
            _control(act.streams, msg)
            if isinstance(msg, m.StreamAttach) and not msg.deadline:
                act.no_deadline.add(msg.stream_id)
            if isinstance(msg, m.StreamDetach):
                act.no_deadline.discard(msg.stream_id)
                act.early.forget_stream(msg.stream_id)
                if act.sched is not None:
                    act.sched.drop_stream(msg.stream_id)


def _unattached(act: _Actor, job: m.RefineJob) -> None:
    """Drop (and count) a job of a stream this actor has not attached: after a restart, the
    jobs sent while it was starting arrive before the run-time streams' ``StreamAttach``
    (sent when it is Ready), and the supervisor re-sends every pending job right after
    those; decided now, the job would fall back to its first-pass final for want of audio."""
    act.rt.counters["jobs_before_attach"] = act.rt.counters.get("jobs_before_attach", 0) + 1
    log.info("utterance %s: its stream is not attached yet (re-sent once it is)", job.utterance_id)


def _shed(act: _Actor, queue: deque[m.RefineJob], max_queue: int, budget_s: float) -> None:
    """Fall back to first-pass finals for jobs beyond the bound or past the budget (a job
    past the budget whose early transcription covers it is answered from that instead: it
    costs nothing). Jobs of streams without a deadline are neither shed nor counted."""
    rt, now = act.rt, time.time_ns()
    live = [j for j in queue if j.stream_id not in act.no_deadline]
    while live and (len(live) > max_queue or now - live[0].t_endpoint_ns > budget_s * 1e9):
        reason = "over_queue" if len(live) > max_queue else "over_budget"
        job = live.pop(0)
        del queue[next(i for i, j in enumerate(queue) if j is job)]
        prompt = _prompt(act, job.stream_id, job.start_frame)
        if reason == "over_budget" and (send := _early_answer(act, job, prompt)) is not None:
            send()
            continue
        rt.counters["fallbacks"] += 1
        rt.counters[reason] = rt.counters.get(reason, 0) + 1
        log.info("utterance %s falls back to its first-pass final (%s)", job.utterance_id, reason)
        _untranscribed(act, job)
        rt.send(dataclasses.replace(job.first_pass, provisional=False))


def _untranscribed(act: _Actor, job: m.RefineJob) -> None:
    """Count (and say) a fallback that loses its words: where Whisper writes every text,
    the first pass's final has none."""
    if act.whisper_led:
        act.rt.counters["untranscribed"] = act.rt.counters.get("untranscribed", 0) + 1
        log.warning("utterance %s: no time to transcribe it (overload); it has no text",
                    job.utterance_id)  # fmt: skip


def _early_answer(act: _Actor, job: m.RefineJob, prompt: str) -> Callable[[], None] | None:
    """What sends ``job``'s final from its early transcription, if one covers it (None:
    there is none, or it found no speech where the first pass heard words; then the job is
    decoded again and decided as usual, see :func:`_answer`)."""
    early = act.early.take(job, prompt)
    if early is None or (early.out is None and act.heard_words(job)):
        return None
    return functools.partial(_answer, act, job, early.out, 0.0, early_s=early.compute_s)


def _refine(act: _Actor, batch: list[m.RefineJob]) -> None:
    """Transcribe a batch of jobs and send their finals in batch order (a job answered from
    its early transcription, or fallen back because its audio is gone, waits for the decodes
    of the jobs before it: finals of a stream never overtake each other)."""
    rt, rings = act.rt, act.rings()
    items: list[tuple[np.ndarray, float]] = []
    jobs: list[m.RefineJob] = []
    prompts: list[str] = []
    sends: list[Callable[[], None] | int] = []  # in batch order: a send, or a decoded job's index
    for job in batch:
        prompt = _prompt(act, job.stream_id, job.start_frame)
        if (send := _early_answer(act, job, prompt)) is not None:  # transcribed at the pause
            sends.append(send)
            continue
        ring = rings.get(job.stream_id)
        got = _audio(act, ring, job) if ring is not None else None
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
            sends.append(functools.partial(_fall_back, act, job))
            continue
        audio, start = got
        if start > job.start_frame:
            rt.counters["partial_audio"] = rt.counters.get("partial_audio", 0) + 1
            log.warning(
                "utterance %s: only its last %.1f s were still in the ring",
                job.utterance_id,
                len(audio) / job.sample_rate_hz,
            )
        sends.append(len(jobs))
        items.append((audio, start / job.sample_rate_hz))
        jobs.append(job)
        prompts.append(prompt)
    answers = _decode(act, jobs, items, prompts) if jobs else []
    for step in sends:
        (answers[step] if isinstance(step, int) else step)()


def _fall_back(act: _Actor, job: m.RefineJob) -> None:
    """Send ``job``'s first-pass text as its final (its audio is no longer in the ring)."""
    _finished(act, job, "")
    _untranscribed(act, job)
    act.rt.send(dataclasses.replace(job.first_pass, provisional=False))


def _decode(
    act: _Actor,
    jobs: list[m.RefineJob],
    items: list[tuple[np.ndarray, float]],
    prompts: list[str],
) -> list[Callable[[], None]]:
    """Decode ``jobs`` in one batch; what sends each one's final, in the same order."""
    t0 = time.perf_counter()
    thorough = [_thorough(act, job.stream_id) for job in jobs]
    outs, reasons = _transcribe(act, items, prompts, thorough)
    heard = [False] * len(jobs)
    for k, (job, out) in enumerate(zip(jobs, outs, strict=True)):
        if out is None and act.heard_words(job):
            # the gate heard speech and Whisper wrote nothing: the first pass stands, unless
            # Whisper's own no-speech rule says it was no speech (noise the gate let through)
            _, gate_heard = act.refiner.heard_speech(items[k][0])
            heard[k] = gate_heard and reasons[k] != "no_speech"
            if not gate_heard:  # a short or cut-off word, too little for the gate
                again = act.refiner.transcribe(
                    *items[k], prompts[k], gate=False, thorough=thorough[k]
                )
                out = confident(again)
                witness = out is not None and agree(out.text, job.first_pass.text)
                outs[k] = out if witness else None
    act.load.burn()
    compute_s = (time.perf_counter() - t0) / len(jobs)
    return [
        functools.partial(_answer, act, job, out, compute_s, keep_first_pass=kept)
        for job, out, kept in zip(jobs, outs, heard, strict=True)
    ]


def _transcribe(
    act: _Actor, items: list[tuple[np.ndarray, float]], prompts: list[str], thorough: list[bool]
) -> tuple[list[RefineOutput | None], list[str]]:
    """Outputs and silence reasons of ``items``: one batch per ``thorough`` setting (one
    batch unless streams with and without a deadline are decoded together)."""
    outs: list[RefineOutput | None] = [None] * len(items)
    reasons = [""] * len(items)
    for flag in sorted(set(thorough)):
        idx = [k for k, f in enumerate(thorough) if f == flag]
        got = act.refiner.transcribe_batch(
            [items[k] for k in idx], [prompts[k] for k in idx], thorough=flag
        )
        for k, out, why in zip(idx, got, act.refiner.silence_reasons, strict=True):
            outs[k], reasons[k] = out, why
    return outs, reasons


def _thorough(act: _Actor, stream_id: str = "") -> bool:
    """Whether unsure finals whose two short views agree also get the wide view: only
    where finals have no deadline (files or stdin read ``--fast``, no front door; or a
    run-time stream opened without one). Live streams favour latency: the extra 30
    s-window decode costs about half a second per unsure final, and under load (measured:
    two Wyoming connections, a killed first pass) it pushed finals past ``budget_s`` into
    first-pass fallbacks. Where Whisper writes every text (``whisper_led``) there is no
    first-pass text to fall back on, so its unsure finals are decoded thoroughly always
    (an espeak-ng "Guten Morgen, wie geht es dir heute?" read as no speech in the short
    window came out right in the wide view with beam 5)."""
    return act.whisper_led or act.budget_s is None or stream_id in act.no_deadline


def _prompt(act: _Actor, stream_id: str, start_frame: int) -> str:
    """The prompt of an utterance starting at ``start_frame`` (see RefineStream.prompt)."""
    st = act.streams.get(stream_id)
    return st.prompt(start_frame) if st is not None else ""


def _finished(act: _Actor, job: m.RefineJob, text: str) -> None:
    st = act.streams.get(job.stream_id)
    if st is not None:
        st.finished(job, text)


def _answer(
    act: _Actor,
    job: m.RefineJob,
    out: RefineOutput | None,
    compute_s: float,
    *,
    early_s: float = 0.0,
    keep_first_pass: bool = False,
) -> None:
    """Send the final of ``job``.

    Whisper's text; or, when the speech gate heard speech but Whisper wrote nothing
    (``keep_first_pass``), the first-pass text (``pass`` 1, not provisional; counted as
    ``first_pass_kept``): an accurate final is never empty where there was speech. Where
    neither the gate nor Whisper (run without the gate, and then only where it agrees with the
    first pass on a word) found speech, or Whisper's no-speech rule rejected what the gate
    let through, the first pass's words were noise, and the final is empty (``no_speech``).
    """
    rt = act.rt
    text = out.text.strip() if out is not None else ""
    if not text and keep_first_pass:
        rt.counters["first_pass_kept"] = rt.counters.get("first_pass_kept", 0) + 1
        log.info("utterance %s: Whisper wrote nothing for speech; its first-pass text stands",
                 job.utterance_id)  # fmt: skip
        _finished(act, job, "")
        rt.send(dataclasses.replace(job.first_pass, provisional=False))
        return
    _finished(act, job, text)
    rt.send(final_transcript(job, out, compute_s, early_s=early_s))
    rt.counters["refined" if text else "no_speech"] += 1


def _transcribe_early(act: _Actor) -> bool:
    """Transcribe the newest paused utterance now (see :mod:`.whisper.speculation`).

    True if a pause was taken (and the loop should poll again before anything else).
    """
    now_s = time.monotonic()
    if act.rt.counters["fallbacks"] != act.fallbacks_seen:  # behind: no early work for a while
        act.fallbacks_seen = act.rt.counters["fallbacks"]
        act.early_off_until_s = now_s + EARLY_OFF_S
    if now_s < act.early_off_until_s:
        act.early.clear()
        return False
    pause = act.early.next_pause(now_s)
    if pause is None:
        return False
    ring = act.rings().get(pause.stream_id)
    lo, hi = _span(act, pause.stream_id, pause.start_frame, pause.end_frame, pause.sample_rate_hz)
    if ring is None or ring.write_counter < hi:
        return True  # its audio (with the margin) is not all written yet: leave it to the job
    got = read_span(ring, lo, hi)
    if got is None:
        return True
    audio, start = got
    prompt = _prompt(act, pause.stream_id, pause.start_frame)
    t0 = time.perf_counter()
    out = act.refiner.transcribe(
        audio, start / pause.sample_rate_hz, prompt, thorough=_thorough(act, pause.stream_id)
    )  # as the job's own decode would be: the job takes this result as its final
    act.load.burn()
    act.early.store(pause, out, time.perf_counter() - t0, prompt)
    for name in ("runs", "hits", "misses"):
        act.rt.counters[f"early_{name}"] = getattr(act.early, name)
    return True


def _partial(act: _Actor) -> None:
    """Run Whisper on the most overdue utterance in progress, if any and if there is room."""
    sched, rt = act.sched, act.rt
    if sched is None:
        return
    paused = sched.paused
    utt = sched.due(time.monotonic(), 0)
    if sched.paused != paused:
        p95 = sched.p95_s(time.monotonic()) or 0.0
        log.info(
            "accurate partials %s (p95 run %.0f ms, %d utterances in progress)",
            "paused" if sched.paused else "resumed",
            1000 * p95,
            len(sched.utterances),
        )
    _partial_gauges(act)
    if utt is None:
        return
    ring = act.rings().get(utt.latest.stream_id)
    got = None
    if ring is not None:
        lo, hi = _span(
            act, utt.latest.stream_id, utt.start_frame, utt.end_frame, utt.sample_rate_hz
        )
        got = read_span(ring, lo, min(ring.write_counter, hi))
    utt.ran_to = utt.end_frame
    if got is None:
        utt.due_s += sched.options.interval_s
        return
    audio, start = got
    t0 = time.perf_counter()
    out = act.refiner.transcribe_draft(audio, start / utt.sample_rate_hz)
    act.load.burn()
    compute_s = time.perf_counter() - t0
    sched.record(utt, compute_s, time.monotonic())
    rt.counters["partial_runs"] += 1
    log.debug("partial run %s: %.1f s of audio, %.0f ms", utt.latest.utterance_id,
              len(audio) / utt.sample_rate_hz, 1000 * compute_s)  # fmt: skip
    if out is not None:
        rt.send(partial_transcript(utt, out, compute_s))
        rt.counters["partials"] += 1


def _partial_gauges(act: _Actor) -> None:
    sched = act.sched
    assert sched is not None
    p95 = sched.p95_s(time.monotonic())
    act.rt.gauges["partials_on"] = 0.0 if sched.paused else 1.0
    act.rt.gauges["partial_p95_ms"] = 1000.0 * p95 if p95 is not None else 0.0
    act.rt.counters["partials_paused"] = sched.pauses
    act.rt.counters["partials_resumed"] = sched.resumes


def _span(
    act: _Actor, stream_id: str, start: int, end: int, rate_hz: int, continued: bool = False
) -> tuple[int, int]:
    """Frames to transcribe for an utterance: margins on both sides, none across a cut in
    continuing speech (see :meth:`RefineStream.span`)."""
    margin = int(act.margin_s * rate_hz)
    st = act.streams.get(stream_id)
    if st is None:
        return max(0, start - margin), end + (0 if continued else margin)
    return st.span(start, end, continued, margin)


def _audio(act: _Actor, ring: Ring, job: m.RefineJob) -> tuple[np.ndarray, int] | None:
    """The job's samples plus margins from the ring and the stream position of the first.

    When the head of the utterance was overwritten already (an utterance longer than the
    ring holds, or a job that arrived too late), the part from this reader's cursor on is
    returned: the writer never overwrites audio at or after the cursor. None if nothing of
    the utterance is left.
    """
    lo, hi = _span(
        act, job.stream_id, job.start_frame, job.end_frame, job.sample_rate_hz, job.continued
    )
    return read_span(ring, lo, min(ring.write_counter, hi))
