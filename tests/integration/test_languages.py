"""Other languages end to end (the Whisper-led mode): German speech from espeak-ng through
real processes, PocketSphinx only segmenting, Whisper writing partials and finals in German,
``auto`` detecting the language, and translation to English."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import Instance, parse_events, wer_of
from language_sets import SENTENCES
from synth import Timeline, espeak, needs_espeak, silence

pytestmark = [pytest.mark.slow, needs_espeak]

#: Accurate-final WER allowed on the espeak-ng German sentences (Whisper base on the whole
#: file reads about 10 % of their words wrong; the benchmark prints the ratio).
GERMAN_WER = 0.35


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    t = Timeline()
    t.add(silence(0.5))
    texts = [SENTENCES["de"][1][0], SENTENCES["de"][3][0]]  # Berlin, the kitchen light
    for text in texts:
        t.add(espeak(text, "de"), "sentence").add(silence(1.0))
    return t.write(tmp_path_factory.mktemp("de") / "de.wav"), texts


def finals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("kind") == "final" and not e.get("provisional")]


def test_german_is_transcribed_in_german_with_partials(
    instance: Instance, german: tuple[Path, list[str]]
) -> None:
    path, texts = german
    res = instance.cli("up", "--source", str(path), "--json", "--language", "de", timeout_s=180)
    assert res.returncode == 0, res.stderr
    events = parse_events(res.stdout)
    got = finals(events)
    assert len(got) == len(texts), [f["text"] for f in got]
    assert all(f["pass"] == 2 and f["language"] == "de" and f["text"] for f in got), got
    assert wer_of(texts, [f["text"] for f in got]) <= GERMAN_WER, [f["text"] for f in got]
    partials = [e for e in events if e.get("kind") == "partial"]
    # Whisper's partials only: the English first pass writes nothing in this mode
    assert partials and all(p["pass"] == 2 and p["language"] == "de" for p in partials)
    assert not any(e.get("provisional") for e in events)


@pytest.mark.extended
def test_auto_detects_german_and_translate_gives_english(
    instance: Instance, german: tuple[Path, list[str]]
) -> None:
    path, texts = german
    res = instance.cli(
        "up", "--source", str(path), "--fast", "--json", "--language", "auto", timeout_s=180
    )
    assert res.returncode == 0, res.stderr
    got = finals(parse_events(res.stdout))
    assert [f["language"] for f in got] == ["de"] * len(texts), got
    res = instance.cli(
        "up", "--source", str(path), "--fast", "--json", "--language", "de", "--translate",
        timeout_s=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    english = [f["text"] for f in finals(parse_events(res.stdout))]
    assert len(english) == len(texts) and all(english), english
    assert all(f["language"] == "de" for f in finals(parse_events(res.stdout)))
    words = " ".join(english).lower()
    assert "berlin" in words and "kitchen" in words, english  # English, not German
    assert "küche" not in words and "morgen" not in words, english
