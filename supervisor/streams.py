"""Per-stream publication bookkeeping (pure; no sockets).

The supervisor publishes every transcript through a :class:`StreamBook`, which

* numbers events per stream (``seq``), so a subscriber can see gaps;
* drops what a restarted actor repeats: a replacement inference process re-decodes the
  utterance that was in flight, so a first-pass final or partial that lies within an
  already-published final of the same stream is a duplicate;
* tracks refine jobs in flight, so they can be re-sent to a restarted refine actor, and
  publishes exactly one accurate final per job;
* keeps the finals published so far (bounded), for late joiners;
* arbitrates partials between the passes: once an utterance has an accurate (pass 2)
  partial, its first-pass partials are held back (a display would otherwise flicker between
  the two), unless no pass-2 partial came for ``partial_hold_s`` (the refine actor stopped
  them under load: first-pass partials show again); a pass-2 partial arriving after the
  utterance's final is dropped. Finals are not affected.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from streamasr.actors import messages as m

#: Seconds of overlap below which two finals of one stream count as different utterances.
OVERLAP_TOLERANCE_S = 0.05

#: Seconds without a pass-2 partial after which first-pass partials show again: 1.5 x the
#: default ``refine.partial_interval_ms`` (500 ms).
PARTIAL_HOLD_S = 0.75

#: Utterance ids per stream remembered as finished (late pass-2 partials are dropped).
FINISHED_KEEP = 64


@dataclass(slots=True)
class _Stream:
    seq: int = 0
    last_final_end_s: float = -1.0
    pending: OrderedDict[str, m.RefineJob] = field(default_factory=OrderedDict)
    dropped: set[str] = field(default_factory=set)
    finals: int = 0
    duplicates: int = 0
    suppressed: int = 0
    accurate_uid: str = ""  # utterance whose pass-2 partials are showing
    accurate_at_s: float = 0.0  # clock time of its last pass-2 partial
    finished: deque[str] = field(default_factory=lambda: deque(maxlen=FINISHED_KEEP))


class StreamBook:
    """Sequence numbers, duplicate suppression, refine jobs in flight and history."""

    def __init__(
        self,
        history: int = 1000,
        *,
        partial_hold_s: float = PARTIAL_HOLD_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep at most ``history`` finals for late joiners; show first-pass partials again
        ``partial_hold_s`` seconds (of ``clock``) after an utterance's last pass-2 partial."""
        self._streams: dict[str, _Stream] = {}
        self._history: deque[m.Transcript] = deque(maxlen=max(1, history))
        self._history_on = history > 0
        self._hold_s = partial_hold_s
        self._clock = clock

    def _get(self, stream_id: str) -> _Stream:
        return self._streams.setdefault(stream_id, _Stream())

    def publish(self, t: m.Transcript, *, from_refine: bool = False) -> m.Transcript | None:
        """Return ``t`` numbered for publication, or None if it is a duplicate or held back."""
        s = self._get(t.stream_id)
        if from_refine and not t.is_final:
            if not self._accurate_partial(s, t):
                return None
        elif from_refine:
            if s.pending.pop(t.utterance_id, None) is None:
                s.duplicates += 1
                return None
        elif t.start_s < s.last_final_end_s - OVERLAP_TOLERANCE_S:
            s.duplicates += 1
            if t.is_final:
                s.dropped.add(t.utterance_id)
            return None
        elif t.is_final:
            s.last_final_end_s = max(s.last_final_end_s, t.end_s)
        elif self._held(s, t):
            return None
        if t.is_final:
            s.finished.append(t.utterance_id)
            if s.accurate_uid == t.utterance_id:
                s.accurate_uid = ""
        s.seq += 1
        out = dataclasses.replace(t, seq=s.seq)
        if out.is_final and not out.provisional:
            s.finals += 1
            if self._history_on:
                self._history.append(out)
        return out

    def _accurate_partial(self, s: _Stream, t: m.Transcript) -> bool:
        """Whether a pass-2 partial is published (not after its utterance's final)."""
        if t.utterance_id in s.finished or t.start_s < s.last_final_end_s - OVERLAP_TOLERANCE_S:
            s.suppressed += 1
            return False
        s.accurate_uid, s.accurate_at_s = t.utterance_id, self._clock()
        return True

    def _held(self, s: _Stream, t: m.Transcript) -> bool:
        """Whether a first-pass partial is held back behind its utterance's pass-2 ones."""
        if t.utterance_id != s.accurate_uid or self._clock() - s.accurate_at_s > self._hold_s:
            return False
        s.suppressed += 1
        return True

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
        """Finals published so far, oldest first."""
        return list(self._history)

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-stream counts: events, finals, duplicates dropped, refine jobs pending and
        partials held back (first-pass ones behind pass-2 ones, late pass-2 ones)."""
        return {
            sid: {
                "events": s.seq,
                "finals": s.finals,
                "duplicates": s.duplicates,
                "refine_pending": len(s.pending),
                "partials_suppressed": s.suppressed,
            }
            for sid, s in self._streams.items()
        }
