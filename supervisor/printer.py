"""How ``up`` and ``tail`` show transcripts: in place on a terminal, lines when piped, JSON.

On a terminal a partial rewrites the current line and a final is printed for good; piped,
partials and finals are plain lines; with ``--json`` every transcript event is one JSON
object per line (see :func:`streamasr.actors.messages.transcript_json`).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, TextIO

from streamasr.actors import messages as m


def _clock(seconds: float) -> str:
    """``MM:SS.s`` of a stream time in seconds (rounded to tenths first: 59.96 -> 01:00.0)."""
    if not math.isfinite(seconds):
        return "--:--.-"
    minutes, tenths = divmod(round(max(0.0, seconds) * 10), 600)
    return f"{minutes:02d}:{tenths / 10:04.1f}"


class Printer:
    """An event sink that prints transcripts to ``out``."""

    def __init__(
        self,
        out: TextIO | None = None,
        *,
        json_mode: bool = False,
        tty: bool | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        """``tty`` None: detect from ``out``; ``names``: display name per stream id."""
        self.names = names or {}
        self.out = out or sys.stdout
        self.json_mode = json_mode
        self.tty = self.out.isatty() if tty is None else tty
        self._partial_shown = False

    def __call__(self, topic: str, msg: Any) -> None:
        """Print ``msg`` if it is a transcript or a wake event."""
        if isinstance(msg, m.WakeDetected | m.WakeEnded):
            self._wake(msg)
            self.out.flush()
            return
        if not isinstance(msg, m.Transcript):
            return
        if self.json_mode:
            self.out.write(json.dumps(m.transcript_json(msg)) + "\n")
        elif not msg.is_final or msg.provisional:
            self._partial(msg)
        else:
            self._final(msg)
        self.out.flush()

    def _partial(self, t: m.Transcript) -> None:
        if self.tty:
            self.out.write(f"\r\033[K\033[2m… {t.text}\033[0m")
            self._partial_shown = True
        else:
            self.out.write(f"partial {t.stream_id} {_clock(t.start_s)} {t.text}\n")

    def _final(self, t: m.Transcript) -> None:
        if self.tty:
            self.out.write("\r\033[K")
            self._partial_shown = False
        if not t.text:
            return
        who = self.names.get(t.stream_id) or t.stream_id
        self.out.write(f"[{_clock(t.start_s)} - {_clock(t.end_s)}] {who}: {t.text}\n")

    def _wake(self, w: m.WakeDetected | m.WakeEnded) -> None:
        if self.json_mode:
            self.out.write(json.dumps(m.to_dict(w)) + "\n")
            return
        if self.tty and self._partial_shown:
            self.out.write("\r\033[K")
            self._partial_shown = False
        who = self.names.get(w.stream_id) or w.stream_id
        if isinstance(w, m.WakeDetected):
            self.out.write(f'[{_clock(w.end_s)}] {who}: wake "{w.phrase}" (score {w.score:.1f})\n')
        elif w.reason != "final":
            self.out.write(f"[{_clock(w.end_s)}] {who}: no command ({w.reason})\n")

    def close(self) -> None:
        """End a dangling partial line."""
        if self.tty and self._partial_shown:
            self.out.write("\r\033[K")
            self.out.flush()
