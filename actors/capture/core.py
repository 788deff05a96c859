"""Pure core of the capture actor (:mod:`~streamasr.actors.capture.actor`): no processes, no
sockets.

The device reopen backoff (:class:`ReopenBackoff`, under ``[source]``'s ``reopen_*`` settings),
the capture clock (:func:`capture_clock`, :class:`ClockAnchor`, :class:`ClockFile`) and the
gap fill (:func:`noise_floor`, :func:`comfort_noise`, :func:`fill_gap`), plus the actor's
exact-size block reader and ring-writing push sink. Times in seconds, positions in frames; see
:mod:`streamasr.actors.capture.actor` for how the actor uses them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.capture.formats import BlockSource
from streamasr.actors.settings import SourceConfig
from streamasr.ringbuf import Ring

__all__ = [
    "CLOCK_INTERVAL_S",
    "MAX_COMFORT_RMS",
    "ClockAnchor",
    "ClockFile",
    "ReopenBackoff",
    "capture_clock",
    "comfort_noise",
    "fill_gap",
    "noise_floor",
]

#: Loudest comfort noise (RMS, full scale 1.0): -34 dBFS.
MAX_COMFORT_RMS = 0.02

_CLOCK_ID = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def capture_clock() -> float:
    """Seconds on the capture clock (CLOCK_BOOTTIME: system-wide, counts suspend)."""
    return time.clock_gettime(_CLOCK_ID)


#: Seconds between two saves of the capture clock file (at most).
CLOCK_INTERVAL_S = 1.0


class ReopenBackoff:
    """When to try reopening a failed device: exponential backoff, reset after stability.

    Pure: all times come from the injected ``clock`` (seconds). The n-th consecutive failure
    (a device failure or a failed reopen attempt) waits
    ``min(reopen_max_s, reopen_initial_s * reopen_factor ** (n - 1))``; the count restarts
    when a device fails after having stayed up at least ``reopen_stable_s``, so a flapping
    device backs off instead of storming while a rare failure is retried quickly.

    Attributes:
        device_errors: failures of a running (or first-opened) device.
        reopen_attempts: reopen attempts made (failed or not).
        delay_s: the delay scheduled by the last failure (seconds).
    """

    def __init__(self, options: SourceConfig, clock: Callable[[], float]) -> None:
        """Use ``options``' reopen_* fields; ``clock`` returns monotonic seconds."""
        self._o = options
        self._clock = clock
        self._streak = 0
        self._down_since: float | None = None
        self._down_total_s = 0.0
        self._up_since: float | None = None
        self._next_at = 0.0
        self.device_errors = 0
        self.reopen_attempts = 0
        self.delay_s = 0.0

    @property
    def down(self) -> bool:
        """True between a failure and the next successful open."""
        return self._down_since is not None

    def device_failed(self) -> float:
        """A device failed (or could not be opened at all); returns the delay (s) to wait."""
        now = self._clock()
        self.device_errors += 1
        if self._up_since is not None and now - self._up_since >= self._o.reopen_stable_s:
            self._streak = 0
        self._up_since = None
        if self._down_since is None:
            self._down_since = now
        return self._schedule(now)

    def begin_outage(self) -> None:
        """Down from now with an attempt due at once (a restarted process, not a failure)."""
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
        self._next_at = now

    def attempt_due(self) -> bool:
        """Whether the device is down and a reopen attempt is due now."""
        return self.down and self._clock() >= self._next_at

    def attempt_failed(self) -> float:
        """A reopen attempt failed; returns the delay (s) before the next one."""
        self.reopen_attempts += 1
        return self._schedule(self._clock())

    def opened(self) -> None:
        """The device is open (a reopen succeeded, or the very first open)."""
        now = self._clock()
        if self._down_since is not None:
            self.reopen_attempts += 1
            self._down_total_s += now - self._down_since
            self._down_since = None
        self._up_since = now

    def down_s(self) -> float:
        """Seconds the device has been down in all, including the current outage."""
        current = 0.0 if self._down_since is None else self._clock() - self._down_since
        return self._down_total_s + current

    def seconds_to_attempt(self) -> float:
        """Seconds until the next reopen attempt is due (0.0 when due or not down)."""
        return max(0.0, self._next_at - self._clock()) if self.down else 0.0

    def _schedule(self, now: float) -> float:
        o = self._o
        delay = min(o.reopen_max_s, o.reopen_initial_s * o.reopen_factor**self._streak)
        if delay < o.reopen_max_s:
            self._streak += 1  # stop counting at the cap (no float overflow, ever)
        self.delay_s = delay
        self._next_at = now + delay
        return delay


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """The capture clock of a stream position.

    Attributes:
        frame: ring position (exclusive end) of the newest captured frame.
        t_s: :func:`capture_clock` seconds when that frame was captured.
    """

    frame: int
    t_s: float

    def due_frame(self, now_s: float, sample_rate_hz: int) -> int:
        """The stream position true to the clock at ``now_s`` (never before ``frame``)."""
        return self.frame + max(0, int((now_s - self.t_s) * sample_rate_hz))


class ClockFile:
    """The capture clock saved where a replacement capture process finds it.

    JSON ``{"owner", "frame", "t_s"}`` written atomically (temporary file, then rename).
    ``owner`` ties it to one pipeline run (supervisor pid and ring name); a file of another
    owner, or an unreadable one, loads as ``None``.
    """

    def __init__(self, path: str | Path, owner: str) -> None:
        """Save to / load from ``path`` for ``owner``."""
        self.path = Path(path)
        self.owner = owner

    def save(self, anchor: ClockAnchor) -> None:
        """Write ``anchor`` atomically."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"owner": self.owner, "frame": anchor.frame, "t_s": anchor.t_s}))
        os.replace(tmp, self.path)

    def load(self) -> ClockAnchor | None:
        """The saved anchor of this owner, or ``None``."""
        try:
            raw = json.loads(self.path.read_text())
            if raw["owner"] != self.owner:
                return None
            return ClockAnchor(int(raw["frame"]), float(raw["t_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remove(self) -> None:
        """Delete the file (a clean exit: no replacement will need it)."""
        self.path.unlink(missing_ok=True)


def noise_floor(frames: NDArray[np.float32], sample_rate_hz: int) -> float:
    """Noise floor (RMS, full scale 1.0) of ``frames`` ``(n, channels)``.

    The 10th percentile of the RMS of 20 ms blocks, capped at :data:`MAX_COMFORT_RMS`;
    0.0 for less than one block.
    """
    block = max(1, sample_rate_hz // 50)
    n = frames.shape[0] // block
    if n == 0:
        return 0.0
    x = frames[: n * block].reshape(n, -1).astype(np.float64)
    rms = np.sqrt(np.mean(x * x, axis=1))
    return float(min(MAX_COMFORT_RMS, np.percentile(rms, 10)))


def comfort_noise(rms: float, frames: int, channels: int, seed: int) -> NDArray[np.float32]:
    """``(frames, channels)`` float32 white noise of RMS ``rms`` (zeros for 0), seeded."""
    if rms <= 0.0:
        return np.zeros((frames, channels), np.float32)
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, rms, (frames, channels)).astype(np.float32)


def fill_gap(ring: Ring, frames: int, block: NDArray[np.float32]) -> int:
    """Append ``frames`` frames to ``ring``, repeating ``block`` in chunks of its length.

    ``block`` (zeros or comfort noise) holds 1..capacity frames. Returns ``frames``.
    """
    if block.shape[0] > ring.capacity or block.shape[0] == 0:
        raise ValueError(f"fill block must hold 1..{ring.capacity} frames, has {len(block)}")
    left = frames
    while left > 0:
        n = min(left, block.shape[0])
        ring.write(block[:n])
        left -= n
    return frames


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


class _RingSink:
    """The push callback: copy into the ring, note the capture clock of the newest frame."""

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.last: ClockAnchor | None = None

    def __call__(self, indata: NDArray[np.float32], frames: int, status: Any) -> None:
        self.ring.write(indata)
        self.last = ClockAnchor(self.ring.write_counter, capture_clock())
