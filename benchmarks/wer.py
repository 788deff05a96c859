"""Word error rate and the text normalisation that tests and benchmarks compare through.

Normalisation (:func:`normalize_words`): lowercase; ``-``/``_``/``/`` become spaces; other
punctuation is dropped (``don't`` -> ``dont``); British spellings map to American ones
(``favourite`` -> ``favorite``, ``colour`` -> ``color``); digits become number words
(``10`` -> ``ten``, ``7:30`` and British ``7.30`` -> ``seven thirty``, ``21st`` -> ``twenty
first``; other decimals read digit by digit, ``2.5`` -> ``two point five``), so ``"10"`` and
``"ten"`` compare equal whichever side wrote which.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["WerCounts", "normalize_words", "number_to_words", "wer", "word_edits"]

_SPELLING = {
    "favourite": "favorite",
    "favourites": "favorites",
    "colour": "color",
    "colours": "colors",
    "neighbour": "neighbor",
    "neighbours": "neighbors",
    "honour": "honor",
    "humour": "humor",
    "flavour": "flavor",
    "labour": "labor",
    "behaviour": "behavior",
    "centre": "center",
    "theatre": "theater",
    "metre": "meter",
    "metres": "meters",
    "litre": "liter",
    "litres": "liters",
    "organise": "organize",
    "realise": "realize",
    "recognise": "recognize",
    "apologise": "apologize",
    "grey": "gray",
    "programme": "program",
    "travelling": "traveling",
    "cancelled": "canceled",
    "catalogue": "catalog",
    "dialogue": "dialog",
    "ok": "okay",
}
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINAL = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
#: ``7.30`` (British time): hour 0..23, two minute digits 00..59, not part of a longer number.
_DOTTED_TIME = re.compile(r"(?<!\d)(?<!\d\.)([01]?\d|2[0-3])\.([0-5]\d)(?!\d|\.\d)")
_DECIMAL = re.compile(r"(?<!\d)(?<!\d\.)(\d+)\.(\d+)(?!\d|\.\d)")
_TOKEN = re.compile(r"(\d+)(st|nd|rd|th)?$")


def number_to_words(n: int) -> list[str]:
    """English words of a non-negative integer (``105`` -> ``one hundred five``)."""
    if n < 0:
        raise ValueError(f"number_to_words: negative number {n}")
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_to_words(head) + [name] + (number_to_words(rest) if rest else [])
    raise AssertionError("unreachable")


def _ordinal(words: list[str]) -> list[str]:
    last = words[-1]
    if last in _ORDINAL:
        last = _ORDINAL[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return [*words[:-1], last]


def _expand_token(token: str) -> list[str]:
    match = _TOKEN.match(token)
    if match is None:
        return [_SPELLING.get(token, token)]
    words = number_to_words(int(match.group(1)))
    return _ordinal(words) if match.group(2) else words


def normalize_words(text: str) -> list[str]:
    """Normalised word list of ``text`` (see the module docstring for the rules)."""
    text = text.lower()
    text = re.sub(r"(\d):(\d\d)\b", lambda m: f"{m.group(1)} {int(m.group(2))}", text)
    text = _DOTTED_TIME.sub(lambda m: f"{int(m.group(1))} {int(m.group(2))}", text)
    text = _DECIMAL.sub(lambda m: f"{m.group(1)} point {' '.join(m.group(2))}", text)
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)
    text = re.sub(r"[-_/]", " ", text)
    text = re.sub(r"[^\w\s]", "", text)
    words: list[str] = []
    for token in text.split():
        words.extend(_expand_token(token))
    return words


def word_edits(ref: Iterable[str], hyp: Iterable[str]) -> int:
    """Levenshtein distance in words (substitutions + deletions + insertions)."""
    r, h = list(ref), list(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, start=1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1]


@dataclass(frozen=True, slots=True)
class WerCounts:
    """Word edits and reference length, summable over utterances or files.

    Attributes:
        edits: substitutions + deletions + insertions, in words.
        ref_words: number of reference words.
    """

    edits: int = 0
    ref_words: int = 0

    @classmethod
    def of(cls, ref: str, hyp: str) -> WerCounts:
        """Counts for one reference/hypothesis pair after normalisation."""
        r = normalize_words(ref)
        return cls(word_edits(r, normalize_words(hyp)), len(r))

    def __add__(self, other: WerCounts) -> WerCounts:
        """Sum of two counts."""
        return WerCounts(self.edits + other.edits, self.ref_words + other.ref_words)

    @property
    def wer(self) -> float:
        """Word error rate as a fraction (0.25 = 25 %).

        An empty reference gives 0.0 with no edits and 1.0 with any (inserted words).
        """
        if self.ref_words == 0:
            return 1.0 if self.edits else 0.0
        return self.edits / self.ref_words


def wer(ref: str, hyp: str) -> float:
    """Word error rate of ``hyp`` against ``ref`` after normalisation, as a fraction."""
    return WerCounts.of(ref, hyp).wer
