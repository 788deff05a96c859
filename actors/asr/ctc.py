"""Greedy CTC decoding, streaming: per-frame argmax, collapse repeats, drop blanks.

Pure numpy, no torch.  :class:`GreedyCtcDecoder` keeps the state that must survive chunk
boundaries (the previous frame's id, so a token spanning two chunks is emitted once; the count of
trailing blank frames, for endpointing) and the tokens of the utterance in progress with their
output-frame indices.  :func:`tokens_to_words` turns token ids into words through a token list:
``'|'`` or ``' '`` separate words, a leading ``'▁'`` (SentencePiece) starts a new word, and id 0
(``blank_id``) is never emitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["CtcToken", "GreedyCtcDecoder", "TokenWord", "greedy_ids", "tokens_to_words"]

WORD_SEPARATORS = frozenset({"|", " "})
_SP_PREFIX = "\u2581"


@dataclass(frozen=True, slots=True)
class CtcToken:
    """One emitted token.

    Attributes:
        token_id: index into the token list.
        frame: absolute output-frame index where it was emitted (first frame of its run).
        end_frame: absolute output-frame index (exclusive) where its run of frames ended.
        prob: the emitting frame's probability of the token, in [0, 1].
    """

    token_id: int
    frame: int
    end_frame: int
    prob: float


@dataclass(frozen=True, slots=True)
class TokenWord:
    """A word assembled from tokens (frames are absolute output-frame indices, end exclusive)."""

    text: str
    start_frame: int
    end_frame: int
    conf: float


def greedy_ids(
    log_probs: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per-frame best ids and their probabilities of ``log_probs`` shaped ``(T, V)``."""
    if log_probs.ndim != 2:
        raise ValueError(f"greedy_ids: expected (T, V) log-probabilities, got {log_probs.shape}")
    ids = np.argmax(log_probs, axis=1).astype(np.int64)
    probs = np.exp(log_probs[np.arange(len(ids)), ids].astype(np.float64))
    return ids, probs


class GreedyCtcDecoder:
    """Streaming greedy CTC state for one stream.

    Args:
        blank_id: id of the CTC blank (0 by convention).
        endpoint_blank_frames: consecutive blank output frames after a token that end an
            utterance (see :meth:`is_endpoint`).
    """

    def __init__(self, blank_id: int = 0, endpoint_blank_frames: int = 50) -> None:
        """Start with no tokens and ``prev`` = blank."""
        if endpoint_blank_frames < 1:
            raise ValueError(f"endpoint_blank_frames: must be >= 1, got {endpoint_blank_frames}")
        self.blank_id = blank_id
        self.endpoint_blank_frames = endpoint_blank_frames
        self.tokens: list[CtcToken] = []
        self.trailing_blanks = 0
        self._prev = blank_id

    def push(self, token_id: int, prob: float, frame: int) -> None:
        """Consume one output frame's best id (absolute output-frame index ``frame``)."""
        if token_id == self.blank_id:
            self.trailing_blanks += 1
        else:
            self.trailing_blanks = 0
            if token_id != self._prev:
                self.tokens.append(CtcToken(token_id, frame, frame + 1, prob))
            else:
                last = self.tokens[-1]
                self.tokens[-1] = CtcToken(
                    last.token_id, last.frame, frame + 1, max(last.prob, prob)
                )
        self._prev = token_id

    def is_endpoint(self) -> bool:
        """True after ``endpoint_blank_frames`` blanks that follow at least one token."""
        return bool(self.tokens) and self.trailing_blanks >= self.endpoint_blank_frames

    def reset(self) -> None:
        """Forget the utterance's tokens (call after taking a final)."""
        self.tokens = []
        self.trailing_blanks = 0
        self._prev = self.blank_id


def tokens_to_words(tokens: Sequence[CtcToken], token_list: Sequence[str]) -> list[TokenWord]:
    """Words spelled by ``tokens`` through ``token_list`` (separators and ``▁`` split words)."""
    words: list[TokenWord] = []
    text, start, end = "", 0, 0
    probs: list[float] = []

    def flush() -> None:
        if text:
            words.append(TokenWord(text, start, end, float(np.mean(probs))))

    for tok in tokens:
        piece = token_list[tok.token_id]
        if piece in WORD_SEPARATORS or piece.startswith(_SP_PREFIX):
            flush()
            text, probs = "", []
            piece = piece.removeprefix(_SP_PREFIX)
            if piece in WORD_SEPARATORS:
                continue
        if not text:
            start = tok.frame
        text += piece
        end = tok.end_frame
        probs.append(tok.prob)
    flush()
    return words
