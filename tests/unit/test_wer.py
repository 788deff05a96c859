"""Text normalisation and word error rate."""

from __future__ import annotations

import pytest
from wer import WerCounts, normalize_words, number_to_words, wer, word_edits


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("My favourite colour is green.", ["my", "favorite", "color", "is", "green"]),
        ("set a timer for 10 minutes", ["set", "a", "timer", "for", "ten", "minutes"]),
        ("leaves at 7:30", ["leaves", "at", "seven", "thirty"]),
        ("at 7:05", ["at", "seven", "five"]),
        ("leaves at 7.30.", ["leaves", "at", "seven", "thirty"]),
        ("at 23.59", ["at", "twenty", "three", "fifty", "nine"]),
        ("pi is 3.14159", ["pi", "is", "three", "point", "one", "four", "one", "five", "nine"]),
        ("2.5 kg", ["two", "point", "five", "kg"]),
        ("it costs 2.50.", ["it", "costs", "two", "fifty"]),
        ("the 21st floor", ["the", "twenty", "first", "floor"]),
        ("the 3rd and 12th", ["the", "third", "and", "twelfth"]),
        ("the 40th", ["the", "fortieth"]),
        ("1,250 people", ["one", "thousand", "two", "hundred", "fifty", "people"]),
        ("don't re-read it", ["dont", "re", "read", "it"]),
        ("  ", []),
    ],
)
def test_normalize_words(text: str, words: list[str]) -> None:
    assert normalize_words(text) == words


def test_number_to_words() -> None:
    assert number_to_words(0) == ["zero"]
    assert number_to_words(105) == ["one", "hundred", "five"]
    assert number_to_words(2_000_019) == ["two", "million", "nineteen"]
    with pytest.raises(ValueError, match=r"^number_to_words: negative number -1$"):
        number_to_words(-1)


def test_digits_and_words_compare_equal() -> None:
    assert wer("set a timer for ten minutes", "Set a timer for 10 minutes.") == 0.0
    assert wer("my favorite color", "My favourite colour") == 0.0


def test_word_edits_counts_each_kind() -> None:
    assert word_edits(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert word_edits(["a", "b", "c"], ["a", "x", "c"]) == 1  # substitution
    assert word_edits(["a", "b", "c"], ["a", "c"]) == 1  # deletion
    assert word_edits(["a", "b", "c"], ["a", "b", "c", "d"]) == 1  # insertion
    assert word_edits([], ["a", "b"]) == 2


def test_wer_counts_sum_and_rate() -> None:
    total = WerCounts.of("turn on the lights", "turn the light") + WerCounts.of("stop", "stop")
    assert total == WerCounts(edits=2, ref_words=5)
    assert total.wer == pytest.approx(0.4)
    assert WerCounts().wer == 0.0
    assert WerCounts.of("", "noise").wer == 1.0
