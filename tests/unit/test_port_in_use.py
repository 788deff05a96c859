"""A front door's port that another program holds is one line before any actor starts
(``gateway: port N is in use ...; set --port or [gateway] port``), not four log lines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamasr.actors.frontdoors.ports import port_in_use, port_in_use_message
from streamasr.supervisor.restart_types import EXIT_CONFIG


@pytest.fixture
def held_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that a listening socket of this test holds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_held_port_is_in_use_and_a_free_one_is_not(held_port: int) -> None:
    assert port_in_use("127.0.0.1", held_port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = int(s.getsockname()[1])
    assert not port_in_use("127.0.0.1", free)
    assert not port_in_use("127.0.0.1", 0)  # any free port
    assert not port_in_use("no-such-host.invalid", held_port)  # the actor reports that


def test_the_message_names_the_setting() -> None:
    assert port_in_use_message("gateway", 2700) == (
        "gateway: port 2700 is in use (another streamasr or program listens there); "
        "set [gateway] port"
    )
    assert port_in_use_message("wyoming", 10300, "--wyoming-port").endswith(
        "set --wyoming-port or [wyoming] port"
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("door", ("gateway", "wyoming"))
def test_serve_on_a_held_port_is_one_line(door: str, held_port: int, tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    flag = "--port" if door == "gateway" else "--wyoming-port"
    argv = [sys.executable, "-m", "streamasr.supervisor.cli", "serve", flag, str(held_port)]
    if door == "wyoming":
        argv += ["--port", "0"]
    res = subprocess.run(
        [*argv, "--instance", "ux"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},
    )
    assert (res.returncode, res.stdout) == (EXIT_CONFIG, "")
    assert res.stderr == f"streamasr: {port_in_use_message(door, held_port, flag)}\n"
