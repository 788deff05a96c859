"""Run-time streams on the supervisor's side: a refused open takes no slot and leaves no
segment (issue 20, item 4). Real shared memory, no processes; messages go to a list."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streamasr.actors import messages as m
from streamasr.ringbuf import Ring
from streamasr.supervisor.config import from_mapping
from streamasr.supervisor.dynamic import DynamicStreams
from streamasr.supervisor.paths import InstancePaths

Sent = list[tuple[str, Any]]


@pytest.fixture
def paths(tmp_path: Path) -> InstancePaths:
    """A fresh instance name (its segments are ``streamasr-<name>-...``)."""
    return InstancePaths(f"t{uuid.uuid4().hex[:10]}", tmp_path)


@pytest.fixture
def streams(paths: InstancePaths) -> Iterator[tuple[DynamicStreams, Sent]]:
    """Run-time streams of ``paths`` (gateway: 2 streams, fast finals); none left after."""
    cfg = from_mapping(
        {"gateway": {"enabled": True, "max_streams": 2}, "refine": {"finals": "fast"}}
    )
    sent: Sent = []
    dyn = DynamicStreams(cfg, paths, lambda actor, msg: sent.append((actor, msg)), ["inference"])
    yield dyn, sent
    dyn.close_all()
    assert paths.segments() == []


def test_open_then_close_releases_slot_and_segment(
    streams: tuple[DynamicStreams, Sent], paths: InstancePaths
) -> None:
    dyn, sent = streams
    reply = dyn.open("gateway", m.OpenStream("ws-1", "alice"), set())
    assert isinstance(reply, m.StreamOpened)
    assert list(dyn.streams) == ["ws-1"] and len(paths.segments()) == 1
    assert [(a, type(x).__name__) for a, x in sent] == [("inference", "StreamAttach")]
    dyn.close("ws-1")
    assert dyn.streams == {} and paths.segments() == []
    assert (sent[-1][0], type(sent[-1][1]).__name__) == ("refine", "StreamDetach")


def test_open_whose_ring_cannot_be_created_is_refused_and_takes_no_slot(
    streams: tuple[DynamicStreams, Sent], paths: InstancePaths
) -> None:
    dyn, sent = streams
    squatter = Ring.create(paths.segment("ws-1", "pcm"), 16, np.float32, (1,))
    try:
        reply = dyn.open("gateway", m.OpenStream("ws-1", "alice"), set())
    finally:
        squatter.close()
        squatter.unlink()
    assert isinstance(reply, m.StreamRefused) and reply.stream_id == "ws-1"
    assert reply.reason.startswith("cannot create the ring of stream ws-1: shared-memory segment")
    assert dyn.streams == {} and dyn.refused == 1 and sent == []
    assert isinstance(dyn.open("gateway", m.OpenStream("ws-2", "bob"), set()), m.StreamOpened)
