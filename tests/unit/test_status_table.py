"""The ``status`` table: a dash in CHUNK for actors with no chunk size, and the display name
of a stream a client opened at run time (``stream --name alice``) beside its id."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from streamasr.actors.capture.formats import SourceFormat
from streamasr.actors.frontdoors import metrics
from streamasr.supervisor.config import Config
from streamasr.supervisor.plan import Plan
from streamasr.supervisor.status import Observed, StatusBuilder, format_table


def _actor(actor_id: str, gauges: dict[str, float]) -> dict[str, Any]:
    return {
        "id": actor_id,
        "state": "running",
        "pid": 42,
        "restarts": 0,
        "rss_bytes": 2**20,
        "cpu_percent": 1.0,
        "chunk_ms": gauges.get("chunk_ms"),
        "counters": {},
        "gauges": gauges,
    }


def _status(sources: list[dict[str, Any]], actors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "instance": "ux",
        "pid": 1,
        "phase": "running",
        "uptime_s": 3.0,
        "sources": sources,
        "actors": actors,
        "rings": [],
        "latency": {},
        "streams": {"ws-1": {"finals": 2}},
        "protocol_errors": 0,
    }


def _row(table: str, actor_id: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"{actor_id} "))


def test_chunk_is_a_dash_where_an_actor_has_no_chunk_size() -> None:
    table = format_table(
        _status([], [_actor("feature", {"chunk_ms": 100.0}), _actor("inference", {})])
    )
    assert " 100ms  " in _row(table, "feature")
    assert "     -  " in _row(table, "inference")
    assert "0ms" not in _row(table, "inference")


def test_a_run_time_stream_shows_its_name() -> None:
    sources = [
        {
            "stream_id": "ws-1",
            "name": "alice",
            "kind": "gateway",
            "path": "",
            "sample_rate_hz": 16000,
            "channels": 1,
        }
    ]
    table = format_table(_status(sources, []))
    assert "  stream ws-1 (alice): gateway 16000 Hz x1" in table.splitlines()
    assert "stream ws-1 (alice): finals=2" in table.splitlines()


def test_the_status_map_lists_run_time_streams_with_their_names() -> None:
    cfg = Config()
    ring_plan = SimpleNamespace(sample_rate_hz=16000)
    dynamic = SimpleNamespace(
        streams={"ws-1": SimpleNamespace(name="alice", owner="gateway", ring_plan=ring_plan)}
    )
    sup = SimpleNamespace(cfg=cfg, dynamic=dynamic)
    formats = {src.stream_id: SourceFormat(48000, 2) for src in cfg.sources()}
    plan = SimpleNamespace(formats=formats)
    builder = StatusBuilder(cast(Observed, sup), cast(Plan, plan))
    sources = builder._sources()
    assert sources[-1] == {
        "stream_id": "ws-1",
        "name": "alice",
        "kind": "gateway",
        "path": "",
        "sample_rate_hz": 16000,
        "channels": 1,
    }
    assert [s["stream_id"] for s in sources[:-1]] == [s.stream_id for s in cfg.sources()]


def test_status_and_metrics_give_no_chunk_size_to_an_actor_without_one() -> None:
    status = _status([], [_actor("feature", {"chunk_ms": 100.0}), _actor("inference", {})])
    assert [a["chunk_ms"] for a in status["actors"]] == [100.0, None]
    text = metrics.render(status, {}, {}).decode()
    chunks = [line for line in text.splitlines() if line.startswith("streamasr_chunk_ms{")]
    assert chunks == ['streamasr_chunk_ms{actor="feature"} 100.0']
