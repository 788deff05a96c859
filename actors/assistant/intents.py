"""From a command's final text to an intent with slots and a confidence.

Sentence templates in Home Assistant's hassil format (``[optional]``, ``(a|b)``, ``{slot}``
lists and number ranges; numbers may be said as words: "ten minutes" fills ``{minutes}``
with 10) are matched by the ``hassil`` library, the same matcher Home Assistant runs. The
default templates ship in the package (``data/intents.yaml``).

The confidence is the recogniser's: the mean of the final's word confidences (0..1;
Whisper's word probabilities for accurate finals, PocketSphinx's posteriors for first-pass
ones). A command that matches no template, or matches with a confidence below
``min_confidence``, is unknown (``name == ""``) and says why in ``reason``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from streamasr.actors.errors import ConfigError

__all__ = ["DEFAULT_INTENTS", "IntentMatch", "IntentRecognizer"]

#: The templates used when ``[assistant] intents`` is empty.
DEFAULT_INTENTS = "default"


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """What one command means.

    Attributes:
        name: the intent ("" when unknown).
        slots: slot name -> value as text ("10" for a number said "ten").
        confidence: the recogniser's confidence in the words, 0..1.
        reason: why the command is unknown: ``"no_match"`` (no template fits),
            ``"low_confidence"`` (one fits, but the words are too unsure; ``guess`` names it),
            ``"empty"`` (no words); "" for a recognised intent.
        guess: the intent a low-confidence command matched ("" otherwise).
    """

    name: str
    slots: dict[str, str] = field(default_factory=dict)
    confidence: float = 0.0
    reason: str = ""
    guess: str = ""


def _number_text(value: Any) -> str:
    """A slot value as text: whole floats without their ".0" (hassil returns 10.0 for "10")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class IntentRecognizer:
    """Match command texts against hassil sentence templates."""

    def __init__(self, path: str = DEFAULT_INTENTS, min_confidence: float = 0.5) -> None:
        """Load the templates (``path``: a hassil YAML file, or ``"default"``).

        Raises:
            ConfigError: ``hassil`` not installed, the file unreadable or not hassil YAML
                (one line naming ``assistant.intents``).
        """
        try:
            import yaml
            from hassil import Intents
        except ImportError:
            raise ConfigError(
                "assistant.intents: the hassil package is not installed "
                "(pip install 'streamasr[assistant]')"
            ) from None
        try:
            if path == DEFAULT_INTENTS:
                text = (
                    resources.files("streamasr.actors")
                    .joinpath("data/intents.yaml")
                    .read_text(encoding="utf-8")
                )
            else:
                text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"assistant.intents: cannot read {path}: {exc}") from None
        try:
            doc = yaml.safe_load(text)
            if not isinstance(doc, dict) or not isinstance(doc.get("intents"), dict):
                raise ValueError("no 'intents' table")
            self._intents: Any = Intents.from_dict(doc)
        except Exception as exc:  # hassil/yaml raise many kinds; all mean a bad file
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"assistant.intents: {path} is not a hassil intents file: {line}"
            ) from None
        self.min_confidence = min_confidence
        #: The intents the templates define, sorted.
        self.names: tuple[str, ...] = tuple(sorted(self._intents.intents))

    def recognize(self, text: str, confidences: Sequence[float] = ()) -> IntentMatch:
        """The intent of ``text`` (a final's text), given its words' ``confidences``
        (0..1; none: taken as sure)."""
        from hassil import recognize_best

        words = text.split()
        if not words:
            return IntentMatch("", reason="empty")
        conf = sum(confidences) / len(confidences) if confidences else 1.0
        conf = min(1.0, max(0.0, conf))
        result: Any = recognize_best(text, self._intents)
        if result is None:
            return IntentMatch("", confidence=conf, reason="no_match")
        slots = {name: _number_text(e.value) for name, e in result.entities.items()}
        if conf < self.min_confidence:
            return IntentMatch(
                "", slots, conf, reason="low_confidence", guess=str(result.intent.name)
            )
        return IntentMatch(str(result.intent.name), slots, conf)
