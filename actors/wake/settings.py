"""``[wake]``: the wake-word gating section, defined once for the loader and the actors.

The supervisor's loader parses it and checks it at load; the inference actor (gates and
command grammars) and the Wyoming front door (wake phrases) read it from their spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamasr.actors.errors import ConfigError
from streamasr.actors.typed import require

if TYPE_CHECKING:
    from streamasr.actors.wake.base import WakeOptions

__all__ = ["WakeConfig"]


@dataclass(frozen=True, slots=True)
class WakeConfig:
    """``[wake]``: wake-word gating of the local streams (the voice-assistant mode).

    While listening, a gated stream only feeds the wake-word detector (``engine``, with
    ``phrases`` and per-phrase ``thresholds``; empty lists take the engine's tuned defaults);
    on a detection, recognition starts ``preroll_ms`` before the detection fired but not
    before the phrase ended (audio taken back from the ring, so nothing said right after the
    phrase is lost) and runs until the command's final, then the stream listens again. No
    speech within ``command_timeout_ms`` of the phrase ends the command window; a command is
    cut at ``max_command_ms``. ``grammar`` (a JSGF file) or ``commands`` (a list of phrases)
    restricts what a command can be (pocketsphinx only; such finals are not re-decoded by the
    second pass). ``streams``: the stream ids to gate (empty: every local stream).
    """

    enabled: bool = False
    engine: str = "pocketsphinx"
    phrases: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()
    preroll_ms: int = 1000
    command_timeout_ms: int = 5000
    max_command_ms: int = 15000
    grammar: str = ""
    commands: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()

    def validate(self) -> None:
        """Range checks; the phrases and the grammar are checked against the dictionary."""
        require(0 <= self.preroll_ms <= 5000, "wake.preroll_ms", "must be in 0..5000")
        require(
            500 <= self.command_timeout_ms <= 60000,
            "wake.command_timeout_ms",
            "must be in 500..60000",
        )
        require(
            1000 <= self.max_command_ms <= 120000, "wake.max_command_ms", "must be in 1000..120000"
        )
        require(
            not (self.grammar and self.commands),
            "wake.grammar",
            "give grammar or commands, not both",
        )
        if self.enabled:
            self.detector_options()

    def detector_options(self) -> WakeOptions:
        """The engine's :class:`~streamasr.actors.wake.base.WakeOptions` (raises ConfigError)."""
        from streamasr.actors.wake.base import WakeOptions  # imports pocketsphinx: only here

        kwargs: dict[str, Any] = {}
        if self.phrases:
            kwargs["phrases"] = self.phrases
        if self.thresholds:
            kwargs["thresholds"] = self.thresholds
        try:
            return WakeOptions(**kwargs)
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith("wake.") else f"wake.{text}") from None

    def recognizer_options(self) -> dict[str, Any]:
        """Pocketsphinx options that restrict commands to the grammar (empty: no grammar)."""
        if self.grammar:
            return {"grammar_path": self.grammar}
        if self.commands:
            return {"commands": list(self.commands)}
        return {}
