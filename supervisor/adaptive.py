"""Applies the chunk-size policy live: measurements in, ``SetChunk`` out.

Each status interval the supervisor builds one :class:`ChunkObservation` from the inference
actor's heartbeat — ``proc_ms_p95`` (95th percentile of its recent per-call compute time,
ms) and ``backlog_ratio`` (undecoded audio over ring capacity, worst stream) — and folds it
into :func:`streamasr.supervisor.chunk_policy.decide`. When the chunk size changes, every
capture and feature actor gets :class:`SetChunk` and switches at its next chunk boundary
(the feature stage's resampler is streaming, so no frame is lost or duplicated and its
output equals the offline conversion whatever the chunk sizes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streamasr.supervisor.chunk_policy import (
    ChunkObservation,
    ChunkPolicyOptions,
    ChunkPolicyState,
    decide,
    initial_chunk_state,
)

log = logging.getLogger(__name__)


@dataclass
class ChunkController:
    """The live chunk size and the policy state behind it."""

    state: ChunkPolicyState
    changes: int = 0

    @classmethod
    def create(cls, chunk_ms: int, budget_ms: float, now_s: float) -> ChunkController:
        """Start at ``chunk_ms`` (snapped to the policy's ladder)."""
        options = ChunkPolicyOptions(budget_ms=budget_ms)
        start = min(options.steps_ms, key=lambda s: abs(s - chunk_ms))
        return cls(initial_chunk_state(options, start, now_s))

    @property
    def chunk_ms(self) -> int:
        """The chunk size in force, ms."""
        return self.state.chunk_ms

    def observe_workers(self, gauges: list[dict[str, float]], now_s: float) -> int | None:
        """Fold in the busiest of the inference workers' heartbeat ``gauges`` (those that
        report a load yet); return the new chunk size if it changed, else None."""
        loads = [g for g in gauges if "proc_ms_p95" in g]
        if not loads:
            return None
        proc_ms = max(g["proc_ms_p95"] for g in loads)
        backlog = max(g.get("backlog_ratio", 0.0) for g in loads)
        return self.observe(proc_ms, backlog, now_s)

    def observe(self, proc_ms_p95: float, backlog_ratio: float, now_s: float) -> int | None:
        """Fold one measurement in; return the new chunk size if it changed, else None."""
        obs = ChunkObservation(self.state.chunk_ms, proc_ms_p95, min(1.0, backlog_ratio), now_s)
        before = self.state.chunk_ms
        self.state, chunk = decide(self.state, obs)
        if chunk == before:
            return None
        self.changes += 1
        log.info("chunk size %d -> %d ms (%s)", before, chunk, self.state.reason)
        return chunk
