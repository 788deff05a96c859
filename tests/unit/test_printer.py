"""Printer (supervisor/printer.py): JSON lines, plain lines when piped, in-place on a tty."""

from __future__ import annotations

import io
import json
import re

import pytest

from streamasr.actors import messages as m
from streamasr.supervisor.printer import Printer

CLEAR = "\r\033[K"
UP = "\033[A"
DIM, ITALIC, DIM_ITALIC, RESET = "\033[2m", "\033[3m", "\033[2;3m", "\033[0m"
JSON_KEYS = {
    "kind",
    "stream_id",
    "utterance_id",
    "seq",
    "is_final",
    "pass",
    "text",
    "start_s",
    "end_s",
    "words",
    "latency_s",
}


def tr(
    text: str = "hello world",
    *,
    final: bool = True,
    provisional: bool = False,
    start_s: float = 61.5,
    end_s: float = 63.0,
    stream: str = "s0",
    uid: str = "",
    passno: int = 0,
    second_pass_words: int = 0,
) -> m.Transcript:
    """A transcript with the given text and timing (pass 2 for accurate finals, else 1)."""
    return m.Transcript(
        stream_id=stream,
        utterance_id=uid or f"{stream}:984000",
        seq=3,
        is_final=final,
        passno=passno or (2 if final and not provisional else 1),
        text=text,
        start_s=start_s,
        end_s=end_s,
        words=[["hello", 61.5, 62.0, 0.9], ["world", 62.1, 63.0, 0.8]],
        latency_s=0.42,
        stages_s={"inference": 0.1},
        provisional=provisional,
        second_pass_words=second_pass_words,
    )


def printer(*, json_mode: bool = False, tty: bool | None = False) -> tuple[Printer, io.StringIO]:
    out = io.StringIO()
    return Printer(out, json_mode=json_mode, tty=tty), out


# ------------------------------------------------------------------------------------ json
def test_json_lines_parse_with_the_documented_keys() -> None:
    p, out = printer(json_mode=True)
    p("transcript.s0", tr("partial text", final=False))
    p("transcript.s0", tr())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    partial, final = (json.loads(line) for line in lines)
    for obj in (partial, final):
        assert set(obj) >= JSON_KEYS
        assert obj["stream_id"] == "s0"
        assert obj["utterance_id"] == "s0:984000"
        assert obj["seq"] == 3
        assert obj["start_s"] == 61.5
        assert obj["end_s"] == 63.0
        assert obj["latency_s"] == 0.42
    assert (partial["kind"], partial["is_final"], partial["pass"]) == ("partial", False, 1)
    assert (final["kind"], final["is_final"], final["pass"]) == ("final", True, 2)
    assert final["text"] == "hello world"
    assert final["words"] == [["hello", 61.5, 62.0, 0.9], ["world", 62.1, 63.0, 0.8]]


def test_json_mode_prints_provisional_finals_as_finals() -> None:
    p, out = printer(json_mode=True, tty=True)
    p("t", tr(provisional=True))
    obj = json.loads(out.getvalue())
    assert obj["kind"] == "final"
    assert obj["provisional"] is True
    assert CLEAR not in out.getvalue()


def test_json_mode_keeps_non_ascii_text_valid() -> None:
    p, out = printer(json_mode=True)
    p("t", tr("naïve café — 東京"))
    assert json.loads(out.getvalue())["text"] == "naïve café — 東京"


# ----------------------------------------------------------------------------------- plain
def test_plain_partial_and_final_lines() -> None:
    p, out = printer(tty=False)
    p("t", tr("hello", final=False, start_s=1.5))
    p("t", tr(start_s=61.5, end_s=63.0))
    assert out.getvalue() == ("partial s0 00:01.5 hello\n[01:01.5 - 01:03.0] s0: hello world\n")


def test_plain_provisional_final_is_a_marked_line_before_the_final() -> None:
    p, out = printer(tty=False)
    p("t", tr("first pass", provisional=True, start_s=2.0, end_s=3.0))
    p("t", tr("First pass.", start_s=2.0, end_s=3.0))
    assert out.getvalue() == (
        "provisional [00:02.0 - 00:03.0] s0: first pass\n[00:02.0 - 00:03.0] s0: First pass.\n"
    )


def test_plain_merged_partial_is_its_text() -> None:
    p, out = printer(tty=False)
    p("t", tr("Turn on the kitchen", final=False, passno=2, second_pass_words=2, start_s=1.0))
    assert out.getvalue() == "partial s0 00:01.0 Turn on the kitchen\n"


def test_plain_empty_final_prints_nothing() -> None:
    p, out = printer(tty=False)
    p("t", tr(""))
    p.close()
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("start_s", "clock"),
    [
        (0.0, "00:00.0"),
        (-1.0, "00:00.0"),
        (59.96, "01:00.0"),
        (119.97, "02:00.0"),
        (3599.99, "60:00.0"),
        (12.34, "00:12.3"),
        (float("inf"), "--:--.-"),
    ],
)
def test_plain_clock_format(start_s: float, clock: str) -> None:
    p, out = printer(tty=False)
    p("t", tr("x", final=False, start_s=start_s))
    assert out.getvalue() == f"partial s0 {clock} x\n"


def test_non_transcripts_are_ignored() -> None:
    for mode in (True, False):
        p, out = printer(json_mode=mode, tty=not mode)
        p("actor.capture.ready", m.Lifecycle(topic="actor.capture.ready", fields={}, t_ns=1))
        p("x", m.StreamEnded(stream_id="s0", end_s=1.0))
        p("x", None)
        assert out.getvalue() == ""


def test_tty_none_detects_from_the_stream() -> None:
    p, _ = printer(tty=None)
    assert p.tty is False  # StringIO is not a terminal


# ------------------------------------------------------------------------------------- tty
def test_tty_partial_rewrites_the_line_and_final_replaces_it() -> None:
    p, out = printer(tty=True)
    p("t", tr("hel", final=False))
    p("t", tr("hello", final=False))
    p("t", tr(start_s=1.0, end_s=2.0))
    assert out.getvalue() == (
        f"{CLEAR}{DIM}… {ITALIC}hel{RESET}"
        f"{CLEAR}{DIM}… {ITALIC}hello{RESET}"
        f"{CLEAR}[00:01.0 - 00:02.0] s0: hello world\n"
    )


@pytest.mark.parametrize(
    ("text", "passno", "second", "shown"),
    [
        ("turn on the", 1, 0, f"{DIM}… {ITALIC}turn on the{RESET}"),  # all first-pass guesses
        ("Turn on the", 2, 3, f"{DIM}… Turn on the{RESET}"),  # all Whisper's
        ("Turn on the kitchen", 2, 2, f"{DIM}… Turn on {ITALIC}the kitchen{RESET}"),
        ("", 1, 0, f"{DIM}… {RESET}"),
    ],
)
def test_tty_partial_shows_first_pass_words_in_italics(
    text: str, passno: int, second: int, shown: str
) -> None:
    p, out = printer(tty=True)
    p("t", tr(text, final=False, passno=passno, second_pass_words=second))
    assert out.getvalue() == CLEAR + shown


def provisional_line(text: str = "first pass") -> str:
    return f"{DIM_ITALIC}≈ [01:01.5 - 01:03.0] s0: {text}{RESET}"


FINAL_LINE = "[01:01.5 - 01:03.0] s0: hello world\n"


def test_tty_provisional_final_is_replaced_in_place_by_the_accurate_one() -> None:
    p, out = printer(tty=True)
    p("t", tr("first", final=False))
    out.seek(0)
    out.truncate()
    p("t", tr("first pass", provisional=True))
    assert out.getvalue() == CLEAR + provisional_line()
    assert "\n" not in out.getvalue()
    p("t", tr())
    assert out.getvalue() == CLEAR + provisional_line() + CLEAR + FINAL_LINE
    p.close()
    assert out.getvalue().endswith(FINAL_LINE)


def test_tty_accurate_final_replaces_the_provisional_line_above_the_next_partial() -> None:
    p, out = printer(tty=True)
    p("t", tr("first pass", provisional=True))
    p("t", tr("next", final=False, uid="s0:99999"))
    out.seek(0)
    out.truncate()
    p("t", tr())  # the accurate final of the first utterance
    partial = f"{DIM}… {ITALIC}next{RESET}"
    assert out.getvalue() == CLEAR + UP + CLEAR + FINAL_LINE + partial
    out.seek(0)
    out.truncate()
    p("t", tr("next words", uid="s0:99999"))  # the next one's final: an ordinary line
    assert out.getvalue() == CLEAR + "[01:01.5 - 01:03.0] s0: next words\n"


def test_tty_empty_accurate_final_removes_the_provisional_line() -> None:
    p, out = printer(tty=True)
    p("t", tr("noise", provisional=True))
    p("t", tr(""))
    assert out.getvalue() == CLEAR + provisional_line("noise") + CLEAR
    p("t", tr("other", provisional=True))
    p("t", tr("next", final=False, uid="s0:99999"))
    out.seek(0)
    out.truncate()
    p("t", tr(""))
    assert out.getvalue() == CLEAR + UP + CLEAR + f"{DIM}… {ITALIC}next{RESET}"


def test_tty_provisional_line_stays_when_other_lines_follow() -> None:
    p, out = printer(tty=True)
    p("t", tr("first pass", provisional=True))
    p("t", tr("other", uid="s1:0", stream="s1", start_s=0.0, end_s=1.0))
    p("t", tr())  # two lines below its provisional one now: printed as a new line
    assert out.getvalue() == (
        CLEAR
        + provisional_line()
        + "\n"
        + CLEAR
        + "[00:00.0 - 00:01.0] s1: other\n"
        + CLEAR
        + FINAL_LINE
    )


def test_tty_two_provisional_finals_in_a_row() -> None:
    p, out = printer(tty=True)
    p("t", tr("first pass", provisional=True))
    p("t", tr("second", provisional=True, uid="s0:99999"))
    out.seek(0)
    out.truncate()
    p("t", tr())  # the first one's accurate final: the line above, the second one redrawn
    second = f"{DIM_ITALIC}≈ [01:01.5 - 01:03.0] s0: second{RESET}"
    assert out.getvalue() == CLEAR + UP + CLEAR + FINAL_LINE + second
    out.seek(0)
    out.truncate()
    p("t", tr("Second.", uid="s0:99999"))
    assert out.getvalue() == CLEAR + "[01:01.5 - 01:03.0] s0: Second.\n"


def test_tty_close_keeps_a_provisional_line() -> None:
    p, out = printer(tty=True)
    p("t", tr("first pass", provisional=True))
    p.close()
    assert out.getvalue() == CLEAR + provisional_line() + "\n"


def test_tty_wake_event_keeps_a_provisional_line() -> None:
    p, out = printer(tty=True)
    p("t", tr("first pass", provisional=True))
    p("t", m.WakeEnded(stream_id="s0", wake_id="w", reason="final", end_s=3.0))
    assert out.getvalue() == CLEAR + provisional_line()  # still replaceable
    p("t", m.WakeEnded(stream_id="s0", wake_id="w", reason="timeout", end_s=3.0))
    assert out.getvalue() == (
        CLEAR + provisional_line() + "\n" + "[00:03.0] s0: no command (timeout)\n"
    )


def test_tty_wake_event_clears_a_partial() -> None:
    p, out = printer(tty=True)
    p("t", tr("half", final=False))
    out.seek(0)
    out.truncate()
    p("t", m.WakeEnded(stream_id="s0", wake_id="w", reason="limit", end_s=3.0))
    assert out.getvalue() == CLEAR + "[00:03.0] s0: no command (limit)\n"


def test_tty_empty_final_clears_the_partial_and_prints_no_text() -> None:
    p, out = printer(tty=True)
    p("t", tr("uh", final=False))
    out.seek(0)
    out.truncate()
    p("t", tr(""))
    assert out.getvalue() == CLEAR
    p.close()  # nothing dangling any more
    assert out.getvalue() == CLEAR


def test_tty_close_ends_a_dangling_partial() -> None:
    p, out = printer(tty=True)
    p("t", tr("half", final=False))
    p.close()
    assert out.getvalue().endswith(f"\033[0m{CLEAR}")


def test_tty_close_after_a_final_writes_nothing() -> None:
    p, out = printer(tty=True)
    p("t", tr(start_s=0.0, end_s=1.0))
    before = out.getvalue()
    p.close()
    assert out.getvalue() == before


# ------------------------------------------------------------------------- narrow terminal
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\r")


def _visible(written: str) -> list[str]:
    """What each in-place write shows (escape codes and carriage returns removed)."""
    return [_ANSI.sub("", part) for part in written.split("\r\x1b[K") if part]


def test_a_partial_longer_than_a_40_column_terminal_keeps_its_newest_words() -> None:
    out = io.StringIO()
    p = Printer(out, tty=True, columns=lambda: 40)
    text = "the quick brown fox jumps over the lazy dog and then runs far away home"
    p("t", tr(text, final=False, passno=2, second_pass_words=9))
    (shown,) = _visible(out.getvalue())
    # one physical line (39 columns: a full last column wraps on some terminals), so the
    # next rewrite erases it whole: no stale copies above
    assert len(shown) == 39, shown
    assert shown.startswith("…") and shown.endswith("runs far away home")
    assert out.getvalue().endswith("\x1b[0m")


def test_a_provisional_final_fits_the_line_and_its_final_is_printed_whole() -> None:
    out = io.StringIO()
    p = Printer(out, tty=True, columns=lambda: 40)
    long = "please remind me to call the plumber about the kitchen sink tomorrow"
    p("t", tr(long, provisional=True, passno=1))
    shown = _visible(out.getvalue())[-1]
    assert len(shown) <= 39 and shown.startswith("≈ [01:01.5") and shown.endswith("…")
    p("t", tr(long.capitalize() + ".", passno=2))
    assert out.getvalue().endswith(f"s0: {long.capitalize()}.\n")


def test_short_lines_are_not_cut() -> None:
    out = io.StringIO()
    p = Printer(out, tty=True, columns=lambda: 40)
    p("t", tr("turn on the", final=False, passno=1))
    assert _visible(out.getvalue()) == ["… turn on the"]


def test_assistant_events_are_lines_and_json() -> None:
    intent = m.Intent(
        "s0", "s0:1", "s0:wake:9", "HassTurnOn", {"area": "kitchen"}, "t", 0.91, "", "", 1
    )
    unknown = m.Intent("s0", "s0:2", "", "", {}, "play jazz", 0.9, "no_match", "", 1)
    done = m.ActionDone(
        "s0", "s0:1", "HassTurnOn", "command", False, 2, "", "exit status 2: no", 0.1
    )
    reply = m.Reply("s0", "s0:1", "Turned on the kitchen light.", 1.5, "/r/s0-1.wav", "", 2)
    p, out = printer()
    for e in (intent, unknown, done, reply):
        p(m.assistant_topic(e), e)
    assert out.getvalue().splitlines() == [
        "          s0: intent HassTurnOn area=kitchen (confidence 0.91)",
        "          s0: intent unknown (no_match) (confidence 0.90)",
        "          s0: action HassTurnOn (command): FAILED: exit status 2: no",
        '          s0: reply "Turned on the kitchen light.", 1.5 s to /r/s0-1.wav',
    ]
    p, out = printer(json_mode=True)
    p("intent.s0.recognized", intent)
    assert json.loads(out.getvalue()) == {**m.to_dict(intent), "kind": "intent"}
