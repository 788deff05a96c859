"""Doorbells: tiny ZeroMQ messages that wake the next stage after a ring write.

The reader binds a PULL socket (``Listener``); the writer connects a PUSH socket and rings it
(``Bell``) after it has committed frames to the ring. A ring carries the frames; a doorbell
carries only ``[end_frame, t_capture_ns, t_feature_ns]`` so the reader learns the capture
clock of the newest frame for latency accounting. A doorbell is a hint: if it is lost (the
reader is restarting, the queue is full) the reader still finds the frames when it polls.
"""

from __future__ import annotations

from dataclasses import dataclass

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


class Listener:
    """Reader side: binds ``endpoint`` and collects stamps."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self.socket = ctx.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, BELL_HWM * 4)
        self.socket.setsockopt(zmq.MAXMSGSIZE, 256)
        self.socket.bind(endpoint)
        self.malformed = 0

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
        """Close the socket."""
        self.socket.close(0)
