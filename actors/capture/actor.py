"""Capture actor: a microphone, file or stdin source into the audio ring.

The audio ring holds float32 frames shaped ``(channels,)`` at the source's own rate; its
write counter is the stream position. File and stdin sources are pulled in ``chunk_ms``
blocks, paced at real time unless ``realtime = false`` (``--fast``), in which case the loop
waits for the slowest reader instead of overwriting unread audio (a file can wait; a
microphone cannot). A restarted capture actor resumes a file exactly at the ring's write
counter (the file is seeked to that frame), so no frame is lost or duplicated; stdin cannot
be rewound, so what a killed process had read but not written is lost (and logged).

**Live sources** (``source.kind = "mic"``). PortAudio's callback only copies into the ring
and notes the capture clock of the newest frame (a :class:`ClockAnchor`); the main loop
rings the doorbell, heartbeats and watches the device. A device error (unplugged, stream
error, PortAudio failure, or no audio for ``stall_s``) does *not* end the actor: it sets
``rt.state = "device_error"``, counts ``device_errors``, and reopens the device with the
backoff of :class:`ReopenBackoff` (0.2 s doubling to 5 s; back to 0.2 s once the device has
stayed up ``stable_s``), counting ``reopen_attempts`` and ``device_down_s``.

**Lost audio is never hidden.** Stream time stays monotonic and true to the capture clock:
frame ``anchor.frame + (t - anchor.t_s) * rate`` is the one captured at ``t``. While the
device is down, the frames it did not capture are *filled* in the ring, in chunks no larger
than half the ring and never faster than its slowest reader has room for, so every later
position keeps its true time and downstream stages see "nothing said" (an utterance in
flight ends at its endpoint). When capture resumes, the supervisor gets a
:class:`~streamasr.actors.messages.Gap` with the exact positions ``[start_frame, end_frame)``
of the fill; counters ``gaps``, ``gap_frames``, ``last_gap_start_frame`` and
``last_gap_end_frame`` carry it into ``status``. A fill rather than a jump of the write
counter, because every reader and the refine stage address audio by ring position: a jump
would make them read stale slots as audio.

The fill is *comfort noise* by default (``source.gap_fill = "comfort_noise"``): white noise
at the noise floor of the last seconds captured (10th percentile of 20 ms block RMS, at most
-34 dBFS; zeros when nothing was captured yet), seeded by the gap's start frame. Exact
digital silence (``gap_fill = "zeros"``) is available but misleads level-adaptive VADs and
endpointers: with PocketSphinx, 1.3 s of zeros in a pause of conversation1 made the
background noise after it decode as speech ("if shitty") and merged the next two utterances
into one final, while comfort noise gave the same finals as the intact audio.

**Restarts.** The anchor is saved (at most every ``CLOCK_INTERVAL_S``, atomically) to
``<runtime_dir>/capture-<stream>.clock``, tagged with the supervisor's pid and the ring's
name. A replacement process for a live source reads it and the ring's write counter, fills
the frames lost while no process captured with silence and reports them as a Gap (reason
``"capture restarted"``) before it reopens the device. CLOCK_BOOTTIME is used (shared by
all processes, and it keeps counting through a suspend, when the microphone hears nothing).

**Fault injection (tests only).** ``source.device = "file-mic:<wav>"`` selects
:class:`~streamasr.actors.capture.testing_sources.FileMic`, which plays the file in real time
through this same microphone path; creating ``<runtime_dir>/fault-<actor_id>`` holding a number
of seconds makes it fail (see :class:`~streamasr.actors.capture.testing_sources.FaultTrigger`).
At the file's end the actor sends EndOfStream, as for a file source. This is the only
production module that imports the test-only sources.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Protocol

import numpy as np

from streamasr.actors import messages as m
from streamasr.actors.capture.core import (
    CLOCK_INTERVAL_S,
    ClockAnchor,
    ClockFile,
    ReopenBackoff,
    _read,
    _RingSink,
    capture_clock,
    comfort_noise,
    fill_gap,
    noise_floor,
)
from streamasr.actors.capture.formats import FILE_MIC_PREFIX, BlockSource, SourceFormat
from streamasr.actors.capture.mic import MicSource
from streamasr.actors.capture.sources import FileSource, Pacer, RawPcmSource
from streamasr.actors.capture.testing_sources import FaultTrigger, FileMic
from streamasr.actors.doorbell import Bell, Stamp
from streamasr.actors.errors import ConfigError, DeviceError
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import AudioConfig, SourceConfig
from streamasr.ringbuf import Ring

__all__ = ["run"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- actor entry
def run(rt: ActorRuntime) -> None:
    """Actor main: capture until the source ends or the supervisor stops us."""
    ring = Ring.attach(rt.spec.rings["out"].name)
    bell = Bell(rt.ctx, rt.spec.bells["out"])
    src = rt.spec.section("source", SourceConfig)
    try:
        if src.kind == "mic":
            _LiveCapture(rt, ring, bell).run()
        else:
            _run_pull(rt, ring, bell)
    finally:
        bell.close()
        ring.close()


def _wait_started(rt: ActorRuntime) -> int:
    """Wait for the supervisor's Start; return the chunk size (ms) to use."""
    chunk_ms = rt.spec.section("audio", AudioConfig).chunk_ms
    while not rt.stopping:
        msgs, _ = rt.poll(0.2)
        for msg in msgs:
            if isinstance(msg, m.SetChunk):
                chunk_ms = msg.chunk_ms
            if isinstance(msg, m.Start):
                return chunk_ms
    return chunk_ms


def _end_of_stream(rt: ActorRuntime, ring: Ring) -> None:
    """Report the end of the source, then idle until stopped."""
    log.info("source ended at frame %d", ring.write_counter)
    rt.send(m.EndOfStream(rt.spec.actor_id, rt.spec.stream_id, ring.write_counter))
    rt.state = "ended"
    while not rt.stopping:
        rt.poll(0.5)


# --------------------------------------------------------------------------- pull sources
def _open_pull_source(src: SourceConfig, block_frames: int, rate_hz: int) -> BlockSource:
    if src.kind == "file":
        return FileSource(src.path, block_frames)
    if src.kind == "stdin":
        return RawPcmSource(sys.stdin.buffer, src.raw_format, src.channels, block_frames, rate_hz)
    raise ConfigError(f"source.kind: cannot pull from {src.kind!r}")


def _skip(source: BlockSource, frames: int) -> int:
    """Resume after a restart at stream position ``frames``; return frames skipped.

    A file is seeked to exactly that frame. A byte stream cannot be rewound: what the
    killed process had read is gone, so nothing is skipped (and a warning says so).
    """
    if isinstance(source, FileSource):
        return source.seek(frames)
    log.warning("cannot resume a %s source at frame %d; continuing", type(source).__name__, frames)
    return 0


def _run_pull(rt: ActorRuntime, ring: Ring, bell: Bell) -> None:
    src = rt.spec.section("source", SourceConfig)
    rate = ring.sample_rate_hz
    chunk_ms = rt.spec.section("audio", AudioConfig).chunk_ms
    source = _open_pull_source(src, rate * chunk_ms // 1000, rate)
    resume = ring.write_counter
    if resume:
        log.info("resuming %s at frame %d", src.path or "stdin", resume)
        _skip(source, resume)
    rt.ready()
    chunk_ms = _wait_started(rt)
    pacer = Pacer(rate) if src.realtime else None
    if pacer is not None:
        pacer.reset()
    base = ring.write_counter
    while not rt.stopping:
        block = _read(source, rate * chunk_ms // 1000)
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
        _end_of_stream(rt, ring)


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


# --------------------------------------------------------------------------- live sources
class _Device(Protocol):
    """What the live loop needs of a push source (:class:`MicSource`, :class:`FileMic`)."""

    input_overflows: int

    def start(self) -> None: ...
    def raise_if_failed(self) -> None: ...
    def close(self) -> None: ...


class _LiveCapture:
    """The live-source loop: device, reopen backoff, capture clock, silence for gaps."""

    def __init__(self, rt: ActorRuntime, ring: Ring, bell: Bell) -> None:
        src = rt.spec.section("source", SourceConfig)
        self.rt, self.ring, self.bell = rt, ring, bell
        self.opts = src
        self.backoff = ReopenBackoff(self.opts, capture_clock)
        self.rate = ring.sample_rate_hz
        self.fmt = SourceFormat(self.rate, ring.frame_shape[0])
        self.device_name = src.device
        run_dir = rt.runtime_dir
        self.trigger: FaultTrigger | None = None
        if self.device_name.startswith(FILE_MIC_PREFIX):
            self.trigger = FaultTrigger(run_dir / f"fault-{rt.spec.actor_id}")
        owner = f"{rt.spec.supervisor_pid}:{ring.name}"
        self.clock_file = ClockFile(run_dir / f"capture-{rt.spec.stream_id}.clock", owner)
        self.sink = _RingSink(ring)
        self.device: _Device | None = None
        self.anchor = ClockAnchor(ring.write_counter, capture_clock())
        self.opened_at = 0.0
        self.gap_start: int | None = None
        self.gap_reason = ""
        self.fill_frames = max(1, min(ring.capacity // 2, self.rate))
        self.fill = np.zeros((self.fill_frames, *ring.frame_shape), dtype=np.float32)
        self.rung = ring.write_counter
        self.next_save = 0.0
        self.overflows_before = 0
        for key in ("device_errors", "reopen_attempts", "gaps", "gap_frames", "frames_filled"):
            rt.counters[key] = 0

    # -------------------------------------------------------------- loop
    def run(self) -> None:
        """Capture until stopped or (file-mic only) the file ends."""
        rt = self.rt
        rt.ready()
        chunk_ms = _wait_started(rt)
        if rt.stopping:
            return
        self._resume()
        try:
            while not rt.stopping:
                for msg in rt.poll(chunk_ms / 2000)[0]:
                    if isinstance(msg, m.SetChunk):
                        chunk_ms = msg.chunk_ms
                if self._step():
                    self._close_device()
                    _end_of_stream(rt, self.ring)
                    break
                rt.gauges["chunk_ms"] = chunk_ms
        finally:
            self._close_device()
            if self.gap_start is not None and self.ring.write_counter > self.gap_start:
                self._report_gap(self.ring.write_counter)
            if rt.stopping:
                self.clock_file.remove()

    def _resume(self) -> None:
        """Start: after a restart, count what was lost while no process captured; open."""
        written = self.ring.write_counter
        if written:
            saved = self.clock_file.load()
            if saved is None or saved.frame > written:
                log.warning("capture clock unknown after restart: lost frames are not counted")
                self.rt.counters["clock_unknown"] = 1
                saved = ClockAnchor(written, capture_clock())
            self.anchor = saved
            self.gap_start, self.gap_reason = written, "capture restarted"
            self._prepare_fill()
            self.backoff.begin_outage()  # silence up to now, then reopen at once
            self.rt.state = "resuming"
            return
        self._save_clock(force=True)
        if not self._try_open(first=True):
            delay = self.backoff.device_failed()
            self._enter_down(f"cannot open the input device; retrying in {delay:.1f} s")

    def _step(self) -> bool:
        """One poll's work; True when the (file-mic) source has ended."""
        if self.device is not None:
            if getattr(self.device, "ended", False):
                self._publish()
                return True
            try:
                self.device.raise_if_failed()
                self._check_stall()
            except DeviceError as exc:
                self._device_failed(str(exc))
            else:
                self._publish()
        if self.device is None:
            caught_up = self._fill_silence()
            if caught_up and self.backoff.attempt_due():
                self._try_open(first=False)
        self._metrics()
        return False

    # -------------------------------------------------------------- device
    def _make_device(self) -> _Device:
        start = self.ring.write_counter
        if self.device_name.startswith(FILE_MIC_PREFIX):
            path = self.device_name[len(FILE_MIC_PREFIX) :]
            block = max(1, self.rate // 50)  # 20 ms callbacks, like a low-latency microphone
            return FileMic(
                self.sink, self.fmt, path, start_frame=start, block_frames=block,
                trigger=self.trigger,
            )  # fmt: skip
        device: str | int | None = self.device_name or None
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        return MicSource(self.sink, self.fmt, device=device)

    def _try_open(self, *, first: bool) -> bool:
        """Open the device at the current stream position; close the gap if it worked."""
        dev = self._make_device()
        self.sink.last = None
        try:
            dev.start()
        except DeviceError as exc:
            dev.close()
            if not first:
                delay = self.backoff.attempt_failed()
                log.info("reopen failed (%s); next attempt in %.1f s", exc, delay)
            else:
                log.warning("cannot open the input device: %s", exc)
            self.rt.state = "device_error"
            return False
        self.device = dev
        self.backoff.opened()
        self.opened_at = capture_clock()
        here = self.ring.write_counter
        self.anchor = ClockAnchor(here, self.opened_at)
        if self.gap_start is not None and here > self.gap_start:
            self._report_gap(here)
        self.gap_start = None
        if not first:
            log.warning("input device reopened at frame %d", here)
        self.rt.state = "running"
        self._save_clock(force=True)
        self.rt.heartbeat(force=True)
        return True

    def _device_failed(self, message: str) -> None:
        self._close_device()
        if self.sink.last is not None:
            self.anchor = self.sink.last
        delay = self.backoff.device_failed()
        self.gap_start, self.gap_reason = self.ring.write_counter, f"device error: {message}"
        self._prepare_fill()
        self._enter_down(f"input device failed ({message}); reopening in {delay:.1f} s")

    def _enter_down(self, message: str) -> None:
        log.warning("%s", message)
        if self.gap_start is None:
            self.gap_start, self.gap_reason = self.ring.write_counter, "device error"
            self._prepare_fill()
        self.rt.state = "device_error"
        self._metrics()
        self.rt.heartbeat(force=True)

    def _close_device(self) -> None:
        if self.device is not None:
            self.overflows_before += self.device.input_overflows
            self.device.close()
            self.device = None

    def _check_stall(self) -> None:
        last = self.sink.last.t_s if self.sink.last is not None else self.opened_at
        if capture_clock() - last > self.opts.stall_s:
            raise DeviceError(f"no audio from the input device for {self.opts.stall_s:.1f} s")

    # -------------------------------------------------------------- stream positions
    def _fill_silence(self) -> bool:
        """Write silence up to the clock's position (as far as readers have room).

        Returns True once the stream position has caught up with the clock.
        """
        ring = self.ring
        need = self.anchor.due_frame(capture_clock(), self.rate) - ring.write_counter
        if need <= 0:
            return True
        n = min(need, ring.writable)
        if n > 0:
            fill_gap(ring, n, self.fill)
            self.rt.counters["frames_filled"] += n
            self._ring_bell()
        return n == need

    def _prepare_fill(self) -> None:
        """Choose the gap's fill from the audio captured before it (see the module doc)."""
        rms = 0.0
        if self.opts.gap_fill == "comfort_noise":
            end = self.ring.write_counter
            recent = min(end, 2 * self.rate, self.ring.capacity)
            tail = np.empty((recent, *self.ring.frame_shape), np.float32)
            self.ring.read_at(end - recent, tail)
            rms = noise_floor(tail, self.rate)
        self.fill = comfort_noise(
            rms, self.fill_frames, self.fmt.channels, seed=self.gap_start or 0
        )
        self.rt.gauges["gap_fill_rms"] = rms

    def _report_gap(self, end: int) -> None:
        assert self.gap_start is not None
        start, rt = self.gap_start, self.rt
        rt.send(m.Gap(rt.spec.stream_id, start, end, self.gap_reason))
        rt.counters["gaps"] += 1
        rt.counters["gap_frames"] += end - start
        rt.counters["last_gap_start_frame"] = start
        rt.counters["last_gap_end_frame"] = end
        log.warning("gap [%d, %d) of %d frames: %s", start, end, end - start, self.gap_reason)

    def _publish(self) -> None:
        """Ring the doorbell for new frames; keep the capture clock (and its file) fresh."""
        if self.sink.last is not None:
            self.anchor = self.sink.last
        self._ring_bell()
        self._save_clock(force=False)

    def _ring_bell(self) -> None:
        now = self.ring.write_counter
        if now != self.rung:
            self.bell.ring(Stamp(now, time.time_ns()))
            self.rung = now

    def _save_clock(self, *, force: bool) -> None:
        now = time.monotonic()
        if force or now >= self.next_save:
            self.next_save = now + CLOCK_INTERVAL_S
            try:
                self.clock_file.save(self.anchor)
            except OSError as exc:
                log.warning("cannot save the capture clock: %s", exc)

    def _metrics(self) -> None:
        rt, b = self.rt, self.backoff
        overflows = self.overflows_before + (self.device.input_overflows if self.device else 0)
        rt.counters.update(
            device_errors=b.device_errors,
            reopen_attempts=b.reopen_attempts,
            input_overflows=overflows,
            frames_captured=self.ring.write_counter,
        )
        rt.gauges.update(
            device_down=1.0 if b.down else 0.0,
            device_down_s=b.down_s(),
            reopen_delay_s=b.delay_s,
        )
