"""The endpoint policy at work: a turn model, the machine's load, and what was decided.

One :class:`Endpointer` per inference actor, shared by its recogniser streams: a stream
calls :meth:`Endpointer.judge` at each checkpoint of trailing non-speech
(:meth:`Endpointer.checkpoints_ms`) with the utterance's audio so far and its first-pass
text; the answer comes from :func:`~.endpoint_policy.decide`. The actor sets
:attr:`Endpointer.overloaded` from its backlog (then the turn model is not run and the fixed
rule applies) and publishes :attr:`counts` and :meth:`waited_ms_p50`.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.asr.endpoint_policy import EndpointKind, EndpointOptions, decide, ends_open
from streamasr.actors.asr.turn_model import TurnModel

__all__ = ["Endpointer"]

#: Recent endpoints kept for the waited-silence median.
_RECENT = 256


class Endpointer:
    """Endpoint decisions for the streams of one recogniser."""

    def __init__(self, options: EndpointOptions, fixed_ms: int, model: TurnModel | None) -> None:
        """``fixed_ms``: the recogniser's fixed endpoint silence (``endpoint_silence_ms``),
        the rule without a model and the one an unsure turn falls back to."""
        self.options = options
        self.fixed_ms = fixed_ms
        self.model = model
        #: Set by the actor while it is behind: the fixed rule, no model calls.
        self.overloaded = False
        #: Endpoints by kind (``early`` / ``normal`` / ``extended``).
        self.counts: dict[str, int] = {"early": 0, "normal": 0, "extended": 0}
        #: Turn-model calls and the CPU seconds they took.
        self.model_calls = 0
        self.model_s = 0.0
        self._waited: deque[int] = deque(maxlen=_RECENT)

    @property
    def adaptive(self) -> bool:
        """Whether decisions use the turn model (else the fixed rule alone)."""
        return self.model is not None and self.options.policy == "adaptive"

    def checkpoints_ms(self) -> list[int]:
        """Trailing-silence lengths (ms) at which streams ask :meth:`judge`, ascending."""
        return self.options.checkpoints_ms(self.fixed_ms) if self.adaptive else [self.fixed_ms]

    def judge(self, audio: NDArray[np.int16], silence_ms: int, text: str) -> EndpointKind | None:
        """The endpoint after ``silence_ms`` of non-speech (None: keep listening).

        ``audio``: 16 kHz int16 of the utterance up to now (its last 8 s suffice);
        ``text``: the first pass's hypothesis.
        """
        p = None
        if self.adaptive and not self.overloaded and self.model is not None:
            t0 = time.process_time()
            p = self.model.probability(audio.astype(np.float32) / 32768.0)
            self.model_s += time.process_time() - t0
            self.model_calls += 1
        kind = decide(silence_ms, p, ends_open(text), self.overloaded, self.options, self.fixed_ms)
        if kind is not None:
            self.counts[kind] += 1
            self._waited.append(silence_ms)
        return kind

    def waited_ms_p50(self) -> float | None:
        """Median trailing silence (ms) of recent endpoints, None before the first."""
        return float(np.median(self._waited)) if self._waited else None
