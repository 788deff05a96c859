"""The wake models bundled in the optional wheels, and the options of the engines that run them.

``micro`` is microWakeWord (``pymicro-wakeword``: a streaming int8 model per phrase on the
TFLite-Micro front end of ``pymicro-features``); ``open`` is openWakeWord (``pyopen-wakeword``:
a shared melspectrogram + embedding model, then a small classifier per phrase). The models are
files inside those wheels, so nothing is downloaded at run time. This module imports neither
package (it only asks whether they are installed), so a config can be checked without them.

A model is named in config by its phrase in lower case ("okay nabu"); Wyoming clients see its
id ("okay_nabu") and a title-case phrase ("Okay Nabu"), as wyoming-microwakeword and
wyoming-openwakeword advertise them, so a Home Assistant satellite can pick it.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamasr.actors.errors import AudioFormatError, ConfigError
from streamasr.actors.wake.base import Detection, WakeEngine

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DEFAULT_VERIFY_THRESHOLD",
    "ENGINE_TITLES",
    "MODEL_IDS",
    "PACKAGES",
    "NeuralWakeOptions",
    "PhraseJudge",
    "Refractory",
    "check_pcm",
    "display_phrase",
    "model_id",
    "phrase_of",
    "require_package",
    "warm_up",
]

#: Model ids (file stems in the wheel) per engine, the first one the default phrase.
MODEL_IDS: dict[str, tuple[str, ...]] = {
    "micro": ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft"),
    "open": ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy"),
}
#: The PyPI package (and its import name) that carries each engine's models.
PACKAGES: dict[str, tuple[str, str]] = {
    "micro": ("pymicro-wakeword", "pymicro_wakeword"),
    "open": ("pyopen-wakeword", "pyopen_wakeword"),
}
#: The Wyoming program name of each engine (what the reference servers call themselves).
ENGINE_TITLES: dict[str, str] = {"micro": "microWakeWord", "open": "openwakeword"}
#: openWakeWord's probability that confirms a microWakeWord detection (``verify``).
DEFAULT_VERIFY_THRESHOLD = 0.1
#: Probability thresholds (0..1, mean over the model's window) used when none is configured:
#: microWakeWord's are the ``probability_cutoff`` its authors ship in each model's .json,
#: but for "okay nabu": 0.9 instead of 0.85 (``bench_wake.py --thresholds 0.88,0.9
#: --passes 5``: no false wake in 1.17 h of non-wake audio against one at 0.85, confusables
#: 10/80 against 14/80, 99 % clean and 86 % at 10 dB SNR on the voices it hears against
#: 100 % and 92 %); openWakeWord's is the 0.5 wyoming-openwakeword uses.
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "micro": {"okay_nabu": 0.9, "hey_jarvis": 0.97, "alexa": 0.9, "hey_mycroft": 0.95},
    "open": dict.fromkeys(MODEL_IDS["open"], 0.5),
}


def phrase_of(model: str) -> str:
    """Config phrase of a model id: ``okay_nabu`` -> ``okay nabu``."""
    return model.replace("_", " ")


def model_id(phrase: str) -> str:
    """Model id of a config phrase: ``okay nabu`` -> ``okay_nabu``."""
    return "_".join(phrase.split())


def display_phrase(model: str) -> str:
    """The phrase Home Assistant shows: ``okay_nabu`` -> ``Okay Nabu``."""
    return " ".join(w.capitalize() for w in model.split("_"))


def require_package(engine: str) -> None:
    """ConfigError (one line, naming the package) if ``engine``'s wheel is not installed."""
    dist, module = PACKAGES[engine]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"wake.engine: {engine!r} needs the package {dist} "
            f"(pip install 'streamasr[wake]' or pip install {dist})"
        )


@dataclass(frozen=True, slots=True)
class NeuralWakeOptions:
    """Options of the ``micro`` and ``open`` engines (rates in Hz, times in milliseconds).

    Attributes:
        engine: ``micro`` (microWakeWord) or ``open`` (openWakeWord).
        phrases: bundled models by phrase, lower case ("okay nabu", "hey jarvis", ...).
        thresholds: per-phrase probability threshold, 0 < t < 1 (higher fires less); empty
            uses :data:`DEFAULT_THRESHOLDS`.
        refractory_ms: after a detection, the same phrase is not reported again for this
            much stream time (the probability stays high for a few hundred ms).
        sample_rate_hz: PCM rate detectors accept (the models take 16 kHz).
        verify: ``"open"``: each ``micro`` detection is confirmed by openWakeWord reading
            the seconds around it (see :mod:`~streamasr.actors.wake.verified`); ``""``: none.
        verify_threshold: openWakeWord's probability a detection needs to stand.
    """

    engine: str = "micro"
    phrases: tuple[str, ...] = ("okay nabu",)
    thresholds: tuple[float, ...] = ()
    refractory_ms: int = 2000
    sample_rate_hz: int = 16000
    verify: str = ""
    verify_threshold: float = DEFAULT_VERIFY_THRESHOLD

    def __post_init__(self) -> None:
        """Validate; raises ConfigError naming the offending field (``wake.<field>``)."""
        if self.engine not in MODEL_IDS:
            raise ConfigError(f"wake.engine: {self.engine!r} has no bundled models")
        known = [phrase_of(i) for i in MODEL_IDS[self.engine]]
        if not self.phrases:
            raise ConfigError("wake.phrases: at least one phrase is needed")
        if len(set(self.phrases)) != len(self.phrases):
            raise ConfigError("wake.phrases: phrases must be distinct")
        for phrase in self.phrases:
            if phrase not in known:
                raise ConfigError(
                    f"wake.phrases: {phrase!r} is not a {self.engine!r} model "
                    f"(available: {', '.join(repr(k) for k in known)}; "
                    'other phrases: engine = "pocketsphinx")'
                )
        if self.thresholds and len(self.thresholds) != len(self.phrases):
            raise ConfigError(
                f"wake.thresholds: need one per phrase ({len(self.phrases)}), "
                f"got {len(self.thresholds)}"
            )
        for t in self.thresholds:
            if not (math.isfinite(t) and 0.0 < t < 1.0):
                raise ConfigError(
                    f"wake.thresholds: a {self.engine!r} threshold is a probability "
                    f"0 < t < 1, got {t!r}"
                )
        if not 0 <= self.refractory_ms <= 60000:
            raise ConfigError(f"wake.refractory_ms: must be 0..60000, got {self.refractory_ms}")
        if self.sample_rate_hz != 16000:
            raise ConfigError(f"wake.sample_rate_hz: must be 16000, got {self.sample_rate_hz}")
        if self.verify not in ("", "open"):
            raise ConfigError(f'wake.verify: must be "open" or "", got {self.verify!r}')
        if self.verify and self.engine != "micro":
            raise ConfigError(
                f"wake.verify: only the 'micro' engine is verified, not {self.engine!r}"
            )
        if self.verify:
            opened = [phrase_of(i) for i in MODEL_IDS["open"]]
            for phrase in self.phrases:
                if phrase not in opened:
                    raise ConfigError(
                        f"wake.verify: openWakeWord has no {phrase!r} model to confirm with "
                        '(set verify = "")'
                    )
        if not (math.isfinite(self.verify_threshold) and 0.0 < self.verify_threshold < 1.0):
            raise ConfigError(
                f"wake.verify_threshold: a probability 0 < t < 1, got {self.verify_threshold!r}"
            )

    def threshold_for(self, index: int) -> float:
        """The probability threshold of ``phrases[index]`` (configured or default)."""
        if self.thresholds:
            return self.thresholds[index]
        return DEFAULT_THRESHOLDS[self.engine][model_id(self.phrases[index])]


class Refractory:
    """Per-phrase dead time after a detection, in stream samples (not wall time, so a
    file played faster than real time behaves as it would live)."""

    def __init__(self, phrases: int, refractory_frames: int) -> None:
        """``phrases`` counters; ``refractory_frames`` samples of dead time after each."""
        self._frames = refractory_frames
        self._until = [-1] * phrases

    def fire(self, index: int, frame: int) -> bool:
        """True (and start the dead time) unless phrase ``index`` is still dead at ``frame``."""
        if frame < self._until[index]:
            return False
        self._until[index] = frame + self._frames
        return True

    def clear(self) -> None:
        """Forget every dead time (a reset detector)."""
        self._until = [-1] * len(self._until)


class PhraseJudge:
    """Per-stream decisions of a neural wake engine: a phrase's probability above its
    threshold, outside its dead time, is a detection, placed where the phrase ended (the
    firing position less the model's lag, in stream samples).

    Attributes:
        max_probability: the highest probability of each phrase since creation
            (diagnostics).
    """

    def __init__(
        self,
        phrases: Sequence[str],
        thresholds: Sequence[float],
        refractory_frames: int,
        lag_frames: int,
        phrase_frames: int,
    ) -> None:
        """``lag_frames``: samples from the phrase's end to where the model fires;
        ``phrase_frames``: the length given to a detected phrase (the models do not say
        where it began)."""
        self._phrases, self._thresholds = tuple(phrases), tuple(thresholds)
        self._refractory = Refractory(len(self._phrases), refractory_frames)
        self._lag, self._span = lag_frames, phrase_frames
        self.max_probability = [0.0] * len(self._phrases)

    def judge(self, index: int, prob: float, fired: int, origin: int) -> Detection | None:
        """The detection of phrase ``index`` at probability ``prob``, the model having fired
        at sample ``fired`` (None: none); no position before ``origin`` (the last reset)."""
        self.max_probability[index] = max(self.max_probability[index], prob)
        if prob <= self._thresholds[index] or not self._refractory.fire(index, fired):
            return None
        end = max(origin, fired - self._lag)
        return Detection(self._phrases[index], max(origin, end - self._span), end, prob)

    def clear(self) -> None:
        """Forget every dead time (a reset detector)."""
        self._refractory.clear()


def warm_up(engine: WakeEngine) -> None:
    """Run 1 s of low noise through a detector of ``engine`` so its first chunk is not cold."""
    rng = np.random.default_rng(0)
    detector = engine.create_detector()
    detector.accept((rng.standard_normal(engine.sample_rate_hz) * 30).astype(np.int16))
    detector.close()


def check_pcm(pcm: object) -> npt.NDArray[np.int16]:
    """``pcm`` if it is int16 mono ``(n,)``, else AudioFormatError."""
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        shape = getattr(pcm, "shape", None)
        raise AudioFormatError(
            f"wake: expected int16 mono (n,), got {getattr(pcm, 'dtype', type(pcm))} {shape}"
        )
    return pcm
