"""The benchmark speech sets (``benchmarks/speech_sets.py``): format, durations, references,
noise levels, caching and byte-for-byte determinism."""

from __future__ import annotations

import hashlib
import itertools
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from benchmarks import speech_sets as ss

pytestmark = pytest.mark.skipif(
    shutil.which("flite") is None or shutil.which("sox") is None,
    reason="flite and sox are needed to synthesise the speech sets",
)

Sets = dict[str, list[ss.SpeechItem]]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory filled once for the module."""
    path = tmp_path_factory.mktemp("speech_a")
    ss.all_sets(path)
    return path


@pytest.fixture(scope="module")
def sets(cache: Path) -> Sets:
    """Every set, from the filled cache."""
    return ss.all_sets(cache)


def _digests(sets: Sets) -> dict[tuple[str, str], str]:
    return {
        (it.set_name, it.name): hashlib.sha256(it.path.read_bytes()).hexdigest()
        for items in sets.values()
        for it in items
    }


def test_every_file_is_16k_mono_int16_with_its_duration(sets: Sets) -> None:
    for items in sets.values():
        for it in items:
            info = sf.info(str(it.path))
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert it.duration_s == pytest.approx(info.frames / 16000)


@pytest.mark.parametrize("name", ["long_form", "noisy", "reverberant"])
def test_passages_last_15_to_30_s(sets: Sets, name: str) -> None:
    durations = [it.duration_s for it in sets[name]]
    assert durations and all(15.0 <= d <= 30.0 for d in durations), durations


def test_long_form_spreads_passages_over_all_voices(sets: Sets) -> None:
    items = sets["long_form"]
    assert len(items) == len(ss.PASSAGES) >= 8
    assert {it.voice for it in items} == set(ss.VOICES)
    assert sum(p.joined for p in ss.PASSAGES) >= 2


def test_references_are_the_input_text(sets: Sets) -> None:
    texts = {p.name: p.text for p in ss.PASSAGES}
    for items in sets.values():
        for it in items:
            assert it.text.strip()
    for name in ("long_form", "noisy", "reverberant"):
        for it in sets[name]:
            assert it.text == texts[it.name.split("+")[0]]


def _read(path: Path) -> npt.NDArray[np.float64]:
    x: npt.NDArray[np.float64] = sf.read(str(path), dtype="float64")[0]
    return x


def test_noise_is_mixed_at_the_promised_snr(sets: Sets) -> None:
    clean = {it.name: it for it in sets["long_form"]}
    for i, it in enumerate(sets["noisy"]):
        x = _read(clean[it.name.split("+")[0]].path)
        noise = _read(it.path) - x
        snr_db = 10 * np.log10(np.mean(x**2) / np.mean(noise**2))
        assert snr_db == pytest.approx(ss.NOISES[i % 2][1], abs=0.2)


def test_noisy_unseen_is_the_unseen_file_in_noise(sets: Sets) -> None:
    (clean,) = sets["unseen"]
    x = _read(clean.path)
    assert len(sets["noisy_unseen"]) == len(ss.NOISES)
    for (_color, snr), it in zip(ss.NOISES, sets["noisy_unseen"], strict=True):
        assert (it.text, it.segments, it.tsv) == (clean.text, clean.segments, clean.tsv)
        noise = _read(it.path) - x
        assert 10 * np.log10(np.mean(x**2) / np.mean(noise**2)) == pytest.approx(snr, abs=0.2)


def test_reverberant_files_differ_from_clean_and_do_not_clip(sets: Sets) -> None:
    clean = {it.name: it for it in sets["long_form"]}
    for it in sets["reverberant"]:
        x, y = _read(clean[it.name.split("+")[0]].path), _read(it.path)
        assert len(y) >= len(x)
        assert not np.allclose(y[: len(x)], x, atol=1e-3)
        assert 10 ** (-6 / 20) <= np.max(np.abs(y)) <= 10 ** (-1 / 20)  # sox norm -3


def test_unseen_sentences_have_their_times_and_pauses(sets: Sets) -> None:
    (item,) = sets["unseen"]
    segs = item.segments
    assert 10 <= len(segs) <= 20
    assert all(2.0 <= s.end_s - s.start_s <= 5.0 for s in segs)
    gaps = [b.start_s - a.end_s for a, b in itertools.pairwise(segs)]
    assert all(0.8 - 1e-3 <= g <= 1.2 + 1e-3 for g in gaps), gaps
    assert segs[-1].end_s < item.duration_s
    assert item.text == " ".join(s.text for s in segs)
    shared = Path(__file__).resolve().parents[2].parent / "shared/audio/utterances/transcripts.tsv"
    if shared.exists():
        seen = {row.split("\t")[2] for row in shared.read_text().splitlines()[1:]}
        assert not seen & {s.text for s in segs}
    assert item.tsv is not None
    rows = item.tsv.read_text().splitlines()
    assert rows[0] == "start_s\tend_s\ttext" and len(rows) == len(segs) + 1


def test_a_second_call_reuses_the_cache(cache: Path, sets: Sets) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    again = ss.all_sets(cache)
    assert again == sets
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == before


def test_generation_is_deterministic(tmp_path: Path, sets: Sets) -> None:
    fresh = ss.all_sets(tmp_path)
    assert _digests(fresh) == _digests(sets)
    assert [it.path.name for it in fresh["long_form"]] == [it.path.name for it in sets["long_form"]]
