"""The supervisor speaks sd_notify to a fake NOTIFY_SOCKET the test owns (Type=notify)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from conftest import Instance

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_ready_watchdog_status_stopping(instance: Instance, tmp_path: Path) -> None:
    path = str(instance.base / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60.0)
    instance.write_config('[refine]\nfinals = "fast"\n')
    instance.env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    proc = instance.popen("up", "--source", "sample")
    got: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                break
            if got[-1].startswith("STOPPING=1"):
                break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    kinds = [g.split("\n")[0].split("=")[0] for g in got]
    assert kinds[0] == "READY", got
    ready = got[0].split("\n")
    assert ready[1].startswith("STATUS=") and "actors running" in ready[1]
    assert "WATCHDOG" in kinds, got
    assert kinds[-1] == "STOPPING", got
    assert got[-1] == "STOPPING=1\nSTATUS=stopping: source ended"
    assert kinds.index("WATCHDOG") > 0  # the watchdog starts once everything is Ready
