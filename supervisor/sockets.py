"""The supervisor's ZeroMQ sockets: the ROUTER the actors talk to and the PUB sockets
consumers subscribe to (the instance's ipc endpoint, plus TCP, CURVE-protected if asked)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import zmq

from streamasr.actors import messages as m
from streamasr.supervisor import curve
from streamasr.supervisor.config import EventsConfig
from streamasr.supervisor.paths import InstancePaths

__all__ = ["SupervisorSockets"]

#: Messages a PUB socket queues per subscriber before dropping (consumers see seq gaps).
PUB_HWM = 10000


@dataclass
class SupervisorSockets:
    """The bound sockets; :meth:`close` stops the CURVE authenticator (the context owns the
    sockets)."""

    router: zmq.Socket[bytes]
    pubs: list[zmq.Socket[bytes]] = field(default_factory=list)
    auth: Any = None

    @classmethod
    def open(
        cls, ctx: zmq.Context[zmq.Socket[bytes]], paths: InstancePaths, events: EventsConfig
    ) -> SupervisorSockets:
        """Bind the control ROUTER and the event PUB socket(s) of ``paths``' instance."""
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.MAXMSGSIZE, m.MAX_MESSAGE_BYTES)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        router.bind(paths.control)
        out = cls(router)
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, PUB_HWM)
        pub.bind(paths.events)
        out.pubs.append(pub)
        if events.tcp and not events.curve_secret:
            pub.bind(events.tcp)
        elif events.tcp:  # a separate, CURVE-protected socket for other boxes
            out.auth = curve.start_authenticator(ctx, events.curve_clients)
            tcp = ctx.socket(zmq.PUB)
            tcp.setsockopt(zmq.LINGER, 0)
            tcp.setsockopt(zmq.SNDHWM, PUB_HWM)
            curve.make_server(tcp, events.curve_secret)
            tcp.bind(events.tcp)
            out.pubs.append(tcp)
        return out

    def close(self) -> None:
        """Stop the authenticator thread, if any."""
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
