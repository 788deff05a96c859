"""Checks that reject hallucinated or degenerate Whisper output.

Pure functions over decoded text and tokens: the gzip compression ratio Whisper itself uses
to detect loops, a repeated-n-gram count, the no-speech / log-probability rule, and the loop
rule of the refiner (:func:`loop_reason`), which tells a decoder loop from real repetition
by the speaking rate it implies: people repeat phrases ("it was the best of times, it was the
worst of times"; "Do you hear me? Yes. Do you hear me?"), but a looping decoder writes more
words than the audio can hold. A loop is collapsed (:func:`collapse_repeats`), never dropped.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "FilterOptions",
    "collapse_repeats",
    "compression_ratio",
    "has_repeated_phrase",
    "loop_reason",
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
        doubt_no_speech_threshold: with ``doubt_logprob_threshold``, reject as silence when
            the no-speech probability exceeds this *and* the log-probability is below that:
            a sentence Whisper base invented on -30 dBFS pink noise the speech gate let
            through scored 0.59 / -1.58, just inside OpenAI's rule (real speech, noisy
            included, stays below ~0.1 no-speech).
        doubt_logprob_threshold: see ``doubt_no_speech_threshold``.
        no_speech_alone_threshold: reject as silence when the no-speech probability exceeds
            this whatever the log-probability (Whisper base says "you" on silence with
            no-speech probability ~0.92 and log-probability ~-0.9; speech stays below ~0.1).
        phrase_words: a phrase of this many words occurring twice marks a decode as
            looping only when the text is also faster than ``loop_words_per_s`` (real speech
            repeats phrases; see :func:`loop_reason`).
        loop_words_per_s: words per second of speech above which repeated phrasing is a loop
            (read speech is 2-3.5 words/s; a decoder loop writes its phrase again and again).
        max_words_per_s: words per second of speech above which any decode is a loop.
        loop_compression_ratio: compression ratio above which a decode is a loop whatever
            its rate (real text stays near 1.5-2.3 even with parallel clauses; loops 3+).
    """

    compression_ratio_threshold: float = 2.4
    max_ngram_repeats: int = 3
    ngram_sizes: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    doubt_no_speech_threshold: float = 0.4
    doubt_logprob_threshold: float = -1.4
    no_speech_alone_threshold: float = 0.85
    phrase_words: int = 4
    loop_words_per_s: float = 4.5
    max_words_per_s: float = 7.0
    loop_compression_ratio: float = 3.0


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
    if (
        no_speech_prob > options.no_speech_alone_threshold
        or (
            no_speech_prob > options.no_speech_threshold and avg_logprob < options.logprob_threshold
        )
        or (
            no_speech_prob > options.doubt_no_speech_threshold
            and avg_logprob < options.doubt_logprob_threshold
        )
    ):
        return "no_speech"
    if compression_ratio(text) > options.compression_ratio_threshold:
        return "compression_ratio"
    if max_ngram_repeats(words, options.ngram_sizes) > options.max_ngram_repeats:
        return "repetition"
    return None


def loop_reason(text: str, hit_cap: bool, speech_s: float, options: FilterOptions) -> str | None:
    """Why a decode looks like a decoder loop, or None for text a person could have said.

    Args:
        text: decoded text.
        hit_cap: the decode stopped at its token cap instead of its end-of-text token.
        speech_s: seconds of speech the text should cover (> 0).
        options: thresholds.

    Returns:
        ``"length_cap"``, ``"too_many_words"``, ``"compression_ratio"``, ``"repetition"``
        (one n-gram back to back more than ``max_ngram_repeats`` times) or
        ``"repeated_phrase"`` (a phrase twice, at a rate above ``loop_words_per_s``).
    """
    words = words_of(text)
    rate = len(words) / max(speech_s, 0.5)
    if hit_cap:
        return "length_cap"
    if rate > options.max_words_per_s:
        return "too_many_words"
    if compression_ratio(text) > options.loop_compression_ratio:
        return "compression_ratio"
    if max_ngram_repeats(words, options.ngram_sizes) > options.max_ngram_repeats:
        return "repetition"
    if rate > options.loop_words_per_s and has_repeated_phrase(words, options.phrase_words):
        return "repeated_phrase"
    return None


def collapse_repeats(items: Sequence[str], max_repeats: int, sizes: Sequence[int]) -> list[int]:
    """Indices of ``items`` to keep so that no n-gram (n in ``sizes``, compared as
    :func:`words_of` does) runs back to back more than ``max_repeats`` times: the extra
    copies of a decoder loop are dropped, the first ``max_repeats`` kept."""
    keys = [" ".join(words_of(x)) for x in items]
    keep = list(range(len(items)))
    changed = True
    while changed:
        changed = False
        for n in sorted(sizes, reverse=True):
            cur = [keys[i] for i in keep]
            cut = _first_excess_run(cur, n, max_repeats)
            if cut is not None:
                lo, hi = cut
                keep = keep[:lo] + keep[hi:]
                changed = True
                break
    return keep


def _first_excess_run(keys: Sequence[str], n: int, max_repeats: int) -> tuple[int, int] | None:
    """(start, end) of the copies beyond ``max_repeats`` in the first over-long run of one
    n-gram repeated back to back, or None."""
    if n <= 0:
        return None
    for start in range(len(keys) - n + 1):
        gram = keys[start : start + n]
        run, i = 1, start + n
        while keys[i : i + n] == gram:
            run, i = run + 1, i + n
        if run > max_repeats:
            return start + max_repeats * n, start + run * n
    return None
