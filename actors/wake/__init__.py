"""Wake-word detection: a cheap keyphrase spotter that gates recognition per stream.

``create_wake_engine("pocketsphinx", WakeOptions())`` loads the engine once per process;
``engine.create_detector(start_frame)`` gives each stream its own :class:`WakeDetector`.
"""

from __future__ import annotations

from streamasr.actors.wake.base import (
    DEFAULT_THRESHOLDS,
    FALLBACK_THRESHOLD,
    Detection,
    WakeDetector,
    WakeEngine,
    WakeOptions,
    create_wake_engine,
)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FALLBACK_THRESHOLD",
    "Detection",
    "WakeDetector",
    "WakeEngine",
    "WakeOptions",
    "create_wake_engine",
]
