"""Value types every recogniser backend returns.

Times are *stream seconds*: the absolute frame index of the audio at the engine's sample
rate divided by that rate, so a result can be mapped back to exact ring positions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word.

    Attributes:
        word: the word text.
        start_s: start, in stream seconds.
        end_s: end, in stream seconds.
        conf: confidence in [0, 1] (1.0 where the backend gives none).
    """

    word: str
    start_s: float
    end_s: float
    conf: float = 1.0


@dataclass(frozen=True, slots=True)
class Result:
    """A hypothesis for one utterance, partial or final.

    Attributes:
        text: the recognised text (words joined by single spaces).
        is_final: True once the utterance has ended (endpoint or flush).
        start_frame: absolute stream frame index (engine rate) where the utterance starts.
        end_frame: absolute stream frame index (exclusive) where the utterance ends so far.
        words: per-word times and confidences, possibly empty.
        continued: a final cut in a pause of continuing speech (a monologue split at
            ``max_utterance_s``): the next utterance starts exactly at ``end_frame``, and
            audio past it belongs to that utterance, not to this one.
    """

    text: str
    is_final: bool
    start_frame: int
    end_frame: int
    words: tuple[Word, ...] = ()
    continued: bool = False
