"""Per-stream publication bookkeeping (pure; no sockets).

The supervisor publishes every transcript through a :class:`StreamBook`, which

* numbers events per stream (``seq``), so a subscriber can see gaps;
* drops what a restarted actor repeats: a replacement inference process re-decodes the
  utterance that was in flight, so a first-pass final or partial that lies within an
  already-published final of the same stream is a duplicate;
* tracks refine jobs in flight, so they can be re-sent to a restarted refine actor, and
  publishes exactly one accurate final per job;
* keeps the finals published so far (bounded), for late joiners, msgpack-encoded: a
  final held as objects costs about four times its encoded size (a 5-word final about
  1.9 kB against 0.5 kB: each word's list, string and three floats), and a late joiner's
  request is rare, so the history is decoded only when asked for;
* masks listed words in first-pass text (:mod:`.mask`: PocketSphinx's profanity false
  alarms) before anything is published;
* forgets a stream that has ended (:meth:`StreamBook.forget`), adding its counters to
  totals over every ended stream, so what it keeps grows with the streams open, not with
  the streams ever served;
* merges the partials of the two passes into one stream per utterance
  (:mod:`.merge`): once Whisper partials exist, every partial of the utterance is
  ``pass = 2`` (Whisper's words, then the first pass's words for the audio after them),
  committed words are never retracted, and the provisional final is shown the same way;
  a partial that would not change the display, and a pass-2 partial arriving after the
  utterance's final, are not published.

Every consumer (terminal, web page, gateway protocols, Wyoming) reads the stream published
here, so they all see the merged, masked partials.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from streamasr.actors import messages as m
from streamasr.supervisor.mask import WordMask
from streamasr.supervisor.merge import PartialMerger

#: Seconds of overlap below which two finals of one stream count as different utterances.
OVERLAP_TOLERANCE_S = 0.05

#: Utterance ids per stream remembered as finished (late pass-2 partials are dropped).
FINISHED_KEEP = 64

#: Keys of :meth:`StreamBook.ended`: totals over the streams forgotten.
ENDED_KEYS = (
    "streams",
    "events",
    "finals",
    "duplicates",
    "refine_pending",
    "partials_suppressed",
    "masked_words",
    "gaps",
)


@dataclass(slots=True)
class _Stream:
    seq: int = 0
    last_final_end_s: float = -1.0
    pending: OrderedDict[str, m.RefineJob] = field(default_factory=OrderedDict)
    dropped: set[str] = field(default_factory=set)
    finals: int = 0
    duplicates: int = 0
    suppressed: int = 0
    masked: int = 0
    merger: PartialMerger = field(default_factory=PartialMerger)
    finished: deque[str] = field(default_factory=lambda: deque(maxlen=FINISHED_KEEP))


class StreamBook:
    """Sequence numbers, duplicate suppression, refine jobs in flight, history, and the
    masked, merged partial stream."""

    def __init__(self, history: int = 1000, *, mask: WordMask | None = None) -> None:
        """Keep at most ``history`` finals for late joiners; mask with ``mask`` (default:
        the built-in word list, no grammar words kept)."""
        self._streams: dict[str, _Stream] = {}
        self._ended: dict[str, int] = dict.fromkeys(ENDED_KEYS, 0)
        self._history: deque[bytes] = deque(maxlen=max(1, history))  # m.encode(final)
        self._history_on = history > 0
        self._mask = mask if mask is not None else WordMask()

    def _get(self, stream_id: str) -> _Stream:
        return self._streams.setdefault(stream_id, _Stream())

    def publish(self, t: m.Transcript, *, from_refine: bool = False) -> m.Transcript | None:
        """Return ``t`` (masked, merged) numbered for publication, or None if it is a
        duplicate or would not change what is shown."""
        s = self._get(t.stream_id)
        if not t.text and not from_refine:
            self._textless(s, t)
            return None
        if from_refine and not t.is_final:
            out = self._accurate_partial(s, t)
        elif from_refine:
            out = self._refine_final(s, t)
        elif t.start_s < s.last_final_end_s - OVERLAP_TOLERANCE_S:
            s.duplicates += 1
            if t.is_final:
                s.dropped.add(t.utterance_id)
            out = None
        elif t.is_final:
            s.last_final_end_s = max(s.last_final_end_s, t.end_s)
            out = self._masked(s, t)
            if out.provisional:
                out = s.merger.provisional_final(out)
        else:
            out = s.merger.first_pass(self._masked(s, t))
            if out is None:
                s.suppressed += 1
        if out is None:
            return None
        if out.is_final:
            s.finished.append(out.utterance_id)
            s.merger.finish(out.utterance_id)
        s.seq += 1
        out = dataclasses.replace(out, seq=s.seq)
        if out.is_final and not out.provisional:
            s.finals += 1
            if self._history_on:
                self._history.append(m.encode(out))
        return out

    def _textless(self, s: _Stream, t: m.Transcript) -> None:
        """A first-pass transcript with no words is not published: a first pass that only
        segments (the Whisper-led mode) sends spans; its final still marks the utterance
        done, so a replacement's re-decoded span is dropped as a repeat. (An accurate final
        with no words is published: it retracts its provisional final.)"""
        if t.is_final:
            if t.start_s < s.last_final_end_s - OVERLAP_TOLERANCE_S:
                s.duplicates += 1
                s.dropped.add(t.utterance_id)
            else:
                s.last_final_end_s = max(s.last_final_end_s, t.end_s)

    def _masked(self, s: _Stream, t: m.Transcript) -> m.Transcript:
        out, n = self._mask.transcript(t)
        s.masked += n
        return out

    def _accurate_partial(self, s: _Stream, t: m.Transcript) -> m.Transcript | None:
        """A pass-2 partial merged for publication (None after its utterance's final, or
        when the display would not change)."""
        if t.utterance_id in s.finished or t.start_s < s.last_final_end_s - OVERLAP_TOLERANCE_S:
            s.suppressed += 1
            return None
        out = s.merger.second_pass(self._masked(s, t))
        if out is None:
            s.suppressed += 1
        return out

    def _refine_final(self, s: _Stream, t: m.Transcript) -> m.Transcript | None:
        """The answer to a refine job: the accurate final (all of its words Whisper's), or
        the first-pass final it fell back to (masked); None if no job waits for it."""
        if s.pending.pop(t.utterance_id, None) is None:
            s.duplicates += 1
            return None
        out = self._masked(s, t)
        if out.passno == 2:
            out = dataclasses.replace(out, second_pass_words=len(out.text.split()))
        return out

    def add_job(self, job: m.RefineJob) -> bool:
        """Record a refine job; False if its first-pass final was a dropped duplicate."""
        s = self._get(job.stream_id)
        if job.utterance_id in s.dropped:
            s.dropped.discard(job.utterance_id)
            return False
        s.pending[job.utterance_id] = job
        return True

    def pending_jobs(self) -> list[m.RefineJob]:
        """Refine jobs not yet answered, oldest first per stream."""
        return [j for s in self._streams.values() for j in s.pending.values()]

    def has_pending(self, stream_id: str) -> bool:
        """Whether ``stream_id`` still waits for an accurate final."""
        s = self._streams.get(stream_id)
        return bool(s and s.pending)

    def history(self) -> list[m.Transcript]:
        """Finals published so far, oldest first (decoded afresh at each call)."""
        return [m.decode(b, m.Transcript) for b in self._history]

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-stream counts of the streams not forgotten: events, finals, duplicates
        dropped, refine jobs pending, partials not published (they would not change the
        display, or a pass-2 one came after its final) and words masked in the transcripts
        received."""
        return {sid: _counts(s) for sid, s in self._streams.items()}

    def forget(self, stream_id: str, gaps: int = 0) -> None:
        """Drop an ended stream's state; add its counters (and its ``gaps`` capture gaps)
        to :meth:`ended`. A later event of that id starts a new stream (seq 1)."""
        s = self._streams.pop(stream_id, None)
        counts = _counts(s) if s is not None else {}
        counts["streams"] = 1
        counts["gaps"] = gaps
        for key in ENDED_KEYS:
            self._ended[key] += counts.get(key, 0)

    def ended(self) -> dict[str, int]:
        """Totals over the forgotten streams: ``streams`` (how many), ``gaps``, and the
        sum of each :meth:`counters` key (``refine_pending``: jobs never answered)."""
        return dict(self._ended)


def _counts(s: _Stream) -> dict[str, int]:
    """One stream's counters (see :meth:`StreamBook.counters`)."""
    return {
        "events": s.seq,
        "finals": s.finals,
        "duplicates": s.duplicates,
        "refine_pending": len(s.pending),
        "partials_suppressed": s.suppressed,
        "masked_words": s.masked,
    }
