"""Talking to a running pipeline from another process: requests and event subscriptions.

A consumer on the same box connects to the instance's ipc endpoints; one on another box to
the TCP endpoint configured in ``[events] tcp``::

    from streamasr.supervisor.client import Subscriber

    with Subscriber.for_instance("default") as sub:
        for topic, event in sub:
            if topic.startswith("transcript.") and event.is_final:
                print(event.start_s, event.text)
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import psutil
import zmq

from streamasr.actors import messages as m
from streamasr.actors.errors import ProtocolError, StreamAsrError
from streamasr.supervisor.paths import InstancePaths


class NotRunning(StreamAsrError):
    """No supervisor answered on the control endpoint."""


class InstanceNotRunning(NotRunning):
    """The instance's pid file names no live supervisor: nothing to ask, no wait."""


def require_running(paths: InstancePaths) -> int:
    """The pid in the instance's pid file if that process is alive (no socket, no wait).

    Only liveness is checked, not the command line (a program may embed the supervisor): a
    reused pid falls through to :func:`request`, which then times out as before.

    Raises:
        InstanceNotRunning: no readable pid file, or its process is gone (or a zombie).
    """
    try:
        pid = int(paths.pid_file.read_text().strip())
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return pid
    except (OSError, ValueError, psutil.Error):
        pass
    raise InstanceNotRunning(f"instance {paths.instance!r} is not running")


def request(control: str, msg: Any, timeout_s: float = 3.0) -> Any:
    """Send ``msg`` to the supervisor's control endpoint and return its decoded reply.

    Raises:
        NotRunning: no reply within ``timeout_s`` seconds.
    """
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, 64 * m.MAX_MESSAGE_BYTES)
        sock.connect(control)
        sock.send_multipart(m.pack(msg.KIND, msg))
        if not sock.poll(int(timeout_s * 1000)):
            raise NotRunning(f"no supervisor answered at {control}")
        _, reply = m.unpack(sock.recv_multipart())
        return reply
    finally:
        ctx.destroy(linger=0)


class Subscriber:
    """Iterates ``(topic, message)`` from a pipeline's PUB socket; counts undecodable ones."""

    def __init__(
        self,
        endpoint: str,
        topics: tuple[str, ...] = ("",),
        *,
        curve_secret: str = "",
        curve_server: str = "",
    ) -> None:
        """Connect to ``endpoint`` and subscribe to topic prefixes ``topics``.

        ``curve_secret`` (this client's ``.key_secret`` certificate) and ``curve_server``
        (the supervisor's public ``.key``) authenticate to a CURVE-protected TCP endpoint.
        """
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.socket = self._ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, 64 * m.MAX_MESSAGE_BYTES)
        self.socket.setsockopt(zmq.RCVHWM, 100000)
        for t in topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, t.encode())
        if curve_secret:
            from streamasr.supervisor.curve import make_client

            make_client(self.socket, curve_secret, curve_server)
        self.socket.connect(endpoint)
        self.protocol_errors = 0

    @classmethod
    def for_instance(
        cls, instance: str = "default", runtime_dir: str = "", topics: tuple[str, ...] = ("",)
    ) -> Subscriber:
        """Subscribe to a local instance's ipc endpoint."""
        return cls(InstancePaths.for_instance(instance, runtime_dir).events, topics)

    def recv(self, timeout_s: float | None = None) -> tuple[str, Any] | None:
        """The next decodable message, or None after ``timeout_s`` seconds."""
        while True:
            if timeout_s is not None and not self.socket.poll(int(timeout_s * 1000)):
                return None
            frames = self.socket.recv_multipart()
            try:
                return m.unpack(frames)
            except ProtocolError:
                self.protocol_errors += 1

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        while True:
            item = self.recv()
            if item is not None:
                yield item

    def close(self) -> None:
        """Close the socket and context."""
        self._ctx.destroy(linger=0)

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
