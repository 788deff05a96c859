"""Smart Turn v3: the probability that a speaker has finished their turn, from audio.

Smart Turn v3.2 (BSD-2, by Daily/pipecat) is an 8.7 MB int8 ONNX classifier over Whisper-style
log-mel features (80 bins x 800 frames: the last 8 s of 16 kHz audio, zeros in front of a
shorter clip, the waveform normalised to zero mean and unit variance). The file ships inside
the ``pipecat-ai`` wheel; it is located through the package's installed file list, without
importing pipecat (no download, no side effects). onnxruntime comes with faster-whisper and is
imported with its telemetry off (:mod:`~streamasr.actors.asr.onnx_offline`).

Cost: one call is one encoder pass over 8 s of audio (about 60-80 ms of one core on the
benchmark box, ~12 ms on a recent desktop CPU), whatever the utterance's length.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.asr.onnx_offline import import_onnxruntime
from streamasr.actors.errors import ConfigError

__all__ = ["MODEL_FILE", "SAMPLE_RATE_HZ", "WINDOW_S", "TurnModel", "bundled_model", "load"]

log = logging.getLogger(__name__)

#: Audio rate the model takes, Hz.
SAMPLE_RATE_HZ = 16000
#: Seconds of audio the model sees (the end of the utterance).
WINDOW_S = 8
#: The model inside the ``pipecat-ai`` distribution.
MODEL_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
_PACKAGE = "pipecat-ai"
_VARIANCE_EPS = 1e-7


def bundled_model() -> Path | None:
    """The Smart Turn file shipped by the installed ``pipecat-ai`` package (None if absent)."""
    try:
        dist = metadata.distribution(_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(MODEL_FILE)))
    return path if path.is_file() else None


class TurnModel:
    """A loaded Smart Turn v3 model (one onnxruntime session, single-threaded by default)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        """Load ``path`` (an ONNX file); ConfigError if it is missing or not a turn model."""
        from faster_whisper.feature_extractor import FeatureExtractor

        if not path.is_file():
            raise ConfigError(f"endpoint.model: no such file {path}")
        ort = import_onnxruntime()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=so)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ConfigError(f"endpoint.model: cannot load {path}: {exc}") from exc
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != ["input_features"]:
            raise ConfigError(f"endpoint.model: {path} is not a Smart Turn v3 model")
        self.path = path
        self._features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        self._samples = WINDOW_S * SAMPLE_RATE_HZ

    def probability(self, audio: NDArray[np.float32]) -> float:
        """Probability in [0, 1] that the turn ending with ``audio`` is complete.

        ``audio``: 16 kHz mono float samples in [-1, 1] (only the last 8 s are used).
        """
        x = np.asarray(audio, dtype=np.float32)[-self._samples :]
        if len(x) < self._samples:
            x = np.concatenate([np.zeros(self._samples - len(x), np.float32), x])
        x = (x - x.mean()) / np.sqrt(x.var() + _VARIANCE_EPS)
        mel = self._features(x, padding=0)[:, : WINDOW_S * 100]
        out = self._session.run(None, {"input_features": mel[None].astype(np.float32)})
        return float(np.clip(np.asarray(out[0]).reshape(-1)[0], 0.0, 1.0))


def load(model: str = "") -> TurnModel | None:
    """The turn model: ``model`` (a path), or the one ``pipecat-ai`` ships when "".

    None, with one warning, when "" and the package is not installed (the endpoint then
    keeps the fixed rule); a path that does not load is a ConfigError.
    """
    if model:
        return TurnModel(Path(model).expanduser())
    path = bundled_model()
    if path is None:
        log.warning(
            "endpoint: no turn model (pip install 'streamasr[turn]' installs pipecat-ai, "
            "which ships Smart Turn v3); utterances end after a fixed silence"
        )
        return None
    return TurnModel(path)
