"""Wyoming ``transcript-chunk`` texts out of a stream's partials and finals (pure; no sockets).

Wyoming's streaming transcript is append-only: a client concatenates the texts of the
``transcript-chunk`` events as they come (a live preview), and the ``transcript`` event at the
end carries the text to act on. So a chunk may only carry words that nothing later changes.
:class:`ChunkComposer` sends

* an utterance's *committed* words (``Transcript.committed_words``: the leading words of a
  merged partial that every later partial repeats, agreed on by two Whisper runs) as soon as
  a partial commits them, while the client is still sending audio;
* at the utterance's final (the accurate Whisper final, or the first pass's where finals are
  ``fast`` or the refine stage fell back), the final's words after the ones already sent.

The committed words are not retracted when the final disagrees with them (Whisper changed
its mind, rare): the final is aligned to the words sent (their normalised forms, case and
punctuation ignored, as local agreement compares them) and only what follows the last sent
word's match is added. The ``transcript`` text (:attr:`ChunkComposer.text`) is the finals'
own text, so what the client acts on is the accurate final even where the preview kept a
committed word the final rewrote; elsewhere the chunks join into exactly that text.

Utterances are joined in stream order (``start_s``): an utterance's words wait while an
earlier one is open (its final not yet in), so a late accurate final can never land after
the next utterance's words. An earlier utterance that never gets a final of its own (the
first pass dropped it as empty) is closed by a later utterance's final, since finals of a
stream never overtake each other, and at the end of the stream (:meth:`ChunkComposer.end`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from streamasr.actors import messages as m

__all__ = ["ChunkComposer", "words_after"]

_PUNCT = re.compile(r"[^\w']+|(?<!\w)'|'(?!\w)")


def _norm(word: str) -> str:
    """``word`` lower-cased without punctuation (apostrophes inside a word are kept)."""
    return _PUNCT.sub("", word.lower())


def words_after(sent: list[str], final: list[str]) -> int:
    """Index in ``final`` just past its match of the words already ``sent``.

    When ``final`` begins with ``sent`` (compared normalised: the usual case), ``len(sent)``;
    otherwise the position after ``final``'s match of the last sent word found by sequence
    alignment, or, with no match at all, ``len(sent)`` capped at ``len(final)`` (the final
    is taken to say the same number of words over the same audio).
    """
    if not sent:
        return 0
    a = [_norm(w) for w in sent]
    b = [_norm(w) for w in final]
    if b[: len(a)] == a:
        return len(a)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    blocks = [bl for bl in matcher.get_matching_blocks() if bl.size]
    for block in reversed(blocks):
        if block.a + block.size == len(a):
            return block.b + block.size
    if blocks:  # the last sent words were rewritten: skip as many after the last match
        last = blocks[-1]
        return min(len(final), last.b + last.size + len(a) - (last.a + last.size))
    return min(len(sent), len(final))


@dataclass(slots=True)
class _Utterance:
    """One utterance's words: ``words[:sent]`` are in chunks already."""

    start_s: float
    words: list[str] = field(default_factory=list)
    sent: int = 0
    first_pass_final: bool = False  # its provisional (first-pass) final has come
    done: bool = False  # its final has come: nothing more is added
    final: list[str] | None = None  # the final's words (None: closed without a final)


class ChunkComposer:
    """One transcription's chunk texts (see the module docstring).

    Feed every :class:`~streamasr.actors.messages.Transcript` of the stream, in order, to
    :meth:`add`; each call returns the text of the chunk to send now ("" for none). At the
    end call :meth:`end` for the last chunk; :attr:`text` is then the transcript's text.
    """

    def __init__(self) -> None:
        """Nothing sent yet."""
        self._utts: dict[str, _Utterance] = {}
        self._finished: set[str] = set()  # utterances whose words are all sent
        self._pieces: list[str] = []
        self._finals: list[str] = []  # finished utterances' texts, in stream order

    @property
    def text(self) -> str:
        """The ``transcript`` text: the finished utterances' finals (or, for one closed
        without a final, its words sent) in stream order, joined by single spaces."""
        return " ".join(self._finals)

    @property
    def sent(self) -> str:
        """Every chunk so far concatenated and stripped."""
        return "".join(self._pieces).strip()

    def add(self, t: m.Transcript) -> str:
        """A partial or final of the stream in; the chunk text to send now, or ""."""
        if t.utterance_id in self._finished:
            return ""  # a late or repeated event of an utterance already sent whole
        u = self._utts.get(t.utterance_id)
        if u is None:
            u = self._utts[t.utterance_id] = _Utterance(t.start_s)
        if u.done:
            return ""
        if not t.is_final:
            committed = t.text.split()[: t.committed_words]
            if len(committed) > len(u.words):
                u.words.extend(committed[len(u.words) :])
        elif t.provisional:
            u.first_pass_final = True
            self._close_before(u.start_s, needs_first_pass_final=True)
        else:
            final = t.text.split()
            u.words.extend(final[words_after(u.words, final) :])
            u.done, u.final = True, final
            self._close_before(u.start_s, needs_first_pass_final=False)
        return self._emit()

    def end(self) -> str:
        """The stream has ended: every utterance is closed; the last chunk text, or ""."""
        for u in self._utts.values():
            u.done = True
        return self._emit()

    def _close_before(self, start_s: float, *, needs_first_pass_final: bool) -> None:
        """Close the utterances before ``start_s`` that will get no final: after a later
        utterance's accurate final every earlier one (finals never overtake each other);
        after a later first-pass final those that had no first-pass final."""
        for u in self._utts.values():
            if u.start_s < start_s and not (needs_first_pass_final and u.first_pass_final):
                u.done = True

    def _emit(self) -> str:
        """New words of the utterances in stream order, up to the first one still open;
        forget the finished ones at the front."""
        new: list[str] = []
        for uid, u in sorted(self._utts.items(), key=lambda kv: kv[1].start_s):
            new += u.words[u.sent :]
            u.sent = len(u.words)
            if not u.done:
                break
            del self._utts[uid]
            self._finished.add(uid)
            said = " ".join(u.final if u.final is not None else u.words)
            if said:
                self._finals.append(said)
        if not new:
            return ""
        piece = " ".join(new)
        piece = f" {piece}" if self._pieces else piece
        self._pieces.append(piece)
        return piece
