"""Local agreement over repeated Whisper runs on a growing utterance (pure; no model).

Whisper re-run on the audio of an utterance so far rewrites its last words as more audio
arrives (a word cut in half, punctuation at the cut). whisper_streaming's *local agreement*
policy commits a word once two consecutive runs agree on it: the committed prefix is the
longest common word prefix of the last two runs, compared after normalisation (case and
punctuation ignored), and it only ever grows. What the newest run says beyond the committed
prefix is its unconfirmed tail, shown but open to change.

Here every run transcribes the whole utterance from its start, so a run repeats the
committed words before its new ones. A run that rewrote a committed word (Whisper changed
its mind) does not retract it: the run's words are aligned to the committed prefix by
their normalised form, and only what follows the last committed word is compared.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AgreedText", "LocalAgreement", "common_prefix_len", "normalise"]

_PUNCT = re.compile(r"[^\w']+|(?<!\w)'|'(?!\w)")


def normalise(word: str) -> str:
    """``word`` lower-cased without punctuation (apostrophes inside a word are kept)."""
    return _PUNCT.sub("", word.lower())


def common_prefix_len(a: Sequence[str], b: Sequence[str]) -> int:
    """Number of leading words ``a`` and ``b`` share, compared with :func:`normalise`."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if normalise(x) != normalise(y):
            break
        n += 1
    return n


@dataclass(frozen=True, slots=True)
class AgreedText:
    """The text to show after a run.

    Attributes:
        committed: words confirmed by two consecutive runs (never retracted), in the
            newest run's spelling where it repeated them.
        tail: the newest run's words after the committed ones (unconfirmed).
        new: how many words this run added to ``committed``.
    """

    committed: tuple[str, ...]
    tail: tuple[str, ...]
    new: int = 0

    @property
    def text(self) -> str:
        """Committed words, then the tail, joined by single spaces."""
        return " ".join((*self.committed, *self.tail))


class LocalAgreement:
    """Per-utterance local-agreement state: feed each run's words to :meth:`update`."""

    def __init__(self) -> None:
        """Start with nothing committed and no previous run."""
        self._committed: list[str] = []
        self._previous: list[str] | None = None

    @property
    def committed(self) -> tuple[str, ...]:
        """The words committed so far."""
        return tuple(self._committed)

    def update(self, words: Sequence[str]) -> AgreedText:
        """Add one run's words (the whole utterance so far) and return what to show.

        The first run commits nothing. After that, the words two consecutive runs agree on
        beyond the committed prefix are committed.
        """
        run = [w for w in words if normalise(w)]
        rest = run[self._skip(run) :]
        if self._previous is None:
            self._previous = run
            return AgreedText(tuple(self._committed), tuple(rest))
        before = self._previous[self._skip(self._previous) :]
        agree = common_prefix_len(before, rest)
        self._committed.extend(rest[:agree])
        self._previous = run
        return AgreedText(tuple(self._committed), tuple(rest[agree:]), agree)

    def _skip(self, run: Sequence[str]) -> int:
        """Index in ``run`` just past the committed words.

        When ``run`` begins with the committed words (the usual case), their count; otherwise
        the position after the run's match of the last committed word (by normalised form,
        found with a sequence alignment); failing that, the committed word count (capped).
        """
        done = self._committed
        if not done:
            return 0
        if common_prefix_len(done, run) == len(done):
            return len(done)
        a = [normalise(w) for w in done]
        b = [normalise(w) for w in run]
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        for block in reversed(matcher.get_matching_blocks()):
            if block.size and block.a + block.size == len(a):
                return block.b + block.size
        return min(len(done), len(run))
