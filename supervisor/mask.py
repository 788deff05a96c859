"""The profanity guard on first-pass text shown to users (pure; no sockets, no files).

PocketSphinx, decoding with a general dictionary, now and then hears a swear word in
ordinary speech ("set a timer" -> "shitty timers"). Such false alarms should not reach a
terminal, a web page or a client, so the supervisor masks the words of a short list in
every first-pass (``pass = 1``) transcript before it publishes it: partials, provisional
finals, fast-mode finals and fallback finals alike. A masked word keeps its first letter
(``shitty`` -> ``s***``), so the text stays readable and its word count unchanged.

Second-pass (Whisper) text is not masked by default: Whisper rarely invents such words,
so when it writes one the speaker most likely said it (``[display] mask_second_pass =
true`` masks it too). Words of a configured command grammar are never masked (they are
what the commands are made of). ``[display] mask_words = []`` turns the guard off.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from streamasr.actors import messages as m
from streamasr.actors.errors import ConfigError
from streamasr.actors.refine.agreement import normalise
from streamasr.actors.settings import InferenceConfig
from streamasr.actors.wake.settings import WakeConfig

__all__ = ["DEFAULT_MASK_WORDS", "DisplayConfig", "WordMask", "command_words"]

#: Common English profanities (and the two worst slurs), in the forms a dictionary-based
#: recogniser writes them: lowercase, one form per entry (no stemming).
DEFAULT_MASK_WORDS: tuple[str, ...] = (
    "arse", "ass", "asshole", "assholes", "bastard", "bastards", "bitch", "bitches",
    "bitching", "bollocks", "bullshit", "cock", "cocks", "crap", "cunt", "cunts", "damn",
    "dammit", "dick", "dicks", "fag", "faggot", "fuck", "fucked", "fucker", "fuckers",
    "fucking", "fucks", "goddamn", "motherfucker", "motherfuckers", "nigger", "piss",
    "pissed", "prick", "pussy", "shit", "shits", "shitting", "shitty", "slut", "twat",
    "wanker", "whore",
)  # fmt: skip

#: What a masked word is written as after its first letter.
MASK = "***"

_EDGE = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class DisplayConfig:
    """``[display]``: what users are shown.

    ``mask_words``: words masked in first-pass text before publication (``s***``); the
    built-in list holds ~40 common profanities; ``[]`` turns masking off. Compared in lower
    case without punctuation, whole words only. ``mask_second_pass``: mask Whisper's text
    too (off: Whisper's words are taken to be the speaker's).
    """

    mask_words: tuple[str, ...] = DEFAULT_MASK_WORDS
    mask_second_pass: bool = False

    def validate(self) -> None:
        """Each entry must be one word (letters, digits, inner apostrophes)."""
        for i, word in enumerate(self.mask_words):
            if not word or normalise(word) != word.lower():
                raise ConfigError(
                    f"display.mask_words[{i}]: {word!r} must be a single word without punctuation"
                )


class WordMask:
    """Masks listed words in transcripts, except the words of a command grammar."""

    def __init__(self, options: DisplayConfig | None = None, keep: Iterable[str] = ()) -> None:
        """Mask ``options.mask_words`` minus the words in ``keep`` (grammar vocabulary)."""
        self.options = options if options is not None else DisplayConfig()
        kept = {normalise(w) for w in keep}
        self._words = frozenset(normalise(w) for w in self.options.mask_words) - kept

    @property
    def words(self) -> frozenset[str]:
        """The (normalised) words that are masked."""
        return self._words

    def applies(self, t: m.Transcript) -> bool:
        """Whether ``t`` is masked: first-pass text always, Whisper's only if configured."""
        return bool(self._words) and (t.passno == 1 or self.options.mask_second_pass)

    def word(self, token: str) -> str:
        """``token`` masked if it is a listed word (punctuation around it is kept)."""
        lead, core, trail = _EDGE.match(token).groups()  # type: ignore[union-attr]
        if normalise(core) not in self._words:
            return token
        return f"{lead}{core[:1]}{MASK}{trail}"

    def transcript(self, t: m.Transcript) -> tuple[m.Transcript, int]:
        """``t`` with its listed words masked in ``text`` and ``words``, and how many words
        of ``text`` were masked (``t`` itself when :meth:`applies` is False or none was)."""
        if not self.applies(t):
            return t, 0
        tokens = t.text.split()
        masked = [self.word(w) for w in tokens]
        n = sum(a != b for a, b in zip(tokens, masked, strict=True))
        words = [self._entry(w) for w in t.words]
        if n == 0 and words == t.words:
            return t, 0
        return dataclasses.replace(t, text=" ".join(masked), words=words), n

    def _entry(self, entry: list[Any]) -> list[Any]:
        if entry and isinstance(entry[0], str):
            word = self.word(entry[0])
            if word != entry[0]:
                return [word, *entry[1:]]
        return entry


class Grammars(Protocol):
    """The sections :func:`command_words` reads (a :class:`~streamasr.supervisor.config.Config`
    has them; the config module imports this one, so this one does not import it)."""

    @property
    def wake(self) -> WakeConfig:
        """``[wake]``."""
        ...

    @property
    def inference(self) -> InferenceConfig:
        """``[inference]``."""
        ...


def command_words(cfg: Grammars) -> frozenset[str]:
    """The words of the command grammars ``cfg`` configures (``[wake] grammar`` /
    ``commands``, ``[inference.pocketsphinx] grammar_path`` / ``commands``), normalised.

    The files were checked when the config was loaded; one that can no longer be read
    contributes no words.
    """
    from streamasr.actors.asr.grammar import jsgf_words, normalize_phrase

    ps = cfg.inference.pocketsphinx
    paths = [cfg.wake.grammar, str(ps.get("grammar_path") or "")]
    phrases = [*cfg.wake.commands, *(str(p) for p in ps.get("commands") or ())]
    words: set[str] = set()
    for path in filter(None, paths):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        words.update(normalise(w) for w in jsgf_words(text))
    for phrase in phrases:
        words.update(normalize_phrase(phrase))
    return frozenset(w for w in words if w)
