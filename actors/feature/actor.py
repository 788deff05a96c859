"""Feature actor: audio ring -> conditioning -> the model-rate PCM ring.

Reads the audio ring in ``chunk_ms`` chunks (the current chunk size, switchable at a chunk
boundary by :class:`SetChunk`), validates and repairs the audio (NaN/Inf, clipping; counted
by reason), downmixes to mono and resamples with a streaming soxr resampler, so that the
concatenated output equals the offline conversion of the whole signal whatever the chunk
size, and writes float32 mono frames at the model rate to the PCM ring, whose write counter
is the model-rate stream position. The pocketsphinx backend wants audio, so conditioned PCM
is this pipeline's "feature"; a log-mel backend computes its frames from it.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.conditioning import Conditioner, ConditionerOptions
from streamasr.actors.doorbell import Bell, Listener, Stamp
from streamasr.actors.errors import AudioFormatError, ConfigError
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import AudioConfig, FeatureConfig, SourceConfig
from streamasr.ringbuf import Ring

log = logging.getLogger(__name__)


class _Stamps:
    """Capture clock per input position, from the doorbells (bounded)."""

    def __init__(self) -> None:
        self._q: deque[Stamp] = deque(maxlen=512)

    def extend(self, stamps: list[Stamp]) -> None:
        self._q.extend(stamps)

    def capture_ns(self, end_frame: int) -> int:
        """Capture time of the newest stamp at or before ``end_frame`` (now if none)."""
        best = 0
        while self._q and self._q[0].end_frame <= end_frame:
            best = self._q.popleft().t_capture_ns
        return best or time.time_ns()


def run(rt: ActorRuntime) -> None:
    """Actor main."""
    src = Ring.attach(rt.spec.rings["in"].name, reader=rt.spec.rings["in"].reader)
    dst = Ring.attach(rt.spec.rings["out"].name)
    listener = Listener(rt.ctx, rt.spec.bells["in"])
    rt.poller.register(listener.socket)
    bell = Bell(rt.ctx, rt.spec.bells["out"])
    source = rt.spec.section("source", SourceConfig)
    fast = not source.realtime
    channel = source.channel
    if channel >= src.frame_shape[0]:
        raise ConfigError(
            f"source.channel: {channel} but the source has {src.frame_shape[0]} channel(s)"
        )
    cond = Conditioner(
        src.sample_rate_hz,
        1 if channel >= 0 else src.frame_shape[0],
        dst.sample_rate_hz,
        ConditionerOptions(remove_dc=rt.spec.section("feature", FeatureConfig).dc_block),
    )
    chunk_ms = rt.spec.section("audio", AudioConfig).chunk_ms
    stamps = _Stamps()
    eos_at: int | None = None
    buf = np.empty((src.capacity, *tuple(src.frame_shape)), dtype=np.float32)
    rt.ready()
    try:
        while not rt.stopping:
            msgs, ready = rt.poll(chunk_ms / 4000)
            if listener.socket in ready:
                stamps.extend(listener.drain())
            for msg in msgs:
                if isinstance(msg, m.SetChunk):
                    chunk_ms = msg.chunk_ms
                elif isinstance(msg, m.EndOfStream):
                    eos_at = msg.end_frame
            chunk = src.sample_rate_hz * chunk_ms // 1000
            while not rt.stopping:
                avail = src.readable
                if avail < chunk and not (eos_at is not None and avail > 0):
                    break
                n = min(avail, chunk)
                got = src.read_into(buf[:n])
                if got.lost_frames:
                    rt.counters["frames_lost"] = rt.counters.get("frames_lost", 0) + got.lost_frames
                frames = buf[: got.frames]
                if channel >= 0:
                    frames = np.ascontiguousarray(frames[:, channel : channel + 1])
                with rt.cpu.charge("conditioning"):
                    _process(
                        rt,
                        cond,
                        frames,
                        dst,
                        bell,
                        stamps,
                        got.start_frame + got.frames,
                        fast,
                    )
                rt.gauges["chunk_ms"] = chunk_ms
            if eos_at is not None and src.read_counter >= eos_at:
                tail = cond.flush()
                _write(rt, dst, bell, tail, stamps.capture_ns(eos_at), fast)
                log.info("end of stream: input %d, output %d", eos_at, dst.write_counter)
                rt.send(m.EndOfStream(rt.spec.actor_id, rt.spec.stream_id, dst.write_counter))
                eos_at = None
                rt.state = "ended"
    finally:
        listener.close()
        bell.close()
        src.close()
        dst.close()


def _process(
    rt: ActorRuntime,
    cond: Conditioner,
    frames: np.ndarray[Any, Any],
    dst: Ring,
    bell: Bell,
    stamps: _Stamps,
    end_frame: int,
    fast: bool,
) -> None:
    try:
        out = cond.process(frames)
    except AudioFormatError as exc:
        rt.counters["rejected_format"] = rt.counters.get("rejected_format", 0) + 1
        log.warning("rejected chunk: %s", exc)
        return
    c = cond.counters
    rt.counters.update(
        nan_inf_samples=c.nan_inf_samples,
        rejected_chunks=c.rejected_chunks,
        clipped_samples=c.clipped_samples,
        empty_chunks=c.empty_chunks,
    )
    _write(rt, dst, bell, out, stamps.capture_ns(end_frame), fast)


def _write(
    rt: ActorRuntime,
    dst: Ring,
    bell: Bell,
    out: np.ndarray[Any, Any],
    t_capture_ns: int,
    fast: bool,
) -> None:
    if out.shape[0] == 0:
        return
    if fast:
        while not rt.stopping and dst.writable < out.shape[0]:
            # not rt.wait(): the input doorbell is readable and would return at once (spin)
            rt.wait(0)
            time.sleep(0.002)
    dst.write(out.reshape(-1, 1))
    bell.ring(Stamp(dst.write_counter, t_capture_ns, time.time_ns()))
