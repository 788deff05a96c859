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
    from streamasr.actors.wake.bundled import NeuralWakeOptions

__all__ = ["WakeConfig"]


@dataclass(frozen=True, slots=True)
class WakeConfig:
    """``[wake]``: wake-word gating of the local streams (the voice-assistant mode).

    While listening, a gated stream only feeds the wake-word detector (``engine``: ``micro``
    = microWakeWord, ``open`` = openWakeWord, both with the models bundled in their wheels,
    or ``pocketsphinx`` keyphrase spotting for any phrase of its dictionary; ``phrases``: the
    models by phrase, e.g. "okay nabu", or the keyphrases; per-phrase ``thresholds``: a
    probability 0..1 for micro/open, a likelihood ratio such as 1e-20 for pocketsphinx; empty
    lists take the engine's tuned defaults; ``refractory_ms``: micro/open report a phrase
    again only after this much stream time; ``verify = "open"``: each micro detection is
    confirmed by openWakeWord on the seconds around it, reported up to 0.5 s later, and
    stands when openWakeWord's probability reaches ``verify_threshold``);
    on a detection, recognition starts ``preroll_ms`` before the detection fired but not
    before the phrase ended (audio taken back from the ring, so nothing said right after the
    phrase is lost) and runs until the command's final, then the stream listens again. No
    speech within ``command_timeout_ms`` of the phrase ends the command window; a command is
    cut at ``max_command_ms``. ``grammar`` (a JSGF file) or ``commands`` (a list of phrases)
    restricts what a command can be (pocketsphinx only; such finals are not re-decoded by the
    second pass). ``streams``: the stream ids to gate (empty: every local stream).
    """

    enabled: bool = False
    engine: str = "micro"
    phrases: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()
    refractory_ms: int = 2000
    verify: str = ""
    verify_threshold: float = 0.1
    preroll_ms: int = 1000
    command_timeout_ms: int = 5000
    max_command_ms: int = 15000
    grammar: str = ""
    commands: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()

    def validate(self) -> None:
        """Range checks; the phrases are checked against the engine's models (or dictionary)."""
        from streamasr.actors.wake.registry import ENGINES

        require(
            self.engine in ENGINES,
            "wake.engine",
            f"unknown engine {self.engine!r} (known: {', '.join(repr(e) for e in ENGINES)})",
        )
        require(0 <= self.refractory_ms <= 60000, "wake.refractory_ms", "must be in 0..60000")
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

    def detector_options(self) -> WakeOptions | NeuralWakeOptions:
        """The engine's options: :class:`~streamasr.actors.wake.base.WakeOptions` for
        pocketsphinx, :class:`~streamasr.actors.wake.bundled.NeuralWakeOptions` for micro and
        open (raises ConfigError, one line, also when the engine's package is missing)."""
        kwargs: dict[str, Any] = {}
        if self.phrases:
            kwargs["phrases"] = self.phrases
        if self.thresholds:
            kwargs["thresholds"] = self.thresholds
        try:
            if self.engine == "pocketsphinx":
                from streamasr.actors.wake.base import WakeOptions  # imports pocketsphinx

                return WakeOptions(**kwargs)
            from streamasr.actors.wake.bundled import NeuralWakeOptions, require_package

            options = NeuralWakeOptions(
                self.engine,
                refractory_ms=self.refractory_ms,
                verify=self.verify,
                verify_threshold=self.verify_threshold,
                **kwargs,
            )
            require_package(self.engine)
            if options.verify:
                require_package(options.verify)
            return options
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith("wake.") else f"wake.{text}") from None

    def wake_phrases(self) -> tuple[str, ...]:
        """The phrases detectors listen for: ``phrases``, or the engine's default."""
        if self.phrases:
            return self.phrases
        if self.engine == "pocketsphinx":
            from streamasr.actors.wake.base import WakeOptions

            return WakeOptions().phrases
        from streamasr.actors.wake.bundled import NeuralWakeOptions

        return NeuralWakeOptions(self.engine).phrases

    def recognizer_options(self) -> dict[str, Any]:
        """Pocketsphinx options that restrict commands to the grammar (empty: no grammar)."""
        if self.grammar:
            return {"grammar_path": self.grammar}
        if self.commands:
            return {"commands": list(self.commands)}
        return {}
