"""When an utterance ends: the endpoint policy (a pure function, tested by table).

After the speech of an utterance stops, the first pass asks :func:`decide` at fixed
checkpoints of trailing non-speech (``EndpointOptions.checkpoints_ms``: the same frames
whatever the chunk size, so results never depend on how audio was grouped). Its inputs are
what is known at that moment:

* ``turn_probability``: a turn model's probability, in [0, 1], that the speaker has finished
  (Smart Turn v3, see :mod:`.turn_model`), from the audio up to the checkpoint; None when
  no model is loaded or it was not run (overload);
* ``open_word``: the first pass's last word cannot end a sentence ("the", "and", "for" ...,
  see :func:`ends_open`): no early endpoint. Only the turn model extends a wait past the
  fixed silence: the first pass mishears ("room four" as "root for"), and a wait on its
  word merged that sentence with the next one, 0.97 s later;
* ``overloaded``: the machine is behind (then the fixed rule applies: the model costs CPU).

The answer is None (keep listening) or the kind of endpoint: ``early`` (a complete turn,
before the fixed silence), ``normal`` (the fixed silence), ``extended`` (an unfinished turn
waited longer, up to ``max_silence_ms``). Without a model, or with ``policy = "fixed"``, it is
the fixed rule: ``fixed_ms`` of non-speech, the recogniser's own ``endpoint_silence_ms`` (one
definition of that silence, in ``[inference.pocketsphinx]``).
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

#: Words a sentence does not end on: articles, conjunctions, prepositions and possessives
#: ("set a timer for", pause, "ten minutes"). Lower case, as the first pass writes. Not
#: auxiliaries: sentences end on them ("here you are") and the first pass writes them for
#: misheard words ("open the garage door" as "built in the garage are", whose wait merged the
#: command with the next sentence 0.8 s later).
# fmt: off
OPEN_WORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "nor", "because", "if", "than",
    "to", "for", "of", "at", "by", "with", "from", "into", "onto", "about",
    "my", "your", "his", "her", "its", "our", "their",
))
# fmt: on


@dataclass(frozen=True, slots=True)
class EndpointOptions:
    """``[endpoint]``: when an utterance ends (times in milliseconds of trailing non-speech).

    Attributes:
        policy: ``adaptive`` (turn model and text, fixed rule as the fallback) or ``fixed``
            (the default: on the benchmark box the adaptive policy gave first-pass finals
            0.19 s sooner, p50, but accurate finals 0.12 s later, and cut 6 of the paused
            set's 36 sentences where the fixed rule cut 4; see benchmarks/bench_endpoint.py).
        min_silence_ms: the earliest endpoint: a complete turn ends here (at most the fixed
            silence). 300 ms: at 200 ms the paused-sentence set (benchmarks/endpoint_sets)
            had 7 sentences cut where the fixed 600 ms rule cut 4; at 300 ms, 5.
        max_silence_ms: an unfinished turn ends here at the latest (at least the fixed
            silence).
        recheck_ms: after ``min_silence_ms``, the turn is judged again every this many ms.
        complete_probability: turn probability at or above which the turn is complete.
        unfinished_probability: below this turn probability a turn is clearly unfinished
            and waits past the fixed silence (up to ``max_silence_ms``).
        model: path of a Smart Turn v3 ONNX file; "" takes the one the ``pipecat-ai``
            package ships (no download).
    """

    policy: Literal["adaptive", "fixed"] = "fixed"
    min_silence_ms: int = 300
    max_silence_ms: int = 1500
    recheck_ms: int = 150
    complete_probability: float = 0.5
    unfinished_probability: float = 0.2
    model: str = ""

    def validate(self) -> None:
        """Range checks (ConfigError naming the ``endpoint.*`` key)."""
        if self.policy not in ("adaptive", "fixed"):
            raise ConfigError(
                f"endpoint.policy: must be 'adaptive' or 'fixed', got {self.policy!r}"
            )
        if not 60 <= self.min_silence_ms <= self.max_silence_ms <= 10_000:
            raise ConfigError(
                "endpoint.min_silence_ms: need 60 <= min_silence_ms <= max_silence_ms <= 10000, "
                f"got {self.min_silence_ms}, {self.max_silence_ms}"
            )
        if not 20 <= self.recheck_ms <= 5000:
            raise ConfigError(f"endpoint.recheck_ms: must be in 20..5000, got {self.recheck_ms}")
        if not 0.0 <= self.unfinished_probability <= self.complete_probability <= 1.0:
            raise ConfigError(
                "endpoint.complete_probability: need 0 <= unfinished_probability <= "
                f"complete_probability <= 1, got {self.unfinished_probability}, "
                f"{self.complete_probability}"
            )

    def checkpoints_ms(self, fixed_ms: int) -> list[int]:
        """Trailing-silence lengths (ms) at which :func:`decide` is asked, ascending
        (``fixed_ms``: the fixed rule's silence)."""
        if self.policy == "fixed":
            return [fixed_ms]
        lo, hi = min(self.min_silence_ms, fixed_ms), max(self.max_silence_ms, fixed_ms)
        return sorted({*range(lo, hi, self.recheck_ms), fixed_ms, hi})


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
    fixed_ms: int,
) -> EndpointKind | None:
    """The endpoint after ``silence_ms`` of trailing non-speech, or None to keep listening.

    See the module docstring for the inputs; a checkpoint the caller skipped is fine (the
    rule only compares with thresholds), so ``decide`` can be asked at any silence.
    """
    if opts.policy == "fixed" or turn_probability is None or overloaded:
        return "normal" if silence_ms >= fixed_ms else None
    if silence_ms >= max(opts.max_silence_ms, fixed_ms):
        return "extended" if silence_ms > fixed_ms else "normal"
    if silence_ms < min(opts.min_silence_ms, fixed_ms):
        return None
    if turn_probability >= opts.complete_probability and not open_word:
        return "early" if silence_ms < fixed_ms else "normal"
    if silence_ms >= fixed_ms and turn_probability >= opts.unfinished_probability:
        return "normal"
    return None
