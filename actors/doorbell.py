"""Doorbells: tiny ZeroMQ messages that wake the next stage after a ring write.

The reader binds a PULL socket (``Listener``); the writer connects a PUSH socket and rings it
(``Bell``) after it has committed frames to the ring. A ring carries the frames; a doorbell
carries only ``[end_frame, t_capture_ns, t_feature_ns]`` so the reader learns the capture
clock of the newest frame for latency accounting. A doorbell is a hint: if it is lost (the
reader is restarting, the queue is full) the reader still finds the frames when it polls.

An ``ipc://`` endpoint is a socket file in the runtime directory, and libzmq (4.3) leaves it
there when the socket is closed or unbound: a reader bound per stream would leave one file
per stream ever opened. :meth:`Listener.close` therefore removes the file it bound, unless a
newer listener has bound the same path since (told apart by inode and change time).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import msgpack
import zmq

#: Doorbells queued per peer before further rings are dropped (they are hints).
BELL_HWM = 64


@dataclass(frozen=True, slots=True)
class Stamp:
    """The capture clock of a ring position.

    Attributes:
        end_frame: absolute frame index (exclusive) in the ring that was rung.
        t_capture_ns: ``time.time_ns()`` when the newest captured sample covered arrived.
        t_feature_ns: when the feature stage finished it (0 before that stage).
    """

    end_frame: int
    t_capture_ns: int
    t_feature_ns: int = 0


class Bell:
    """Writer side: rings the reader bound at ``endpoint``; never blocks."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self._sock = ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDHWM, BELL_HWM)
        self._sock.setsockopt(zmq.IMMEDIATE, 1)
        self._sock.connect(endpoint)
        self.dropped = 0

    def ring(self, stamp: Stamp) -> None:
        """Send ``stamp``; count it as dropped if the reader cannot take it now."""
        try:
            self._sock.send(
                msgpack.packb((stamp.end_frame, stamp.t_capture_ns, stamp.t_feature_ns)),
                zmq.NOBLOCK,
            )
        except zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        """Close the socket."""
        self._sock.close(0)


#: Stamp fields are non-negative and fit a signed 64-bit integer (frames, nanoseconds).
_MAX_FIELD = 2**63


def ipc_path(endpoint: str) -> Path | None:
    """The socket file of an ``ipc://`` endpoint (None for other transports and for Linux's
    abstract ``ipc://@name`` sockets, which have no file)."""
    if not endpoint.startswith("ipc://") or endpoint.startswith("ipc://@"):
        return None
    return Path(endpoint.removeprefix("ipc://"))


def _file_id(path: Path | None) -> tuple[int, int, int] | None:
    """(device, inode, change time in ns) of ``path``: which file it is, even where a file
    system reuses inode numbers; None if it is absent (or ``path`` is None)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_ctime_ns


class Listener:
    """Reader side: binds ``endpoint`` and collects stamps; :meth:`close` removes the socket
    file it bound (see the module docstring)."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.socket = ctx.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, BELL_HWM * 4)
        self.socket.setsockopt(zmq.MAXMSGSIZE, 256)
        self.socket.bind(endpoint)
        self.malformed = 0
        self._path = ipc_path(endpoint)
        self._file = _file_id(self._path)

    def drain(self) -> list[Stamp]:
        """Return every stamp waiting, oldest first, without blocking."""
        out: list[Stamp] = []
        while True:
            try:
                raw = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                return out
            try:
                end, t_cap, t_feat = msgpack.unpackb(raw)
            except (ValueError, TypeError, msgpack.UnpackException):
                self.malformed += 1
                continue
            fields = (end, t_cap, t_feat)
            if all(type(v) is int and 0 <= v < _MAX_FIELD for v in fields):
                out.append(Stamp(end, t_cap, t_feat))
            else:  # not three non-negative 64-bit integers (frames, nanoseconds)
                self.malformed += 1

    def close(self) -> None:
        """Close the socket and remove its socket file, if it is still the one bound here."""
        self.socket.close(0)
        if self._path is not None and self._file is not None and _file_id(self._path) == self._file:
            with contextlib.suppress(OSError):
                self._path.unlink()
