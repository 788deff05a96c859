"""systemd service notifications (``Type=notify``), written from sd_notify(3)'s protocol.

``NOTIFY_SOCKET`` names a Unix datagram socket (``@`` = abstract namespace). The supervisor
sends ``READY=1`` once every actor is Ready, ``WATCHDOG=1`` every half ``WATCHDOG_USEC``
while every actor's heartbeat is healthy (so systemd restarts a wedged pipeline), a
one-line ``STATUS=`` summary, and ``STOPPING=1`` when it shuts down. Without
``NOTIFY_SOCKET`` every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; silent when not started by systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        """Read ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` from ``environ`` (default os.environ)."""
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._addr = "\0" + path[1:] if path.startswith("@") else path
        self._sock: socket.socket | None = None
        if self._addr:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval_s = int(usec) / 2e6 if usec.isdigit() and mine else 0.0
        self._next_watchdog = 0.0
        self._last_status = ""
        self.sent: list[str] = []

    @property
    def enabled(self) -> bool:
        """Whether a notification socket was given."""
        return self._sock is not None

    def send(self, *fields: str) -> None:
        """Send ``KEY=VALUE`` fields as one datagram (errors are logged, never raised)."""
        if self._sock is None:
            return
        payload = "\n".join(fields)
        try:
            self._sock.sendto(payload.encode(), self._addr)
            self.sent.append(payload)
            del self.sent[:-50]
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        """All actors are Ready."""
        self.send("READY=1", f"STATUS={status}")
        self._last_status = status

    def status(self, status: str) -> None:
        """Update the one-line status (only when it changed)."""
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def watchdog(self, healthy: bool, now: float | None = None) -> None:
        """Pet the watchdog if it is due and the pipeline is healthy."""
        if not self.watchdog_interval_s or not healthy:
            return
        t = time.monotonic() if now is None else now
        if t >= self._next_watchdog:
            self._next_watchdog = t + self.watchdog_interval_s
            self.send("WATCHDOG=1")

    def stopping(self, reason: str) -> None:
        """The supervisor is shutting down."""
        self.send("STOPPING=1", f"STATUS=stopping: {reason}")

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
