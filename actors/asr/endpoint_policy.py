"""When an utterance ends: the endpoint policy (a pure function, tested by table).

After the speech of an utterance stops, the first pass asks :func:`decide` at fixed
checkpoints of trailing non-speech (``EndpointOptions.checkpoints_ms``: the same frames
whatever the chunk size, so results never depend on how audio was grouped). Its inputs are
what is known at that moment:

* ``turn_probability``: a turn model's probability, in [0, 1], that the speaker has finished
  (Smart Turn v3, see :mod:`.turn_model`), from the audio up to the checkpoint; None when
  no model is loaded or it was not run (overload);
* ``open_word``: the first pass's last word cannot end a sentence ("the", "and", "for" ...,
  see :func:`ends_open`);
* ``overloaded``: the machine is behind (then the fixed rule applies: the model costs CPU).

The answer is None (keep listening) or the kind of endpoint: ``early`` (a complete turn,
before the fixed silence), ``normal`` (the fixed silence), ``extended`` (an unfinished turn
waited longer, up to ``max_silence_ms``). Without a model, or with ``policy = "fixed"``, it is
the fixed rule: ``silence_ms`` of non-speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streamasr.actors.errors import ConfigError

__all__ = [
    "OPEN_WORDS",
    "EndpointKind",
    "EndpointOptions",
    "decide",
    "ends_open",
]

EndpointKind = Literal["early", "normal", "extended"]

#: Words a sentence does not end on: articles, conjunctions, prepositions, possessives and
#: auxiliaries ("set a timer for", pause, "ten minutes"). Lower case, as the first pass writes.
# fmt: off
OPEN_WORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "nor", "so", "because", "if", "than", "that",
    "to", "for", "of", "in", "on", "at", "by", "with", "from", "into", "onto", "about",
    "after", "before", "until", "my", "your", "his", "her", "its", "our", "their", "this",
    "these", "those", "is", "are", "was", "were", "be", "been", "am", "will", "would",
    "can", "could", "should", "shall", "must", "do", "does", "did", "has", "have", "had",
    "not", "please",
))
# fmt: on


@dataclass(frozen=True, slots=True)
class EndpointOptions:
    """``[endpoint]``: when an utterance ends (times in milliseconds of trailing non-speech;
    built with ``asr.registry.options_from_mapping``, which names the key of an error).

    Attributes:
        policy: ``adaptive`` (turn model and text, fixed rule as the fallback) or ``fixed``.
        min_silence_ms: the earliest endpoint: a complete turn ends here.
        silence_ms: the fixed rule's silence (no turn model, ``fixed``, overload), and where a
            turn that is not clearly unfinished ends.
        max_silence_ms: an unfinished turn ends here at the latest.
        recheck_ms: after ``min_silence_ms``, the turn is judged again every this many ms.
        complete_probability: turn probability at or above which the turn is complete.
        unfinished_probability: below this, a turn is clearly unfinished and waits past
            ``silence_ms`` (up to ``max_silence_ms``).
        model: path of a Smart Turn v3 ONNX file; "" takes the one the ``pipecat-ai``
            package ships (no download).
    """

    policy: Literal["adaptive", "fixed"] = "adaptive"
    min_silence_ms: int = 200
    silence_ms: int = 600
    max_silence_ms: int = 1500
    recheck_ms: int = 200
    complete_probability: float = 0.5
    unfinished_probability: float = 0.2
    model: str = ""

    def __post_init__(self) -> None:
        if self.policy not in ("adaptive", "fixed"):
            raise ConfigError(f"policy: must be 'adaptive' or 'fixed', got {self.policy!r}")
        if not 60 <= self.min_silence_ms <= self.silence_ms <= self.max_silence_ms <= 10_000:
            raise ConfigError(
                "silence: need 60 <= min_silence_ms <= silence_ms <= max_silence_ms <= 10000, "
                f"got {self.min_silence_ms}, {self.silence_ms}, {self.max_silence_ms}"
            )
        if not 20 <= self.recheck_ms <= 5000:
            raise ConfigError(f"recheck_ms: must be in 20..5000, got {self.recheck_ms}")
        if not 0.0 <= self.unfinished_probability <= self.complete_probability <= 1.0:
            raise ConfigError(
                "probability: need 0 <= unfinished_probability <= complete_probability <= 1, "
                f"got {self.unfinished_probability}, {self.complete_probability}"
            )

    def checkpoints_ms(self) -> list[int]:
        """Trailing-silence lengths (ms) at which :func:`decide` is asked, ascending."""
        if self.policy == "fixed":
            return [self.silence_ms]
        out = list(range(self.min_silence_ms, self.max_silence_ms, self.recheck_ms))
        return sorted({*out, self.silence_ms, self.max_silence_ms})


def ends_open(text: str) -> bool:
    """Whether ``text``'s last word cannot end a sentence (see :data:`OPEN_WORDS`)."""
    words = text.lower().split()
    return bool(words) and words[-1].strip(".,!?;:") in OPEN_WORDS


def decide(
    silence_ms: int,
    turn_probability: float | None,
    open_word: bool,
    overloaded: bool,
    opts: EndpointOptions,
) -> EndpointKind | None:
    """The endpoint after ``silence_ms`` of trailing non-speech, or None to keep listening.

    See the module docstring for the inputs; a checkpoint the caller skipped is fine (the
    rule only compares with thresholds), so ``decide`` can be asked at any silence.
    """
    fixed = opts.policy == "fixed" or turn_probability is None or overloaded
    if fixed:
        return "normal" if silence_ms >= opts.silence_ms else None
    assert turn_probability is not None
    if silence_ms >= opts.max_silence_ms:
        return "extended" if silence_ms > opts.silence_ms else "normal"
    if silence_ms < opts.min_silence_ms:
        return None
    if turn_probability >= opts.complete_probability and not open_word:
        return "early" if silence_ms < opts.silence_ms else "normal"
    unfinished = open_word or turn_probability < opts.unfinished_probability
    if silence_ms >= opts.silence_ms and not unfinished:
        return "normal"
    return None
