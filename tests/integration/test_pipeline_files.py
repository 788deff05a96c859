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
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    RefUtterance,
    audio_file,
    cut_conversation,
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
#: First-pass word differences between the 48 kHz stereo file and the 16 kHz one (the
#: resampled samples differ a little; PocketSphinx reads a few borderline words otherwise).
RESAMPLED_FIRST_PASS_WER = 0.15
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
        self._first_pass: dict[str, list[Any]] = {}

    def fast(self, name: str) -> list[Any]:
        """Events of ``up --fast --json`` on ``name``.wav with accurate finals."""
        if name not in self._fast:
            self._fast[name] = run_up("--source", str(audio_file(f"{name}.wav")), "--fast")
        return self._fast[name]

    def first_pass(self, name: str) -> list[Any]:
        """Events of ``up --fast --finals fast --json`` on ``name``.wav (PocketSphinx only)."""
        if name not in self._first_pass:
            self._first_pass[name] = run_up(
                "--source", str(audio_file(f"{name}.wav")), "--fast", "--finals", "fast"
            )
        return self._first_pass[name]


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


@pytest.mark.timeout(120)
def test_fast_finals_are_first_pass_only(runs: Runs) -> None:
    refs = read_tsv(audio_file("conversation1.tsv"))
    events = runs.first_pass("conversation1")
    assert not any(e["provisional"] for e in events)
    assert not any(e["pass"] == 2 for e in events)
    assert_one_final_each(events, refs, passno=1)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    assert_seq_increasing(events)
    assert wer_of([r.text for r in refs], texts(finals)) <= FIRST_PASS_WER


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


@pytest.mark.timeout(150)
def test_48k_stereo_gives_the_same_finals(runs: Runs) -> None:
    """The same conversation at 48 kHz stereo: the first pass (what the capture and feature
    stages feed every later stage) finds the same utterances and nearly the same words."""
    refs = read_tsv(audio_file("conversation1.tsv"))
    events = run_up(
        "--source", str(audio_file("conversation1_48k_stereo.wav")), "--fast", "--finals", "fast"
    )
    assert_one_final_each(events, refs, passno=1)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    at16k = last_finals(runs.first_pass("conversation1"))
    assert wer_of(texts(at16k), texts(finals)) <= RESAMPLED_FIRST_PASS_WER


@pytest.mark.extended
@pytest.mark.timeout(120)
def test_8k_with_accurate_finals() -> None:
    refs = read_tsv(audio_file("conversation1.tsv"))
    events = run_up("--source", str(audio_file("conversation1_8k.wav")), "--fast")
    assert_one_final_each(events, refs, passno=2)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    assert wer_of([r.text for r in refs], texts(finals)) <= ACCURATE_WER_8K


@pytest.mark.timeout(150)
def test_raw_pcm_on_stdin_gives_the_same_finals(runs: Runs) -> None:
    import soundfile as sf

    refs = read_tsv(audio_file("conversation1.tsv"))
    samples, rate_hz = sf.read(str(audio_file("conversation1.wav")), dtype="int16")
    assert rate_hz == 16000 and samples.ndim == 1
    events = run_up(
        *("--source", "-", "--rate", "16000", "--format", "s16le", "--channels", "1"),
        *("--fast", "--finals", "fast"),
        stdin_bytes=samples.astype("<i2").tobytes(),
    )
    assert_one_final_each(events, refs, passno=1)
    # the same samples as the file: the first pass is deterministic, so exactly its finals
    got = [(f["text"], f["start_s"], f["end_s"]) for f in last_finals(events)]
    from_file = last_finals(runs.first_pass("conversation1"))
    assert got == [(f["text"], f["start_s"], f["end_s"]) for f in from_file]


@pytest.mark.timeout(120)
def test_bundled_sample() -> None:
    from streamasr.actors.capture.sources import sample_path

    reference = sample_path().with_suffix(".txt").read_text()
    events = run_up("--source", "sample", "--fast")
    finals = last_finals(events)
    assert finals
    assert wer_of([reference], texts(finals)) <= SAMPLE_WER


@pytest.mark.timeout(150)
def test_an_mp3_plays_quietly_offline_with_the_words_of_its_wav(tmp_path: Path) -> None:
    """An MP3 made from the first utterances of conversation1 gives the WAV's finals; the
    terminal shows no libmpg123 message (soundfile's per-block re-seek restarted its decoder:
    dozens of lines) and, with HOME in tmp_path, nothing is written there (onnxruntime's
    telemetry device id and event store were)."""
    import soundfile as sf

    from streamasr.actors.refine.model_store import default_cache_dir

    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile has no MP3 (needs >= 1.1)")
    wav, refs = cut_conversation("conversation1", 2, tmp_path / "c1.wav")
    samples, rate_hz = sf.read(str(wav), dtype="float32")
    mp3 = tmp_path / "c1.mp3"
    sf.write(str(mp3), samples, rate_hz, format="MP3")
    home = tmp_path / "home"
    home.mkdir()
    with instance_scope() as inst:
        # Whisper's converted model stays where it is; nothing else may land in HOME
        inst.env["STREAMASR_CACHE_DIR"] = str(default_cache_dir())
        inst.env["HOME"] = str(home)
        for name in ("XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY"):
            inst.env.pop(name, None)
        res = inst.cli("up", "--json", "--source", str(mp3), "--fast", timeout_s=120)
    assert res.returncode == 0, res.stderr
    assert "mpg123" not in res.stderr
    assert list(home.iterdir()) == []  # onnxruntime wrote no device id under .cache/Microsoft
    events = parse_events(res.stdout)
    assert_one_final_each(events, refs, passno=2)
    from_mp3 = last_finals(events)
    assert_boundaries(from_mp3, refs)
    from_wav = last_finals(run_up("--source", str(wav), "--fast"))
    assert wer_of(texts(from_wav), texts(from_mp3)) == 0
