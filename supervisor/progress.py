"""A terminal progress bar for ``up --fast`` on files: position / duration, speed, ETA.

``up`` feeds it the status map the supervisor publishes every ``status_interval_s``. The
position of a stream is how far its inference reader has read the stream's model-rate
``pcm`` ring (frames / rate), i.e. how much has been transcribed, not how much the capture
actor has read ahead; a pipeline of several file streams shows the least advanced one.
Speed is audio seconds per wall second since the first position seen; the ETA divides
what is left by it.

The bar is drawn on stderr. When stdout is the same terminal (transcripts shown in place
by :class:`~streamasr.supervisor.printer.Printer`), the bar lives on the line *below* the
printer's current line, and the cursor is always handed back at column 0 of the printer's
line: every printer write starts with a carriage return or a newline, so neither needs to
know the other's text. Otherwise the bar rewrites its own line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from streamasr.supervisor.printer import CLEAR, UP

#: Characters of the bar itself (between the brackets).
BAR_WIDTH = 24


def _clock(seconds: float) -> str:
    """``M:SS`` (or ``H:MM:SS``) of a duration in seconds; ``-:--`` if unknown."""
    if not math.isfinite(seconds) or seconds < 0:
        return "-:--"
    s = round(seconds)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def render(position_s: float, duration_s: float, speed: float | None) -> str:
    """One line: ``[#####.....]  1:23 / 5:00  x12.3 real time  ETA 0:18`` (seconds in;
    ``speed`` None: not measured yet)."""
    fraction = min(1.0, max(0.0, position_s / duration_s)) if duration_s > 0 else 0.0
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    line = f"[{bar}] {_clock(min(position_s, duration_s))} / {_clock(duration_s)}"
    if speed is None or speed <= 0:
        return line
    eta_s = max(0.0, duration_s - position_s) / speed
    return f"{line}  x{speed:.1f} real time  ETA {_clock(eta_s)}"


def stream_position_s(status: Mapping[str, Any], stream_id: str) -> float | None:
    """Seconds of ``stream_id`` its decoder has taken from its ``pcm`` ring: the furthest
    reader's cursor, frames written less that reader's fill (0 while no reader is
    attached); None if the status has no such ring yet.

    The cursor, not the ``reads`` counter: a reader that takes frames zero-copy
    (``read_regions``/``release``) moves its cursor without counting reads.
    """
    for ring in status.get("rings", []):
        if ring.get("stream_id") != stream_id or ring.get("role") != "pcm":
            continue
        rate_hz = ring.get("sample_rate_hz") or 0
        if rate_hz <= 0:
            return None
        readers = ring.get("readers") or []
        if not readers:
            return 0.0
        frames = ring["writes"] - min(r["fill"] for r in readers)
        return float(max(0, frames)) / rate_hz
    return None


class ProgressBar:
    """Draws the progress of file streams of known duration on a terminal."""

    def __init__(
        self,
        out: TextIO,
        durations_s: Mapping[str, float],
        *,
        below: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``durations_s``: stream id -> length of its file (s); ``below``: stdout is the
        same terminal, so draw on the line under the printer's; ``clock``: seconds."""
        self.out = out
        self.durations_s = dict(durations_s)
        self.below = below
        self._clock = clock
        self._first: tuple[float, float] | None = None  # (wall s, audio s) of the first sample
        self.text = ""
        self.shown = False

    def update(self, status: Mapping[str, Any]) -> None:
        """Take a status map: the least advanced stream's position, the speed so far."""
        worst: tuple[float, float, float] | None = None  # (fraction, position, duration)
        for sid, duration_s in self.durations_s.items():
            pos = stream_position_s(status, sid)
            if pos is None or duration_s <= 0:
                continue
            entry = (pos / duration_s, pos, duration_s)
            worst = entry if worst is None or entry < worst else worst
        if worst is None:
            return
        _, pos, duration_s = worst
        now = self._clock()
        speed = None
        if self._first is None or pos <= 0:
            self._first = (now, pos)
        elif now > self._first[0] and pos > self._first[1]:
            speed = (pos - self._first[1]) / (now - self._first[0])
        self.text = render(pos, duration_s, speed)

    def show(self) -> None:
        """Draw the bar (nothing before the first :meth:`update` with a position)."""
        if not self.text:
            return
        if self.below:
            self.out.write("\n" + CLEAR + self.text + UP + "\r")
        else:
            self.out.write(CLEAR + self.text)
        self.out.flush()
        self.shown = True

    def hide(self) -> None:
        """Erase the bar if it is drawn (before anything else writes to the terminal)."""
        if not self.shown:
            return
        self.out.write("\n" + CLEAR + UP + "\r" if self.below else CLEAR)
        self.out.flush()
        self.shown = False
