"""The refine actor's load decisions: load shedding past the budget, and which finals get the
extra wide view. Real messages and a real Speculator; the actor's runtime is
reduced to what these functions touch (its counters and what it sends)."""

from __future__ import annotations

import time
from collections import deque
from types import SimpleNamespace
from typing import Any, cast

from streamasr.actors import messages as m
from streamasr.actors.refine.actor import _shed, _thorough
from streamasr.actors.refine.refiner import RefineOutput
from streamasr.actors.refine.speculation import Speculator

OUT = RefineOutput("Set a timer for 10 minutes.", (), 0.01, -0.3, 1.2, 6.0, 0.1)
BUDGET_S = 5.0


class _Rt:
    """The runtime's counters and outbox."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = {"fallbacks": 0, "refined": 0, "no_speech": 0}
        self.sent: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sent.append(msg)


def _job(uid: str, start: int, end: int, waited_s: float) -> m.RefineJob:
    first = m.Transcript("s0", uid, 0, True, 1, "should the time", 0.0, 1.0, [], 0.0, {}, True)
    t_endpoint_ns = time.time_ns() - int(waited_s * 1e9)
    return m.RefineJob("s0", uid, start, end, 16000, t_endpoint_ns, first)


def _act(budget_s: float | None = BUDGET_S) -> Any:
    return SimpleNamespace(rt=_Rt(), early=Speculator(), streams={}, budget_s=budget_s)


def test_a_job_past_its_budget_is_answered_from_its_early_transcription() -> None:
    act = _act()
    early = _job("s0:100", 100, 900, waited_s=2 * BUDGET_S)
    plain = _job("s0:2000", 2000, 2900, waited_s=2 * BUDGET_S)
    fresh = _job("s0:4000", 4000, 4900, waited_s=0.0)
    act.early.paused(m.SpeechPaused("s0", "s0:100", 100, 900, 16000), now_s=0.0)
    msg = act.early.next_pause(now_s=0.0)
    act.early.store(msg, OUT, compute_s=0.3)
    queue = deque([early, plain, fresh])
    _shed(cast(Any, act), queue, max_queue=16, budget_s=BUDGET_S)
    # the first had its accurate final already: sent as pass 2; the second falls back
    assert [(t.utterance_id, t.passno, t.text) for t in act.rt.sent] == [
        ("s0:100", 2, OUT.text),
        ("s0:2000", 1, "should the time"),
    ]
    assert act.rt.counters["fallbacks"] == 1 and act.rt.counters["over_budget"] == 1
    assert list(queue) == [fresh]  # within its budget: waits for Whisper


def test_the_extra_wide_view_only_where_finals_have_no_deadline() -> None:
    assert _thorough(_act(budget_s=None))  # --fast files: accuracy first
    assert not _thorough(_act())  # live streams: latency first
