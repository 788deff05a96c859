"""microWakeWord (``pymicro-wakeword``) as a wake-word detector: the ``micro`` engine.

Per detector: one TFLite-Micro front end (40 log filterbank channels, 30 ms windows every
10 ms, from ``pymicro-features``) and one streaming model per phrase. A model keeps its own
state between calls (streaming convolutions), so each detector needs its own interpreter
(about 50-80 kB of model, loaded from the wheel in ~1 ms); a reset reloads it. A model is
invoked every ``stride`` feature frames (3: every 30 ms); a phrase is detected when the mean
of its last ``sliding_window_size`` (5) outputs exceeds the threshold.

Frame positions: feature ``k`` after a reset covers samples ``[160 k, 160 k + 480)``, so a
detection's ``end_frame`` is the end of the window that fired (shifted back by the measured
lag between the phrase's end and the firing, so the command after it is not cut); its
``start_frame`` is ``PHRASE_FRAMES`` before that (the models give no phrase start).
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

__all__ = ["MicroWakeDetector", "MicroWakeEngine"]

logger = logging.getLogger(__name__)

_STEP = 160  # samples per feature frame (10 ms)
_WINDOW = 480  # samples per feature window (30 ms)
#: ``end_frame`` is moved back this many samples from the feature window that fired: the
#: firing lags the phrase's end by ~0.18 s (median, ``benchmarks/bench_wake.py``, 8 voices);
#: a little less is taken back, so the phrase's tail stays out of the command.
LAG_FRAMES = 2400
#: A detection's ``start_frame`` is this many samples before its ``end_frame`` (about the
#: length of a two-word phrase; the model does not say where the phrase began).
PHRASE_FRAMES = 12800


class MicroWakeEngine:
    """Checks the models once; each detector loads its own interpreters from the wheel.

    Attributes:
        sample_rate_hz: PCM sample rate detectors accept (16 kHz).
        options: the :class:`NeuralWakeOptions` in force.
    """

    def __init__(self, options: NeuralWakeOptions) -> None:
        """Load every configured model once (ModelError if one cannot be loaded)."""
        require_package("micro")
        self.options = options
        self.sample_rate_hz = options.sample_rate_hz
        self.thresholds = [options.threshold_for(i) for i in range(len(options.phrases))]
        self.close_models(self.load_models())

    def load_models(self) -> list[Any]:
        """One fresh ``MicroWakeWord`` (own interpreter and state) per phrase."""
        from pymicro_wakeword import MicroWakeWord, Model

        try:
            return [MicroWakeWord.from_builtin(Model(model_id(p))) for p in self.options.phrases]
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"wake: cannot load microWakeWord model: {exc}") from exc

    @staticmethod
    def close_models(models: list[Any]) -> None:
        """Free the interpreters of ``models``."""
        for model in models:
            model.close()

    def create_detector(self, start_frame: int = 0) -> MicroWakeDetector:
        """A new detector whose first sample has absolute index ``start_frame``."""
        return MicroWakeDetector(self, start_frame)

    def warm_up(self) -> None:
        """Run 1 s of low noise through a detector so the first real chunk is not cold."""
        warm_up(self)


class MicroWakeDetector:
    """Per-stream microWakeWord state: front end, one model per phrase, dead times.

    ``judge.max_probability``: the highest mean probability of each phrase since creation
    (diagnostics).
    """

    def __init__(self, engine: MicroWakeEngine, start_frame: int) -> None:
        """Load the models; the first accepted sample has absolute index ``start_frame``."""
        from pymicro_wakeword import MicroWakeWordFeatures

        self._engine = engine
        self._phrases = engine.options.phrases
        self._features = MicroWakeWordFeatures()
        self._models: list[Any] | None = engine.load_models()
        refractory = engine.options.refractory_ms * engine.sample_rate_hz // 1000
        self.judge = PhraseJudge(
            self._phrases, engine.thresholds, refractory, LAG_FRAMES, PHRASE_FRAMES
        )
        self._start = start_frame
        self._fed = 0  # samples accepted since the reset
        self._frames = 0  # feature frames computed since the reset

    @property
    def position_frame(self) -> int:
        """Absolute sample index of the next sample :meth:`accept` expects."""
        return self._start + self._fed

    def reset(self, start_frame: int) -> None:
        """Forget all state (reloads the models); the next sample has index ``start_frame``."""
        models = self._require_models()
        self._engine.close_models(models)
        self._models = self._engine.load_models()
        self._features.reset()
        self.judge.clear()
        self._start, self._fed, self._frames = start_frame, 0, 0

    def accept(self, pcm: npt.NDArray[np.int16]) -> list[Detection]:
        """Consume mono int16 PCM ``(n,)``; the detections completed in it, in order.

        Raises AudioFormatError for another dtype or shape, ModelError once closed.
        """
        pcm = check_pcm(pcm)
        models = self._require_models()
        out: list[Detection] = []
        for features in self._features.process_streaming(pcm.tobytes()):
            fired = self._start + self._frames * _STEP + _WINDOW
            self._frames += 1
            for i, model in enumerate(models):
                prob = model.process_streaming_prob(features)
                if prob is None:
                    continue
                if (found := self.judge.judge(i, float(prob), fired, self._start)) is not None:
                    out.append(found)
        self._fed += len(pcm)
        return out

    def _require_models(self) -> list[Any]:
        if self._models is None:
            raise ModelError("wake: detector is closed")
        return self._models

    def close(self) -> None:
        """Free the interpreters (the detector cannot be used afterwards)."""
        if self._models is not None:
            self._engine.close_models(self._models)
            self._models = None
