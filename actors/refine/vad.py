"""Speech gate (Silero VAD) and pause-based splitting for the Whisper second pass.

Whisper invents text on silence and noise ("Thank you."), so a segment reaches Whisper only
when Silero VAD (the ``silero_vad_v6.onnx`` shipped inside faster-whisper, run by
onnxruntime; no download) finds speech in it. :func:`split_at_pauses` cuts segments longer than
Whisper's window at their quietest point near the limit.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.asr.onnx_offline import silero_vad_model
from streamasr.actors.errors import AudioFormatError, ModelError

__all__ = ["SpeechGate", "VadGateOptions", "plan_pieces", "split_at_pauses"]

_log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16_000
"""The only sample rate Silero VAD and Whisper are run at here."""

_WINDOW_SAMPLES = 512


@dataclass(frozen=True, slots=True)
class VadGateOptions:
    """Options of :class:`SpeechGate`.

    Attributes:
        threshold: Silero speech probability at or above which a 32 ms window is speech.
        neg_threshold: probability below which a window ends speech (None: threshold - 0.15).
        min_speech_ms: speech runs shorter than this (milliseconds) are ignored.
        min_silence_ms: silence (milliseconds) that ends a speech run.
        speech_pad_ms: padding (milliseconds) added around each speech run.
        min_total_speech_ms: a segment counts as speech when its runs total at least this.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_ms: int = 250
    min_silence_ms: int = 300
    speech_pad_ms: int = 100
    min_total_speech_ms: int = 250


def _load_silero() -> Callable[[NDArray[np.float32]], Any]:
    """Return faster-whisper's cached Silero VAD model, or raise ModelError."""
    try:
        model: Callable[[NDArray[np.float32]], Any] = silero_vad_model()
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise ModelError("Silero VAD needs faster-whisper: pip install faster-whisper") from exc
    except Exception as exc:
        raise ModelError(f"Silero VAD model failed to load: {exc}") from exc
    return model


class SpeechGate:
    """Decide whether a 16 kHz mono float32 segment holds speech (Silero VAD).

    Not thread-safe; one instance per process. The ONNX session is shared with faster-whisper.
    """

    def __init__(self, options: VadGateOptions | None = None) -> None:
        """Load the Silero model (about 2 MB, from the faster-whisper wheel)."""
        self.options = options if options is not None else VadGateOptions()
        self._model = _load_silero()

    def speech_spans(self, audio: NDArray[np.float32]) -> list[tuple[int, int]]:
        """Return speech runs as (start, end) sample indices into ``audio``."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        o = self.options
        vo = VadOptions(
            threshold=o.threshold,
            neg_threshold=o.neg_threshold,
            min_speech_duration_ms=o.min_speech_ms,
            min_silence_duration_ms=o.min_silence_ms,
            speech_pad_ms=o.speech_pad_ms,
        )
        if audio.ndim != 1:
            raise AudioFormatError(f"VAD needs mono audio, got shape {audio.shape}")
        x = np.ascontiguousarray(audio, dtype=np.float32)
        spans = get_speech_timestamps(x, vo, sampling_rate=SAMPLE_RATE_HZ)
        return [(int(s["start"]), int(s["end"])) for s in spans]

    def speech(
        self, audio: NDArray[np.float32]
    ) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
        """Speech runs (sample indices) and (first speech start, last speech end), the
        latter None if not enough speech: runs, less their padding, must total at least
        ``min_total_speech_ms``."""
        if len(audio) < _WINDOW_SAMPLES:
            return [], None
        spans = self.speech_spans(audio)
        pad = self.options.speech_pad_ms * SAMPLE_RATE_HZ // 1000
        total = sum(max(0, e - s - 2 * pad) for s, e in spans)
        if not spans or total * 1000 < self.options.min_total_speech_ms * SAMPLE_RATE_HZ:
            return spans, None
        return spans, (spans[0][0], spans[-1][1])

    def speech_bounds(self, audio: NDArray[np.float32]) -> tuple[int, int] | None:
        """(first speech start, last speech end) in samples, or None if not enough speech
        (see :meth:`speech`)."""
        return self.speech(audio)[1]

    def has_speech(self, audio: NDArray[np.float32]) -> bool:
        """True if ``audio`` holds enough speech (see :meth:`speech_bounds`)."""
        return self.speech_bounds(audio) is not None


def _frame_energy(audio: NDArray[np.float32], frame: int, hop: int) -> NDArray[np.float64]:
    """Mean square energy of frames of ``frame`` samples every ``hop`` samples."""
    n = 1 + max(0, (len(audio) - frame) // hop)
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    x = audio.astype(np.float64)[np.minimum(idx, len(audio) - 1)]
    return np.asarray(np.mean(x * x, axis=1), dtype=np.float64)


def split_at_pauses(
    audio: NDArray[np.float32],
    max_samples: int,
    search_samples: int,
    frame_samples: int = 1600,
) -> list[tuple[int, int]]:
    """Cut ``audio`` into pieces no longer than ``max_samples``, at low-energy points.

    Each cut is placed at the centre of the quietest ``frame_samples`` frame (hop: a quarter
    frame) in the last ``search_samples`` before the limit.

    Returns:
        (start, end) sample indices covering ``audio`` without gaps or overlap.
    """
    if max_samples <= 0 or search_samples <= 0 or search_samples > max_samples:
        raise ValueError("need 0 < search_samples <= max_samples")
    pieces: list[tuple[int, int]] = []
    start = 0
    total = len(audio)
    hop = max(1, frame_samples // 4)
    while total - start > max_samples:
        lo = start + max_samples - search_samples
        region = audio[lo : start + max_samples]
        energy = _frame_energy(region, min(frame_samples, len(region)), hop)
        cut = lo + int(np.argmin(energy)) * hop + min(frame_samples, len(region)) // 2
        cut = min(max(cut, start + 1), start + max_samples)
        pieces.append((start, cut))
        start = cut
    pieces.append((start, total))
    return pieces


def plan_pieces(
    audio: NDArray[np.float32],
    spans: list[tuple[int, int]],
    max_samples: int,
    search_samples: int,
) -> list[tuple[int, int]]:
    """Cut ``audio`` into pieces no longer than ``max_samples``, in the pauses between speech.

    Each cut is the middle of the last gap between two speech runs (``spans``, sample
    indices as :meth:`SpeechGate.speech_spans` gives) that keeps the piece within the limit,
    so no word is cut; where a run of speech is longer than the limit, the quietest point
    near the limit is used (:func:`split_at_pauses`). Pieces hold at least a quarter of the
    limit where a pause allows it.

    Returns:
        (start, end) sample indices covering ``audio`` without gaps or overlap.
    """
    total = len(audio)
    if total <= max_samples:
        return [(0, total)]
    gaps = [(a[1] + b[0]) // 2 for a, b in itertools.pairwise(spans) if b[0] > a[1]]
    pieces: list[tuple[int, int]] = []
    start = 0
    while total - start > max_samples:
        limit = start + max_samples
        cuts = [g for g in gaps if start + max_samples // 4 <= g <= limit]
        if cuts:
            cut = cuts[-1]
        else:
            first = split_at_pauses(audio[start:limit], max_samples - 1, search_samples)[0]
            cut = start + first[1]
        pieces.append((start, cut))
        start = cut
    pieces.append((start, total))
    return pieces
