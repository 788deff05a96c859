"""What the inference actor keeps per stream, and the arithmetic around it: the stream record,
a chunk's latency split into stages, and moving a ring's shared cursor (the commit point)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamasr.actors.asr.base import RecognizerStream
from streamasr.actors.asr.log_mel import StreamingLogMel
from streamasr.actors.doorbell import Listener, Stamp
from streamasr.actors.errors import RingError
from streamasr.actors.inference.wake_gate import WakeGate
from streamasr.ringbuf import Ring

__all__ = ["InferenceStream", "engine_wait_s", "seek_cursor", "stage_split"]


@dataclass(slots=True)
class InferenceStream:
    """One audio stream: its ring, doorbell, decoder state and position (ring frames)."""

    stream_id: str
    ring: Ring
    listener: Listener
    decoder: RecognizerStream
    pos: int
    buf: np.ndarray[Any, Any]
    last_partial: str = ""
    #: Segmentation only (no words): the end frame of the last partial sent.
    last_partial_end: int = -1
    eos_at: int | None = None
    stamps: deque[Stamp] = field(default_factory=lambda: deque(maxlen=1024))
    stamp: Stamp = field(default_factory=lambda: Stamp(0, 0, 0))
    frames_lost: int = 0
    last_final_end: int = 0  # ring frame where the last finalised utterance ended
    mel: StreamingLogMel | None = None
    gate: WakeGate | None = None  # wake-word gating (None: every utterance is decoded)
    paused: tuple[int, int] | None = None  # last span sent in a SpeechPaused
    waited_s: float = 0.0  # how long its newest chunk waited for the engine's earlier work

    @property
    def rate(self) -> int:
        """Sample rate of the stream's ring, Hz."""
        return self.ring.sample_rate_hz

    @property
    def oldest_capture_ns(self) -> int:
        """Capture clock (ns) of the oldest chunk not decoded yet (0: unknown)."""
        return self.stamps[0].t_capture_ns if self.stamps else 0


def engine_wait_s(stamp: Stamp, start_ns: int, busy_until_ns: int) -> float:
    """Seconds the chunk of ``stamp`` waited for the engine's earlier calls (other streams,
    an utterance's finalisation) before its own call began at ``start_ns``; the engine's last
    call returned at ``busy_until_ns`` (all wall clocks in ns)."""
    ready_ns = stamp.t_feature_ns or stamp.t_capture_ns
    if not ready_ns:
        return 0.0
    return max(0, min(start_ns, busy_until_ns) - ready_ns) / 1e9


def stage_split(
    stamp: Stamp, compute_s: float, waited_s: float, now_ns: int
) -> tuple[float, dict[str, float]]:
    """Latency (s) from the capture of ``stamp``'s chunk to ``now_ns`` and its stages.

    ``feature`` (capture -> conditioned PCM written), ``wait`` (the engine busy with earlier
    work, at most ``waited_s``), ``inference`` (``compute_s``, the engine's own call) and
    ``queue`` (the rest: the inference loop waking and reading). Without a capture clock the
    latency is the compute time alone.
    """
    if stamp.t_capture_ns == 0:
        return compute_s, {"inference": compute_s}
    t_cap, t_feat = stamp.t_capture_ns, stamp.t_feature_ns
    feature_s = max(0.0, (t_feat - t_cap) / 1e9) if t_feat else 0.0
    since_ready_s = (now_ns - (t_feat or t_cap)) / 1e9
    wait_s = min(waited_s, max(0.0, since_ready_s - compute_s))
    queue_s = max(0.0, since_ready_s - compute_s - wait_s)
    total = max(0.0, (now_ns - t_cap) / 1e9)
    return total, {"feature": feature_s, "queue": queue_s, "wait": wait_s, "inference": compute_s}


def seek_cursor(ring: Ring, target: int, hop: int = 1) -> None:
    """Move ``ring``'s shared read cursor to ``target`` (frames), or to the oldest frame still
    in the ring rounded up to a multiple of ``hop`` (feature frames) if ``target`` was
    overwritten; retried while the writer moves on."""
    for _ in range(3):
        oldest = ring.write_counter - ring.capacity
        if target < oldest:  # overrun even there: keep what is left
            target = oldest + (-oldest % hop)
        if target == ring.read_counter:
            return
        try:
            ring.seek(target)
            return
        except RingError:  # the writer moved on meanwhile; try again
            continue
