"""Whether a front door's TCP port is taken, and the one line that says so.

The supervisor's command line asks before it starts any actor (so a taken port is one line,
not an actor's failed start); the gateway and Wyoming actors use the same line when their own
bind loses a race for the port.
"""

from __future__ import annotations

import errno
import socket

__all__ = ["port_in_use", "port_in_use_message"]


def port_in_use_message(section: str, port: int, flag: str = "") -> str:
    """``gateway: port 2700 is in use (...); set [gateway] port`` for config ``section``.

    ``flag``: a command-line option that also sets the port (``--port``), named in the hint.
    """
    where = f"{flag} or [{section}] port" if flag else f"[{section}] port"
    return (
        f"{section}: port {port} is in use (another streamasr or program listens there); "
        f"set {where}"
    )


def port_in_use(host: str, port: int) -> bool:
    """True if some address of ``host`` cannot be bound at TCP ``port``: it is in use.

    Binds as asyncio's servers do (``SO_REUSEADDR``, IPv6 only on IPv6 sockets), so a port
    left in TIME_WAIT reads free. Port 0 (any free port), an unresolvable host or another
    bind error (no permission, no such address) reads False: the actor reports those.
    """
    if port == 0:
        return False
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return False
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(addr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return True
    return False
