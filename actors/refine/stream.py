"""The refine actor's view of one stream: its PCM ring, what must stay in it, and context.

Pure bookkeeping over a :class:`~streamasr.ringbuf.Ring` reader slot (no sockets):

* the cursor is released only past audio that no queued job, no job still travelling through
  the supervisor and no *utterance in progress* can need: the first pass's partials carry
  their utterance's start, and the cursor stays before it, so a long utterance keeps its
  beginning in the ring (a file paced by backpressure waits for it; a live source keeps it
  as long as the ring holds it, and counts what it overwrites);
* the stream's last accurate final (end frame, text) is the prompt of an utterance that
  continues it (a monologue the first pass split at a pause, see
  ``PocketsphinxOptions.max_utterance_s``), so the split costs no context; such a job is
  never batched with the job it continues (its prompt is that job's result), which keeps
  results the same from run to run.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.errors import RingError
from streamasr.actors.refine.filters import has_repeated_phrase, words_of
from streamasr.ringbuf import Ring

__all__ = [
    "CONTEXT_GAP_S",
    "FOLLOW_HOLD_S",
    "FOLLOW_LOOKBACK_S",
    "PCM_READER_INFERENCE",
    "PROMPT_REPEAT_WORDS",
    "RefineStream",
    "read_span",
    "take_batch",
]

#: Reader slot of the first pass on the PCM ring (see supervisor.plan).
PCM_READER_INFERENCE = 0

#: Seconds an observed first-pass cursor must age before the refine cursor follows it: a
#: job for audio before that cursor was sent before the observation and travels through
#: the supervisor, so it has this long to arrive before its audio may be overwritten.
FOLLOW_HOLD_S = 0.5

#: Seconds kept behind the first pass's cursor beyond the margin: the first pass commits
#: its cursor while it is still deciding whether speech began, and then dates the utterance
#: start back by its pre-roll (measured: up to ~0.4 s before the committed cursor).
FOLLOW_LOOKBACK_S = 2.0

#: Seconds of pause at most between an utterance and the previous one for the previous
#: accurate final to be its prompt (continuous speech the first pass split).
CONTEXT_GAP_S = 0.5

#: A previous text with a phrase of this many words said twice is not given as the
#: prompt: Whisper conditioned on repetition skips the next one (real dialogue: "Ah,
#: that's a good story." said twice came out once after "Do you hear me? Yes. Do you hear
#: me? Yes. ..."; without the prompt both copies stay).
PROMPT_REPEAT_WORDS = 4


class RefineStream:
    """One stream's PCM ring, the first-pass cursors seen on it, the utterance in progress
    and the last accurate final."""

    def __init__(self, ring: Ring) -> None:
        """Track ``ring`` (attached with this actor's reader slot)."""
        self.ring = ring
        self.seen: deque[tuple[float, int]] = deque()
        #: (utterance id, first frame) of the utterance in progress, from its partials.
        self.open: tuple[str, int] | None = None
        #: (end frame, text) of the last accurate final.
        self.context: tuple[int, str] | None = None
        #: End frame of the last job the first pass cut in a pause of continuing speech:
        #: the utterance starting there gets no margin before it (see :meth:`span`).
        self.cut_frame: int | None = None

    def partial(self, t: m.Transcript) -> None:
        """Note a first-pass partial: its utterance is in progress."""
        start = round(t.start_s * self.ring.sample_rate_hz)
        if self.open is None or self.open[0] != t.utterance_id:
            self.open = (t.utterance_id, start)

    def job(self, job: m.RefineJob) -> None:
        """Note a job: its utterance is no longer in progress."""
        if self.open is not None and self.open[0] == job.utterance_id:
            self.open = None

    def finished(self, job: m.RefineJob, text: str) -> None:
        """Note the accurate final of ``job`` ("" when there is none: no context)."""
        self.context = (job.end_frame, text) if text else None
        self.cut_frame = job.end_frame if job.continued else None

    def span(
        self, start_frame: int, end_frame: int, continued: bool, margin: int
    ) -> tuple[int, int]:
        """Ring frames ``[lo, hi)`` to transcribe for the utterance ``[start_frame,
        end_frame)``: ``margin`` frames added on each side, except across a cut in continuing
        speech (``continued``: the audio after the end is the next utterance's; a start at
        :attr:`cut_frame`: the audio before it was the previous one's), so a word next to
        the cut is transcribed once, whole, in the utterance it belongs to."""
        lo = start_frame if start_frame == self.cut_frame else start_frame - margin
        hi = end_frame if continued else end_frame + margin
        return max(0, lo), hi

    def prompt(self, start_frame: int) -> str:
        """The previous accurate final's text if the utterance at ``start_frame`` continues
        it (at most :data:`CONTEXT_GAP_S` after its end) and does not repeat itself (a
        phrase of :data:`PROMPT_REPEAT_WORDS` words said twice), else ""."""
        if self.context is None:
            return ""
        end, text = self.context
        gap = start_frame - end
        if not -self.ring.sample_rate_hz <= gap <= CONTEXT_GAP_S * self.rate:
            return ""
        return "" if has_repeated_phrase(words_of(text), PROMPT_REPEAT_WORDS) else text

    @property
    def rate(self) -> int:
        """Sample rate of the ring in Hz."""
        return self.ring.sample_rate_hz

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
        overwrites before the cursor moves); never past the start of the utterance in
        progress, less the margin.
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
        if self.open is not None:
            target = min(target, self.open[1] - margin)
        target = min(max(target, ring.read_counter), ring.write_counter)
        if target != ring.read_counter:
            ring.seek(target)


def take_batch(queue: deque[m.RefineJob], most: int, rate_of: dict[str, int]) -> list[m.RefineJob]:
    """Up to ``most`` jobs from the front of ``queue`` for one batch.

    A job that starts within :data:`CONTEXT_GAP_S` of a job of its stream already in the
    batch continues it and needs its result as prompt: the batch ends before it.
    ``rate_of``: sample rate (Hz) per stream id.
    """
    batch: list[m.RefineJob] = []
    while queue and len(batch) < most:
        job = queue[0]
        rate = rate_of.get(job.stream_id, job.sample_rate_hz)
        if any(
            b.stream_id == job.stream_id and job.start_frame - b.end_frame <= CONTEXT_GAP_S * rate
            for b in batch
        ):
            break
        batch.append(queue.popleft())
    return batch


def read_span(ring: Ring, start: int, end: int) -> tuple[np.ndarray, int] | None:
    """Frames [start, end) of ``ring`` (or from its cursor on, if ``start`` is overwritten)
    as mono float32, with the stream position of the first; None if nothing is left."""
    for first in (start, ring.read_counter):
        if first >= end:
            break
        out = np.empty((end - first, 1), dtype=np.float32)
        try:
            n = ring.read_at(first, out)
        except RingError:
            continue
        return np.ascontiguousarray(out[:n, 0]), first
    return None
