"""Meeting transcripts: merging finals of several streams and the text/VTT/SRT/JSON exports."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from streamasr.actors import messages as m
from streamasr.actors.errors import ProtocolError
from streamasr.supervisor.meeting import (
    Meeting,
    clock,
    cue_time,
    read_json_lines,
    render,
    transcript_from_json,
    transcript_main,
)

VTT_CUE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")
SRT_CUE = re.compile(r"^(\d{2}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2}):(\d{2}):(\d{2}),(\d{3})$")


def tr(
    sid: str,
    start_s: float,
    end_s: float,
    text: str,
    *,
    passno: int = 1,
    is_final: bool = True,
    provisional: bool = False,
    utt: str | None = None,
) -> m.Transcript:
    """A transcript event with one word per token spread over the utterance."""
    tokens = text.split()
    step = (end_s - start_s) / max(1, len(tokens))
    words: list[list[Any]] = [
        [w, start_s + i * step, start_s + (i + 1) * step, 0.9] for i, w in enumerate(tokens)
    ]
    return m.Transcript(
        stream_id=sid,
        utterance_id=utt or f"{sid}:{int(start_s * 16000)}",
        seq=0,
        is_final=is_final,
        passno=passno,
        text=text,
        start_s=start_s,
        end_s=end_s,
        words=words,
        latency_s=0.1,
        stages_s={},
        provisional=provisional,
    )


def meeting_of(*events: m.Transcript) -> Meeting:
    mt = Meeting({"alice": "Alice", "bob": "Bob"})
    for e in events:
        mt.add(e)
    return mt


def seconds(groups: tuple[str | Any, ...], first: int) -> float:
    h, mi, s, ms = (int(g) for g in groups[first : first + 4])
    return h * 3600 + mi * 60 + s + ms / 1000


def test_merge_orders_by_start_time_across_streams() -> None:
    mt = meeting_of(
        tr("bob", 1.3, 3.0, "hello there"),
        tr("alice", 0.5, 2.2, "turn on the lights"),
        tr("alice", 3.4, 5.0, "set a timer"),
    )
    assert render(mt, "text") == (
        "[00:00] Alice: turn on the lights\n[00:01] Bob: hello there\n[00:03] Alice: set a timer\n"
    )


def test_partials_provisional_and_empty_finals_are_skipped() -> None:
    mt = meeting_of(
        tr("alice", 0.5, 1.0, "turn on", is_final=False),
        tr("alice", 0.5, 2.0, "turn on the lice", provisional=True),
        tr("bob", 4.0, 5.0, "   "),
    )
    assert mt.segments() == []


def test_accurate_final_replaces_first_pass_and_later_first_pass_does_not_undo_it() -> None:
    mt = meeting_of(
        tr("alice", 0.5, 2.0, "turn on the lice", utt="a:1"),
        tr("alice", 0.5, 2.0, "Turn on the lights.", passno=2, utt="a:1"),
        tr("alice", 0.5, 2.0, "turn on the lice", utt="a:1"),
    )
    assert [s.text for s in mt.segments()] == ["Turn on the lights."]
    assert mt.segments()[0].passno == 2


def test_empty_accurate_final_removes_the_utterance() -> None:
    mt = meeting_of(
        tr("alice", 0.5, 2.0, "uh", utt="a:1"), tr("alice", 0.5, 2.0, "", passno=2, utt="a:1")
    )
    assert mt.segments() == []


def test_add_reports_only_new_segments() -> None:
    mt = Meeting()
    assert mt.add(tr("s0", 0.0, 1.0, "one", utt="u")) is not None
    assert mt.add(tr("s0", 0.0, 1.0, "one again", utt="u")) is None
    assert mt.segments()[0].name == "s0"  # no configured name: the stream id


def test_clock_and_cue_time() -> None:
    assert clock(0.0) == "00:00"
    assert clock(61.99) == "01:01"
    assert clock(3725.0) == "62:05"
    assert clock(float("nan")) == "00:00"
    assert cue_time(3723.4567) == "01:02:03.457"
    assert cue_time(0.0006, ",") == "00:00:00,001"
    assert cue_time(-1.0) == "00:00:00.000"


def test_vtt_is_well_formed_with_increasing_cues_and_escaped_text() -> None:
    mt = meeting_of(
        tr("bob", 1.3, 1.3, "a <b> & c"),
        tr("alice", 0.5, 2.2, "turn on the lights"),
        tr("alice", 3.4, 5.0, "set a timer"),
    )
    lines = render(mt, "vtt").splitlines()
    assert lines[0] == "WEBVTT" and lines[1] == ""
    cues = [VTT_CUE.match(line) for line in lines if "-->" in line]
    assert all(cues) and len(cues) == 3
    spans = [(seconds(c.groups(), 0), seconds(c.groups(), 4)) for c in cues if c]
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)
    assert all(end > start for start, end in spans)  # zero-length cue widened to 1 ms
    assert "<v Bob>a &lt;b&gt; &amp; c" in lines


def test_srt_is_numbered_with_comma_times() -> None:
    mt = meeting_of(tr("alice", 0.5, 2.2, "one"), tr("bob", 65.25, 66.0, "two"))
    blocks = render(mt, "srt").strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["1", "2"]
    assert blocks[1].splitlines()[1] == "00:01:05,250 --> 00:01:06,000"
    assert all(SRT_CUE.match(b.splitlines()[1]) for b in blocks)
    assert blocks[1].splitlines()[2] == "Bob: two"


def test_json_export_has_participants_segments_and_word_times() -> None:
    mt = meeting_of(tr("alice", 0.5, 2.5, "turn on the lights", passno=2))
    doc = json.loads(render(mt, "json"))
    assert doc["participants"] == [
        {"stream_id": "alice", "name": "Alice"},
        {"stream_id": "bob", "name": "Bob"},
    ]
    (seg,) = doc["segments"]
    assert (seg["name"], seg["pass"], seg["text"]) == ("Alice", 2, "turn on the lights")
    assert [w["word"] for w in seg["words"]] == ["turn", "on", "the", "lights"]
    assert seg["words"][1] == {"word": "on", "start_s": 1.0, "end_s": 1.5, "conf": 0.9}


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transcript format 'docx'"):
        render(Meeting(), "docx")


def test_up_json_lines_round_trip() -> None:
    events = [tr("alice", 0.5, 2.0, "hi", is_final=False), tr("alice", 0.5, 2.0, "hi there")]
    lines = [json.dumps(m.transcript_json(e)) for e in events] + ["", '{"kind": "other"}']
    mt = Meeting({"alice": "Alice"})
    assert read_json_lines(lines, mt) == 4
    assert render(mt, "text") == "[00:00] Alice: hi there\n"
    assert transcript_from_json({"kind": "status"}) is None


def test_malformed_json_lines_name_the_line() -> None:
    with pytest.raises(ProtocolError, match=r"^line 2: Expecting value"):
        read_json_lines(["", "nope"], Meeting())
    bad = json.dumps({**m.transcript_json(tr("a", 0, 1, "x")), "start_s": "zero"})
    with pytest.raises(
        ProtocolError, match=r"^line 1: transcript.start_s: expected float, got str"
    ):
        read_json_lines([bad], Meeting())


def test_transcript_from_json_file_with_config_names(tmp_path: Path) -> None:
    cfg = tmp_path / "meeting.toml"
    cfg.write_text(
        '[[streams]]\nkind = "file"\npath = "x.wav"\nchannel = 0\nstream_id = "alice"\n'
        'name = "Alice"\n\n[[streams]]\nkind = "file"\npath = "x.wav"\nchannel = 1\n'
        'stream_id = "bob"\nname = "Bob"\n'
    )
    src = tmp_path / "up.jsonl"
    events = [tr("bob", 2.0, 3.0, "second"), tr("alice", 0.5, 1.5, "first")]
    src.write_text("".join(json.dumps(m.transcript_json(e)) + "\n" for e in events))
    out = tmp_path / "t.srt"
    args = argparse.Namespace(
        config=str(cfg), instance=None, format="srt", out=str(out), from_json=str(src)
    )
    assert transcript_main(args) == 0
    assert "Alice: first" in out.read_text().split("\n\n")[0]
    buf = io.StringIO()
    args.format, args.out = "text", None
    assert transcript_main(args, stdout=buf) == 0
    assert buf.getvalue() == "[00:00] Alice: first\n[00:02] Bob: second\n"


def test_a_lone_unnamed_stream_gets_cues_without_a_speaker() -> None:
    meeting = Meeting()
    meeting.add(tr("s0", 1.0, 2.0, "Hello there."))
    meeting.add(tr("s0", 3.0, 4.0, "Second line."))
    srt = render(meeting, "srt")
    assert "s0" not in srt and "\nHello there.\n" in srt
    assert "<v" not in render(meeting, "vtt")
    # a named participant, or a second one, is shown
    assert "Alice: Hello there." in render(_named(), "srt")
    meeting.add(tr("s1", 5.0, 6.0, "Me too."))
    assert "s0: Hello there." in render(meeting, "srt")


def _named() -> Meeting:
    meeting = Meeting({"s0": "Alice"})
    meeting.add(tr("s0", 1.0, 2.0, "Hello there."))
    return meeting


@pytest.mark.parametrize("fmt", ["vtt", "srt"])
def test_live_cues_are_printed_as_the_finals_come(fmt: str) -> None:
    from streamasr.supervisor.meeting import _Output

    meeting, out = Meeting(), io.StringIO()
    live = _Output(meeting, fmt, None, out)
    live.update(None)  # nothing yet: a VTT stream starts with its header
    assert out.getvalue() == ("WEBVTT\n" if fmt == "vtt" else "")
    live.update(meeting.add(tr("s0", 1.0, 2.0, "One.")))
    first = out.getvalue()
    assert "One." in first and "Two." not in first
    live.update(meeting.add(tr("s0", 3.0, 4.0, "Two.")))
    live.finish()
    # the cues printed one by one make the same document as the export at the end
    assert out.getvalue() == render(meeting, fmt)
