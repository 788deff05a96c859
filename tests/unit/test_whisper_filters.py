"""Output checks that reject looping or silent Whisper decodes."""

from __future__ import annotations

import pytest

from streamasr.actors.refine.filters import (
    FilterOptions,
    collapse_repeats,
    compression_ratio,
    has_repeated_phrase,
    loop_reason,
    max_ngram_repeats,
    rejection_reason,
    words_of,
)

OPTS = FilterOptions()


def test_compression_ratio_of_normal_and_looping_text() -> None:
    assert compression_ratio("") == 0.0
    assert compression_ratio("Set a timer for ten minutes.") < 1.5
    assert compression_ratio("turn on the lights " * 20) > 2.4


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], 0),
        (["a"], 1),
        (["a", "b", "c", "d"], 1),
        (["a", "a", "a"], 3),
        (["x", "a", "b", "a", "b", "a", "b", "y"], 3),
        (["a", "b", "c", "a", "b", "c"], 2),
    ],
)
def test_max_ngram_repeats(items: list[str], expected: int) -> None:
    assert max_ngram_repeats(items, (1, 2, 3)) == expected


def test_sound_text_is_kept() -> None:
    assert rejection_reason("How long will it take to drive?", 0.05, -0.2, OPTS) is None


def test_empty_and_punctuation_only_text_is_rejected() -> None:
    assert rejection_reason("", 0.0, -0.1, OPTS) == "empty"
    assert rejection_reason(" ... ", 0.0, -0.1, OPTS) == "empty"


def test_no_speech_rule() -> None:
    assert rejection_reason("Thank you.", 0.7, -1.5, OPTS) == "no_speech"
    assert rejection_reason("Thank you.", 0.7, -0.3, OPTS) is None
    assert rejection_reason("Thank you.", 0.2, -1.5, OPTS) is None
    assert rejection_reason("you", 0.9, -0.3, OPTS) == "no_speech"
    # invented on pink noise: just inside OpenAI's rule, caught by the doubt rule
    invented = "I'm going to put the water in the pot."
    assert rejection_reason(invented, 0.59, -1.58, OPTS) == "no_speech"
    assert rejection_reason(invented, 0.59, -1.2, OPTS) is None
    assert rejection_reason(invented, 0.1, -1.58, OPTS) is None  # unsure, but speech


def test_repeated_phrase() -> None:
    looped = words_of("What is the weather like tomorrow? What is the weather like")
    assert has_repeated_phrase(looped, 4)
    assert not has_repeated_phrase(words_of("turn on the lights and turn off the fan"), 4)
    assert not has_repeated_phrase(["a", "a", "a", "a", "a"], 4)  # overlapping only
    assert has_repeated_phrase(["a"] * 8, 4)
    with pytest.raises(ValueError, match="n_words must be > 0"):
        has_repeated_phrase(["a"], 0)


def test_repetition_is_rejected() -> None:
    looping = "call my sister call my sister call my sister call my sister"
    assert rejection_reason(looping, 0.0, -0.2, OPTS) in {"compression_ratio", "repetition"}
    short_loop = "no no no no"
    assert rejection_reason(short_loop, 0.0, -0.2, OPTS) == "repetition"
    assert rejection_reason("no no no", 0.0, -0.2, OPTS) is None


@pytest.mark.parametrize(
    ("text", "hit_cap", "speech_s", "expected"),
    [
        # real repetition at a speaking rate: kept
        ("Do you hear me? Yes. Do you hear me? Yes.", False, 3.0, None),
        (
            "It was the best of times, it was the worst of times, it was the age of wisdom, "
            "it was the age of foolishness, it was the epoch of belief.",
            False,
            7.0,
            None,
        ),
        ("no no no", False, 1.5, None),
        # decoder loops: more words than the audio holds, or back-to-back copies
        (
            "What is the weather like tomorrow? What is the weather like",
            False,
            2.0,
            "repeated_phrase",
        ),
        ("call my sister " * 4, False, 8.0, "repetition"),
        ("turn on the lights " * 20, False, 30.0, "compression_ratio"),
        ("one two three four five six seven eight", False, 1.0, "too_many_words"),
        ("Set a timer for ten minutes.", True, 2.0, "length_cap"),
    ],
)
def test_loop_reason(text: str, hit_cap: bool, speech_s: float, expected: str | None) -> None:
    assert loop_reason(text, hit_cap, speech_s, OPTS) == expected


@pytest.mark.parametrize(
    ("items", "keep"),
    [
        ("call my sister call my sister call my sister", "call my sister"),
        ("set a timer a timer a timer for ten", "set a timer for ten"),
        ("no, no, no.", "no,"),
        ("it was the best of times it was the worst", "it was the best of times it was the worst"),
        ("", ""),
    ],
)
def test_collapse_repeats_keeps_one_copy(items: str, keep: str) -> None:
    words = items.split()
    assert " ".join(words[i] for i in collapse_repeats(words, 1, (1, 2, 3, 4))) == keep
    assert collapse_repeats(words, 3, (1, 2, 3)) == list(range(len(words)))
