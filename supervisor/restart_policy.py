"""OTP-shaped restart policy as a pure step function (no processes, no sockets, no clock).

The supervisor feeds :func:`step` one event at a time together with ``now`` (seconds of its own
monotonic clock: the manager passes its :class:`~streamasr.supervisor.awake.AwakeClock`, which
stands still while the supervisor itself is stopped, so the heartbeat and Ready deadlines count
only time it was awake and reading) and carries out the returned actions: spawn or signal
a process, publish a lifecycle event, log a line, exit.  Every timeout (Ready, heartbeat, SIGTERM ->
SIGKILL escalation, restart delay) lives in the state as an absolute deadline, so the caller only
has to deliver :class:`Tick` events, ideally at :func:`next_deadline`.

Rules (Erlang/OTP supervisor semantics plus trio's readiness handshake):

* Children are ordered (capture, feature, inference, refine, ...). ``one_for_one`` restarts only the
  failed child; ``rest_for_one`` stops every child *after* it in reverse order, then restarts the
  failed child and those siblings in start order.
* ``permanent`` children are always restarted, ``transient`` ones only after an abnormal exit
  (non-zero code, killed for a hang), ``temporary`` ones never (not even when a sibling's failure
  stopped them).
* A crash before the child has *ever* reported Ready (non-zero exit, any exit of a permanent child,
  or Ready not received within ``ready_timeout_s``) is a configuration error: no restart loop, stop
  everything and exit with :data:`EXIT_CONFIG` (2).  Once a child has been Ready, a later failure -
  including a restarted incarnation that misses its Ready deadline - goes through the restart rules.
* More than ``max_restarts`` restarts within ``period_s`` (sliding window, one entry per failure,
  not per restarted sibling) stops everything and exits with :data:`EXIT_GAVE_UP` (1).
* A RUNNING child without a heartbeat for ``heartbeat_timeout_s`` is hung: publish ``hung``,
  SIGKILL, and restart it when its exit arrives.
* Shutdown (requested or fatal) stops children one at a time in reverse start order: SIGTERM,
  SIGKILL after ``shutdown_timeout_s``; a child still not gone ``shutdown_timeout_s`` after
  SIGKILL is abandoned with an error log, so shutdown can never hang.  When all have exited,
  :class:`Shutdown` tells the caller to exit with its code.

Lifecycle events are :class:`Publish` actions with topics ``actor.<id>.<event>`` (``started``,
``ready``, ``exited``, ``restarted``, ``hung``, ``ready_timeout``, ``stopping``, ``killed``,
``lost``, ``gave_up``, ``format_changed``) and ``supervisor.<event>`` (``ready``, ``stopping``,
``shutdown``).

The states, events, actions and specs it steps over are plain data in
:mod:`streamasr.supervisor.restart_types`; import them from there.
"""

from __future__ import annotations

import logging
import math
import signal
from dataclasses import replace
from typing import Any

from streamasr.supervisor.restart_types import (
    EXIT_CONFIG,
    EXIT_GAVE_UP,
    EXIT_OK,
    Action,
    ChildState,
    ChildStatus,
    Event,
    Exited,
    FieldValue,
    FormatChanged,
    Heartbeat,
    HeartbeatMissed,
    Kill,
    Log,
    Phase,
    Publish,
    Ready,
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

__all__ = ["initial_state", "next_deadline", "step"]

_ALIVE = (ChildState.STARTING, ChildState.RUNNING)


def initial_state(spec: SupervisorSpec) -> SupervisorState:
    """All children STOPPED, phase IDLE; send :class:`Start` to spawn them."""
    return SupervisorState(spec=spec, children=tuple(ChildStatus(c.id) for c in spec.children))


def next_deadline(state: SupervisorState) -> float | None:
    """The earliest time (monotonic seconds) at which a :class:`Tick` could change something."""
    times: list[float] = []
    checking = state.phase is Phase.RUNNING
    for spec, c in zip(state.spec.children, state.children, strict=True):
        if c.state is ChildState.STARTING and checking and c.started_at_s is not None:
            times.append(c.started_at_s + spec.ready_timeout_s)
        elif c.state is ChildState.RUNNING and checking and c.last_heartbeat_s is not None:
            times.append(c.last_heartbeat_s + spec.heartbeat_timeout_s)
        elif c.state is ChildState.STOPPING and c.kill_deadline_s is not None:
            times.append(c.kill_deadline_s)
        elif c.state is ChildState.BACKOFF and checking and c.restart_at_s is not None:
            times.append(c.restart_at_s)
    return min(times, default=None)


def step(state: SupervisorState, event: Event, now: float) -> tuple[SupervisorState, list[Action]]:
    """Apply ``event`` at ``now`` (monotonic seconds); return the new state and ordered actions."""
    ctx = _Step(state, now)
    ctx.handle(event)
    ctx.settle()
    return ctx.freeze(), ctx.actions


# --- the step machinery ---------------------------------------------------------------------------


class _Step:
    """Mutable scratch copy of a state for the duration of one :func:`step`."""

    def __init__(self, state: SupervisorState, now: float) -> None:
        self.state = state
        self.spec = state.spec
        self.now = now
        self.children = list(state.children)
        self.phase = state.phase
        self.restarts_s = state.restarts_s
        self.reason = state.shutdown_reason
        self.exit_code = state.shutdown_exit_code
        self.all_ready_published = state.all_ready_published
        self.actions: list[Action] = []

    def freeze(self) -> SupervisorState:
        return replace(
            self.state,
            children=tuple(self.children),
            phase=self.phase,
            restarts_s=self.restarts_s,
            shutdown_reason=self.reason,
            shutdown_exit_code=self.exit_code,
            all_ready_published=self.all_ready_published,
        )

    # helpers
    def log(self, level: int, message: str) -> None:
        self.actions.append(Log(level, message))

    def publish(self, topic: str, **fields: FieldValue) -> None:
        self.actions.append(Publish(topic, fields))

    def put(self, i: int, **changes: Any) -> ChildStatus:
        self.children[i] = replace(self.children[i], **changes)
        return self.children[i]

    def index(self, child_id: str) -> int | None:
        for i, c in enumerate(self.children):
            if c.id == child_id:
                return i
        self.log(logging.WARNING, f"event for unknown actor {child_id!r} ignored")
        return None

    def ignore(self, i: int, what: str) -> None:
        c = self.children[i]
        self.log(logging.DEBUG, f"{what} from actor {c.id} in state {c.state} ignored")

    # dispatch
    def handle(self, event: Event) -> None:
        if isinstance(event, Start):
            self.on_start()
        elif isinstance(event, Tick):
            self.on_tick()
        elif isinstance(event, StopRequested):
            self.begin_shutdown(event.reason, EXIT_OK)
        else:
            i = self.index(event.id)
            if i is not None:
                self.on_child_event(i, event)

    def on_child_event(self, i: int, event: Event) -> None:
        c = self.children[i]
        pid = getattr(event, "pid", None)
        if not isinstance(event, Spawned) and pid is not None and pid != c.pid:
            self.log(logging.DEBUG, f"{type(event).__name__} from stale pid {pid} of {c.id}")
        elif isinstance(event, Spawned):
            self.on_spawned(i, event.pid)
        elif isinstance(event, Ready):
            self.on_ready(i)
        elif isinstance(event, Heartbeat):
            self.on_heartbeat(i, self.now if event.t_s is None else event.t_s)
        elif isinstance(event, HeartbeatMissed):
            if c.state is ChildState.RUNNING and self.phase is Phase.RUNNING:
                self.hang(i)
        elif isinstance(event, Exited):
            self.on_exited(i, event.returncode)
        elif isinstance(event, FormatChanged):
            self.on_format_changed(i)

    # handlers
    def on_start(self) -> None:
        if self.phase is not Phase.IDLE:
            self.log(logging.WARNING, f"Start ignored in phase {self.phase}")
            return
        self.phase = Phase.RUNNING
        for i in range(len(self.children)):
            self.spawn(i, restart=False)

    def spawn(self, i: int, *, restart: bool) -> None:
        c = self.put(
            i,
            state=ChildState.STARTING,
            pid=None,
            incarnation=self.children[i].incarnation + 1,
            started_at_s=self.now,
            last_heartbeat_s=None,
            kill_signal=None,
            kill_deadline_s=None,
            stop_queued=False,
            restart_pending=False,
            restart_at_s=None,
            failure=None,
        )
        self.actions.append(Spawn(c.id, c.incarnation))
        if restart:
            window = len(self.restarts_s)
            self.publish(f"actor.{c.id}.restarted", incarnation=c.incarnation, restarts=window)

    def on_spawned(self, i: int, pid: int) -> None:
        c = self.children[i]
        if c.state is not ChildState.STARTING or c.pid is not None:
            self.ignore(i, "Spawned")
            return
        self.put(i, pid=pid)
        self.publish(f"actor.{c.id}.started", pid=pid, incarnation=c.incarnation)

    def on_ready(self, i: int) -> None:
        c = self.children[i]
        if c.state is not ChildState.STARTING:
            self.ignore(i, "Ready")
            return
        c = self.put(i, state=ChildState.RUNNING, ever_ready=True, last_heartbeat_s=self.now)
        startup_s = self.now - _or(c.started_at_s, self.now)
        self.log(logging.INFO, f"actor {c.id} ready after {startup_s:.3f} s")
        self.publish(
            f"actor.{c.id}.ready", pid=c.pid, incarnation=c.incarnation, startup_s=startup_s
        )

    def on_heartbeat(self, i: int, t_s: float) -> None:
        c = self.children[i]
        if c.state in _ALIVE:
            self.put(i, last_heartbeat_s=max(t_s, _or(c.last_heartbeat_s, t_s)))

    def on_exited(self, i: int, returncode: int | None) -> None:
        c = self.children[i]
        if c.state not in (*_ALIVE, ChildState.STOPPING):
            self.ignore(i, "Exited")
            return
        requested = c.state is ChildState.STOPPING and c.failure is None
        abnormal = c.failure is not None or (not requested and returncode != 0)
        self.publish(
            f"actor.{c.id}.exited",
            pid=c.pid,
            incarnation=c.incarnation,
            returncode=returncode,
            abnormal=abnormal,
        )
        c = self.put(
            i, pid=None, last_returncode=returncode, kill_deadline_s=None, stop_queued=False
        )
        if self.phase is not Phase.RUNNING:
            final = ChildState.STOPPED if requested else _rest_state(c, abnormal)
            self.put(i, state=final, restart_pending=False)
        elif requested:
            # Stopped by us for a sibling's restart or a format change.
            if c.restart_pending:
                self.put(i, state=ChildState.BACKOFF, restart_at_s=self.now + self.delay)
            else:
                self.put(i, state=ChildState.STOPPED)
        else:
            cause = c.failure or f"exited with code {returncode}"
            self.on_failure(i, abnormal, cause)

    @property
    def delay(self) -> float:
        return self.spec.restart_delay_s

    def on_failure(self, i: int, abnormal: bool, cause: str) -> None:
        c, cs = self.children[i], self.spec.children[i]
        if not c.ever_ready and (abnormal or cs.restart == "permanent"):
            self.put(i, state=ChildState.FAILED)
            self.begin_shutdown(
                f"actor {c.id} {cause} before Ready: configuration error", EXIT_CONFIG
            )
            return
        if not (cs.restart == "permanent" or (cs.restart == "transient" and abnormal)):
            self.put(i, state=_rest_state(c, abnormal), restart_pending=False)
            self.log(logging.INFO, f"actor {c.id} ({cs.restart}) {cause}; not restarted")
            return
        window = self.spec.intensity
        self.restarts_s = (
            *(t for t in self.restarts_s if t >= self.now - window.period_s),
            self.now,
        )
        if len(self.restarts_s) > window.max_restarts:
            reason = (
                f"restart intensity exceeded: {len(self.restarts_s)} restarts within"
                f" {window.period_s:g} s (max {window.max_restarts}); actor {c.id} {cause}"
            )
            self.put(i, state=ChildState.FAILED, restart_pending=False)
            self.publish(f"actor.{c.id}.gave_up", reason=reason)
            self.begin_shutdown(reason, EXIT_GAVE_UP)
            return
        self.put(
            i, state=ChildState.BACKOFF, restart_pending=True, restart_at_s=self.now + self.delay
        )
        self.log(logging.WARNING, f"actor {c.id} {cause}; restarting ({self.spec.strategy})")
        if self.spec.strategy is Strategy.REST_FOR_ONE:
            for j in range(i + 1, len(self.children)):
                self.queue_restart(j)

    def queue_restart(self, j: int) -> None:
        c = self.children[j]
        if c.state in _ALIVE:
            temporary = self.spec.children[j].restart == "temporary"
            self.put(j, stop_queued=True, restart_pending=not temporary)

    def on_format_changed(self, i: int) -> None:
        c = self.children[i]
        if self.phase is not Phase.RUNNING:
            self.ignore(i, "FormatChanged")
            return
        self.publish(f"actor.{c.id}.format_changed")
        if self.spec.strategy is not Strategy.REST_FOR_ONE:
            self.log(logging.INFO, f"format of {c.id} changed; one_for_one restarts nothing")
            return
        self.log(logging.INFO, f"format of {c.id} changed; restarting its downstream actors")
        for j in range(i + 1, len(self.children)):
            self.queue_restart(j)

    def on_tick(self) -> None:
        for i, (c, cs) in enumerate(zip(self.children, self.spec.children, strict=True)):
            checking = self.phase is Phase.RUNNING
            if c.state is ChildState.STARTING and checking and c.started_at_s is not None:
                if self.now >= c.started_at_s + cs.ready_timeout_s:
                    self.ready_timeout(i)
            elif c.state is ChildState.RUNNING and checking and c.last_heartbeat_s is not None:
                if self.now >= c.last_heartbeat_s + cs.heartbeat_timeout_s:
                    self.hang(i)
            elif c.state is ChildState.STOPPING and self.now >= _or(c.kill_deadline_s, math.inf):
                self.escalate(i)

    def ready_timeout(self, i: int) -> None:
        c, cs = self.children[i], self.spec.children[i]
        cause = f"did not report Ready within {cs.ready_timeout_s:g} s"
        self.publish(f"actor.{c.id}.ready_timeout", waited_s=cs.ready_timeout_s)
        if not c.ever_ready:
            self.put(i, failure=cause)
            self.begin_shutdown(f"actor {c.id} {cause}: configuration error", EXIT_CONFIG)
        else:
            self.kill(i, signal.SIGKILL, failure=cause)

    def hang(self, i: int) -> None:
        c, cs = self.children[i], self.spec.children[i]
        silent_s = self.now - _or(c.last_heartbeat_s, self.now)
        self.log(logging.WARNING, f"actor {c.id} hung: no heartbeat for {silent_s:.3f} s")
        self.publish(f"actor.{c.id}.hung", pid=c.pid, silent_s=silent_s)
        self.kill(
            i, signal.SIGKILL, failure=f"hung (no heartbeat within {cs.heartbeat_timeout_s:g} s)"
        )

    def kill(self, i: int, sig: signal.Signals, failure: str | None = None) -> None:
        c = self.children[i]
        deadline = self.now + self.spec.children[i].shutdown_timeout_s
        self.put(
            i,
            state=ChildState.STOPPING,
            kill_signal=sig,
            kill_deadline_s=deadline,
            stop_queued=False,
            failure=failure if failure is not None else c.failure,
        )
        self.actions.append(Kill(c.id, sig))

    def escalate(self, i: int) -> None:
        c, cs = self.children[i], self.spec.children[i]
        if c.kill_signal is not signal.SIGKILL:
            self.log(
                logging.WARNING,
                f"actor {c.id} still running {cs.shutdown_timeout_s:g} s after SIGTERM; SIGKILL",
            )
            self.publish(f"actor.{c.id}.killed", pid=c.pid, signal="SIGKILL")
            self.kill(i, signal.SIGKILL)
            return
        self.log(
            logging.ERROR,
            f"actor {c.id} (pid {c.pid}) did not exit {cs.shutdown_timeout_s:g} s after SIGKILL;"
            " abandoning it",
        )
        self.publish(f"actor.{c.id}.lost", pid=c.pid)
        self.on_exited(i, None)

    def begin_shutdown(self, reason: str, exit_code: int) -> None:
        if self.phase in (Phase.SHUTTING_DOWN, Phase.DONE):
            self.log(logging.INFO, f"already shutting down ({self.reason}); ignoring: {reason}")
            return
        self.phase, self.reason, self.exit_code = Phase.SHUTTING_DOWN, reason, exit_code
        self.log(logging.ERROR if exit_code else logging.INFO, f"shutting down: {reason}")
        self.publish("supervisor.stopping", reason=reason, exit_code=exit_code)
        for i, c in enumerate(self.children):
            if c.state in _ALIVE:
                self.put(i, stop_queued=True, restart_pending=False)
            elif c.state is ChildState.BACKOFF:
                self.put(i, state=_rest_state(c, True), restart_pending=False)
            else:
                self.put(i, restart_pending=False)

    # after every event
    def settle(self) -> None:
        self.advance_stops()
        if self.phase is Phase.RUNNING:
            self.spawn_due()
            self.check_all_ready()
        if self.phase is Phase.SHUTTING_DOWN and all(
            c.state in (ChildState.STOPPED, ChildState.FAILED) for c in self.children
        ):
            self.phase = Phase.DONE
            assert self.reason is not None and self.exit_code is not None
            self.publish("supervisor.shutdown", reason=self.reason, exit_code=self.exit_code)
            self.actions.append(Shutdown(self.reason, self.exit_code))

    def advance_stops(self) -> None:
        """SIGTERM queued children one at a time, last-started first."""
        for i in reversed(range(len(self.children))):
            c = self.children[i]
            if c.state is ChildState.STOPPING:
                return  # wait for the later child to be gone
            if c.stop_queued and c.state in _ALIVE:
                self.publish(f"actor.{c.id}.stopping", pid=c.pid, signal="SIGTERM")
                self.kill(i, signal.SIGTERM)
                return

    def spawn_due(self) -> None:
        due = [
            i
            for i, c in enumerate(self.children)
            if c.state is ChildState.BACKOFF and _or(c.restart_at_s, 0.0) <= self.now
        ]
        if self.spec.strategy is Strategy.REST_FOR_ONE:
            busy = any(
                c.stop_queued or c.state in (ChildState.STOPPING, ChildState.BACKOFF)
                for i, c in enumerate(self.children)
                if i not in due
            )
            if busy:
                return
        for i in due:
            self.spawn(i, restart=True)

    def check_all_ready(self) -> None:
        if self.all_ready_published:
            return
        done = (ChildState.RUNNING, ChildState.STOPPED)  # STOPPED: a transient child that finished
        if all(c.state in done and c.incarnation > 0 for c in self.children):
            self.all_ready_published = True
            self.publish("supervisor.ready", actors=len(self.children))


def _rest_state(c: ChildStatus, abnormal: bool) -> ChildState:
    """FAILED after an abnormal exit, else STOPPED."""
    return ChildState.FAILED if abnormal or c.failure is not None else ChildState.STOPPED


def _or(value: float | None, default: float) -> float:
    """``value`` unless it is ``None`` (``0.0`` is a valid time, so no ``or``)."""
    return default if value is None else value
