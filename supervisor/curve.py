"""CURVE authentication and encryption for consumers on other boxes (ZeroMQ's CurveZMQ).

Keys are ZeroMQ certificates as pyzmq's :mod:`zmq.auth` writes them:
``streamasr-supervisor keygen DIR NAME`` creates ``NAME.key`` (public) and
``NAME.key_secret`` (secret, mode 0600). The supervisor's TCP PUB socket becomes a CURVE
server with ``[events] curve_secret`` (a ``.key_secret`` file); a ZAP authenticator thread
admits only clients whose public certificate (``*.key``) is in ``[events] curve_clients``.
A client with another key gets nothing: its handshake is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from streamasr.actors.errors import ConfigError


def keygen(directory: Path, name: str) -> tuple[Path, Path]:
    """Create the certificate pair ``name.key`` / ``name.key_secret`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(directory), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def _load(path: str, key: str) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: cannot read certificate {path}: {exc}") from None


def start_authenticator(
    ctx: zmq.Context[zmq.Socket[bytes]], clients_dir: str
) -> ThreadAuthenticator:
    """A ZAP handler admitting the public certificates (``*.key``) in ``clients_dir``."""
    if not Path(clients_dir).is_dir():
        raise ConfigError(f"events.curve_clients: {clients_dir} is not a directory")
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=clients_dir)
    return auth


def make_server(sock: zmq.Socket[bytes], secret_file: str) -> None:
    """Make ``sock`` a CURVE server with the certificate in ``secret_file``."""
    public, secret = _load(secret_file, "events.curve_secret")
    if not secret:
        raise ConfigError(f"events.curve_secret: {secret_file} holds no secret key")
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True


def make_client(sock: zmq.Socket[bytes], secret_file: str, server_public_file: str) -> None:
    """Make ``sock`` a CURVE client: its own certificate and the server's public one."""
    public, secret = _load(secret_file, "client certificate")
    server_public, _ = _load(server_public_file, "server certificate")
    if not secret:
        raise ConfigError(f"{secret_file} holds no secret key")
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
