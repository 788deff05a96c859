"""One partial stream per utterance out of the two passes' partials (pure; no sockets, no clock).

Both passes send partials under the same utterance id: PocketSphinx (pass 1) every chunk,
Whisper (pass 2, the refine actor) every ``partial_interval_ms`` while it has headroom. Shown
as they come, a display would swap whole hypotheses that disagree ("Set a timer for 10" ->
"shitty timers for two"). :class:`PartialMerger` turns them into one stream per utterance:

* Until the first Whisper partial with words, the first pass's partials are shown as they
  are (``pass = 1``).
* From the first Whisper partial on, every partial of the utterance is ``pass = 2``: the
  words of the newest Whisper partial, then the first pass's words for the audio after it
  (``text`` = second-pass words + first-pass tail). A first-pass partial then only renews
  that tail; under load, when Whisper partials pause, the display keeps the last one and
  grows with the first pass's new words instead of switching back to the first pass's
  hypothesis. So the source of an utterance's partials switches at most once, 1 -> 2.
* Words are *committed* by local agreement over the Whisper partials' texts (the rule of
  :mod:`streamasr.actors.refine.agreement`, which the refine actor applies to its runs:
  fed the texts it sends, it commits the same words) and never retracted: each partial
  begins with the committed words of the one before.
* A provisional final (the first pass's endpoint) of an utterance that had Whisper partials
  is shown the same way, so the display does not fall back to the first pass's hypothesis
  while the accurate final is on its way.

Two fields describe a merged message: ``committed_words`` (leading words of ``text`` that
later partials keep) and ``second_pass_words`` (leading words that are Whisper's; the
words after them are the first pass's). Words are ``text.split()``.

Which first-pass words are "after" the Whisper partial: the first pass's partials carry no
word times, so it is decided by counting. A Whisper partial covers the audio up to its
``end_s`` (the end of the first-pass partial it was run for); the first pass's tail is its
newest partial's words after index ``max(k, n)``: ``k`` the words its own partial ending at
``end_s`` had (PocketSphinx lags the audio it has read, so ``k`` alone undercounts), ``n``
the Whisper partial's word count. First-pass *finals* carry word times: there the tail is
the words whose middle lies after ``end_s``. Either way, leading tail words that repeat the
Whisper partial's last words are dropped (Whisper hears ``margin_s`` past ``end_s``), and
when a tail follows, the sentence punctuation Whisper put at the cut is dropped from its last
uncommitted word. The tail is a guess that the next Whisper partial replaces; committed words
do not depend on it.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streamasr.actors import messages as m
from streamasr.actors.refine.agreement import LocalAgreement, normalise

__all__ = ["MAX_OVERLAP_WORDS", "PartialMerger", "skip_overlap", "tail_start"]

#: Most tail words dropped because they repeat the Whisper partial's last words.
MAX_OVERLAP_WORDS = 3

#: First-pass partials remembered per utterance (their end time and word count).
HISTORY_KEEP = 512

#: Stream seconds within which two end times count as the same.
EPS_S = 1e-6

#: Sentence punctuation Whisper puts where the audio so far was cut; dropped from its last,
#: uncommitted word when first-pass words follow it.
_CUT_PUNCTUATION = ".?!…"

#: Utterances of one stream tracked at once (a late Whisper partial of an older one may
#: arrive after the next one began).
UTTERANCES_KEEP = 4


@dataclass(slots=True)
class _Second:
    """The newest Whisper partial of an utterance, after local agreement."""

    committed: tuple[str, ...]
    tail: tuple[str, ...]
    end_s: float
    words: list[list[Any]]
    first_pass_count: int  # words of the first pass's partial that ended at end_s

    @property
    def tokens(self) -> tuple[str, ...]:
        return (*self.committed, *self.tail)


@dataclass(slots=True)
class _Utterance:
    agreement: LocalAgreement = field(default_factory=LocalAgreement)
    history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=HISTORY_KEEP))
    first: m.Transcript | None = None  # newest first-pass partial
    second: _Second | None = None
    shown: tuple[int, str, int, int] | None = None  # pass, text, committed, second-pass words


def tail_start(second: Sequence[str], first_count: int, first: Sequence[str]) -> int:
    """Index in ``first`` (the first pass's words) where its tail after ``second`` (the
    Whisper partial's words) starts: past ``max(first_count, len(second))``, then past
    leading words that repeat ``second``'s last ones (:func:`skip_overlap`)."""
    return skip_overlap(second, first, max(first_count, len(second)))


def skip_overlap(second: Sequence[str], first: Sequence[str], start: int) -> int:
    """``start`` (capped at ``len(first)``), moved past the words of ``first`` from there
    that repeat the last words of ``second`` (at most :data:`MAX_OVERLAP_WORDS`, compared
    with :func:`~streamasr.actors.refine.agreement.normalise`)."""
    start = min(len(first), max(0, start))
    rest = [normalise(w) for w in first[start:]]
    last = [normalise(w) for w in second]
    for k in range(min(MAX_OVERLAP_WORDS, len(rest), len(last)), 0, -1):
        if rest[:k] == last[-k:]:
            return start + k
    return start


class PartialMerger:
    """Merges one stream's partials of both passes, utterance by utterance (see module)."""

    def __init__(self) -> None:
        """No utterance in progress."""
        self._utts: dict[str, _Utterance] = {}

    def _get(self, utterance_id: str, *, newest: bool) -> _Utterance:
        """The state of ``utterance_id``; ``newest``: it is the stream's utterance in
        progress (a first-pass partial came), so the stream's earlier ones are over."""
        u = self._utts.get(utterance_id)
        if u is None:
            if newest:
                self._utts.clear()
            elif len(self._utts) >= UTTERANCES_KEEP:
                del self._utts[next(iter(self._utts))]
            u = self._utts[utterance_id] = _Utterance()
        return u

    def first_pass(self, t: m.Transcript) -> m.Transcript | None:
        """A first-pass partial in; the partial to show, or None if the display is unchanged."""
        u = self._get(t.utterance_id, newest=True)
        u.history.append((t.end_s, len(t.text.split())))
        u.first = t
        if u.second is None:
            return self._show(u, t)
        return self._show(u, self._merged(u, t))

    def second_pass(self, t: m.Transcript) -> m.Transcript | None:
        """A Whisper partial in; the partial to show, or None if the display is unchanged."""
        u = self._get(t.utterance_id, newest=False)
        agreed = u.agreement.update(t.text.split())
        if not agreed.committed and not agreed.tail:
            return None  # no words: the display keeps what it shows (first pass or Whisper)
        end_s = max([t.end_s, *(float(w[2]) for w in t.words if _timed(w))])
        u.second = _Second(agreed.committed, agreed.tail, end_s, t.words, self._count_at(u, end_s))
        return self._show(u, self._merged(u, t))

    def provisional_final(self, t: m.Transcript) -> m.Transcript:
        """A first-pass provisional final in; what to show (``t`` itself if the utterance had
        no Whisper partial). Ends the utterance."""
        u = self._utts.pop(t.utterance_id, None)
        if u is None or u.second is None:
            return t
        second = u.second
        tokens = t.text.split()
        if len(t.words) == len(tokens) and all(_timed(w) for w in t.words):
            before = sum((float(w[1]) + float(w[2])) / 2 < second.end_s - EPS_S for w in t.words)
            start, tail_words = skip_overlap(second.tokens, tokens, before), t.words
        else:
            start, tail_words = tail_start(second.tokens, second.first_pass_count, tokens), []
        return self._build(t, second, tokens[start:], [*second.words, *tail_words[start:]])

    def finish(self, utterance_id: str) -> None:
        """The utterance has its final: forget it."""
        self._utts.pop(utterance_id, None)

    # -------------------------------------------------------------------------- internals
    @staticmethod
    def _count_at(u: _Utterance, end_s: float) -> int:
        """Word count of the first pass's newest partial that ended by ``end_s`` (the oldest
        remembered if none did); older history is dropped (Whisper's ``end_s`` only grows)."""
        while len(u.history) > 1 and u.history[1][0] <= end_s + EPS_S:
            u.history.popleft()
        return u.history[0][1] if u.history else 0

    def _merged(self, u: _Utterance, trigger: m.Transcript) -> m.Transcript:
        """The pass-2 partial: Whisper's words, then the first pass's tail; timing and
        latency from ``trigger`` (the message that caused the update)."""
        second = u.second
        assert second is not None
        first = u.first.text.split() if u.first is not None else []
        tail = first[tail_start(second.tokens, second.first_pass_count, first) :]
        out = self._build(trigger, second, tail, second.words)
        end_s = max(trigger.end_s, u.first.end_s if u.first is not None else trigger.end_s)
        return dataclasses.replace(out, end_s=end_s)

    @staticmethod
    def _build(
        t: m.Transcript, second: _Second, tail: Sequence[str], words: list[list[Any]]
    ) -> m.Transcript:
        tokens = second.tokens
        shown = list(tokens)
        if tail and second.tail and shown[-1].rstrip(_CUT_PUNCTUATION):
            shown[-1] = shown[-1].rstrip(_CUT_PUNCTUATION)  # "Turn off all the." + "lights"
        return dataclasses.replace(
            t,
            passno=t.passno if t.is_final else 2,
            text=" ".join((*shown, *tail)),
            words=list(words),
            committed_words=0 if t.is_final else len(second.committed),
            second_pass_words=len(tokens),
        )

    @staticmethod
    def _show(u: _Utterance, t: m.Transcript) -> m.Transcript | None:
        key = (t.passno, t.text, t.committed_words, t.second_pass_words)
        if key == u.shown:
            return None
        u.shown = key
        return t


def _timed(w: Sequence[Any]) -> bool:
    """Whether a ``[word, start_s, end_s, conf]`` entry carries its times."""
    return len(w) >= 3 and all(isinstance(x, int | float) for x in w[1:3])
