"""The wake-engine factory: engine name -> loaded :class:`~streamasr.actors.wake.base.WakeEngine`.

Kept apart from :mod:`~streamasr.actors.wake.base` so the base never imports its
implementations; an engine's module (and its model) is imported only when it is asked for.
"""

from __future__ import annotations

from streamasr.actors.errors import ConfigError
from streamasr.actors.wake.base import WakeEngine, WakeOptions

__all__ = ["ENGINES", "create_wake_engine"]

#: Engine names :func:`create_wake_engine` knows.
ENGINES = ("pocketsphinx",)


def create_wake_engine(engine: str, options: WakeOptions) -> WakeEngine:
    """Load the wake engine named ``engine`` (``"pocketsphinx"``); ConfigError if unknown."""
    if engine == "pocketsphinx":
        from streamasr.actors.wake.pocketsphinx_kws import PocketsphinxKwsEngine

        loaded: WakeEngine = PocketsphinxKwsEngine(options)
        return loaded
    raise ConfigError(f"wake.engine: unknown engine {engine!r} (known: 'pocketsphinx')")
