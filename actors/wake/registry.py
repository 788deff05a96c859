"""The wake-engine factory: engine name -> loaded :class:`~streamasr.actors.wake.base.WakeEngine`.

Kept apart from :mod:`~streamasr.actors.wake.base` so the base never imports its
implementations; an engine's module (and its model) is imported only when it is asked for.
"""

from __future__ import annotations

from streamasr.actors.errors import ConfigError
from streamasr.actors.wake.base import WakeEngine, WakeOptions
from streamasr.actors.wake.bundled import NeuralWakeOptions

__all__ = ["DEFAULT_ENGINE", "ENGINES", "create_wake_engine"]

#: Engine names :func:`create_wake_engine` knows: microWakeWord, openWakeWord (the models
#: bundled in their wheels) and PocketSphinx keyphrase spotting (any dictionary phrase).
ENGINES = ("micro", "open", "pocketsphinx")
#: The engine ``[wake]`` uses unless told otherwise.
DEFAULT_ENGINE = "micro"


def create_wake_engine(engine: str, options: WakeOptions | NeuralWakeOptions) -> WakeEngine:
    """Load the wake engine named ``engine`` with its options; ConfigError if unknown or if
    the options are another engine's."""
    loaded: WakeEngine
    if engine == "pocketsphinx" and isinstance(options, WakeOptions):
        from streamasr.actors.wake.pocketsphinx_kws import PocketsphinxKwsEngine

        loaded = PocketsphinxKwsEngine(options)
        return loaded
    if engine in ("micro", "open") and isinstance(options, NeuralWakeOptions):
        if options.engine != engine:
            raise ConfigError(f"wake.engine: options are for {options.engine!r}, not {engine!r}")
        if engine == "micro":
            from streamasr.actors.wake.micro_wake_word import MicroWakeEngine

            loaded = MicroWakeEngine(options)
            if options.verify:
                from streamasr.actors.wake.verified import VerifiedWakeEngine

                loaded = VerifiedWakeEngine(loaded, options)
        else:
            from streamasr.actors.wake.open_wake_word import OpenWakeEngine

            loaded = OpenWakeEngine(options)
        return loaded
    if engine not in ENGINES:
        known = ", ".join(repr(e) for e in ENGINES)
        raise ConfigError(f"wake.engine: unknown engine {engine!r} (known: {known})")
    raise ConfigError(f"wake.engine: {type(options).__name__} is not {engine!r}'s options")
