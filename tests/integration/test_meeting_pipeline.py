"""A two-participant meeting end to end: one channel per participant, merged transcript, exports.

The meeting file is built in a temporary directory: channel 0 is conversation1 ("Alice"),
channel 1 conversation3 delayed by 1.3 s ("Bob"), so their turns overlap. First-pass finals
(``--finals fast``) keep it quick; Whisper is not the point here.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import (
    CliResult,
    Instance,
    cut_conversation,
    free_port,
    instance_scope,
    last_finals,
    parse_events,
    wait_until,
)
from conftest import wer_of as wer

pytestmark = pytest.mark.timeout(180)

#: How `transcript` is run (the CLI's `transcript` subcommand runs the same function).
TRANSCRIPT = (sys.executable, "-m", "streamasr.supervisor.meeting")
DELAY_S = 1.3
#: Utterances of each conversation in the meeting.
UTTERANCES = 4
RATE_HZ = 16000
#: Word differences allowed between a participant in the meeting and alone (the first
#: pass is fed differently sized reads in the two runs: measured 0.11 at worst).
SAME_RUN_WER = 0.15
NAMES = {"alice": "Alice", "bob": "Bob"}
TEXT_LINE = re.compile(r"^\[(\d{2}):(\d{2})\] (Alice|Bob): (.+)$")
CUE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([.,])(\d{3}) --> (\d{2}):(\d{2}):(\d{2})([.,])(\d{3})$")


@dataclass(frozen=True)
class Files:
    """The meeting file, each channel alone, the [[streams]] text and a config of just that."""

    meeting: Path
    alone: dict[str, Path]
    streams_toml: str
    config: Path


@dataclass(frozen=True)
class Runs:
    """Events of the meeting run."""

    meeting: list[dict[str, Any]]
    config: Path


def transcript(inst: Instance, *args: str, stdin: bytes | None = None) -> CliResult:
    """Run the ``transcript`` command (``python -m streamasr.supervisor.meeting``)."""
    proc = subprocess.run(
        [*TRANSCRIPT, *args, "--instance", inst.name],
        input=stdin,
        capture_output=True,
        env=inst.env,
        cwd=inst.base,
        timeout=60,
    )
    return CliResult(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """Build the 2-channel meeting WAV and the two mono files in a temporary directory."""
    d = tmp_path_factory.mktemp("meeting")
    # four utterances of each participant: enough to interleave, a quarter of the CPU
    first, _ = cut_conversation("conversation1", UTTERANCES, d / "c1.wav")
    second, _ = cut_conversation("conversation3", UTTERANCES, d / "c3.wav")
    a, _ = sf.read(str(first), dtype="int16")
    b, _ = sf.read(str(second), dtype="int16")
    b = np.concatenate([np.zeros(int(DELAY_S * RATE_HZ), np.int16), b])
    n = max(len(a), len(b))
    both = np.zeros((n, 2), np.int16)
    both[: len(a), 0] = a
    both[: len(b), 1] = b
    meeting = d / "meeting.wav"
    sf.write(str(meeting), both, RATE_HZ, subtype="PCM_16")
    alone = {}
    for ch, sid in enumerate(NAMES):
        alone[sid] = d / f"{sid}.wav"
        sf.write(str(alone[sid]), both[:, ch], RATE_HZ, subtype="PCM_16")
    streams = "".join(
        f'[[streams]]\nkind = "file"\npath = "{meeting}"\nchannel = {ch}\n'
        f'stream_id = "{sid}"\nname = "{name}"\n'
        for ch, (sid, name) in enumerate(NAMES.items())
    )
    config = d / "meeting.toml"
    config.write_text(streams)
    return Files(meeting, alone, streams, config)


@pytest.fixture(scope="module")
def runs(files: Files) -> Iterator[Runs]:
    """``up -c meeting.toml``."""
    with instance_scope() as inst:
        inst.write_config(files.streams_toml)
        res = inst.cli("up", *FAST, timeout_s=120)
        assert res.returncode == 0, res.stderr
    yield Runs(parse_events(res.stdout), files.config)


def alone_runs(files: Files) -> dict[str, list[dict[str, Any]]]:
    """Events of ``up --source <channel>.wav`` per participant."""
    out: dict[str, list[dict[str, Any]]] = {}
    for sid in NAMES:
        with instance_scope() as inst:
            res = inst.cli("up", "--source", str(files.alone[sid]), *FAST, timeout_s=120)
            assert res.returncode == 0, res.stderr
            out[sid] = parse_events(res.stdout)
    return out


FAST = ("--fast", "--json", "--finals", "fast")


def finals_of(events: list[dict[str, Any]], sid: str) -> list[str]:
    """Texts of the non-empty last finals of stream ``sid``, in time order."""
    return [e["text"] for e in last_finals(events) if e["stream_id"] == sid and e["text"].strip()]


def cue_seconds(m: re.Match[str], first: int) -> float:
    """Seconds of the cue time whose hour group is ``first``."""
    h, mi, s, ms = (int(m.group(i)) for i in (first, first + 1, first + 2, first + 4))
    return h * 3600 + mi * 60 + s + ms / 1000


@pytest.mark.extended
def test_each_participant_matches_its_single_stream_run(runs: Runs, files: Files) -> None:
    alone_of = alone_runs(files)
    assert {e["stream_id"] for e in runs.meeting} == set(NAMES)
    for sid in NAMES:
        in_meeting = finals_of(runs.meeting, sid)
        alone = finals_of(alone_of[sid], "s0")
        assert len(in_meeting) >= UTTERANCES - 1, in_meeting
        assert wer(alone, in_meeting) <= SAME_RUN_WER, (alone, in_meeting)


def export(inst: Instance, runs: Runs, fmt: str) -> str:
    """``transcript --from-json - --format fmt`` over the meeting run's events."""
    lines = "".join(json.dumps(e) + "\n" for e in runs.meeting).encode()
    res = transcript(inst, "-c", str(runs.config), "--from-json", "-", "--format", fmt, stdin=lines)
    assert res.returncode == 0, res.stderr
    return str(res.stdout)


def test_merged_transcript_follows_stream_time(runs: Runs, instance: Instance) -> None:
    doc = json.loads(export(instance, runs, "json"))
    segs = doc["segments"]
    assert doc["participants"] == [
        {"stream_id": "alice", "name": "Alice"},
        {"stream_id": "bob", "name": "Bob"},
    ]
    starts = [s["start_s"] for s in segs]
    assert starts == sorted(starts)
    names = [s["name"] for s in segs]
    assert names[:2] == ["Alice", "Bob"]  # Bob starts 1.3 s after Alice: turns interleave
    assert sum(a != b for a, b in itertools.pairwise(names)) >= 2 * (UTTERANCES - 1)
    for sid, name in NAMES.items():
        assert [s["text"] for s in segs if s["name"] == name] == finals_of(runs.meeting, sid)
    lines = export(instance, runs, "text").splitlines()
    parsed = [TEXT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [(p.group(3), p.group(4)) for p in parsed if p] == [(s["name"], s["text"]) for s in segs]
    assert [int(p.group(1)) * 60 + int(p.group(2)) for p in parsed if p] == [int(t) for t in starts]


def test_json_export_has_word_times(runs: Runs, instance: Instance) -> None:
    segs = json.loads(export(instance, runs, "json"))["segments"]
    for s in segs:
        assert [w["word"] for w in s["words"]], s
        times = [(w["start_s"], w["end_s"]) for w in s["words"]]
        assert all(a <= b for a, b in times), s
        assert [a for a, _ in times] == sorted(a for a, _ in times)
        assert s["start_s"] - 0.5 <= times[0][0] and times[-1][1] <= s["end_s"] + 0.5, s


@pytest.mark.parametrize("fmt", ["vtt", "srt"])
def test_subtitles_are_well_formed(runs: Runs, instance: Instance, fmt: str) -> None:
    text = export(instance, runs, fmt)
    n_segs = len(json.loads(export(instance, runs, "json"))["segments"])
    lines = text.splitlines()
    if fmt == "vtt":
        assert lines[0] == "WEBVTT"
    cues = [CUE.match(line) for line in lines if "-->" in line]
    assert len(cues) == n_segs and all(cues), lines
    sep = "." if fmt == "vtt" else ","
    spans = [(cue_seconds(c, 1), cue_seconds(c, 6)) for c in cues if c]
    assert all(c.group(4) == sep == c.group(9) for c in cues if c)
    assert [a for a, _ in spans] == sorted(a for a, _ in spans)
    assert all(b > a for a, b in spans)
    numbers = [line for i, line in enumerate(lines[:-1]) if "-->" in lines[i + 1]]
    assert numbers == [str(i) for i in range(1, n_segs + 1)]


def test_late_transcript_gets_the_history_of_a_running_meeting(
    files: Files, runs: Runs, instance: Instance
) -> None:
    """A detached meeting (kept serving by [wyoming] after its files end): `transcript`
    started late prints every final so far, then follows until the pipeline stops."""
    port = free_port()
    cfg = instance.write_config(
        files.streams_toml
        + f'[refine]\nfinals = "fast"\n[wyoming]\nenabled = true\nport = {port}\n'
    )
    res = instance.cli("up", "--fast", "--detach", timeout_s=120)
    assert res.returncode == 0, res.stderr
    want = [s for s in export(instance, runs, "text").splitlines()]
    got: list[str] = []

    def has_all() -> bool:
        r = transcript(instance, "-c", str(cfg), "--no-follow")
        assert r.returncode == 0, r.stderr
        got[:] = r.stdout.splitlines()
        return len(got) >= len(want)

    wait_until(has_all, 60, "the meeting's finals in `transcript --no-follow`", 0.5)
    assert wer(want, got) <= SAME_RUN_WER, (want, got)
    srt = instance.base / "live.srt"
    argv = [*TRANSCRIPT, "-c", str(cfg), "--format", "srt", "--out", str(srt)]
    follower = subprocess.Popen(
        [*argv, "--instance", instance.name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=instance.env,
        text=True,
    )
    try:  # the file holds the history once the follower is subscribed; `down` then ends it
        wait_until(
            lambda: srt.exists() and srt.read_text().count(" --> ") == len(want),
            30,
            "the follower's --out file with the history",
        )
        assert instance.cli("down", timeout_s=60).returncode == 0
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    assert out == ""
    assert srt.read_text().count(" --> ") == len(want)
