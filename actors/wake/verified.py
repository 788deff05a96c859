"""A second opinion on each wake detection: microWakeWord listens, openWakeWord confirms.

microWakeWord is nearly free (about 0.003 s of CPU per audio second) but wakes on some
near-rhymes ("okay, put it on ..."); openWakeWord wakes on none of the benchmark's
confusables but costs about 30 times as much CPU to run all the time. Run as a cascade, the
cheap model listens and the other one only re-reads the few seconds around each of its
detections: the false wakes of the second, the CPU of the first.

Per stream, :class:`VerifiedDetector` keeps the last :data:`HISTORY_S` seconds of audio. On
a detection of the listening model, a fresh openWakeWord detector reads the audio from
:data:`PRE_S` before the phrase's end (it needs ~2 s of audio before its first probability)
and then every new chunk as it comes: the detection stands as soon as openWakeWord's
probability for the same phrase reaches ``verify_threshold``, and is dropped when
:data:`SETTLE_S` of audio after the phrase's end has passed without (openWakeWord peaks
0.3-1.0 s after a phrase ends, later in noise). A confirmed detection keeps the listening
model's frames, so where the command starts does not move; only its report comes later (the
inference actor takes the command's audio back from the ring). Dropped detections are
counted (``rejected``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from streamasr.actors.wake.base import Detection, WakeDetector, WakeEngine
from streamasr.actors.wake.bundled import NeuralWakeOptions, check_pcm, warm_up

if TYPE_CHECKING:
    from streamasr.actors.wake.open_wake_word import OpenWakeDetector

__all__ = ["HISTORY_S", "PRE_S", "SETTLE_S", "VerifiedDetector", "VerifiedWakeEngine"]

logger = logging.getLogger(__name__)

#: Seconds of audio before a phrase's end that the confirming model reads.
PRE_S = 2.5
#: Seconds of audio after a phrase's end the confirming model may take to agree (its
#: probability peaks 0.3-1.0 s after the phrase's end on the benchmark's voices and noise).
SETTLE_S = 1.0
#: Seconds of audio a detector keeps for confirmations.
HISTORY_S = PRE_S + SETTLE_S + 1.0


class VerifiedWakeEngine:
    """The listening engine's detections, each confirmed by openWakeWord.

    Attributes:
        sample_rate_hz: PCM rate detectors accept (16 kHz).
        options: the listening engine's :class:`NeuralWakeOptions` (``verify`` set).
    """

    def __init__(self, listener: WakeEngine, options: NeuralWakeOptions) -> None:
        """``listener``: the loaded listening engine; ``options``: its options, whose
        ``verify_threshold`` applies to the confirming model (loaded here)."""
        from streamasr.actors.wake.open_wake_word import OpenWakeEngine

        self.options = options
        self.sample_rate_hz = listener.sample_rate_hz
        self._listener = listener
        thresholds = (options.verify_threshold,) * len(options.phrases)
        self.confirmer = OpenWakeEngine(
            NeuralWakeOptions("open", options.phrases, thresholds=thresholds)
        )

    def create_detector(self, start_frame: int = 0) -> VerifiedDetector:
        """A new detector whose first sample has absolute index ``start_frame``."""
        return VerifiedDetector(self, self._listener.create_detector(start_frame), start_frame)

    def warm_up(self) -> None:
        """Warm both models (1 s of low noise each)."""
        warm_up(self._listener)
        warm_up(self.confirmer)

    def confirmer_for(self, start_frame: int, stop_frame: int) -> _Confirmation:
        """An openWakeWord reader of the audio from ``start_frame`` up to ``stop_frame``."""
        return _Confirmation(self.confirmer.create_detector(start_frame), start_frame, stop_frame)


class _Confirmation:
    """One detection's openWakeWord reader (its highest probability per phrase so far) of
    the audio from ``start`` up to ``stop`` (stream samples; whatever the chunk sizes, it
    reads exactly that audio, so decisions do not depend on them)."""

    def __init__(self, detector: OpenWakeDetector, start: int, stop: int) -> None:
        self._detector = detector
        self.position, self.stop = start, stop

    def feed(self, pcm: npt.NDArray[np.int16], first: int) -> None:
        """Read the part of ``pcm`` (whose first sample is ``first``) it has not read, up to
        its stop (the detections are not used: only the probabilities)."""
        lo, hi = self.position - first, min(len(pcm), self.stop - first)
        if 0 <= lo < hi:
            self._detector.accept(pcm[lo:hi])
            self.position = first + hi

    def probability(self, index: int) -> float:
        """The highest probability of phrase ``index`` so far."""
        return float(self._detector.judge.max_probability[index])

    def close(self) -> None:
        """Free the models."""
        self._detector.close()


class VerifiedDetector:
    """Per-stream cascade state: the listening detector, recent audio, detections waiting
    for their confirmation.

    Attributes:
        confirmed, rejected: detections the confirming model kept / dropped so far.
        last_probability: the confirming model's probability for the last detection it read.
    """

    def __init__(self, engine: VerifiedWakeEngine, listener: WakeDetector, start: int) -> None:
        """``listener``: the listening engine's detector for this stream."""
        rate = engine.sample_rate_hz
        self._engine = engine
        self._listener = listener
        self._pre, self._settle = round(PRE_S * rate), round(SETTLE_S * rate)
        self._keep = round(HISTORY_S * rate)
        # recent audio: _buf[:_len], whose first sample is _history_start (room for twice
        # HISTORY_S, so the older half is moved down once per HISTORY_S, not every chunk)
        self._buf = np.zeros(2 * self._keep, np.int16)
        self._len = 0
        self._history_start = start
        self._pending: list[tuple[Detection, _Confirmation]] = []
        self.confirmed = self.rejected = 0
        self.last_probability = float("nan")

    @property
    def position_frame(self) -> int:
        """Absolute sample index of the next sample :meth:`accept` expects."""
        return self._history_start + self._len

    def reset(self, start_frame: int) -> None:
        """Forget all state; the next sample has index ``start_frame``."""
        self._listener.reset(start_frame)
        self._len = 0
        self._history_start = start_frame
        self._drop_pending()

    def accept(self, pcm: npt.NDArray[np.int16]) -> list[Detection]:
        """Consume mono int16 PCM; the detections confirmed in it, in order."""
        pcm = check_pcm(pcm)
        found = self._listener.accept(pcm)
        self._remember(pcm)
        history = self._buf[: self._len]
        for det in found:  # read from before the phrase
            start = max(self._history_start, det.end_frame - self._pre)
            reader = self._engine.confirmer_for(start, det.end_frame + self._settle)
            self._pending.append((det, reader))
        for _, reader in self._pending:
            reader.feed(history, self._history_start)
        out: list[Detection] = []
        while self._pending:
            det, reader = self._pending[0]
            prob = reader.probability(self._engine.options.phrases.index(det.phrase))
            confirmed = prob >= self._engine.options.verify_threshold
            if not confirmed and reader.position < reader.stop:
                break  # still undecided; later detections wait behind it (order is kept)
            self._pending.pop(0)
            reader.close()
            self.last_probability = prob
            if confirmed:
                self.confirmed += 1
                out.append(det)
            else:
                self.rejected += 1
                logger.info(
                    "wake %r at %.2f s not confirmed (openWakeWord %.2f < %.2f)",
                    det.phrase,
                    det.end_frame / self._engine.sample_rate_hz,
                    prob,
                    self._engine.options.verify_threshold,
                )
        return out

    def _remember(self, pcm: npt.NDArray[np.int16]) -> None:
        """Append ``pcm`` to the recent audio, keeping at least the last HISTORY_S of it."""
        n = len(pcm)
        if n >= self._keep:  # a chunk longer than the history: its last HISTORY_S only
            self._history_start += self._len + n - self._keep
            self._buf[: self._keep] = pcm[n - self._keep :]
            self._len = self._keep
            return
        if self._len + n > len(self._buf):
            drop = self._len + n - self._keep
            self._buf[: self._len - drop] = self._buf[drop : self._len]
            self._len -= drop
            self._history_start += drop
        self._buf[self._len : self._len + n] = pcm
        self._len += n

    def _drop_pending(self) -> None:
        for _, reader in self._pending:
            reader.close()
        self._pending.clear()

    def close(self) -> None:
        """Free the models (the listening detector's and any pending confirmation's)."""
        self._drop_pending()
        self._listener.close()
