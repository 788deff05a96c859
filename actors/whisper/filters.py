"""Checks that reject hallucinated or degenerate Whisper output.

Pure functions over decoded text and tokens: the gzip compression ratio Whisper itself uses
to detect loops, a repeated-n-gram count, and the no-speech / log-probability rule.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FilterOptions",
    "compression_ratio",
    "has_repeated_phrase",
    "max_ngram_repeats",
    "rejection_reason",
    "words_of",
]


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """Thresholds for :func:`rejection_reason`.

    Attributes:
        compression_ratio_threshold: reject text whose zlib compression ratio exceeds this
            (Whisper's own loop detector; 2.4 in OpenAI's decoder).
        max_ngram_repeats: reject when one word n-gram (n in ``ngram_sizes``) occurs more
            than this many times in a row.
        ngram_sizes: the n-gram lengths (in words) checked for consecutive repetition.
        no_speech_threshold: with ``logprob_threshold``, reject as silence when the
            no-speech probability exceeds this *and* the average log-probability is below
            ``logprob_threshold`` (OpenAI's rule).
        logprob_threshold: average token log-probability (natural log) below which an
            output is considered unreliable.
        no_speech_alone_threshold: reject as silence when the no-speech probability exceeds
            this whatever the log-probability (Whisper base says "you" on silence with
            no-speech probability ~0.92 and log-probability ~-0.9; speech stays below ~0.1).
        phrase_words: a phrase of this many words occurring twice marks a short-window
            decode as looping (it is then re-decoded with the full window, not rejected).
    """

    compression_ratio_threshold: float = 2.4
    max_ngram_repeats: int = 3
    ngram_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    no_speech_alone_threshold: float = 0.85
    phrase_words: int = 4


def compression_ratio(text: str) -> float:
    """Return len(utf-8 bytes) / len(zlib-compressed bytes) of ``text`` (0.0 for empty text)."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


def max_ngram_repeats(items: Sequence[str], sizes: Sequence[int]) -> int:
    """Return the longest run of one n-gram repeated back to back, over n in ``sizes``.

    ``["a", "b", "a", "b", "a", "b"]`` with n=2 gives 3; a sequence without repetition gives 1
    (0 for an empty sequence).
    """
    best = 1 if items else 0
    for n in sizes:
        if n <= 0 or 2 * n > len(items):
            continue
        for start in range(n):
            run = 1
            prev: tuple[str, ...] | None = None
            for i in range(start, len(items) - n + 1, n):
                gram = tuple(items[i : i + n])
                run = run + 1 if gram == prev else 1
                prev = gram
                best = max(best, run)
    return best


def has_repeated_phrase(items: Sequence[str], n_words: int) -> bool:
    """True if some run of ``n_words`` consecutive items occurs twice without overlapping."""
    if n_words <= 0:
        raise ValueError("n_words must be > 0")
    first_seen: dict[tuple[str, ...], int] = {}
    for i in range(len(items) - n_words + 1):
        gram = tuple(items[i : i + n_words])
        seen = first_seen.setdefault(gram, i)
        if i - seen >= n_words:
            return True
    return False


def words_of(text: str) -> list[str]:
    """Lowercased words of ``text`` with surrounding punctuation stripped."""
    out = []
    for raw in text.lower().split():
        word = raw.strip(".,!?;:\"'()[]-")
        if word:
            out.append(word)
    return out


def rejection_reason(
    text: str,
    no_speech_prob: float,
    avg_logprob: float,
    options: FilterOptions,
) -> str | None:
    """Return why a decoded output should be rejected, or None if it looks sound.

    Args:
        text: decoded text.
        no_speech_prob: probability of Whisper's no-speech token at the first step, in [0, 1].
        avg_logprob: mean token log-probability (natural log, <= 0).
        options: thresholds.

    Returns:
        ``"empty"``, ``"no_speech"``, ``"compression_ratio"`` or ``"repetition"``; None to keep.
    """
    words = words_of(text)
    if not words:
        return "empty"
    if no_speech_prob > options.no_speech_alone_threshold or (
        no_speech_prob > options.no_speech_threshold and avg_logprob < options.logprob_threshold
    ):
        return "no_speech"
    if compression_ratio(text) > options.compression_ratio_threshold:
        return "compression_ratio"
    if max_ngram_repeats(words, options.ngram_sizes) > options.max_ngram_repeats:
        return "repetition"
    return None
