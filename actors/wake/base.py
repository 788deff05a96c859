"""Wake-word detection API: detections, the per-process engine and per-stream detector, and
the options of PocketSphinx keyphrase spotting (the bundled models' are in ``bundled``).

A :class:`WakeEngine` is loaded once per process and shared by streams; each stream gets its own
:class:`WakeDetector` (it holds the search state). A detector takes mono int16 PCM in chunks of
any size and returns :class:`Detection` objects whose frame indices are absolute sample indices
of the stream (the first sample after ``create_detector(start_frame)`` / ``reset(start_frame)``
has index ``start_frame``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from streamasr.actors.asr.grammar import dictionary_words
from streamasr.actors.errors import ConfigError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "FALLBACK_THRESHOLD",
    "Detection",
    "WakeDetector",
    "WakeEngine",
    "WakeOptions",
    "dictionary_words",
]

#: Tuned kws thresholds (likelihood ratio keyphrase : phone loop) for phrases that were measured
#: with ``benchmarks/bench_wake.py --tune``.
#: "hey computer" was tuned with ``verify`` on (a low kws threshold, then the second stage);
#: the other phrases were tuned without it (verification only removes hits).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "hey computer": 1e-35,
    "okay computer": 1e-20,
    "hey sphinx": 1e-15,
    "hello jarvis": 1e-20,
}
#: Threshold used for a phrase without a tuned value.
FALLBACK_THRESHOLD = 1e-20


@dataclass(frozen=True, slots=True)
class Detection:
    """One wake-phrase detection.

    Attributes:
        phrase: the configured phrase that fired.
        start_frame: absolute sample index where the phrase began (stream position).
        end_frame: absolute sample index just after the phrase ended.
        score: the engine's own measure, higher is surer. PocketSphinx: log10 of the
            likelihood ratio of the phrase against its phone loop (a detection fires when it
            is >= log10(threshold); typically -25 .. +15). micro / open: the model's
            probability 0..1 when it fired.
    """

    phrase: str
    start_frame: int
    end_frame: int
    score: float


@dataclass(frozen=True, slots=True)
class WakeOptions:
    """Options of the wake-word detector (times in milliseconds/seconds as named, rates in Hz).

    Attributes:
        phrases: wake phrases, lower case words of the pronunciation dictionary.
        thresholds: per-phrase kws threshold (likelihood ratio, e.g. 1e-20; lower fires more
            easily); empty uses :data:`DEFAULT_THRESHOLDS` (else :data:`FALLBACK_THRESHOLD`).
        sample_rate_hz: PCM rate detectors accept (the shipped en-us model is 16 kHz).
        vad_gate: run the keyword search only around speech found by PocketSphinx's VAD.
        vad_mode: VAD aggressiveness 0 (loose) .. 3 (strict).
        preroll_ms: audio before the first speech frame fed to the search (phrase onsets).
        hangover_ms: non-speech after speech that ends a gated search segment.
        max_segment_s: a search segment is restarted after this long (memory and time bound).
        overlap_ms: audio re-fed after a restart so a phrase across it is still found.
        kws_delay_frames: 10 ms frames the search waits before it reports a detection (it may
            still improve on a later frame); adds to the detection delay.
        verify: re-decode each kws hit's audio (``verify_pre_ms`` before its start to
            ``verify_post_ms`` after its end) twice — aligned to the phrase and as free phones
            (PocketSphinx allphone search with the shipped phone LM) — and keep the hit only if
            the phrase's log10 likelihood ratio over the span is >= ``verify_margin``. It runs
            only on hits (cheap), lets the kws threshold be lower (more hits in noise), and
            delays a detection until ``verify_post_ms`` of audio after it has been accepted.
        verify_margin: log10 likelihood ratio, phrase alignment : phone decode (0 = equal;
            typically -20 for a clean phrase, far below -100 for other speech).
        verify_pre_ms, verify_post_ms: audio around a hit that the verification decodes.
        hmm_path, dict_path: model files; None uses the model shipped with the wheel.
    """

    phrases: tuple[str, ...] = ("hey computer",)
    thresholds: tuple[float, ...] = ()
    sample_rate_hz: int = 16000
    vad_gate: bool = True
    vad_mode: int = 0
    preroll_ms: int = 600
    hangover_ms: int = 600
    max_segment_s: float = 30.0
    overlap_ms: int = 2500
    kws_delay_frames: int = 10
    verify: bool = True
    verify_margin: float = -60.0
    verify_pre_ms: int = 300
    verify_post_ms: int = 200
    hmm_path: str | None = None
    dict_path: str | None = None

    def __post_init__(self) -> None:
        """Validate; raises ConfigError naming the offending field (``wake.<field>``)."""
        self._check_phrases()
        if self.thresholds and len(self.thresholds) != len(self.phrases):
            raise ConfigError(
                f"wake.thresholds: need one per phrase ({len(self.phrases)}), "
                f"got {len(self.thresholds)}"
            )
        for t in self.thresholds:
            if not (math.isfinite(t) and t > 0.0):
                raise ConfigError(f"wake.thresholds: must be finite and > 0, got {t!r}")
        if self.sample_rate_hz != 16000:
            raise ConfigError(f"wake.sample_rate_hz: must be 16000, got {self.sample_rate_hz}")
        if self.vad_mode not in (0, 1, 2, 3):
            raise ConfigError(f"wake.vad_mode: must be 0..3, got {self.vad_mode}")
        if not math.isfinite(self.verify_margin):
            raise ConfigError(f"wake.verify_margin: must be finite, got {self.verify_margin!r}")
        for name in ("preroll_ms", "overlap_ms", "kws_delay_frames"):
            if getattr(self, name) < 0:
                raise ConfigError(f"wake.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("verify_pre_ms", "verify_post_ms"):
            if not 0 <= getattr(self, name) <= 1000:
                raise ConfigError(f"wake.{name}: must be 0..1000, got {getattr(self, name)}")
        if self.hangover_ms < 100:
            raise ConfigError(f"wake.hangover_ms: must be >= 100, got {self.hangover_ms}")
        if not self.max_segment_s >= 5.0:
            raise ConfigError(f"wake.max_segment_s: must be >= 5, got {self.max_segment_s}")
        if self.overlap_ms >= self.max_segment_s * 500:
            raise ConfigError("wake.overlap_ms: must be below half of max_segment_s")

    def _check_phrases(self) -> None:
        if not self.phrases:
            raise ConfigError("wake.phrases: at least one phrase is needed")
        if len(set(self.phrases)) != len(self.phrases):
            raise ConfigError("wake.phrases: phrases must be distinct")
        words = None
        for phrase in self.phrases:
            if not isinstance(phrase, str) or not phrase.split():
                raise ConfigError(f"wake.phrases: {phrase!r} is not a non-empty string")
            if phrase != " ".join(phrase.split()) or phrase != phrase.lower():
                raise ConfigError(
                    f"wake.phrases: {phrase!r} must be lower case, single-spaced words"
                )
            if words is None:
                try:
                    words = dictionary_words(self.dict_path)
                except OSError as exc:
                    raise ConfigError(f"wake.dict_path: cannot read: {exc}") from exc
            for word in phrase.split():
                if word not in words:
                    raise ConfigError(
                        f"wake.phrases: {word!r} is not in the pronunciation dictionary"
                    )

    def threshold_for(self, index: int) -> float:
        """The kws threshold of ``phrases[index]`` (configured, tuned or fallback)."""
        if self.thresholds:
            return self.thresholds[index]
        return DEFAULT_THRESHOLDS.get(self.phrases[index], FALLBACK_THRESHOLD)


class WakeDetector(Protocol):
    """Per-stream wake-word state."""

    def accept(self, pcm: npt.NDArray[np.int16]) -> list[Detection]:
        """Consume mono int16 PCM ``(n,)`` (any chunk size); detections completed so far."""
        ...

    def reset(self, start_frame: int) -> None:
        """Forget all state; the next accepted sample has absolute index ``start_frame``."""
        ...

    @property
    def position_frame(self) -> int:
        """Absolute sample index of the next sample :meth:`accept` expects."""
        ...

    def close(self) -> None:
        """Release the search state (the detector cannot be used afterwards)."""
        ...


class WakeEngine(Protocol):
    """A loaded wake-word engine, shared by the streams of one process."""

    sample_rate_hz: int

    def create_detector(self, start_frame: int = 0) -> WakeDetector:
        """A new detector whose first sample has absolute index ``start_frame``."""
        ...

    def warm_up(self) -> None:
        """Run a little audio through a detector so the first real chunk is not cold."""
        ...
