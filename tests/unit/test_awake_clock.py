"""The supervisor's awake clock: which gaps count as awake time, and what the restart policy
concludes from it when the supervisor itself was stopped (fake clocks, plain floats)."""

from __future__ import annotations

import pytest

from streamasr.supervisor.awake import POLL_S, AwakeClock, awake_advance_s
from streamasr.supervisor.restart_policy import initial_state, step
from streamasr.supervisor.restart_types import (
    ChildSpec,
    Heartbeat,
    Publish,
    Ready,
    Spawned,
    Start,
    SupervisorSpec,
    SupervisorState,
    Tick,
)

STALL_AFTER_S = 0.5  # the heartbeat interval
HEARTBEAT_TIMEOUT_S = 2.0


@pytest.mark.parametrize(
    ("gap_s", "stall_after_s", "credit_s", "expected_s"),
    [
        (0.0, 0.5, 0.05, 0.0),  # the clock did not move
        (-0.2, 0.5, 0.05, 0.0),  # a source that went backwards never moves the clock back
        (0.03, 0.5, 0.05, 0.03),  # a poll wait
        (0.3, 0.5, 0.05, 0.3),  # a slow iteration: still awake
        (0.5, 0.5, 0.05, 0.5),  # exactly the threshold: awake
        (0.51, 0.5, 0.05, 0.05),  # just past it: a stall, credited one iteration
        (10.0, 0.5, 0.05, 0.05),  # SIGSTOP for 10 s
        (3600.0, 0.5, 0.05, 0.05),  # a suspended VM
        (10.0, 0.5, 0.0, 0.0),  # credit 0: a stall never ages anyone
        (0.6, 1.0, 0.05, 0.6),  # a larger threshold
    ],
)
def test_awake_advance_by_gap(
    gap_s: float, stall_after_s: float, credit_s: float, expected_s: float
) -> None:
    assert awake_advance_s(gap_s, stall_after_s, credit_s) == pytest.approx(expected_s)


class FakeSource:
    """A settable real monotonic clock (seconds)."""

    def __init__(self, t_s: float = 100.0) -> None:
        self.t_s = t_s

    def __call__(self) -> float:
        return self.t_s


def test_clock_equals_its_source_until_a_stall_and_lags_it_by_the_stall_after() -> None:
    src = FakeSource()
    clock = AwakeClock(STALL_AFTER_S, POLL_S, src)
    src.t_s += 0.04
    assert clock.now() == pytest.approx(100.04)
    src.t_s += 10.0  # stopped
    assert clock.now() == pytest.approx(100.04 + POLL_S)
    assert clock.take_stalls() == [pytest.approx(10.0)]
    assert clock.take_stalls() == []  # taken once
    src.t_s += 0.04
    assert clock.now() == pytest.approx(100.08 + POLL_S)


def test_clock_never_goes_back() -> None:
    src = FakeSource()
    clock = AwakeClock(STALL_AFTER_S, POLL_S, src)
    src.t_s += 0.2
    first = clock.now()
    src.t_s -= 0.1
    assert clock.now() == first
    src.t_s += 0.2  # 0.1 past the highest reading
    assert clock.now() == pytest.approx(first + 0.1)


@pytest.mark.parametrize(
    ("stall_after_s", "credit_s"), [(0.0, 0.0), (-1.0, 0.0), (0.5, -0.1), (0.5, 0.6)]
)
def test_bad_clock_settings_are_rejected(stall_after_s: float, credit_s: float) -> None:
    with pytest.raises(ValueError, match=r"need stall_after_s > 0 and 0 <= stall_credit_s"):
        AwakeClock(stall_after_s, credit_s, FakeSource())


# --- what the policy concludes on the awake clock --------------------------------------------


def running_child(clock: AwakeClock) -> SupervisorState:
    """One child 'a', Ready (so its heartbeat deadline runs) at the clock's time now."""
    spec = SupervisorSpec((ChildSpec("a", "permanent", 1.0, HEARTBEAT_TIMEOUT_S, 10.0),))
    state = initial_state(spec)
    for event in (Start(), Spawned("a", 7), Ready("a", 7)):
        state, _ = step(state, event, clock.now())
    return state


def hung(state: SupervisorState, now_s: float) -> tuple[SupervisorState, bool]:
    """Tick at ``now_s``; whether the policy declared 'a' hung."""
    state, actions = step(state, Tick(), now_s)
    return state, any(isinstance(a, Publish) and a.topic == "actor.a.hung" for a in actions)


def walk(
    state: SupervisorState, clock: AwakeClock, src: FakeSource, seconds: float
) -> tuple[SupervisorState, bool]:
    """Run the loop for ``seconds`` awake: a Tick every poll wait; stop at a conviction."""
    end_s = src.t_s + seconds
    while src.t_s < end_s:
        src.t_s = min(end_s, src.t_s + POLL_S)
        state, was_hung = hung(state, clock.now())
        if was_hung:
            return state, True
    return state, False


@pytest.mark.parametrize(
    ("before_s", "stall_s", "after_s", "beat_after_stall", "convicted"),
    [
        # (awake s before the stall, stall s, awake s after it, a queued beat read, hung?)
        (0.4, 10.0, 0.05, False, False),  # resumed: the queued beat is not read yet
        (0.4, 10.0, 0.05, True, False),  # resumed and read the queued beat
        (0.4, 10.0, 1.5, False, False),  # 0.4 + 0.05 + 1.5 < 2 s awake: not yet
        (0.4, 10.0, 1.6, False, True),  # 2.05 s awake without a beat: really hung
        (0.4, 10.0, 1.6, True, False),  # ... unless a beat was read after the stall
        (1.9, 10.0, 0.01, False, False),  # a stall just before the deadline
        (1.0, 0.4, 0.7, False, True),  # a short pause is no stall: 2.1 s of silence
        (0.0, 3600.0, 0.1, False, False),  # a suspended VM
    ],
)
def test_policy_on_awake_clock_convicts_only_silence_while_awake(
    before_s: float, stall_s: float, after_s: float, beat_after_stall: bool, convicted: bool
) -> None:
    src = FakeSource()
    clock = AwakeClock(STALL_AFTER_S, POLL_S, src)
    state = running_child(clock)
    state, was_hung = walk(state, clock, src, before_s)
    assert not was_hung
    src.t_s += stall_s  # the supervisor is stopped; the child heartbeats into its queue
    if beat_after_stall:
        state, _ = step(state, Heartbeat("a", pid=7), clock.now())
    state, was_hung = walk(state, clock, src, after_s)
    assert was_hung is convicted, state.child("a")


def test_a_supervisor_that_stalls_every_iteration_still_convicts_a_silent_child() -> None:
    src = FakeSource()
    clock = AwakeClock(STALL_AFTER_S, POLL_S, src)
    state = running_child(clock)
    iterations = 0
    was_hung = False
    while not was_hung and iterations < 100:
        iterations += 1
        src.t_s += 1.0  # every iteration a 1 s stall: each counts POLL_S awake
        state, was_hung = hung(state, clock.now())
    assert was_hung and iterations * POLL_S >= HEARTBEAT_TIMEOUT_S, iterations
