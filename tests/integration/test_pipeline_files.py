"""End-to-end runs of ``streamasr-supervisor up`` on the shared conversations: real
processes, rings, sockets and models. Each run is leak-checked when it ends.

Measured on the 2-core dev box (WER after ``benchmarks/wer.py`` normalisation):
accurate finals (Whisper base, short window, two views) conversation1 0.02, conversation2
0.08, conversation3 0.04 (24 utterances: 0.048, no fallbacks); first pass (PocketSphinx)
0.127 / 0.200 / 0.128; conversation1_8k accurate 0.00; 48 kHz stereo and stdin runs equal
the 16 kHz file run (each utterance's text no longer depends on its batch mates).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import (
    RefUtterance,
    audio_file,
    finals_by_utterance,
    instance_scope,
    last_finals,
    parse_events,
    read_tsv,
    wer_of,
)
from wer import WerCounts

pytestmark = pytest.mark.slow

CONVERSATIONS = ("conversation1", "conversation2", "conversation3")
#: Per-file bound on accurate-final WER: a regression guard above what was measured
#: (one file has about 50 words: each word is 0.02).
ACCURATE_WER_FILE = 0.15
#: The issue's target for accurate finals over all 24 utterances.
ACCURATE_WER_TARGET = 0.08
FIRST_PASS_WER = 0.20
#: Per-file first-pass bound (conversation2 measures 0.200, conversation1/3 0.13).
FIRST_PASS_WER_FILE = 0.25
BOUNDARY_TOLERANCE_S = 0.5
#: Word differences allowed between two runs of the same audio (Whisper's batches differ).
RUN_TO_RUN_WER = 0.10
ACCURATE_WER_8K = 0.20
SAMPLE_WER = 0.15


def run_up(
    *args: str, timeout_s: float = 120, stdin_bytes: bytes | None = None, config: str = ""
) -> list[Any]:
    """Run ``up --json ARGS`` on a fresh instance (``config``: its config file's text, if
    any); assert exit 0; return its events."""
    with instance_scope() as inst:
        if config:
            inst.write_config(config)
        res = inst.cli("up", "--json", *args, timeout_s=timeout_s, stdin_bytes=stdin_bytes)
    assert res.returncode == 0, res.stderr
    events: list[Any] = parse_events(res.stdout)
    return events


class Runs:
    """Pipeline runs shared by several tests of this module (each run happens once)."""

    def __init__(self) -> None:
        self._fast: dict[str, list[Any]] = {}

    def fast(self, name: str) -> list[Any]:
        """Events of ``up --fast --json`` on ``name``.wav with accurate finals."""
        if name not in self._fast:
            self._fast[name] = run_up("--source", str(audio_file(f"{name}.wav")), "--fast")
        return self._fast[name]


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    """The module's run cache."""
    yield Runs()


def texts(finals: list[Any]) -> list[str]:
    """Texts of a list of final events."""
    return [str(f["text"]) for f in finals]


def assert_one_final_each(events: list[Any], refs: list[RefUtterance], passno: int) -> None:
    """Exactly one non-provisional final of pass ``passno`` per spoken utterance."""
    groups = finals_by_utterance(events)
    doubles = {u: texts(g) for u, g in groups.items() if len(g) > 1}
    assert not doubles, f"utterances with more than one final: {doubles}"
    assert len(groups) == len(refs), [g[0]["text"] for g in groups.values()]
    assert {g[0]["pass"] for g in groups.values()} == {passno}


def assert_boundaries(finals: list[Any], refs: list[RefUtterance]) -> None:
    """Each final's start/end within BOUNDARY_TOLERANCE_S of its reference utterance."""
    for f, r in zip(finals, refs, strict=True):
        assert abs(f["start_s"] - r.start_s) <= BOUNDARY_TOLERANCE_S, (f, r)
        assert abs(f["end_s"] - r.end_s) <= BOUNDARY_TOLERANCE_S, (f, r)


def assert_seq_increasing(events: list[Any]) -> None:
    """``seq`` strictly increases per stream."""
    last: dict[str, int] = {}
    for e in events:
        assert e["seq"] > last.get(e["stream_id"], 0), e
        last[e["stream_id"]] = e["seq"]


@pytest.mark.timeout(150)
@pytest.mark.parametrize(
    "name",
    [
        CONVERSATIONS[0],
        *(pytest.param(n, marks=pytest.mark.extended) for n in CONVERSATIONS[1:]),
    ],
)
def test_accurate_finals_one_per_utterance_with_low_wer(runs: Runs, name: str) -> None:
    events = runs.fast(name)
    refs = read_tsv(audio_file(f"{name}.tsv"))
    assert_one_final_each(events, refs, passno=2)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    assert_seq_increasing(events)
    assert all(e["pass"] == 1 for e in events if e["provisional"])
    assert wer_of([r.text for r in refs], texts(finals)) <= ACCURATE_WER_FILE
    first = sorted(
        (e for e in events if e["is_final"] and e["provisional"]), key=lambda e: e["start_s"]
    )
    assert len(first) == len(refs)
    assert all(e["text"].strip() for e in first)
    # a provisional final shows the Whisper partial's words first when there was one (see
    # supervisor/merge.py; how many depends on timing): the first pass's own errors, on the
    # utterances it alone transcribed, stay within the file's first-pass error budget
    own = WerCounts()
    for r, e in zip(refs, first, strict=True):
        if not e["second_pass_words"]:
            own += WerCounts.of(r.text, e["text"])
    words = sum(len(r.text.split()) for r in refs)
    assert own.edits <= FIRST_PASS_WER_FILE * words, (own, words)


@pytest.mark.extended
@pytest.mark.timeout(300)
def test_accurate_finals_meet_the_wer_target_over_all_conversations(runs: Runs) -> None:
    total = WerCounts()
    for name in CONVERSATIONS:
        refs = read_tsv(audio_file(f"{name}.tsv"))
        finals = last_finals(runs.fast(name))
        total += WerCounts.of(" ".join(r.text for r in refs), " ".join(texts(finals)))
    assert total.wer <= ACCURATE_WER_TARGET


@pytest.mark.timeout(150)
def test_real_time_run_gives_the_fast_run_finals(runs: Runs) -> None:
    refs = read_tsv(audio_file("conversation1.tsv"))
    t0 = time.monotonic()
    # a 60 s refine budget: this checks that real time reads as --fast does, not load
    # shedding (a loaded suite once pushed one final past the default 5 s into a fallback)
    events = run_up(
        "--source", str(audio_file("conversation1.wav")), config="[refine]\nbudget_s = 60.0\n"
    )
    elapsed_s = time.monotonic() - t0
    assert elapsed_s >= refs[-1].end_s, "a real-time run cannot end before the audio does"
    assert_one_final_each(events, refs, passno=2)
    assert_seq_increasing(events)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    fast = last_finals(runs.fast("conversation1"))
    assert wer_of(texts(fast), texts(finals)) <= RUN_TO_RUN_WER
    for a, b in zip(fast, finals, strict=True):
        assert abs(a["start_s"] - b["start_s"]) <= 0.1 and abs(a["end_s"] - b["end_s"]) <= 0.1


@pytest.mark.extended
@pytest.mark.timeout(120)
def test_8k_with_accurate_finals() -> None:
    refs = read_tsv(audio_file("conversation1.tsv"))
    events = run_up("--source", str(audio_file("conversation1_8k.wav")), "--fast")
    assert_one_final_each(events, refs, passno=2)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    assert wer_of([r.text for r in refs], texts(finals)) <= ACCURATE_WER_8K


@pytest.mark.timeout(120)
def test_bundled_sample() -> None:
    from streamasr.actors.capture.sources import sample_path

    reference = sample_path().with_suffix(".txt").read_text()
    events = run_up("--source", "sample", "--fast")
    finals = last_finals(events)
    assert finals
    assert wer_of([reference], texts(finals)) <= SAMPLE_WER
