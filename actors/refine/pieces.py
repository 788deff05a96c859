"""Segment pieces and word-time helpers of the Whisper refiner (pure numpy; no model)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.asr.types import Word
from streamasr.actors.errors import AudioFormatError
from streamasr.actors.refine.vad import SAMPLE_RATE_HZ

__all__ = ["Piece", "check_audio", "to_stream"]


@dataclass(frozen=True, slots=True)
class Piece:
    """A stretch of one item's audio decoded as a unit (internal).

    Attributes:
        index: position of the item in the batch.
        audio: 16 kHz mono float32 samples.
        start_s: stream time (seconds) of ``audio[0]``.
        view: 0 for the segment as given, 1 for its VAD-trimmed speech span.
    """

    index: int
    audio: NDArray[np.float32]
    start_s: float
    view: int = 0


def to_stream(piece: Piece, words: list[Word]) -> list[Word]:
    """Shift piece-relative word times to stream seconds, clamped to the piece, monotonic."""
    end_s = piece.start_s + len(piece.audio) / SAMPLE_RATE_HZ
    out: list[Word] = []
    floor = piece.start_s
    for w in words:
        start = min(max(piece.start_s + w.start_s, floor), end_s)
        end = min(max(piece.start_s + w.end_s, start), end_s)
        out.append(Word(w.word, start, end, min(1.0, max(0.0, w.conf))))
        floor = start
    return out


def check_audio(audio: NDArray[np.float32]) -> NDArray[np.float32]:
    """Validate a 16 kHz mono float32 array; return it contiguous."""
    if not isinstance(audio, np.ndarray) or audio.ndim != 1:
        shape = getattr(audio, "shape", None)
        raise AudioFormatError(f"refiner needs 1-D mono audio, got shape {shape}")
    if audio.dtype != np.float32:
        raise AudioFormatError(f"refiner needs float32 audio, got {audio.dtype}")
    return np.ascontiguousarray(audio)
