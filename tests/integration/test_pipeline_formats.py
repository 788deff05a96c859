"""End-to-end runs of ``streamasr-supervisor up`` on other forms of the same audio: raw PCM
on stdin, 48 kHz stereo, MP3 — and the first pass alone (``--finals fast``), which is what
the capture and feature stages feed every later stage, so the forms are compared on it.
Real processes, rings, sockets and models; each run is leak-checked when it ends. (Split
from ``test_pipeline_files.py`` so two workers share the long runs.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    audio_file,
    cut_conversation,
    instance_scope,
    last_finals,
    parse_events,
    read_tsv,
    wer_of,
)
from test_pipeline_files import (
    FIRST_PASS_WER,
    assert_boundaries,
    assert_one_final_each,
    assert_seq_increasing,
    run_up,
    texts,
)

pytestmark = pytest.mark.slow

#: First-pass word differences between the 48 kHz stereo file and the 16 kHz one (the
#: resampled samples differ a little; PocketSphinx reads a few borderline words otherwise).
RESAMPLED_FIRST_PASS_WER = 0.15


@pytest.fixture(scope="module")
def conversation1() -> Iterator[list[Any]]:
    """Events of ``up --fast --finals fast --json`` on conversation1.wav (PocketSphinx only)."""
    yield run_up("--source", str(audio_file("conversation1.wav")), "--fast", "--finals", "fast")


@pytest.mark.timeout(120)
def test_fast_finals_are_first_pass_only(conversation1: list[Any]) -> None:
    refs = read_tsv(audio_file("conversation1.tsv"))
    events = conversation1
    assert not any(e["provisional"] for e in events)
    assert not any(e["pass"] == 2 for e in events)
    assert_one_final_each(events, refs, passno=1)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    assert_seq_increasing(events)
    assert wer_of([r.text for r in refs], texts(finals)) <= FIRST_PASS_WER


@pytest.mark.timeout(150)
def test_48k_stereo_gives_the_same_finals(conversation1: list[Any]) -> None:
    """The same conversation at 48 kHz stereo: the first pass (what the capture and feature
    stages feed every later stage) finds the same utterances and nearly the same words."""
    refs = read_tsv(audio_file("conversation1.tsv"))
    events = run_up(
        "--source", str(audio_file("conversation1_48k_stereo.wav")), "--fast", "--finals", "fast"
    )
    assert_one_final_each(events, refs, passno=1)
    finals = last_finals(events)
    assert_boundaries(finals, refs)
    at16k = last_finals(conversation1)
    assert wer_of(texts(at16k), texts(finals)) <= RESAMPLED_FIRST_PASS_WER


@pytest.mark.timeout(150)
def test_raw_pcm_on_stdin_gives_the_same_finals(conversation1: list[Any]) -> None:
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
    from_file = last_finals(conversation1)
    assert got == [(f["text"], f["start_s"], f["end_s"]) for f in from_file]


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
