"""State-by-state tests of the pure restart policy, with a fake clock (plain floats)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from streamasr.actors.errors import ConfigError
from streamasr.supervisor.restart_policy import initial_state, next_deadline, step
from streamasr.supervisor.restart_types import (
    EXIT_CONFIG,
    EXIT_GAVE_UP,
    EXIT_OK,
    Action,
    ChildSpec,
    ChildState,
    Event,
    Exited,
    FormatChanged,
    Heartbeat,
    HeartbeatMissed,
    Intensity,
    Kill,
    Log,
    Phase,
    Publish,
    Ready,
    RestartType,
    Shutdown,
    Spawn,
    Spawned,
    Start,
    StopRequested,
    Strategy,
    SupervisorSpec,
    SupervisorState,
    Tick,
)

BAD_RESTART: Any = "sometimes"
DEFAULT_INTENSITY = Intensity(3, 60.0)
IDS = ("capture", "feature", "inference", "refine")
TERM, KILL = signal.SIGTERM, signal.SIGKILL


def make_spec(
    strategy: Strategy = Strategy.REST_FOR_ONE,
    intensity: Intensity = DEFAULT_INTENSITY,
    restart_delay_s: float = 0.0,
    **restart: RestartType,
) -> SupervisorSpec:
    """Four children; shutdown 2 s, heartbeat 5 s, ready 10 s; restart types by keyword."""
    children = tuple(ChildSpec(i, restart.get(i, "permanent"), 2.0, 5.0, 10.0) for i in IDS)
    return SupervisorSpec(children, strategy, intensity, restart_delay_s)


@dataclass
class Sim:
    """Feeds events through :func:`step`, keeping the state and a fake clock."""

    state: SupervisorState
    now: float = 0.0
    next_pid: int = 100
    pids: dict[str, int] = field(default_factory=dict)

    def feed(self, event: Event, at: float | None = None) -> list[Action]:
        if at is not None:
            self.now = at
        result: tuple[SupervisorState, list[Action]] = step(self.state, event, self.now)
        self.state = result[0]
        return result[1]

    def spawned(self, child_id: str) -> list[Action]:
        self.next_pid += 1
        self.pids[child_id] = self.next_pid
        return self.feed(Spawned(child_id, self.next_pid))

    def start_all(self, ready: bool = True) -> list[Action]:
        out = self.feed(Start())
        for i in IDS:
            out += self.spawned(i)
            if ready:
                out += self.feed(Ready(i))
        return out

    def exit(self, child_id: str, code: int) -> list[Action]:
        return self.feed(Exited(child_id, code, self.pids[child_id]))

    def state_of(self, child_id: str) -> ChildState:
        return self.state.child(child_id).state


def running(spec: SupervisorSpec | None = None) -> Sim:
    sim = Sim(initial_state(spec or make_spec()))
    sim.start_all()
    return sim


def only(actions: list[Action], kind: type) -> list[Action]:
    return [a for a in actions if isinstance(a, kind)]


def topics(actions: list[Action]) -> list[str]:
    return [a.topic for a in actions if isinstance(a, Publish)]


def effects(actions: list[Action]) -> list[Action]:
    """Spawn, Kill and Shutdown actions in order (no logs or publishes)."""
    return [a for a in actions if isinstance(a, Spawn | Kill | Shutdown)]


# --- startup --------------------------------------------------------------------------------------


def test_start_spawns_every_child_in_start_order() -> None:
    sim = Sim(initial_state(make_spec()))
    actions = sim.feed(Start())
    assert effects(actions) == [Spawn(i, 1) for i in IDS]
    assert all(sim.state_of(i) is ChildState.STARTING for i in IDS)
    assert sim.state.phase is Phase.RUNNING


def test_spawned_records_pid_and_publishes_started() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.feed(Start())
    actions = sim.spawned("feature")
    assert sim.state.child("feature").pid == sim.pids["feature"]
    assert actions == [Publish("actor.feature.started", {"pid": 101, "incarnation": 1})]


def test_ready_moves_child_to_running_with_startup_time() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.feed(Start())
    sim.spawned("capture")
    actions = sim.feed(Ready("capture"), at=1.5)
    assert sim.state_of("capture") is ChildState.RUNNING
    ready = [a for a in actions if isinstance(a, Publish) and a.topic == "actor.capture.ready"]
    assert ready[0].fields["startup_s"] == 1.5


def test_supervisor_ready_published_once_when_all_children_ready() -> None:
    sim = Sim(initial_state(make_spec()))
    actions = sim.start_all()
    assert topics(actions).count("supervisor.ready") == 1
    assert topics(actions)[-1] == "supervisor.ready"
    sim.exit("refine", 1)
    sim.spawned("refine")
    assert "supervisor.ready" not in topics(sim.feed(Ready("refine")))


def test_supervisor_ready_not_blocked_by_a_transient_child_that_finished() -> None:
    sim = Sim(initial_state(make_spec(refine="transient")))
    sim.start_all(ready=False)
    sim.exit("refine", 0)
    for i in ("capture", "feature"):
        sim.feed(Ready(i))
    assert "supervisor.ready" in topics(sim.feed(Ready("inference")))


def test_duplicate_ready_is_ignored() -> None:
    sim = running()
    actions = sim.feed(Ready("feature"))
    assert effects(actions) == [] and topics(actions) == []
    assert sim.state_of("feature") is ChildState.RUNNING


# --- crash before Ready: configuration error ------------------------------------------------------


def test_crash_before_ready_is_configuration_error_with_exit_2() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.start_all(ready=False)
    actions = sim.exit("feature", 1)
    assert sim.state.shutdown_reason == (
        "actor feature exited with code 1 before Ready: configuration error"
    )
    assert sim.state.shutdown_exit_code == EXIT_CONFIG
    assert effects(actions) == [Kill("refine", TERM)]  # no restart, reverse order
    assert sim.state_of("feature") is ChildState.FAILED


def test_configuration_error_stops_children_one_at_a_time_in_reverse_order() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.start_all(ready=False)
    sim.exit("feature", 1)
    assert effects(sim.exit("refine", -15)) == [Kill("inference", TERM)]
    assert effects(sim.exit("inference", -15)) == [Kill("capture", TERM)]
    assert effects(sim.exit("capture", -15)) == [
        Shutdown("actor feature exited with code 1 before Ready: configuration error", 2)
    ]
    assert sim.state.phase is Phase.DONE


def test_permanent_clean_exit_before_ready_is_configuration_error() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.start_all(ready=False)
    sim.exit("capture", 0)
    assert sim.state.shutdown_reason == (
        "actor capture exited with code 0 before Ready: configuration error"
    )


def test_transient_clean_exit_before_ready_is_not_an_error() -> None:
    sim = Sim(initial_state(make_spec(refine="transient")))
    sim.start_all(ready=False)
    actions = sim.exit("refine", 0)
    assert effects(actions) == []
    assert sim.state_of("refine") is ChildState.STOPPED
    assert sim.state.phase is Phase.RUNNING


def test_ready_timeout_before_first_ready_is_configuration_error() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.start_all(ready=False)
    for i in ("capture", "feature", "refine"):
        sim.feed(Ready(i), at=1.0)
        sim.feed(Heartbeat(i), at=9.0)
    actions = sim.feed(Tick(), at=10.0)
    assert sim.state.shutdown_reason == (
        "actor inference did not report Ready within 10 s: configuration error"
    )
    assert sim.state.shutdown_exit_code == EXIT_CONFIG
    assert "actor.inference.ready_timeout" in topics(actions)
    assert effects(actions) == [Kill("refine", TERM)]


def test_ready_deadline_not_yet_reached_changes_nothing() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.start_all(ready=False)
    before = sim.state
    assert sim.feed(Tick(), at=9.999) == []
    assert sim.state == before


# --- restarts after Ready -------------------------------------------------------------------------


def test_one_for_one_restarts_only_the_failed_child() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    actions = sim.exit("feature", 1)
    assert effects(actions) == [Spawn("feature", 2)]
    assert "actor.feature.restarted" in topics(actions)
    assert [sim.state_of(i) for i in IDS] == [
        ChildState.RUNNING,
        ChildState.STARTING,
        ChildState.RUNNING,
        ChildState.RUNNING,
    ]


def test_rest_for_one_stops_later_children_in_reverse_then_restarts_in_order() -> None:
    sim = running()
    assert effects(sim.exit("feature", 1)) == [Kill("refine", TERM)]
    assert sim.state_of("feature") is ChildState.BACKOFF
    assert effects(sim.exit("refine", -15)) == [Kill("inference", TERM)]
    actions = sim.exit("inference", -15)
    assert effects(actions) == [Spawn("feature", 2), Spawn("inference", 2), Spawn("refine", 2)]
    assert sim.state_of("capture") is ChildState.RUNNING
    assert sim.state.restarts_s == (0.0,)  # one failure, one intensity entry


def test_restarted_child_must_report_ready_again() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    sim.exit("inference", 1)
    sim.spawned("inference")
    assert sim.state_of("inference") is ChildState.STARTING
    sim.feed(Ready("inference"))
    assert sim.state_of("inference") is ChildState.RUNNING
    assert sim.state.child("inference").incarnation == 2


def test_crash_of_restarted_child_before_its_ready_is_restarted_not_config_error() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    sim.exit("inference", 1)
    sim.spawned("inference")
    actions = sim.exit("inference", 1)
    assert effects(actions) == [Spawn("inference", 3)]
    assert sim.state.phase is Phase.RUNNING


def test_transient_normal_exit_after_ready_is_not_restarted() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, refine="transient"))
    actions = sim.exit("refine", 0)
    assert effects(actions) == []
    assert sim.state_of("refine") is ChildState.STOPPED


def test_transient_abnormal_exit_after_ready_is_restarted() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, refine="transient"))
    assert effects(sim.exit("refine", 3)) == [Spawn("refine", 2)]


def test_temporary_child_is_never_restarted() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, refine="temporary"))
    actions = sim.exit("refine", 1)
    assert effects(actions) == []
    assert sim.state_of("refine") is ChildState.FAILED
    assert sim.state.restarts_s == ()


def test_rest_for_one_stops_temporary_sibling_without_restarting_it() -> None:
    sim = running(make_spec(refine="temporary"))
    sim.exit("inference", 1)
    actions = sim.exit("refine", -15)
    assert effects(actions) == [Spawn("inference", 2)]
    assert sim.state_of("refine") is ChildState.STOPPED


def test_restart_delay_defers_spawn_until_tick() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, restart_delay_s=1.0))
    assert effects(sim.exit("feature", 1)) == []
    assert next_deadline(sim.state) == 1.0
    assert effects(sim.feed(Tick(), at=0.5)) == []
    assert effects(sim.feed(Tick(), at=1.0)) == [Spawn("feature", 2)]


def test_exit_of_stale_pid_is_ignored() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    old_pid = sim.pids["feature"]
    sim.exit("feature", 1)
    sim.spawned("feature")
    actions = sim.feed(Exited("feature", -9, old_pid))
    assert effects(actions) == []
    assert sim.state_of("feature") is ChildState.STARTING


def test_event_for_unknown_actor_is_logged_and_ignored() -> None:
    sim = running()
    before = sim.state
    actions = sim.feed(Exited("nope", 1))
    assert actions == [Log(30, "event for unknown actor 'nope' ignored")]
    assert sim.state == before


def test_step_leaves_the_input_state_unchanged() -> None:
    sim = running()
    before = sim.state
    snapshot = [c.state for c in before.children]
    step(before, Exited("feature", 1, sim.pids["feature"]), 1.0)
    assert [c.state for c in before.children] == snapshot


# --- restart intensity ----------------------------------------------------------------------------


def test_intensity_exceeded_stops_everything_with_exit_1() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, Intensity(2, 60.0)))
    for t in (1.0, 2.0):
        sim.now = t
        sim.exit("feature", 1)
        sim.spawned("feature")
        sim.feed(Ready("feature"))
    sim.now = 3.0
    actions = sim.exit("feature", 1)
    reason = (
        "restart intensity exceeded: 3 restarts within 60 s (max 2);"
        " actor feature exited with code 1"
    )
    assert sim.state.shutdown_reason == reason
    assert sim.state.shutdown_exit_code == EXIT_GAVE_UP
    assert "actor.feature.gave_up" in topics(actions)
    assert effects(actions) == [Kill("refine", TERM)]
    assert sim.state_of("feature") is ChildState.FAILED


def test_intensity_window_slides_so_spaced_failures_never_give_up() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, Intensity(2, 60.0)))
    for t in (100.0, 170.0, 240.0, 310.0):
        sim.now = t
        assert effects(sim.exit("feature", 1)) == [
            Spawn("feature", sim.state.child("feature").incarnation)
        ]
        sim.spawned("feature")
        sim.feed(Ready("feature"))
        sim.feed(Heartbeat("capture"))
        sim.feed(Heartbeat("inference"))
        sim.feed(Heartbeat("refine"))
    assert sim.state.phase is Phase.RUNNING
    assert sim.state.restarts_s == (310.0,)


def test_intensity_zero_gives_up_on_first_failure() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, Intensity(0, 5.0)))
    sim.exit("capture", 1)
    assert sim.state.shutdown_exit_code == EXIT_GAVE_UP
    assert sim.state.shutdown_reason is not None
    assert sim.state.shutdown_reason.startswith("restart intensity exceeded: 1 restarts within 5 s")


# --- heartbeats -----------------------------------------------------------------------------------


def test_heartbeat_extends_the_hang_deadline() -> None:
    sim = running()
    sim.feed(Heartbeat("feature"), at=4.0)
    assert next_deadline(sim.state) == 5.0  # the other three still run from Ready at 0
    for i in ("capture", "inference", "refine"):
        sim.feed(Heartbeat(i), at=4.0)
    assert next_deadline(sim.state) == 9.0
    assert effects(sim.feed(Tick(), at=8.999)) == []


def test_hung_child_is_published_sigkilled_then_restarted_on_exit() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    for i in ("capture", "inference", "refine"):
        sim.feed(Heartbeat(i), at=4.0)
    actions = sim.feed(Tick(), at=5.0)
    assert effects(actions) == [Kill("feature", KILL)]
    hung = [a for a in actions if isinstance(a, Publish) and a.topic == "actor.feature.hung"]
    assert hung[0].fields["silent_s"] == 5.0
    assert sim.state_of("feature") is ChildState.STOPPING
    assert effects(sim.exit("feature", -9)) == [Spawn("feature", 2)]


def test_hung_child_under_rest_for_one_restarts_its_downstream_too() -> None:
    sim = running()
    assert effects(sim.feed(HeartbeatMissed("inference"), at=1.0)) == [Kill("inference", KILL)]
    assert effects(sim.exit("inference", -9)) == [Kill("refine", TERM)]
    actions = sim.exit("refine", -15)
    assert effects(actions) == [Spawn("inference", 2), Spawn("refine", 2)]


def test_spawn_failure_reported_as_exit_before_spawned_is_configuration_error() -> None:
    sim = Sim(initial_state(make_spec()))
    sim.feed(Start())
    sim.feed(Exited("capture", 127))
    assert sim.state.shutdown_reason == (
        "actor capture exited with code 127 before Ready: configuration error"
    )


def test_hung_transient_child_counts_as_abnormal_even_if_it_exits_zero() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE, refine="transient"))
    sim.feed(HeartbeatMissed("refine"), at=1.0)
    assert effects(sim.exit("refine", 0)) == [Spawn("refine", 2)]


def test_heartbeat_missed_event_kills_like_tick_detection() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    actions = sim.feed(HeartbeatMissed("inference"), at=1.0)
    assert effects(actions) == [Kill("inference", KILL)]
    assert "actor.inference.hung" in topics(actions)


def test_ready_timeout_of_restarted_child_kills_and_restarts_it() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    sim.exit("inference", 1)
    sim.spawned("inference")
    for i in ("capture", "feature", "refine"):
        sim.feed(Heartbeat(i), at=9.0)
    actions = sim.feed(Tick(), at=10.0)
    assert effects(actions) == [Kill("inference", KILL)]
    assert effects(sim.exit("inference", -9)) == [Spawn("inference", 3)]
    assert sim.state.restarts_s == (0.0, 10.0)


# --- stopping -------------------------------------------------------------------------------------


def test_stop_requested_stops_in_reverse_order_then_shuts_down_with_0() -> None:
    sim = running()
    assert effects(sim.feed(StopRequested(), at=1.0)) == [Kill("refine", TERM)]
    assert effects(sim.exit("refine", 0)) == [Kill("inference", TERM)]
    assert effects(sim.exit("inference", 0)) == [Kill("feature", TERM)]
    assert effects(sim.exit("feature", 0)) == [Kill("capture", TERM)]
    actions = sim.exit("capture", -15)
    assert effects(actions) == [Shutdown("stop requested", EXIT_OK)]
    assert topics(actions)[-1] == "supervisor.shutdown"
    assert all(sim.state_of(i) is ChildState.STOPPED for i in IDS)


def test_stop_escalates_to_sigkill_after_shutdown_timeout() -> None:
    sim = running()
    sim.feed(StopRequested(), at=1.0)
    assert next_deadline(sim.state) == 3.0
    assert effects(sim.feed(Tick(), at=2.999)) == []
    actions = sim.feed(Tick(), at=3.0)
    assert effects(actions) == [Kill("refine", KILL)]
    assert "actor.refine.killed" in topics(actions)
    assert effects(sim.exit("refine", -9)) == [Kill("inference", TERM)]


def test_child_surviving_sigkill_is_abandoned_so_shutdown_completes() -> None:
    spec = make_spec()
    sim = Sim(initial_state(SupervisorSpec(spec.children[:1], spec.strategy)))
    sim.feed(Start())
    sim.spawned("capture")
    sim.feed(Ready("capture"))
    sim.feed(StopRequested(), at=1.0)
    sim.feed(Tick(), at=3.0)
    actions = sim.feed(Tick(), at=5.0)
    assert "actor.capture.lost" in topics(actions)
    assert effects(actions) == [Shutdown("stop requested", EXIT_OK)]


def test_hang_checks_are_off_while_shutting_down() -> None:
    sim = running()
    sim.feed(StopRequested(), at=1.0)
    sim.exit("refine", 0)
    actions = sim.feed(Tick(), at=2.9)
    assert effects(actions) == []
    actions = sim.feed(Tick(), at=6.0)  # heartbeats of 0 s long overdue: only escalation
    assert effects(actions) == [Kill("inference", KILL)]


def test_stop_requested_before_start_shuts_down_at_once() -> None:
    sim = Sim(initial_state(make_spec()))
    assert effects(sim.feed(StopRequested("bye"))) == [Shutdown("bye", EXIT_OK)]


def test_crash_during_shutdown_is_not_restarted_and_keeps_first_reason() -> None:
    sim = running()
    sim.feed(StopRequested())
    actions = sim.exit("capture", 1)
    assert effects(actions) == []
    assert sim.state_of("capture") is ChildState.FAILED
    assert sim.state.shutdown_reason == "stop requested"
    assert sim.state.shutdown_exit_code == EXIT_OK


def test_second_stop_request_is_ignored() -> None:
    sim = running()
    sim.feed(StopRequested())
    assert effects(sim.feed(StopRequested("again"))) == []
    assert sim.state.shutdown_reason == "stop requested"


# --- format change --------------------------------------------------------------------------------


def test_format_changed_restarts_downstream_children_under_rest_for_one() -> None:
    sim = running()
    actions = sim.feed(FormatChanged("feature"), at=1.0)
    assert "actor.feature.format_changed" in topics(actions)
    assert effects(actions) == [Kill("refine", TERM)]
    assert effects(sim.exit("refine", 0)) == [Kill("inference", TERM)]
    assert effects(sim.exit("inference", 0)) == [Spawn("inference", 2), Spawn("refine", 2)]
    assert sim.state_of("feature") is ChildState.RUNNING
    assert sim.state.restarts_s == ()  # a planned restart is not a failure


def test_format_changed_under_one_for_one_restarts_nothing() -> None:
    sim = running(make_spec(Strategy.ONE_FOR_ONE))
    actions = sim.feed(FormatChanged("feature"))
    assert effects(actions) == []
    assert all(sim.state_of(i) is ChildState.RUNNING for i in IDS)


# --- misc -----------------------------------------------------------------------------------------


def test_next_deadline_is_none_when_nothing_is_pending() -> None:
    assert next_deadline(initial_state(make_spec())) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ChildSpec("x", "permanent", 0.0, 1.0, 1.0),
            r"^child x: shutdown_timeout_s must be > 0$",
        ),
        (
            lambda: ChildSpec("x", BAD_RESTART, 1.0, 1.0, 1.0),
            r"^child x: restart must be permanent, transient or temporary, got 'sometimes'$",
        ),
        (lambda: Intensity(-1, 1.0), r"^intensity.max_restarts: must be >= 0$"),
        (lambda: Intensity(1, 0.0), r"^intensity.period_s: must be > 0$"),
        (lambda: SupervisorSpec(()), r"^supervisor.children: must not be empty$"),
        (
            lambda: SupervisorSpec((make_spec().children[0],) * 2),
            r"^supervisor.children: duplicate id capture$",
        ),
    ],
)
def test_invalid_specs_are_rejected(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()
