"""The inference loop heartbeats between run-time streams it attaches or detaches
(issue 20, item 5): with a bounded decoder pool each stream of a burst may load a decoder
(PocketSphinx: about 0.9 s), and ten of them in one batch of control messages outlasted the
5 s heartbeat timeout, so the supervisor restarted the worker as hung.

Real rings, doorbells and wake setup; the runtime records heartbeats, the recogniser's
streams are stubs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from streamasr.actors import messages as m
from streamasr.actors.cpu_account import CpuAccount
from streamasr.actors.inference.decoding import InferenceLoop
from streamasr.actors.inference.wake_setup import WakeSetup
from streamasr.actors.spec import ActorSpec
from streamasr.actors.wake.settings import WakeConfig
from streamasr.ringbuf import Ring

pytestmark = pytest.mark.timeout(30)

STREAMS = 3


class StubStream:
    """A recogniser stream that is only opened and closed."""

    closed = False

    def close(self) -> None:
        """Give the (imaginary) decoder back."""
        self.closed = True


class StubRecognizer:
    """Hands out stub streams (as if each loaded a decoder)."""

    sample_rate_hz = 16000
    input_kind = "pcm_s16"

    def __init__(self) -> None:
        self.streams: list[StubStream] = []

    def create_stream(self, start_frame: int = 0) -> StubStream:
        """A new stub stream."""
        self.streams.append(StubStream())
        return self.streams[-1]

    def warm_up(self) -> None:
        """Nothing to warm."""


class RecordingRuntime:
    """What InferenceLoop uses of ActorRuntime; each heartbeat records the streams then."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], runtime_dir: Path) -> None:
        self.spec = ActorSpec(
            "inference", "inference", os.getpid(), "ipc://unused", {}, {}, "", 1.0
        )
        self.ctx = ctx
        self.runtime_dir = runtime_dir
        self.poller = zmq.Poller()
        self.gauges: dict[str, float] = {}
        self.counters: dict[str, int] = {}
        self.cpu = CpuAccount(self.counters)
        self.stopping = False
        self.loop: InferenceLoop | None = None
        self.beats: list[int] = []

    def heartbeat(self, *, force: bool = False) -> None:
        """Record how many streams the loop had."""
        assert self.loop is not None
        self.beats.append(len(self.loop.streams))


@pytest.fixture
def rings(tmp_path: Path) -> Iterator[list[tuple[Ring, str]]]:
    """(ring, doorbell endpoint) of each stream; unlinked after."""
    tag = uuid.uuid4().hex[:8]
    made = [
        (
            Ring.create(f"streamasr-t{tag}-{i}-pcm", 1024, np.float32, (1,), sample_rate_hz=16000),
            f"ipc://{tmp_path}/bell-{i}",
        )
        for i in range(STREAMS)
    ]
    yield made
    for ring, _ in made:
        ring.close()
        ring.unlink()


def test_attach_and_detach_bursts_heartbeat_after_each_stream(
    rings: list[tuple[Ring, str]], tmp_path: Path
) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rt = RecordingRuntime(ctx, tmp_path)
    rec = StubRecognizer()
    wake = WakeSetup(WakeConfig(), (), {}, rec)  # type: ignore[arg-type]
    loop = rt.loop = InferenceLoop(rt, rec, wake)  # type: ignore[arg-type]
    try:
        attach: list[Any] = [
            m.StreamAttach(f"ws-{i}", ring.name, 0, bell) for i, (ring, bell) in enumerate(rings)
        ]
        loop.handle(attach, set())
        assert rt.beats == [1, 2, 3]
        loop.handle([m.StreamDetach(f"ws-{i}") for i in range(STREAMS)], set())
        assert rt.beats == [1, 2, 3, 2, 1, 0]
        assert all(s.closed for s in rec.streams) and len(rec.streams) == STREAMS
    finally:
        loop.close()
        ctx.destroy(linger=0)
