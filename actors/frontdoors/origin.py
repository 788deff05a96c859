"""The gateway's browser-origin rule for WebSocket connections.

A browser sends ``Origin`` with every WebSocket handshake; a page on one site must not be
able to read another service's status or use its recogniser. A request with no ``Origin``
(a program, not a page) is always let through; one with an ``Origin`` is let through when
it is the gateway's own origin (scheme's host and port equal to the request's ``Host``,
as for the live page the gateway serves itself), or listed in ``[gateway] origins``
(``"*"`` = any origin).
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: Ports a browser leaves out of ``Origin`` and ``Host``.
DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    """``(hostname, port)`` of ``host[:port]``, or None if it does not parse."""
    try:
        parts = urlsplit("//" + netloc)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path:
        return None
    return parts.hostname.lower(), port if port is not None else default_port


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) names the server that the request's
    ``Host`` header (``host[:port]``) names: same host, same port (80/443 when left out)."""
    parts = urlsplit(origin.strip())
    default_port = DEFAULT_PORTS.get(parts.scheme.lower())
    if default_port is None or parts.path not in ("", "/") or parts.query:
        return False  # "null" (sandboxed pages, file://) and non-web schemes included
    theirs = _host_port(parts.netloc, default_port)
    ours = _host_port(host.strip(), default_port)
    return theirs is not None and theirs == ours


def origin_allowed(origins: list[str], host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a handshake carrying the ``Origin`` header values ``origins`` (none: not a
    browser) and ``Host`` ``host`` may open a WebSocket under the allow-list ``allowed``."""
    if not origins:
        return True
    if len(origins) > 1:
        return False  # no browser sends two
    origin = origins[0]
    return "*" in allowed or origin in allowed or same_origin(origin, host)
