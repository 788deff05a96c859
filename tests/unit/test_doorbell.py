"""Doorbells: stamps go from a Bell to its Listener; garbage is counted and dropped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from streamasr.actors.doorbell import Bell, Listener, Stamp, ipc_path


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[zmq.Context[zmq.Socket[bytes]], Listener, str]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    endpoint = f"ipc://{tmp_path / 'bell'}"
    listener = Listener(ctx, endpoint)
    try:
        yield ctx, listener, endpoint
    finally:
        listener.close()
        ctx.destroy(linger=0)


def _drain_until(listener: Listener, n: int) -> list[Stamp]:
    """Stamps drained until ``n`` messages (stamps or malformed) arrived, 5 s at most."""
    out: list[Stamp] = []
    poller = zmq.Poller()
    poller.register(listener.socket, zmq.POLLIN)
    while len(out) + listener.malformed < n:
        assert poller.poll(5000), "doorbell messages did not arrive"
        out += listener.drain()
    return out


def test_stamps_arrive_in_order(pair: tuple[Any, Listener, str]) -> None:
    ctx, listener, endpoint = pair
    bell = Bell(ctx, endpoint)
    poller = zmq.Poller()
    poller.register(listener.socket, zmq.POLLIN)
    while not listener.drain():  # a bell drops what it rings before it is connected
        bell.ring(Stamp(0, 0, 0))
        poller.poll(100)
    bell.dropped = 0
    sent = [Stamp(1600 * k, 10**18 + k, 10**18 + k + 5) for k in range(1, 4)]
    for s in sent:
        bell.ring(s)
    got: list[Stamp] = []
    while len(got) < 3:  # a probe still in flight may come first
        got += [s for s in _drain_until(listener, 1) if s != Stamp(0, 0, 0)]
    assert got == sent
    assert listener.malformed == 0 and bell.dropped == 0
    bell.close()


@pytest.mark.parametrize(
    "body",
    [
        [1e30, 0, 0],  # a float: int(1e30) would not fit the 64 bits it is sent on with
        [0, 2**64 - 1, 0],  # out of the signed 64-bit range
        [-1, 0, 0],  # negative frame
        [0, 0, True],  # a bool is not a clock
        ["12", 0, 0],
        [1, 2],
        {"a": 1, "b": 2, "c": 3},
    ],
    ids=repr,
)
def test_garbage_is_counted_and_dropped(pair: tuple[Any, Listener, str], body: Any) -> None:
    ctx, listener, endpoint = pair
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect(endpoint)
    push.send(msgpack.packb(body))
    push.send(b"\xc1")  # never valid msgpack
    push.send(msgpack.packb([3200, 7, 9]))  # a good stamp after the garbage still arrives
    assert _drain_until(listener, 3) == [Stamp(3200, 7, 9)]
    assert listener.malformed == 2
    push.close()


def test_closing_a_listener_removes_its_socket_file(tmp_path: Path) -> None:
    """libzmq leaves an ipc socket file behind when the socket closes; the listener removes
    it, so a reader bound per stream leaves nothing in the runtime directory."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        paths = [tmp_path / f"bell-s{i}-pcm-0" for i in range(5)]
        for path in paths:
            listener = Listener(ctx, f"ipc://{path}")
            assert path.exists()
            listener.close()
            assert not path.exists()
            listener.close()  # twice: nothing more to do
        assert list(tmp_path.iterdir()) == []
    finally:
        ctx.destroy(linger=0)


def test_a_listener_leaves_a_newer_listeners_file_alone(tmp_path: Path) -> None:
    """A replacement reader (a restarted actor) bound the same path: closing the old
    listener late must not pull the socket file from under the new one."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    path = tmp_path / "bell-s0-pcm-0"
    try:
        old = Listener(ctx, f"ipc://{path}")
        new = Listener(ctx, f"ipc://{path}")  # libzmq replaces the file
        old.close()
        assert path.exists()
        new.close()
        assert not path.exists()
    finally:
        ctx.destroy(linger=0)


@pytest.mark.parametrize(
    ("endpoint", "path"),
    [
        ("ipc:///run/x/bell-a-0", Path("/run/x/bell-a-0")),
        ("ipc://@abstract-bell", None),
        ("tcp://127.0.0.1:5555", None),
    ],
)
def test_ipc_path(endpoint: str, path: Path | None) -> None:
    assert ipc_path(endpoint) == path
