"""sd_notify messages, received on a Unix datagram socket the test owns."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamasr.supervisor.sdnotify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    yield sock, path
    sock.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    n.ready("x")
    n.watchdog(True, now=0.0)
    n.stopping("y")
    assert n.sent == []


def test_ready_status_watchdog_stopping(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    assert n.watchdog_interval_s == 1.0
    n.ready("3/3 actors running")
    assert sock.recv(4096) == b"READY=1\nSTATUS=3/3 actors running"
    n.status("3/3 actors running")  # unchanged: not sent again
    n.status("2/3 actors running")
    assert sock.recv(4096) == b"STATUS=2/3 actors running"
    n.watchdog(True, now=10.0)
    assert sock.recv(4096) == b"WATCHDOG=1"
    n.watchdog(True, now=10.5)  # not due yet
    n.watchdog(False, now=12.0)  # unhealthy: no ping, systemd will act
    n.watchdog(True, now=12.0)
    assert sock.recv(4096) == b"WATCHDOG=1"
    n.stopping("SIGTERM received")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=stopping: SIGTERM received"
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"streamasr-test-{id(object())}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).ready("ok")
        assert sock.recv(4096) == b"READY=1\nSTATUS=ok"
    finally:
        sock.close()


def test_watchdog_pid_of_another_process_disables_the_watchdog() -> None:
    n = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert n.watchdog_interval_s == 0.0
