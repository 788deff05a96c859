"""Per-stream publication bookkeeping (pure; no sockets).

The supervisor publishes every transcript through a :class:`StreamBook`, which

* numbers events per stream (``seq``), so a subscriber can see gaps;
* drops what a restarted actor repeats: a replacement inference process re-decodes the
  utterance that was in flight, so a first-pass final or partial that lies within an
  already-published final of the same stream is a duplicate;
* tracks refine jobs in flight, so they can be re-sent to a restarted refine actor, and
  publishes exactly one accurate final per job;
* keeps the finals published so far (bounded), for late joiners.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from streamasr.actors import messages as m

#: Seconds of overlap below which two finals of one stream count as different utterances.
OVERLAP_TOLERANCE_S = 0.05


@dataclass(slots=True)
class _Stream:
    seq: int = 0
    last_final_end_s: float = -1.0
    pending: OrderedDict[str, m.RefineJob] = field(default_factory=OrderedDict)
    dropped: set[str] = field(default_factory=set)
    finals: int = 0
    duplicates: int = 0


class StreamBook:
    """Sequence numbers, duplicate suppression, refine jobs in flight and history."""

    def __init__(self, history: int = 1000) -> None:
        """Keep at most ``history`` finals for late joiners."""
        self._streams: dict[str, _Stream] = {}
        self._history: deque[m.Transcript] = deque(maxlen=max(1, history))
        self._history_on = history > 0

    def _get(self, stream_id: str) -> _Stream:
        return self._streams.setdefault(stream_id, _Stream())

    def publish(self, t: m.Transcript, *, from_refine: bool = False) -> m.Transcript | None:
        """Return ``t`` numbered for publication, or None if it is a duplicate."""
        s = self._get(t.stream_id)
        if from_refine:
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
        s.seq += 1
        out = dataclasses.replace(t, seq=s.seq)
        if out.is_final and not out.provisional:
            s.finals += 1
            if self._history_on:
                self._history.append(out)
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
        """Finals published so far, oldest first."""
        return list(self._history)

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-stream counts: events, finals, duplicates dropped, refine jobs pending."""
        return {
            sid: {
                "events": s.seq,
                "finals": s.finals,
                "duplicates": s.duplicates,
                "refine_pending": len(s.pending),
            }
            for sid, s in self._streams.items()
        }
