"""The loop plumbing every actor shares: control socket, heartbeats, parent watch, signals.

An actor process owns one DEALER socket connected to the supervisor's ROUTER (identity =
actor id). It sends :class:`Ready` once its rings are attached and its model is warm, a
:class:`Heartbeat` every ``heartbeat_interval_s`` *from its main loop* (so a hung loop stops
heartbeating and the supervisor notices), and receives control messages. It exits by itself
when the supervisor disappears (``PR_SET_PDEATHSIG`` plus a parent-pid check), so a SIGKILLed
supervisor leaves no orphans.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
import zmq

from streamasr.actors import messages as m
from streamasr.actors.cpu_account import CpuAccount
from streamasr.actors.errors import ProtocolError
from streamasr.actors.spec import ActorSpec

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(sig: int) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies (no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        pass


class ActorRuntime:
    """Control-plane helper for one actor process.

    Attributes:
        spec: the spawn spec.
        ctx: the process's ZeroMQ context (sockets are created here, after spawn).
        counters: monotonically growing counters reported in every heartbeat.
        gauges: current values reported in every heartbeat.
        stopping: set by SIGTERM, a :class:`Stop` message or the supervisor's death.
        inbox: control messages received but not yet handed to the main loop.
    """

    def __init__(self, spec: ActorSpec) -> None:
        self.spec = spec
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.control = self.ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.LINGER, 500)
        self.control.setsockopt(zmq.IDENTITY, spec.actor_id.encode())
        self.control.setsockopt(zmq.MAXMSGSIZE, m.MAX_MESSAGE_BYTES)
        self.control.connect(spec.control)
        self.poller = zmq.Poller()
        self.poller.register(self.control, zmq.POLLIN)
        self.counters: dict[str, int] = {"protocol_errors": 0}
        self.gauges: dict[str, float] = {}
        #: CPU seconds by activity, reported as ``cpu_ms_<activity>`` counters.
        self.cpu = CpuAccount(self.counters)
        self.state = "starting"
        self.stopping = False
        self.inbox: list[Any] = []
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        self._next_heartbeat = 0.0
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
        signal.signal(signal.SIGTERM, self._on_sigterm)
        _set_parent_death_signal(signal.SIGTERM)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def send(self, msg: Any) -> None:
        """Send a schema message to the supervisor."""
        self.control.send_multipart(m.pack(msg.KIND, msg))

    def ready(self) -> None:
        """Report Ready (rings attached, model warm) and send a first heartbeat."""
        self.state = "running"
        self.send(m.Ready(actor_id=self.spec.actor_id, pid=os.getpid()))
        self.heartbeat(force=True)

    def error(self, message: str) -> None:
        """Report a failure the supervisor should print, before exiting non-zero."""
        with contextlib.suppress(zmq.ZMQError):
            self.send(m.ActorError(actor_id=self.spec.actor_id, message=message))

    @property
    def runtime_dir(self) -> Path:
        """The instance's runtime directory (where the control socket lives)."""
        return Path(self.spec.control.removeprefix("ipc://")).parent

    def heartbeat(self, *, force: bool = False) -> None:
        """Send a heartbeat if one is due (and check that the supervisor is alive)."""
        now = time.monotonic()
        if not force and now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.spec.heartbeat_interval_s
        times = self._proc.cpu_times()
        self.counters["cpu_ms"] = int(1000 * (times.user + times.system))
        if os.getppid() != self.spec.supervisor_pid:
            log.warning("%s: supervisor is gone, exiting", self.spec.actor_id)
            self.stopping = True
            return
        self.send(
            m.Heartbeat(
                actor_id=self.spec.actor_id,
                pid=os.getpid(),
                t_ns=time.time_ns(),
                rss_bytes=int(self._proc.memory_info().rss),
                cpu_percent=float(self._proc.cpu_percent(None)),
                state=self.state,
                counters=dict(self.counters),
                gauges=dict(self.gauges),
            )
        )

    def poll(self, timeout_s: float) -> tuple[list[Any], set[zmq.Socket[bytes]]]:
        """Wait up to ``timeout_s`` for control messages or other registered sockets.

        Returns every control message received since the last call that returned messages
        (including those that arrived during nested waits, kept in :attr:`inbox`; malformed
        ones are counted and dropped) and the set of other registered sockets now readable.
        """
        ready = self.wait(timeout_s)
        msgs = list(self.inbox)
        self.inbox.clear()
        return msgs, ready

    def wait(self, timeout_s: float) -> set[zmq.Socket[bytes]]:
        """Like :meth:`poll` but control messages stay in :attr:`inbox` for the main loop.

        Use this inside nested waits (pacing, backpressure) so no message is lost.
        """
        events = dict(self.poller.poll(max(0, int(timeout_s * 1000))))
        msgs = self.inbox
        if self.control in events:
            while True:
                try:
                    frames = self.control.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    _, msg = m.unpack(frames)
                except ProtocolError as exc:
                    self.counters["protocol_errors"] += 1
                    log.warning("%s: dropped control message: %s", self.spec.actor_id, exc)
                    continue
                if isinstance(msg, m.Stop):
                    self.stopping = True
                msgs.append(msg)
        ready = {s for s in events if s is not self.control}
        self.heartbeat()
        return ready  # type: ignore[return-value]

    def close(self) -> None:
        """Close every socket and the context."""
        self.ctx.destroy(linger=500)
