"""Specs, events, actions and state for :mod:`streamasr.supervisor.restart_policy`.

Plain immutable data: the supervisor's configuration (:class:`SupervisorSpec` of
:class:`ChildSpec`), the events it feeds to :func:`~streamasr.supervisor.restart_policy.step`,
the actions it gets back, and the immutable :class:`SupervisorState`. All durations and times
are in seconds (supervisor monotonic clock). Re-exported by
:mod:`streamasr.supervisor.restart_policy`, where the rules are documented.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from streamasr.actors.errors import ConfigError

__all__ = [
    "EXIT_CONFIG",
    "EXIT_GAVE_UP",
    "EXIT_OK",
    "Action",
    "ChildSpec",
    "ChildState",
    "ChildStatus",
    "Event",
    "Exited",
    "FieldValue",
    "FormatChanged",
    "Heartbeat",
    "HeartbeatMissed",
    "Intensity",
    "Kill",
    "Log",
    "Phase",
    "Publish",
    "Ready",
    "RestartType",
    "Shutdown",
    "Spawn",
    "Spawned",
    "Start",
    "StopRequested",
    "Strategy",
    "SupervisorSpec",
    "SupervisorState",
    "Tick",
]

EXIT_OK = 0
"""Exit code after a requested stop."""
EXIT_GAVE_UP = 1
"""Exit code after restart intensity was exceeded."""
EXIT_CONFIG = 2
"""Exit code after a child failed before it was ever Ready (configuration error)."""

RestartType: TypeAlias = Literal["permanent", "transient", "temporary"]
FieldValue: TypeAlias = str | int | float | bool | None


class Strategy(enum.StrEnum):
    """Which children restart when one fails."""

    ONE_FOR_ONE = "one_for_one"
    REST_FOR_ONE = "rest_for_one"


class ChildState(enum.StrEnum):
    """Lifecycle state of one child process.

    STOPPED: not running - never started, exited normally, stopped on request, or abandoned.
    STARTING: Spawn issued; waiting for Ready (deadline ``started_at_s + ready_timeout_s``).
    RUNNING: Ready received; must heartbeat every ``heartbeat_timeout_s``.
    STOPPING: a signal was sent; waiting for its exit (deadline ``kill_deadline_s``).
    BACKOFF: exited and scheduled to restart at ``restart_at_s`` once its restart group has stopped.
    FAILED: exited abnormally and will not be restarted.
    """

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    BACKOFF = "backoff"
    FAILED = "failed"


class Phase(enum.StrEnum):
    """Supervisor phase: IDLE (before Start), RUNNING, SHUTTING_DOWN, DONE (Shutdown emitted)."""

    IDLE = "idle"
    RUNNING = "running"
    SHUTTING_DOWN = "shutting_down"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to supervise one actor; all durations in seconds."""

    id: str
    restart: RestartType
    shutdown_timeout_s: float
    heartbeat_timeout_s: float
    ready_timeout_s: float

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigError("child.id: must not be empty")
        if self.restart not in ("permanent", "transient", "temporary"):
            raise ConfigError(
                f"child {self.id}: restart must be permanent, transient or temporary,"
                f" got {self.restart!r}"
            )
        for name in ("shutdown_timeout_s", "heartbeat_timeout_s", "ready_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"child {self.id}: {name} must be > 0")


@dataclass(frozen=True, slots=True)
class Intensity:
    """At most ``max_restarts`` restarts within any ``period_s`` seconds."""

    max_restarts: int
    period_s: float

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ConfigError("intensity.max_restarts: must be >= 0")
        if not self.period_s > 0:
            raise ConfigError("intensity.period_s: must be > 0")


@dataclass(frozen=True, slots=True)
class SupervisorSpec:
    """Children in start order, strategy, intensity and the delay before a restart (seconds)."""

    children: tuple[ChildSpec, ...]
    strategy: Strategy = Strategy.REST_FOR_ONE
    intensity: Intensity = field(default_factory=lambda: Intensity(3, 60.0))
    restart_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.children:
            raise ConfigError("supervisor.children: must not be empty")
        ids = [c.id for c in self.children]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ConfigError(f"supervisor.children: duplicate id {', '.join(dupes)}")
        if self.restart_delay_s < 0:
            raise ConfigError("supervisor.restart_delay_s: must be >= 0")


# --- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Spawn every child in start order (first event after :func:`initial_state`)."""


@dataclass(frozen=True, slots=True)
class Spawned:
    """The caller started the process for ``Spawn(id)``; ``pid`` is its OS process id."""

    id: str
    pid: int


@dataclass(frozen=True, slots=True)
class Ready:
    """The child attached its rings and warmed its model; a stale ``pid`` is ignored."""

    id: str
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A heartbeat received at ``t_s`` (supervisor monotonic seconds; ``None`` = ``now``)."""

    id: str
    t_s: float | None = None
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class HeartbeatMissed:
    """The caller's own clock says ``id`` is hung (alternative to Tick-based detection)."""

    id: str


@dataclass(frozen=True, slots=True)
class Exited:
    """The process was reaped; ``returncode`` as ``Popen.returncode`` (negative = signal)."""

    id: str
    returncode: int
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Check Ready, heartbeat, escalation and restart deadlines against ``now``."""


@dataclass(frozen=True, slots=True)
class StopRequested:
    """Stop all children in reverse order, then ``Shutdown(reason, 0)``."""

    reason: str = "stop requested"


@dataclass(frozen=True, slots=True)
class FormatChanged:
    """``id`` now produces another format; under rest_for_one its downstream children restart."""

    id: str


Event: TypeAlias = (
    Start
    | Spawned
    | Ready
    | Heartbeat
    | HeartbeatMissed
    | Exited
    | Tick
    | StopRequested
    | FormatChanged
)

# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spawn:
    """Start a new process for child ``id``; answer with :class:`Spawned`."""

    id: str
    incarnation: int


@dataclass(frozen=True, slots=True)
class Kill:
    """Send ``signal`` to the current process of child ``id``; answer with :class:`Exited`."""

    id: str
    signal: signal.Signals


@dataclass(frozen=True, slots=True)
class Shutdown:
    """All children have exited: the supervisor should exit with ``exit_code``."""

    reason: str
    exit_code: int


@dataclass(frozen=True, slots=True)
class Log:
    """A log line at a :mod:`logging` level."""

    level: int
    message: str


@dataclass(frozen=True, slots=True)
class Publish:
    """A lifecycle event for the PUB socket (``actor.<id>.<event>`` or ``supervisor.<event>``)."""

    topic: str
    fields: Mapping[str, FieldValue] = field(default_factory=dict)


Action: TypeAlias = Spawn | Kill | Shutdown | Log | Publish

# --- state --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildStatus:
    """Supervision state of one child; all times in supervisor monotonic seconds."""

    id: str
    state: ChildState = ChildState.STOPPED
    pid: int | None = None
    incarnation: int = 0
    ever_ready: bool = False
    started_at_s: float | None = None
    last_heartbeat_s: float | None = None
    kill_signal: signal.Signals | None = None
    kill_deadline_s: float | None = None
    stop_queued: bool = False
    restart_pending: bool = False
    restart_at_s: float | None = None
    failure: str | None = None
    last_returncode: int | None = None


@dataclass(frozen=True, slots=True)
class SupervisorState:
    """Immutable supervisor state; ``children`` follow ``spec.children`` (start order)."""

    spec: SupervisorSpec
    children: tuple[ChildStatus, ...]
    phase: Phase = Phase.IDLE
    restarts_s: tuple[float, ...] = ()
    shutdown_reason: str | None = None
    shutdown_exit_code: int | None = None
    all_ready_published: bool = False

    def child(self, child_id: str) -> ChildStatus:
        """The status of ``child_id``; raises ``KeyError`` if unknown."""
        for c in self.children:
            if c.id == child_id:
                return c
        raise KeyError(child_id)
