"""Run-time streams (supervisor side): each front door opens streams within its own
``max_streams``, so one door's clients never take another door's capacity."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamasr.actors import messages as m
from streamasr.supervisor import config as c
from streamasr.supervisor.dynamic import DynamicStreams
from streamasr.supervisor.paths import InstancePaths


@pytest.fixture
def streams(tmp_path: Path) -> Iterator[DynamicStreams]:
    """Gateway (2 streams) and Wyoming (1 stream) on, no local source, fast finals."""
    cfg = c.from_mapping(
        {
            "source": {"kind": "none"},
            "refine": {"finals": "fast"},
            "gateway": {"enabled": True, "max_streams": 2},
            "wyoming": {"enabled": True, "max_streams": 1},
        }
    )
    paths = InstancePaths(f"u{uuid.uuid4().hex[:10]}", tmp_path)
    sent: list[tuple[str, Any]] = []
    d = DynamicStreams(cfg, paths, lambda actor, msg: sent.append((actor, msg)), ["inference"])
    try:
        yield d
    finally:
        d.close_all()


def _open(d: DynamicStreams, owner: str, sid: str) -> Any:
    return d.open(owner, m.OpenStream(stream_id=sid, name=sid), set())


def test_each_door_has_its_own_share_of_streams(streams: DynamicStreams) -> None:
    assert isinstance(_open(streams, "wyoming", "wy-1"), m.StreamOpened)
    refused = _open(streams, "wyoming", "wy-2")
    assert isinstance(refused, m.StreamRefused)
    assert refused.reason == "stream limit reached (1)"
    # the gateway keeps both of its streams whatever Wyoming holds
    assert isinstance(_open(streams, "gateway", "ws-1"), m.StreamOpened)
    assert isinstance(_open(streams, "gateway", "ws-2"), m.StreamOpened)
    assert _open(streams, "gateway", "ws-3").reason == "stream limit reached (2)"
    assert (streams.held_by("wyoming"), streams.held_by("gateway"), streams.refused) == (1, 2, 2)
    # a closed stream gives its door the slot back
    streams.close("wy-1")
    assert isinstance(_open(streams, "wyoming", "wy-3"), m.StreamOpened)


def test_an_actor_that_is_not_a_front_door_opens_nothing(streams: DynamicStreams) -> None:
    refused = _open(streams, "inference", "x-1")
    assert isinstance(refused, m.StreamRefused)
    assert refused.reason == "inference is not a front door"


def test_a_disabled_door_has_no_share() -> None:
    cfg = c.from_mapping({"source": {"kind": "none"}, "wyoming": {"enabled": True}})
    assert cfg.door_stream_limits() == {"wyoming": 4}
    assert cfg.dynamic_streams() == 4


def test_closing_a_stream_removes_its_doorbell_socket_file(streams: DynamicStreams) -> None:
    opened = _open(streams, "gateway", "ws-1")
    bell = Path(opened.bell.removeprefix("ipc://"))
    bell.touch()  # what the inference worker's bind leaves (libzmq keeps it after close)
    streams.close("ws-1")
    assert not bell.exists()
