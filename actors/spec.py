"""What the supervisor tells an actor process when it spawns it.

The supervisor writes an :class:`ActorSpec` as JSON into the runtime directory and starts
``python -m streamasr.actors <spec.json>``. Sockets are created inside the actor after
spawn, never inherited.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from streamasr.actors.typed import from_table

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RingRef:
    """A ring an actor uses: segment name, and the reader slot it claims (None = writer)."""

    name: str
    reader: int | None = None


@dataclass(frozen=True, slots=True)
class ActorSpec:
    """Everything an actor process needs to start.

    Attributes:
        actor_id: unique id, also the ZeroMQ identity on the control socket.
        kind: ``capture``, ``feature``, ``inference`` or ``refine``.
        supervisor_pid: the actor exits by itself when this process is gone.
        control: endpoint of the supervisor's ROUTER socket.
        rings: role name -> ring (``in``, ``out``, ...).
        bells: role name -> doorbell endpoint (``in``: the one this actor binds and waits on;
            ``out``: the next stage's, which it connects to and rings).
        stream_id: the stream this actor serves.
        heartbeat_interval_s: seconds between heartbeats.
        options: the actor's config sections (``source``, ``audio``, ...) as the plain maps of
            their settings dataclasses, plus a few plan facts; read a section back with
            :meth:`section`.
        log_level: Python logging level name.
    """

    actor_id: str
    kind: str
    supervisor_pid: int
    control: str
    rings: dict[str, RingRef]
    bells: dict[str, str]
    stream_id: str
    heartbeat_interval_s: float
    options: dict[str, Any] = field(default_factory=dict)
    log_level: str = "WARNING"

    def section(self, name: str, cls: type[T]) -> T:
        """The config section ``name`` as its settings dataclass ``cls``.

        The same typed check the config loader ran (unknown keys, wrong types raise
        :class:`~streamasr.actors.errors.ConfigError` naming ``name.<key>``); absent keys keep
        the dataclass's defaults.
        """
        return from_table(cls, self.options.get(name, {}), name)

    def to_json(self) -> str:
        """Serialise to JSON."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ActorSpec:
        """Parse :meth:`to_json` output."""
        raw = json.loads(text)
        raw["rings"] = {k: RingRef(**v) for k, v in raw["rings"].items()}
        return cls(**raw)

    def write(self, path: Path) -> None:
        """Write the spec file (mode 0600)."""
        path.write_text(self.to_json())
        path.chmod(0o600)
