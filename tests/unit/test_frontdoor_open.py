"""A front door's open of a run-time stream, against a fake supervisor (no processes).

Every way an open ends other than a stream handed out or a refusal ends the stream at frame
0 right after the :class:`OpenStream` on the same socket, so whatever the supervisor opened
or opens late is closed again (issue 20, item 4). The fake runtime records what the front
door sends and answers (or not) from inside ``send``, so nothing waits on timing except the
open timeout under test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest
import zmq

from streamasr.actors import messages as m
from streamasr.actors.frontdoors.base import FrontDoor, StreamRefused
from streamasr.actors.runtime import ActorRuntime
from streamasr.ringbuf import Ring

SID = "ws-1"
ABANDON = m.EndOfStream("gateway", SID, 0)
Answer = Callable[[m.OpenStream], Any]


class FakeRuntime:
    """What :class:`FrontDoor` uses of :class:`ActorRuntime`; ``answer`` plays the supervisor
    (its reply is delivered on the next loop iteration; ``None``: no reply)."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], events: str) -> None:
        self.ctx = ctx
        self.spec = SimpleNamespace(actor_id="gateway", options={"events_endpoint": events})
        self.counters = {"protocol_errors": 0}
        self.inbox: list[Any] = []
        self.sent: list[Any] = []
        self.answer: Answer = lambda msg: None
        self.door: FrontDoor | None = None
        self.asked = asyncio.Event()

    def send(self, msg: Any) -> None:
        self.sent.append(msg)
        if isinstance(msg, m.OpenStream):
            self.asked.set()
            reply = self.answer(msg)
            if reply is not None and self.door is not None:
                asyncio.get_running_loop().call_soon(self.door._on_control, reply)


@pytest.fixture
def door(tmp_path: Path) -> Iterator[tuple[FrontDoor, FakeRuntime]]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rt = FakeRuntime(ctx, f"ipc://{tmp_path / 'events'}")
    front = FrontDoor(cast(ActorRuntime, rt))
    rt.door = front
    yield front, rt
    front.sub.close(0)
    ctx.destroy(linger=0)


def opened(ring: str) -> Answer:
    return lambda msg: m.StreamOpened(msg.stream_id, ring, "ipc:///nonexistent/bell", 16000)


def test_open_timeout_abandons_the_stream_and_ignores_the_late_reply(
    door: tuple[FrontDoor, FakeRuntime],
) -> None:
    front, rt = door

    async def scenario() -> None:
        with pytest.raises(StreamRefused, match=f"^no answer opening stream {SID}$"):
            await front.open_stream(SID, "alice", 16000, 1, timeout_s=0.01)
        front._on_control(m.StreamOpened(SID, "streamasr-late", "ipc:///bell", 16000))

    asyncio.run(scenario())
    assert rt.sent == [m.OpenStream(SID, "alice", ""), ABANDON]
    assert front.streams == {}


def test_cancelled_open_abandons_the_stream(door: tuple[FrontDoor, FakeRuntime]) -> None:
    front, rt = door

    async def scenario() -> None:
        task = asyncio.create_task(front.open_stream(SID, "alice", 16000, 1))
        await rt.asked.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert rt.sent == [m.OpenStream(SID, "alice", ""), ABANDON]


def test_open_whose_ring_cannot_be_attached_abandons_the_stream(
    door: tuple[FrontDoor, FakeRuntime],
) -> None:
    front, rt = door
    rt.answer = opened(f"streamasr-missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(StreamRefused, match=f"^cannot attach stream {SID}: no shared-memory"):
        asyncio.run(front.open_stream(SID, "alice", 16000, 1))
    assert rt.sent[-1] == ABANDON and front.streams == {}


def test_refused_open_sends_nothing_more(door: tuple[FrontDoor, FakeRuntime]) -> None:
    front, rt = door
    rt.answer = lambda msg: m.StreamRefused(msg.stream_id, "stream limit reached (3)")
    with pytest.raises(StreamRefused, match=r"^stream limit reached \(3\)$"):
        asyncio.run(front.open_stream(SID, "alice", 16000, 1))
    assert rt.sent == [m.OpenStream(SID, "alice", "")]


def test_answered_open_hands_out_the_stream_and_abandons_nothing(
    door: tuple[FrontDoor, FakeRuntime],
) -> None:
    front, rt = door
    name = f"streamasr-test-{uuid.uuid4().hex[:8]}"
    ring = Ring.create(name, 1024, np.float32, (1,), max_readers=2, sample_rate_hz=16000)
    try:
        rt.answer = opened(name)
        stream = asyncio.run(front.open_stream(SID, "alice", 48000, 2))
        assert front.streams == {SID: stream} and stream.sample_rate_hz == 16000
        assert rt.sent == [m.OpenStream(SID, "alice", "")]
        stream.close()
    finally:
        ring.close()
        ring.unlink()
