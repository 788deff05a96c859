"""A run-time stream opened without a deadline (an uploaded file): its ring is sized like a
``--fast`` file's and every actor that attaches it is told so, again after a restart."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from streamasr.actors import messages as m
from streamasr.supervisor.config import from_mapping
from streamasr.supervisor.dynamic import DynamicStreams
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.plan import pcm_ring_s, pow2_at_least


def test_a_stream_without_deadline_is_attached_as_such(tmp_path: Path) -> None:
    cfg = from_mapping(
        {
            "source": {"kind": "none"},
            "gateway": {"enabled": True},
            "audio": {"ring_s": 8.0},
            "inference": {"workers": 1},
        }
    )
    sent: list[tuple[str, Any]] = []
    paths = InstancePaths(f"t{uuid.uuid4().hex[:8]}", tmp_path)
    dyn = DynamicStreams(cfg, paths, lambda actor, msg: sent.append((actor, msg)))
    try:
        live = dyn.open("gateway", m.OpenStream("ws-1", "live"), set())
        upload = dyn.open("gateway", m.OpenStream("oai-1", "file", deadline=False), set())
        assert isinstance(live, m.StreamOpened) and isinstance(upload, m.StreamOpened)
        rate = cfg.audio.sample_rate_hz
        capacity = {sid: d.ring.capacity for sid, d in dyn.streams.items()}
        assert capacity == {
            "ws-1": pow2_at_least(int(8.0 * rate)),
            "oai-1": pow2_at_least(int(pcm_ring_s(cfg, deadline=False) * rate)),
        }
        attached = {
            (a, msg.stream_id): msg.deadline for a, msg in sent if msg.KIND == "stream_attach"
        }
        assert attached == {
            ("inference", "ws-1"): True,
            ("refine", "ws-1"): True,
            ("inference", "oai-1"): False,
            ("refine", "oai-1"): False,
        }
        sent.clear()
        dyn.attach_all("refine")  # a restarted refine actor
        assert [(msg.stream_id, msg.deadline) for _, msg in sent] == [
            ("ws-1", True),
            ("oai-1", False),
        ]
    finally:
        dyn.close_all()
