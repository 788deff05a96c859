"""Command grammars for the PocketSphinx backend: JSGF text from phrases, vocabulary checks.

A grammar restricts recognition to the sentences it generates (what voice-command users expect
after a wake word: "turn on the kitchen light", not free dictation).  Two ways to give one:

* a JSGF file (``grammar_path``), checked here with :func:`load_jsgf`: a missing or unreadable
  file, a syntax error, a grammar without a ``public`` rule and a word missing from the
  pronunciation dictionary each raise :class:`ConfigError` naming the field;
* a list of whole phrases (``commands``): each phrase is one alternative, recognised only in
  full (``["stop", "what time is it"]`` accepts "stop" and "what time is it", not "what time").
  :func:`jsgf_from_phrases` turns them into ``public <command> = stop | what time is it;``.
  For a free *word list* (any sequence of some words) use :func:`jsgf_word_loop` or write the
  JSGF ``public <words> = (yes | no | maybe)+;`` yourself.

Words are lowercased and stripped of punctuation other than the apostrophe (``"Turn on the
light!"`` -> ``turn on the light``; ``what's`` stays).  Digits are not read: numbers must be
spelled out (``five minutes``), because the dictionary holds words, not digits.

Everything here is pure Python apart from the JSGF syntax check, which uses PocketSphinx's own
parser (:class:`pocketsphinx.Jsgf`) so that what passes here also loads in the decoder.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pocketsphinx

from streamasr.actors.errors import ConfigError

__all__ = [
    "check_words",
    "default_dict_path",
    "dictionary_words",
    "jsgf_from_phrases",
    "jsgf_word_loop",
    "jsgf_words",
    "load_jsgf",
    "normalize_phrase",
    "score_ratio",
]

_WORD_CHARS = re.compile(r"[^a-z0-9' ]+")
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_RULE_REF = re.compile(r"<[^>]*>")
_TAG = re.compile(r"\{[^}]*\}")
_WEIGHT = re.compile(r"/[0-9.eE+-]+/")
_OPERATORS = re.compile(r"[()\[\]|*+=;\"]")
_HEADER = re.compile(r"^\s*(#JSGF[^;]*;|grammar\s+[^;]*;|import\s+[^;]*;)", re.MULTILINE)
_PUBLIC = re.compile(r"\bpublic\s*<")


def default_dict_path() -> str:
    """Path of the pronunciation dictionary shipped with the ``pocketsphinx`` wheel."""
    return os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")


@functools.lru_cache(maxsize=4)
def dictionary_words(dict_path: str | None = None) -> frozenset[str]:
    """Words of a PocketSphinx dictionary (``word(2)`` variants folded into ``word``).

    ``dict_path`` None reads the shipped dictionary.  Raises ConfigError ``"dict_path: ..."``
    if the file cannot be read.
    """
    path = dict_path or default_dict_path()
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ConfigError(f"dict_path: cannot read {path!r}: {exc.strerror}") from exc
    return frozenset(line.split(None, 1)[0].split("(", 1)[0] for line in lines if line.strip())


def normalize_phrase(phrase: str) -> tuple[str, ...]:
    """The words of one command phrase: lowercased, punctuation (except ``'``) dropped.

    ``-``, ``_`` and ``/`` separate words (``"living-room"`` -> ``living room``).
    """
    text = phrase.lower().replace("-", " ").replace("_", " ").replace("/", " ")
    return tuple(w.strip("'") for w in _WORD_CHARS.sub(" ", text).split() if w.strip("'"))


def jsgf_from_phrases(phrases: Iterable[str], name: str = "commands") -> str:
    """JSGF text whose one public rule ``<command>`` accepts exactly the given phrases.

    Phrases are normalised with :func:`normalize_phrase` and de-duplicated (first kept).
    Raises ConfigError ``"commands: ..."`` if there is no phrase or a phrase has no words.
    """
    alternatives: list[str] = []
    for i, phrase in enumerate(phrases):
        words = normalize_phrase(phrase)
        if not words:
            raise ConfigError(f"commands[{i}]: {phrase!r} has no words")
        text = " ".join(words)
        if text not in alternatives:
            alternatives.append(text)
    if not alternatives:
        raise ConfigError("commands: must hold at least one phrase")
    body = "\n    | ".join(alternatives)
    return f"#JSGF V1.0;\n\ngrammar {name};\n\npublic <command> = {body};\n"


def jsgf_word_loop(words: Iterable[str], name: str = "words") -> str:
    """JSGF text accepting any non-empty sequence of ``words`` (word-list semantics)."""
    vocab = sorted({w for word in words for w in normalize_phrase(word)})
    if not vocab:
        raise ConfigError("commands: must hold at least one word")
    return f"#JSGF V1.0;\n\ngrammar {name};\n\npublic <words> = ({' | '.join(vocab)})+;\n"


def jsgf_words(text: str) -> tuple[str, ...]:
    """The words (terminals) a JSGF grammar text uses, in first-use order, as written.

    Comments, the header, rule names, tags ``{...}``, weights ``/n/`` and operators are removed;
    quoted tokens count as their words.
    """
    body = _HEADER.sub(" ", _COMMENTS.sub(" ", text))
    seen: dict[str, None] = {}
    for rule in body.split(";"):
        if "=" not in rule:
            continue
        rhs = rule.split("=", 1)[1]
        rhs = _OPERATORS.sub(" ", _WEIGHT.sub(" ", _TAG.sub(" ", _RULE_REF.sub(" ", rhs))))
        for word in rhs.split():
            seen.setdefault(word, None)
    return tuple(seen)


def check_words(
    words: Iterable[str], dict_path: str | None = None, field: str = "commands"
) -> None:
    """Raise ConfigError if a word is not in the pronunciation dictionary.

    The message names ``field`` and the first unknown word, e.g. ``"commands: 'frobnicate' is
    not in the pronunciation dictionary"``, with a hint for digits (spell them out) and for
    capitalised words (the dictionary is lowercase).
    """
    known = dictionary_words(dict_path)
    for word in words:
        if word in known:
            continue
        message = f"{field}: {word!r} is not in the pronunciation dictionary"
        if any(c.isdigit() for c in word):
            message += " (digits must be spelled out, e.g. 'five' for '5')"
        elif word.lower() in known:
            message += f" (the dictionary is lowercase: write {word.lower()!r})"
        raise ConfigError(message)


def load_jsgf(path: str, dict_path: str | None = None, field: str = "grammar_path") -> str:
    """The text of the JSGF file ``path``, checked; raises ConfigError naming ``field``.

    Checks, in order: the file can be read as UTF-8; it has a ``public`` rule; PocketSphinx's
    parser accepts it; every word is in the dictionary (:func:`check_words`).
    """
    file = Path(path)
    if not file.is_file():  # checked first: PocketSphinx crashes on a missing grammar file
        raise ConfigError(f"{field}: no such file {path!r}")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{field}: cannot read {path!r}: {exc}") from exc
    if not _PUBLIC.search(_COMMENTS.sub(" ", text)):
        raise ConfigError(f"{field}: {path!r} has no public rule")
    try:
        pocketsphinx.Jsgf(str(file))
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(f"{field}: {path!r} is not valid JSGF ({exc})") from exc
    check_words(jsgf_words(text), dict_path, field)
    return text


def score_ratio(grammar_score: float, phone_loop_score: float) -> float:
    """Per-frame grammar path score over a phone loop's (``Hypothesis.score``; 0 if missing).

    Near 1 when the grammar explains the audio as well as free phones do; well below 1 for
    out-of-grammar speech forced into the grammar.
    """
    if grammar_score <= 0.0 or phone_loop_score <= 0.0:
        return 0.0
    return grammar_score / phone_loop_score
