"""A hot standby: a warmed-up spare of an actor that takes over when the actor fails.

Restarting the inference actor cold pays for an interpreter, imports and loading and
warming the model (most of a second or more). With ``[supervisor] hot_standby = true`` the
supervisor keeps a spare inference process that has done all that and waits; when the
restart policy asks for a new inference process, the spare is *promoted* instead
(:class:`~streamasr.actors.messages.Promote`): it attaches to the rings, resumes from the
failed process's committed cursors and reports Ready. A new spare is then started in the
background. The spare is outside the restart policy: if it dies it is simply replaced.

ZeroMQ identities cannot change, so the spare keeps its own (``inference-standby-<n>``);
the supervisor maps that identity to the actor id once it is promoted.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from streamasr.actors import messages as m
from streamasr.actors.spec import ActorSpec

log = logging.getLogger(__name__)

#: Seconds to wait before replacing a spare that died.
RESPAWN_DELAY_S = 1.0

SpawnFn = Callable[[ActorSpec], "subprocess.Popen[bytes]"]


@dataclass
class Spare:
    """One spare process and what it last said."""

    identity: str
    proc: subprocess.Popen[bytes]
    ready: bool = False
    heartbeat: m.Heartbeat | None = None


class Standby:
    """Keeps one warm spare of ``actor_id`` and hands it over on request."""

    def __init__(self, actor_id: str, spec: ActorSpec, spawn: SpawnFn) -> None:
        """``spec``: the actor's spawn spec; ``spawn`` starts a process from a spec."""
        self.actor_id = actor_id
        self._spec = spec
        self._spawn = spawn
        self._serial = 0
        self.spare: Spare | None = None
        self._next_spawn = 0.0
        self.promotions = 0

    def ensure(self, now: float | None = None) -> None:
        """Start a spare if there is none (or it died)."""
        t = time.monotonic() if now is None else now
        if self.spare is not None and self.spare.proc.poll() is not None:
            log.warning(
                "standby %s exited with %s", self.spare.identity, self.spare.proc.returncode
            )
            self.spare = None
            self._next_spawn = t + RESPAWN_DELAY_S
        if self.spare is None and t >= self._next_spawn:
            self._serial += 1
            identity = f"{self.actor_id}-standby-{self._serial}"
            spec = dataclasses.replace(
                self._spec, actor_id=identity, options={**self._spec.options, "standby": True}
            )
            self.spare = Spare(identity, self._spawn(spec))
            log.info("started standby %s pid %d", identity, self.spare.proc.pid)

    def owns(self, identity: str) -> bool:
        """Whether ``identity`` is the current (not yet promoted) spare."""
        return self.spare is not None and self.spare.identity == identity

    def on_message(self, msg: object) -> None:
        """Ready / Heartbeat from the spare."""
        if self.spare is None:
            return
        if isinstance(msg, m.Ready):
            self.spare.ready = True
        elif isinstance(msg, m.Heartbeat):
            self.spare.heartbeat = msg

    def take(self) -> Spare | None:
        """The warm spare, handed over (None if it is not ready); a new one starts later."""
        spare = self.spare
        if spare is None or not spare.ready or spare.proc.poll() is not None:
            return None
        self.spare = None
        self.promotions += 1
        return spare

    def stop(self) -> None:
        """Kill the spare (supervisor shutdown)."""
        if self.spare is not None and self.spare.proc.poll() is None:
            self.spare.proc.kill()
            self.spare.proc.wait()
        self.spare = None
