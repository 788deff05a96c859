"""How ``up`` and ``tail`` show transcripts: in place on a terminal, lines when piped, JSON.

On a terminal a partial rewrites the current line (dim; words the first pass guessed in
italics, Whisper's upright) and a final is printed for good. A provisional final (the first
pass's, an accurate one is coming) is shown dim and italic after a ``≈`` marker, and the
accurate final of the same utterance replaces it in place: on its own line, or on the line
just above when the next utterance's partial already took the current one. Lines rewritten in
place are cut to the terminal's width less one column (a partial keeps its newest words, a
provisional final its start): a line that wrapped could not be erased, and a narrow terminal
would fill with stale copies. Finals are printed whole. Piped, partials,
provisional finals (``provisional [..] who: text``) and finals are plain lines; with
``--json`` every transcript event is one JSON object per line (see
:func:`streamasr.actors.messages.transcript_json`). Wake events and the assistant's
(intent, action, reply) are lines of their own, or JSON objects with ``--json``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
from collections.abc import Callable
from typing import Any, TextIO

from streamasr.actors import messages as m

#: Erase the current terminal line; move up one line.
CLEAR, UP = "\r\033[K", "\033[A"
#: Dim, dim italic, reset.
DIM, DIM_ITALIC, ITALIC, RESET = "\033[2m", "\033[2;3m", "\033[3m", "\033[0m"
#: Marks a provisional final on a terminal.
PROVISIONAL = "≈"
#: Exit code once stdout's reader has gone (``tail | head``): what a shell shows for a
#: process that SIGPIPE ended (128 + 13).
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
#: Marks text cut off a line.
CUT = "…"


def terminal_columns() -> int:
    """Columns of the terminal on stdout (80 where unknown)."""
    return shutil.get_terminal_size((80, 24)).columns


def fit_tail(parts: list[tuple[str, str]], width: int) -> str:
    """``parts`` ((style, text) pairs; each style adds to the ones before) styled, keeping
    at most ``width`` visible characters: their end, after a :data:`CUT` mark where the start
    was dropped; a :data:`RESET` last."""
    total = sum(len(text) for _, text in parts)
    drop = total - width + 1 if total > width else 0
    out, mark = [], CUT if drop else ""
    for style, text in parts:
        keep = text[drop:]
        drop = max(0, drop - len(text))
        out.append(style + (mark + keep if keep else ""))
        if keep:
            mark = ""
    return "".join(out) + RESET


def fit_head(style: str, text: str, width: int) -> str:
    """``text`` styled, cut to ``width`` visible characters (ending in :data:`CUT`)."""
    if len(text) > width:
        text = text[: max(0, width - 1)] + CUT
    return style + text + RESET


def stdout_gone() -> int:
    """End quietly after a :class:`BrokenPipeError` on stdout; returns :data:`EXIT_BROKEN_PIPE`.

    Points file descriptor 1 at ``/dev/null``, so the interpreter's last flush of what is
    still buffered cannot print a second error ("Exception ignored ... BrokenPipeError").
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file (a test's capture): nothing to flush
        pass
    return EXIT_BROKEN_PIPE


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
        columns: Callable[[], int] = terminal_columns,
    ) -> None:
        """``tty`` None: detect from ``out``; ``names``: display name per stream id;
        ``columns``: the terminal's width, asked before each in-place line (it may change)."""
        self.names = names or {}
        self.columns = columns
        self.out = out or sys.stdout
        self.json_mode = json_mode
        self.tty = self.out.isatty() if tty is None else tty
        self._line = ""  # what the current, unterminated terminal line shows
        self._line_uid = ""  # the provisional final on the current line ("" if none)
        self._above_uid = ""  # the provisional final on the line just above ("" if none)

    def __call__(self, topic: str, msg: Any) -> None:
        """Print ``msg`` if it is a transcript or a wake event."""
        if isinstance(msg, m.WakeDetected | m.WakeEnded):
            self._wake(msg)
            self.out.flush()
            return
        if isinstance(msg, m.Intent | m.ActionDone | m.Reply):
            self._assistant(msg)
            self.out.flush()
            return
        if not isinstance(msg, m.Transcript):
            return
        if self.json_mode:
            self.out.write(json.dumps(m.transcript_json(msg)) + "\n")
        elif not msg.is_final:
            self._partial(msg)
        elif msg.provisional:
            self._provisional(msg)
        else:
            self._final(msg)
        self.out.flush()

    def _who(self, t: m.Transcript | m.WakeDetected | m.WakeEnded | m.Intent) -> str:
        return self.names.get(t.stream_id) or t.stream_id

    def _label(self, t: m.Transcript) -> str:
        return f"[{_clock(t.start_s)} - {_clock(t.end_s)}] {self._who(t)}: {t.text}"

    # ------------------------------------------------------------------------- terminal
    def _width(self) -> int:
        """Visible characters an in-place line may hold: the width less one column (a line
        that fills the last column wraps on some terminals)."""
        return max(10, self.columns() - 1)

    def _show(self, text: str) -> None:
        """Replace the current line with ``text`` (no newline)."""
        self.out.write(CLEAR + text)
        self._line = text

    def _commit_line(self) -> None:
        """Keep a provisional final on the current line for good: end the line."""
        if self._line_uid:
            self.out.write("\n")
            self._above_uid, self._line_uid, self._line = self._line_uid, "", ""

    def _partial(self, t: m.Transcript) -> None:
        if not self.tty:
            self.out.write(f"partial {t.stream_id} {_clock(t.start_s)} {t.text}\n")
            return
        self._commit_line()
        words = t.text.split()
        ours = words[: t.second_pass_words] if t.passno == 2 else []
        guess = words[len(ours) :]
        parts = [(DIM, f"… {' '.join(ours)}{' ' if ours and guess else ''}")]
        if guess:
            parts.append((ITALIC, " ".join(guess)))
        self._show(fit_tail(parts, self._width()))

    def _provisional(self, t: m.Transcript) -> None:
        if not self.tty:
            self.out.write(f"provisional {self._label(t)}\n")
            return
        self._commit_line()
        self._show(fit_head(DIM_ITALIC, f"{PROVISIONAL} {self._label(t)}", self._width()))
        self._line_uid = t.utterance_id

    def _final(self, t: m.Transcript) -> None:
        line = self._label(t) + "\n" if t.text else ""
        if not self.tty:
            self.out.write(line)
            return
        if t.utterance_id == self._line_uid:  # replaces the provisional final in place
            self.out.write(CLEAR + line)
            self._line, self._line_uid = "", ""
        elif t.utterance_id == self._above_uid:  # ... which is on the line above
            self.out.write(CLEAR + UP + CLEAR + line + self._line)
        else:
            self._commit_line()
            self.out.write(CLEAR + line)
            self._line = ""
        self._above_uid = ""

    def _wake(self, w: m.WakeDetected | m.WakeEnded) -> None:
        if self.json_mode:
            self.out.write(json.dumps(m.to_dict(w)) + "\n")
            return
        if isinstance(w, m.WakeEnded) and w.reason == "final":
            return  # the command's final was printed; a provisional one stays replaceable
        self._clear_line()
        if isinstance(w, m.WakeDetected):
            self.out.write(
                f'[{_clock(w.end_s)}] {self._who(w)}: wake "{w.phrase}" (score {w.score:.1f})\n'
            )
        else:
            self.out.write(f"[{_clock(w.end_s)}] {self._who(w)}: no command ({w.reason})\n")

    def _clear_line(self) -> None:
        """Make room for a notice line: keep a provisional final, erase a partial."""
        if self.tty:
            if self._line_uid:
                self._commit_line()
            elif self._line:
                self.out.write(CLEAR)
            self._line, self._above_uid = "", ""

    def _assistant(self, e: m.Intent | m.ActionDone | m.Reply) -> None:
        """The assistant's events: one line each (indented under the command's final)."""
        if self.json_mode:
            self.out.write(json.dumps(m.to_dict(e)) + "\n")
            return
        self._clear_line()
        who = self.names.get(e.stream_id) or e.stream_id
        if isinstance(e, m.Intent):
            slots = "".join(f" {k}={v}" for k, v in sorted(e.slots.items()))
            what = f"intent {e.name}{slots}" if e.name else f"intent unknown ({e.reason})"
            line = f"{what} (confidence {e.confidence:.2f})"
        elif isinstance(e, m.ActionDone):
            if e.action == "none":
                return
            line = f"action {e.intent} ({e.action}): " + (
                f"ok, status {e.status}" if e.ok else f"FAILED: {e.error}"
            )
        elif e.error:
            line = f'reply "{e.text}" not spoken: {e.error}'
        else:
            where = f", {e.audio_s:.1f} s to {e.where}" if e.where else ""
            line = f'reply "{e.text}"{where}'
        self.out.write(f"          {who}: {line}\n")

    def close(self) -> None:
        """End a dangling partial line (a provisional final on it is kept)."""
        if not self.tty:
            return
        if self._line_uid:
            self._commit_line()
        elif self._line:
            self.out.write(CLEAR)
        self._line = ""
        self.out.flush()
