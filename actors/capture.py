"""Capture actor: a microphone, file or stdin source into the audio ring.

The audio ring holds float32 frames shaped ``(channels,)`` at the source's own rate; its
write counter is the stream position. A microphone's PortAudio callback only copies into
the ring (no allocation, no lock, no logging); the main loop rings the doorbell, heartbeats
and reports device errors. File and stdin sources are pulled in ``chunk_ms`` blocks, paced
at real time unless ``realtime = false`` (``--fast``), in which case the loop waits for the
slowest reader instead of overwriting unread audio (a file can wait; a microphone cannot).

A restarted capture actor resumes a file at the ring's write counter, so no frame is lost
or duplicated; for a microphone the frames it could not capture while down are reported as
a :class:`Gap` and skipped in the ring, so stream time stays monotonic and true to the clock.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamasr.actors import messages as m
from streamasr.actors.doorbell import Bell, Stamp
from streamasr.actors.errors import ConfigError
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.sources import BlockSource, FileSource, MicSource, Pacer, RawPcmSource
from streamasr.ringbuf import Ring

log = logging.getLogger(__name__)


def _open_pull_source(src: dict[str, Any], block_frames: int, rate_hz: int) -> BlockSource:
    if src["kind"] == "file":
        return FileSource(src["path"], block_frames)
    if src["kind"] == "stdin":
        return RawPcmSource(
            sys.stdin.buffer, src["raw_format"], src["channels"], block_frames, rate_hz
        )
    raise ConfigError(f"source.kind: cannot pull from {src['kind']!r}")


def _skip(source: BlockSource, frames: int) -> int:
    """Discard ``frames`` frames (resume after a restart); return how many were skipped."""
    skipped = 0
    while skipped < frames:
        block = source.read_block()
        if block is None:
            break
        skipped += block.shape[0]
    return skipped


def _wait_started(rt: ActorRuntime) -> int:
    """Wait for the supervisor's Start; return the chunk size (ms) to use."""
    chunk_ms = int(rt.spec.options["audio"]["chunk_ms"])
    while not rt.stopping:
        msgs, _ = rt.poll(0.2)
        for msg in msgs:
            if isinstance(msg, m.SetChunk):
                chunk_ms = msg.chunk_ms
            if isinstance(msg, m.Start):
                return chunk_ms
    return chunk_ms


def run(rt: ActorRuntime) -> None:
    """Actor main: capture until the source ends or the supervisor stops us."""
    ring = Ring.attach(rt.spec.rings["out"].name)
    bell = Bell(rt.ctx, rt.spec.bells["out"])
    src = rt.spec.options["source"]
    try:
        if src["kind"] == "mic":
            _run_mic(rt, ring, bell)
        else:
            _run_pull(rt, ring, bell)
    finally:
        bell.close()
        ring.close()


def _run_pull(rt: ActorRuntime, ring: Ring, bell: Bell) -> None:
    src = rt.spec.options["source"]
    rate = ring.sample_rate_hz
    chunk_ms = int(rt.spec.options["audio"]["chunk_ms"])
    source = _open_pull_source(src, rate * chunk_ms // 1000, rate)
    resume = ring.write_counter
    if resume:
        log.info("resuming %s at frame %d", src.get("path") or "stdin", resume)
        _skip(source, resume)
    rt.ready()
    chunk_ms = _wait_started(rt)
    pacer = Pacer(rate) if src["realtime"] else None
    if pacer is not None:
        pacer.reset()
    base = ring.write_counter
    while not rt.stopping:
        block_frames = rate * chunk_ms // 1000
        block = _read(source, block_frames)
        if block is None:
            break
        if pacer is not None:
            _sleep_until(rt, pacer.delay_s(ring.write_counter + block.shape[0] - base))
        else:
            _wait_for_room(rt, ring, block.shape[0])
        if rt.stopping:
            return
        ring.write(block)
        bell.ring(Stamp(ring.write_counter, time.time_ns()))
        rt.gauges["chunk_ms"] = chunk_ms
        rt.counters["frames_captured"] = ring.write_counter
        for msg in _control(rt):
            if isinstance(msg, m.SetChunk):
                chunk_ms = msg.chunk_ms
    if not rt.stopping:
        log.info("source ended at frame %d", ring.write_counter)
        rt.send(m.EndOfStream(rt.spec.actor_id, rt.spec.stream_id, ring.write_counter))
        rt.state = "ended"
        while not rt.stopping:
            rt.poll(0.5)


def _read(source: BlockSource, frames: int) -> NDArray[np.float32] | None:
    """Read exactly ``frames`` frames (fewer only at the end), whatever the source's blocks."""
    parts: list[NDArray[np.float32]] = []
    have = 0
    while have < frames:
        block = source.read_block()
        if block is None:
            break
        parts.append(block)
        have += block.shape[0]
    if not parts:
        return None
    data = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if data.shape[0] > frames:
        # Sources return at most the requested block size; keep any excess for exactness.
        raise AssertionError("source returned more frames than requested")
    return data


def _control(rt: ActorRuntime) -> list[Any]:
    msgs, _ = rt.poll(0)
    return msgs


def _sleep_until(rt: ActorRuntime, delay_s: float) -> None:
    """Wait ``delay_s`` while still serving control messages and heartbeats."""
    deadline = time.monotonic() + delay_s
    while not rt.stopping:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        rt.wait(min(left, 0.1))


def _wait_for_room(rt: ActorRuntime, ring: Ring, frames: int) -> None:
    """Fast mode: wait until every reader has room for ``frames`` more frames."""
    while not rt.stopping and ring.writable < frames:
        rt.wait(0.002)


def _run_mic(rt: ActorRuntime, ring: Ring, bell: Bell) -> None:
    src = rt.spec.options["source"]
    fmt_channels = ring.frame_shape[0]
    from streamasr.actors.sources import SourceFormat

    fmt = SourceFormat(ring.sample_rate_hz, fmt_channels)

    def sink(indata: NDArray[np.float32], frames: int, status: Any) -> None:
        ring.write(indata)

    device: str | int | None = src["device"] or None
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    mic = MicSource(sink, fmt, device=device)
    rt.ready()
    chunk_ms = _wait_started(rt)
    mic.start()
    last = ring.write_counter
    try:
        while not rt.stopping:
            rt.poll(chunk_ms / 2000)
            mic.raise_if_failed()
            now = ring.write_counter
            if now != last:
                bell.ring(Stamp(now, time.time_ns()))
                last = now
            rt.counters["input_overflows"] = mic.input_overflows
            rt.counters["frames_captured"] = now
    finally:
        mic.close()
