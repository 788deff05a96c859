"""openWakeWord (``pyopen-wakeword``) as a wake-word detector: the ``open`` engine.

Per detector: one feature extractor (a melspectrogram model and a speech-embedding model, shared
by the phrases) and one classifier per phrase over the last ~1.3 s of embeddings. Audio is
processed in 80 ms steps (1280 samples; the remainder waits for the next call), each step
giving one embedding and one probability per phrase; a phrase is detected when its probability
exceeds the threshold (wyoming-openwakeword's ``trigger_level`` 1).

Frame positions: the probabilities of a step belong to the audio up to the step's end; a
detection's ``end_frame`` is that end shifted back by the measured lag between the phrase's end
and the firing, its ``start_frame`` ``PHRASE_FRAMES`` before that (no phrase start is given).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from streamasr.actors.errors import ModelError
from streamasr.actors.wake.base import Detection
from streamasr.actors.wake.bundled import (
    NeuralWakeOptions,
    PhraseJudge,
    check_pcm,
    model_id,
    require_package,
    warm_up,
)

__all__ = ["OpenWakeDetector", "OpenWakeEngine"]

logger = logging.getLogger(__name__)

STEP_FRAMES = 1280  # samples per processing step (80 ms)
#: ``end_frame`` is moved back this many samples from the end of the step that fired: the
#: firing lags the phrase's end by ~0.35 s (median, ``benchmarks/bench_wake.py``, 8 voices);
#: a little less is taken back, so the phrase's tail stays out of the command.
LAG_FRAMES = 4000
#: A detection's ``start_frame`` is this many samples before its ``end_frame``.
PHRASE_FRAMES = 12800


class OpenWakeEngine:
    """Checks the models once; each detector loads its own feature extractor and classifiers.

    Attributes:
        sample_rate_hz: PCM sample rate detectors accept (16 kHz).
        options: the :class:`NeuralWakeOptions` in force.
    """

    def __init__(self, options: NeuralWakeOptions) -> None:
        """Load every configured model once (ModelError if one cannot be loaded)."""
        require_package("open")
        self.options = options
        self.sample_rate_hz = options.sample_rate_hz
        self.thresholds = [options.threshold_for(i) for i in range(len(options.phrases))]
        features, models = self.load_models()
        features.close()
        for model in models:
            model.close()

    def load_models(self) -> tuple[Any, list[Any]]:
        """A fresh feature extractor and one classifier per phrase."""
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

        try:
            features = OpenWakeWordFeatures.from_builtin()
            models = [OpenWakeWord.from_builtin(Model(model_id(p))) for p in self.options.phrases]
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"wake: cannot load openWakeWord model: {exc}") from exc
        return features, models

    def create_detector(self, start_frame: int = 0) -> OpenWakeDetector:
        """A new detector whose first sample has absolute index ``start_frame``."""
        return OpenWakeDetector(self, start_frame)

    def warm_up(self) -> None:
        """Run 1 s of low noise through a detector so the first real chunk is not cold."""
        warm_up(self)


class OpenWakeDetector:
    """Per-stream openWakeWord state: features, classifiers, pending samples, dead times.

    ``judge.max_probability``: the highest probability of each phrase since creation
    (diagnostics).
    """

    def __init__(self, engine: OpenWakeEngine, start_frame: int) -> None:
        """Load the models; the first accepted sample has absolute index ``start_frame``."""
        self._engine = engine
        self._phrases = engine.options.phrases
        self._features, models = engine.load_models()
        self._models: list[Any] | None = models
        refractory = engine.options.refractory_ms * engine.sample_rate_hz // 1000
        self.judge = PhraseJudge(
            self._phrases, engine.thresholds, refractory, LAG_FRAMES, PHRASE_FRAMES
        )
        self._pending = np.empty(0, dtype=np.int16)
        self._pending_start = start_frame
        self._origin = start_frame

    @property
    def position_frame(self) -> int:
        """Absolute sample index of the next sample :meth:`accept` expects."""
        return self._pending_start + len(self._pending)

    def reset(self, start_frame: int) -> None:
        """Forget all state; the next accepted sample has absolute index ``start_frame``."""
        for model in self._require_models():
            model.reset()
        self._features.reset()
        self.judge.clear()
        self._pending = np.empty(0, dtype=np.int16)
        self._pending_start = self._origin = start_frame

    def accept(self, pcm: npt.NDArray[np.int16]) -> list[Detection]:
        """Consume mono int16 PCM ``(n,)``; the detections completed in it, in order.

        Raises AudioFormatError for another dtype or shape, ModelError once closed.
        """
        pcm = check_pcm(pcm)
        models = self._require_models()
        self._pending = np.concatenate([self._pending, pcm])
        out: list[Detection] = []
        used = 0
        while len(self._pending) - used >= STEP_FRAMES:
            step = self._pending[used : used + STEP_FRAMES]
            used += STEP_FRAMES
            fired = self._pending_start + used
            for embedding in self._features.process_streaming(step.tobytes()):
                for i, model in enumerate(models):
                    for prob in model.process_streaming(embedding):
                        found = self.judge.judge(i, float(prob), fired, self._origin)
                        if found is not None:
                            out.append(found)
        self._pending = self._pending[used:]
        self._pending_start += used
        return out

    def _require_models(self) -> list[Any]:
        if self._models is None:
            raise ModelError("wake: detector is closed")
        return self._models

    def close(self) -> None:
        """Free the interpreters (the detector cannot be used afterwards)."""
        if self._models is not None:
            for model in self._models:
                model.close()
            self._features.close()
            self._models = None
