"""Per-frame speech decisions for the first pass: WebRTC-style or Silero.

The PocketSphinx stream segments utterances from one speech/non-speech decision per fixed
frame (:mod:`~streamasr.actors.asr.pocketsphinx_backend`). Two deciders, chosen by
``PocketsphinxOptions.vad``:

* ``webrtc``: PocketSphinx's WebRTC-style energy/GMM VAD (10, 20 or 30 ms frames). Cheap, but
  it hears steady noise as speech: in pink noise at 10 dB SNR the pauses between sentences
  are all "speech", utterances never end, and a 12 s monologue split cuts words.
* ``silero``: Silero VAD v6 (the ``silero_vad_v6.onnx`` inside the faster-whisper wheel, run by
  onnxruntime; no download), 32 ms frames (512 samples at 16 kHz), its LSTM state carried
  from frame to frame, one frame per call, so a stream gives the same decisions whatever its
  chunk size. A frame
  is speech at probability >= ``threshold``, and stays speech down to ``threshold - 0.15``
  once speech started (Silero's own hysteresis). About 0.1 ms of CPU per frame (0.4 % of a
  core per stream).

Both answer for a whole batch of frames at once (:meth:`FrameVad.decide`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pocketsphinx

from streamasr.actors.asr.onnx_offline import silero_vad_model
from streamasr.actors.errors import ModelError

__all__ = ["SILERO_FRAME_SAMPLES", "FrameVad", "SileroFrameVad", "WebrtcFrameVad"]

#: Silero's window at 16 kHz (32 ms), and the samples of the window before it it sees.
SILERO_FRAME_SAMPLES = 512
_CONTEXT_SAMPLES = 64
#: Below the speech threshold by this much, a frame still continues speech.
HYSTERESIS = 0.15


class FrameVad(Protocol):
    """Speech decisions for consecutive frames of one stream (stateful)."""

    @property
    def frame_len(self) -> int:
        """Samples per frame."""
        ...

    def decide(self, frames: npt.NDArray[np.int16]) -> list[bool]:
        """One decision per row of ``frames`` (shape ``(n, frame_len)``), in stream order."""
        ...


class WebrtcFrameVad:
    """PocketSphinx's WebRTC-style VAD. It adapts to what it has heard: a fresh one fed a
    stream from its middle decides some frames differently, seconds later too (and hears
    onsets up to ~0.2 s later), so a restarted inference process may cut an utterance a
    little differently (``benchmarks/bench_failover.py``)."""

    def __init__(self, mode: int, rate_hz: int, frame_ms: int) -> None:
        """``mode`` 0 (loose) .. 3 (strict); ``frame_ms`` 10, 20 or 30."""
        self._vad = pocketsphinx.Vad(mode, rate_hz, frame_ms / 1000.0)
        self._frame_len = int(self._vad.frame_bytes // 2)

    @property
    def frame_len(self) -> int:
        """Samples per frame."""
        return self._frame_len

    def decide(self, frames: npt.NDArray[np.int16]) -> list[bool]:
        """See :class:`FrameVad`."""
        return [bool(self._vad.is_speech(f.tobytes())) for f in frames]


def _silero() -> Any:
    """faster-whisper's cached Silero VAD model (one ONNX session per process)."""
    try:
        return silero_vad_model()
    except Exception as exc:  # ImportError, onnxruntime errors
        raise ModelError(f"Silero VAD failed to load: {exc}") from exc


class SileroFrameVad:
    """Silero VAD v6 over 32 ms frames of a 16 kHz stream, state carried across calls."""

    def __init__(self, threshold: float = 0.5) -> None:
        """``threshold``: speech probability at or above which a frame starts speech.

        Raises:
            ModelError: the model cannot be loaded.
        """
        self._session = _silero().session
        self._threshold = threshold
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(_CONTEXT_SAMPLES, np.float32)
        self._speech = False
        #: The probability of the last frame decided (for diagnostics).
        self.last_probability = 0.0

    @property
    def frame_len(self) -> int:
        """Samples per frame (512: 32 ms at 16 kHz)."""
        return SILERO_FRAME_SAMPLES

    def probabilities(self, frames: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
        """Speech probability of each row of ``frames`` (shape ``(n, 512)``), advancing the
        stream's state. One model call per frame: a batch gives results that differ in the
        5th decimal with its grouping, and decisions must not depend on the chunk size
        (a call costs about 0.1 ms either way)."""
        probs = np.empty(len(frames), np.float32)
        for i, frame in enumerate(frames):
            x = frame.astype(np.float32) / 32768.0
            batch = np.concatenate([self._context, x])[None, :]
            out, self._h, self._c = self._session.run(
                None, {"input": batch, "h": self._h, "c": self._c}
            )
            self._context = x[-_CONTEXT_SAMPLES:]
            probs[i] = float(np.asarray(out).reshape(-1)[0])
        return probs

    def decide(self, frames: npt.NDArray[np.int16]) -> list[bool]:
        """See :class:`FrameVad`."""
        out = []
        for p in self.probabilities(frames):
            floor = self._threshold - HYSTERESIS if self._speech else self._threshold
            self._speech = bool(p >= floor)
            out.append(self._speech)
            self.last_probability = float(p)
        return out
