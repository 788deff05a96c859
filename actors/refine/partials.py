"""When to re-run Whisper on the utterances in progress (pure; injected clock, no model).

The refine actor learns of each stream's utterance in progress from the first pass's
partials (forwarded by the supervisor): its start frame comes from the utterance id
(``"<stream>:<start frame>"``), its end from the partial's length. Every ``interval_s`` per
utterance, if there is headroom, the audio so far is transcribed again and local agreement
(:mod:`.agreement`) decides what is shown.

Headroom rule (:meth:`PartialScheduler.headroom`): the refine job queue is empty (accurate
finals always come first) *and* ``p95(recent partial compute) x active utterances <=
budget_share x interval_s``, i.e. keeping every active utterance's partials on time would
use at most ``budget_share`` (default half) of the refine actor's time. Measurements older
than ``sample_ttl_s`` are forgotten, so after a pause the scheduler probes again with one run
and stays paused unless that run was fast enough. Losing and regaining compute headroom
is counted (``pauses`` / ``resumes``); while paused, subscribers see the first pass's
partials.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.refine.agreement import LocalAgreement

__all__ = ["PartialOptions", "PartialScheduler", "Utterance", "start_frame_of"]


@dataclass(frozen=True, slots=True)
class PartialOptions:
    """Options of :class:`PartialScheduler`.

    Attributes:
        interval_s: seconds between two Whisper runs on one utterance.
        budget_share: share of ``interval_s`` the measured compute of all active
            utterances' runs may fill (0.5: at most half the refine actor's time).
        samples: how many recent run times the p95 is taken over.
        sample_ttl_s: run times older than this many seconds are forgotten.
        idle_s: an utterance without a first-pass partial for this long is dropped (its
            final had no text, so no refine job will end it).
        min_audio_s: no run before the utterance holds this many seconds of audio.
        quiet_s: no run when the newest first-pass partial is older than this many seconds:
            the speaker has likely stopped, the endpoint's accurate final is coming, and a
            run then would only delay it.
    """

    interval_s: float = 0.5
    budget_share: float = 0.5
    samples: int = 8
    sample_ttl_s: float = 3.0
    idle_s: float = 5.0
    min_audio_s: float = 0.5
    quiet_s: float = 0.4


@dataclass(slots=True)
class Utterance:
    """One utterance in progress (frames are stream positions on the PCM ring).

    Attributes:
        latest: the newest first-pass partial of it.
        start_frame: first frame of the utterance (from its id).
        end_frame: frame after the newest first-pass partial's end.
        sample_rate_hz: frames per second of the stream.
        seen_s: clock time (seconds) the newest partial arrived.
        due_s: clock time of the next run.
        ran_to: ``end_frame`` at the last run (no new run without new audio).
        agreement: local-agreement state over the runs.
    """

    latest: m.Transcript
    start_frame: int
    end_frame: int
    sample_rate_hz: int
    seen_s: float
    due_s: float
    ran_to: int = -1
    agreement: LocalAgreement = field(default_factory=LocalAgreement)


def start_frame_of(utterance_id: str) -> int | None:
    """Start frame encoded in an utterance id ``"<stream>:<frame>"`` (None if malformed)."""
    _, _, tail = utterance_id.rpartition(":")
    return int(tail) if tail.isdigit() else None


class PartialScheduler:
    """Tracks utterances in progress, decides which one to run next, measures headroom."""

    def __init__(self, options: PartialOptions | None = None, finished_keep: int = 256) -> None:
        """Nothing tracked yet; the ids of the last ``finished_keep`` finished utterances
        are remembered so that their late partials are ignored."""
        self.options = options if options is not None else PartialOptions()
        self.utterances: dict[str, Utterance] = {}  # by stream id
        self._finished: deque[str] = deque(maxlen=max(1, finished_keep))
        self._runs: deque[tuple[float, float]] = deque(maxlen=max(1, self.options.samples))
        self.paused = False
        self.pauses = 0
        self.resumes = 0

    def update(self, t: m.Transcript, sample_rate_hz: int, now_s: float) -> None:
        """Record a forwarded first-pass partial of stream ``t.stream_id``."""
        start = start_frame_of(t.utterance_id)
        if start is None or t.is_final or t.utterance_id in self._finished:
            return
        end = start + max(0, round((t.end_s - t.start_s) * sample_rate_hz))
        cur = self.utterances.get(t.stream_id)
        if cur is None or cur.latest.utterance_id != t.utterance_id:
            due_s = now_s + self.options.interval_s
            self.utterances[t.stream_id] = Utterance(t, start, end, sample_rate_hz, now_s, due_s)
            return
        cur.latest, cur.seen_s = t, now_s
        cur.end_frame = max(cur.end_frame, end)

    def finish(self, stream_id: str, utterance_id: str) -> None:
        """The utterance ended (its refine job arrived): stop running it."""
        self._finished.append(utterance_id)
        cur = self.utterances.get(stream_id)
        if cur is not None and cur.latest.utterance_id == utterance_id:
            del self.utterances[stream_id]

    def drop_stream(self, stream_id: str) -> None:
        """Forget the stream's utterance in progress (the stream closed)."""
        self.utterances.pop(stream_id, None)

    def record(self, utt: Utterance, compute_s: float, now_s: float) -> None:
        """A run of ``utt`` took ``compute_s`` seconds; schedule its next run."""
        self._runs.append((now_s, compute_s))
        utt.due_s = max(utt.due_s + self.options.interval_s, now_s)

    def forget_measurements(self) -> None:
        """Drop the run times (the load changed, they no longer apply)."""
        self._runs.clear()

    def p95_s(self, now_s: float) -> float | None:
        """p95 of the run times of the last ``sample_ttl_s`` seconds (None if none)."""
        ttl = self.options.sample_ttl_s
        while self._runs and self._runs[0][0] < now_s - ttl:
            self._runs.popleft()
        if not self._runs:
            return None
        return float(np.percentile([c for _, c in self._runs], 95))

    def active(self, now_s: float) -> int:
        """Utterances in progress, after dropping those idle longer than ``idle_s``."""
        idle = [s for s, u in self.utterances.items() if now_s - u.seen_s > self.options.idle_s]
        for sid in idle:
            del self.utterances[sid]
        return len(self.utterances)

    def headroom(self, now_s: float) -> bool:
        """Whether the measured compute leaves room for every active utterance's runs.

        Without recent measurements a run is allowed (a probe) and ``paused`` is left as it
        is; with them, ``paused`` follows the rule and its transitions are counted in
        ``pauses`` / ``resumes``.
        """
        o = self.options
        p95 = self.p95_s(now_s)
        if p95 is None:
            return True
        ok = p95 * max(1, self.active(now_s)) <= o.budget_share * o.interval_s
        if ok == self.paused:
            self.paused = not ok
            if ok:
                self.resumes += 1
            else:
                self.pauses += 1
        return ok

    def due(self, now_s: float, queue_len: int) -> Utterance | None:
        """The utterance to run now (the most overdue one with new audio), or None.

        None when the refine queue holds jobs, when there is no compute headroom, or when no
        utterance is due (due: its interval passed, it has new audio since its last run, at
        least ``min_audio_s`` of it, and a first-pass partial within ``quiet_s``).
        """
        if queue_len > 0 or not self.utterances:
            return None
        min_audio = self.options.min_audio_s
        ready = [
            u
            for u in self.utterances.values()
            if u.due_s <= now_s
            and now_s - u.seen_s <= self.options.quiet_s
            and u.end_frame > u.ran_to
            and u.end_frame - u.start_frame >= min_audio * u.sample_rate_hz
        ]
        if not ready or not self.headroom(now_s):
            return None
        return min(ready, key=lambda u: u.due_s)

    def next_due_s(self) -> float | None:
        """Clock time of the earliest scheduled run (None if nothing is tracked)."""
        return min((u.due_s for u in self.utterances.values()), default=None)
