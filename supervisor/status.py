"""The status the supervisor reports: actors, rings, latency, streams — and its table form.

:class:`StatusBuilder` assembles a plain nested map (msgpack- and JSON-friendly) that
``status`` prints, that ``StatusReply`` carries, and that is published on topic ``status``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import psutil

from streamasr.actors import messages as m
from streamasr.actors.cpu_account import CPU_PREFIX
from streamasr.ringbuf import Ring
from streamasr.supervisor import restart_types as rt
from streamasr.supervisor.adaptive import ChunkController
from streamasr.supervisor.config import Config
from streamasr.supervisor.dynamic import DynamicStreams
from streamasr.supervisor.latency import LatencyWindow
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.plan import Plan, RingPlan
from streamasr.supervisor.processes import Child
from streamasr.supervisor.standby import Standby
from streamasr.supervisor.streams import StreamBook

#: Seconds of latency samples the status percentiles cover (sliding window).
LATENCY_WINDOW_S = 60.0


class Observed(Protocol):
    """What the status view reads of the pipeline it reports on (read-only).

    :class:`~streamasr.supervisor.manager.Supervisor` satisfies it; status never imports the
    supervisor, so the view cannot reach further into its owner than these names.
    """

    @property
    def cfg(self) -> Config:
        """The running configuration."""
        ...

    @property
    def paths(self) -> InstancePaths:
        """The instance's name and runtime paths."""
        ...

    @property
    def children(self) -> Mapping[str, Child]:
        """Actor id -> its process (last heartbeat, errors)."""
        ...

    @property
    def rings(self) -> Mapping[str, Ring]:
        """Segment name -> the planned rings, attached."""
        ...

    @property
    def dynamic(self) -> DynamicStreams | None:
        """Streams the front doors opened at run time (None: no front door)."""
        ...

    @property
    def chunk(self) -> ChunkController | None:
        """The adaptive chunk controller (None: fixed chunk)."""
        ...

    @property
    def standby(self) -> Standby | None:
        """The hot standby (None: off)."""
        ...

    @property
    def book(self) -> StreamBook:
        """Per-stream transcript counters."""
        ...

    @property
    def gaps(self) -> Mapping[str, Sequence[m.Gap]]:
        """Stream id -> the capture gaps reported so far."""
        ...

    @property
    def restart_s(self) -> Mapping[str, float]:
        """Actor id -> its last restart's duration (seconds)."""
        ...

    @property
    def bridge_warnings(self) -> int:
        """Restarts longer than the rings could bridge."""
        ...

    @property
    def protocol_errors(self) -> int:
        """Malformed messages dropped."""
        ...


class StatusBuilder:
    """Collects latency observations and renders the status map."""

    def __init__(self, sup: Observed, plan: Plan) -> None:
        """Report on ``sup`` running ``plan``."""
        self._sup = sup
        self._plan = plan
        self._t0 = time.monotonic()
        self._lat = LatencyWindow(LATENCY_WINDOW_S)
        self._budget_s = sup.cfg.audio.latency_budget_ms / 1000.0

    def summary(self, state: rt.SupervisorState) -> str:
        """The one-line status for systemd (actors running, streams, finals, restarts)."""
        sup = self._sup
        running = sum(c.state is rt.ChildState.RUNNING for c in state.children)
        restarts = sum(max(0, c.incarnation - 1) for c in state.children)
        finals = sum(c["finals"] for c in sup.book.counters().values())
        finals += sup.book.ended()["finals"]
        streams = len(sup.cfg.sources()) + (len(sup.dynamic.streams) if sup.dynamic else 0)
        return (
            f"{running}/{len(state.children)} actors running, {streams} streams, "
            f"{finals} finals, {restarts} restarts"
        )

    def observe(self, t: m.Transcript) -> None:
        """Record the latency figures of a published transcript (seconds).

        Series: ``partial`` (capture of the newest sample -> publication), ``final``
        (first-pass finals: end of speech + endpoint silence -> publication), ``final_pass2``
        (accurate finals), ``endpoint_to_final_pass2`` (the second pass's own delay),
        ``partial_pass2`` (partials a Whisper run made), and ``stage.<name>`` per stage of
        the others. A merged partial (``pass = 2``) that a first-pass partial renewed counts
        as ``partial``: its latency is the first pass's.
        """
        if not t.is_final and "refine_partial" in t.stages_s:
            self._lat.add("partial_pass2", t.latency_s)  # Whisper partials: their own series
        elif t.passno == 2 and t.is_final:
            self._lat.add("final_pass2", t.latency_s)
            extra = t.stages_s.get("refine", 0.0) + t.stages_s.get("refine_queue", 0.0)
            self._lat.add("endpoint_to_final_pass2", extra)
        elif t.is_final:
            self._lat.add("final", t.latency_s)
        else:
            self._lat.add("partial", t.latency_s)
            for stage, v in t.stages_s.items():
                self._lat.add(f"stage.{stage}", v)

    def latency(self) -> dict[str, dict[str, float]]:
        """p50/p95/p99 (seconds), count and the share over the latency budget, per series."""
        budget = {"partial": self._budget_s}
        return {
            key: {
                "p50": p.p50_s,
                "p95": p.p95_s,
                "p99": p.p99_s,
                "count": p.count,
                "over_budget": p.over_budget_share if p.over_budget_share is not None else -1.0,
            }
            for key, p in sorted(self._lat.summary(budget).items())
        }

    def build(self, state: rt.SupervisorState) -> dict[str, Any]:
        """The status map."""
        sup = self._sup
        actors = []
        for c in state.children:
            child = sup.children.get(c.id)
            hb = child.heartbeat if child is not None else None
            actors.append(
                {
                    "id": c.id,
                    "state": str(c.state),
                    "actor_state": hb.state if hb else "",
                    "pid": c.pid or 0,
                    "restarts": max(0, c.incarnation - 1),
                    "rss_bytes": hb.rss_bytes if hb else 0,
                    "cpu_percent": hb.cpu_percent if hb else 0.0,
                    # None: an actor that works on no fixed chunk (inference, refine, doors)
                    "chunk_ms": hb.gauges.get("chunk_ms") if hb else None,
                    "counters": dict(hb.counters) if hb else {},
                    "gauges": dict(hb.gauges) if hb else {},
                    "heartbeat_age_s": (time.time_ns() - hb.t_ns) / 1e9 if hb else -1.0,
                    "errors": list(child.errors[-3:]) if child else [],
                }
            )
        rings = [_ring_status(plan, sup.rings[plan.name]) for plan in self._plan.rings]
        if sup.dynamic is not None:
            rings += [_ring_status(d.ring_plan, d.ring) for d in sup.dynamic.streams.values()]
        return {
            "instance": sup.paths.instance,
            "pid": os.getpid(),
            "phase": str(state.phase),
            "uptime_s": time.monotonic() - self._t0,
            "sources": self._sources(),
            "actors": actors,
            "rings": rings,
            "latency": self.latency(),
            "chunk_ms": sup.chunk.chunk_ms if sup.chunk else sup.cfg.audio.chunk_ms,
            "chunk_changes": sup.chunk.changes if sup.chunk else 0,
            "chunk_reason": sup.chunk.state.reason if sup.chunk else "fixed",
            "standby": _standby_status(sup),
            "restart_s": dict(sup.restart_s),
            "ring_s": sup.cfg.audio.ring_s,
            "bridge_warnings": sup.bridge_warnings,
            "streams": sup.book.counters(),
            "ended_streams": sup.book.ended(),
            "gaps": {
                sid: [[g.start_frame, g.end_frame, g.reason] for g in gaps]
                for sid, gaps in sup.gaps.items()
            },
            "protocol_errors": sup.protocol_errors,
            "cpu": cpu_account(actors, _own_cpu_s()),
        }

    def _sources(self) -> list[dict[str, Any]]:
        """The configured sources, then the streams opened at run time (gateway, Wyoming:
        ``kind`` is the front door, ``name`` what the client called it, mono at the ring's
        rate)."""
        sup = self._sup
        out = [
            {
                "stream_id": src.stream_id,
                "name": src.name,
                "kind": src.kind,
                "path": src.path,
                "sample_rate_hz": self._plan.formats[src.stream_id].sample_rate_hz,
                "channels": self._plan.formats[src.stream_id].channels,
            }
            for src in sup.cfg.sources()
        ]
        if sup.dynamic is not None:
            out += [
                {
                    "stream_id": sid,
                    "name": d.name,
                    "kind": d.owner,
                    "path": "",
                    "sample_rate_hz": d.ring_plan.sample_rate_hz,
                    "channels": 1,
                }
                for sid, d in sup.dynamic.streams.items()
            ]
        return out


def _standby_status(sup: Observed) -> dict[str, Any]:
    """The hot standby: its process, whether it is warm, how often it took over."""
    if sup.standby is None:
        return {}
    spare = sup.standby.spare
    return {
        "actor": sup.standby.actor_id,
        "identity": spare.identity if spare else "",
        "pid": spare.proc.pid if spare else 0,
        "ready": bool(spare and spare.ready),
        "promotions": sup.standby.promotions,
    }


def _ring_status(plan: RingPlan, ring: Ring) -> dict[str, Any]:
    """One ring's counters: the producer's and each attached reader's (frames)."""
    readers = [s for s in ring.stats_all() if s.reads or s.read_counter]
    return {
        "name": plan.name,
        "stream_id": plan.stream_id,
        "role": plan.role,
        "capacity": ring.capacity,
        "writes": ring.write_counter,
        "sample_rate_hz": plan.sample_rate_hz,
        "readers": [
            {
                "reader": s.reader,
                "fill": s.fill,
                "reads": s.reads,
                "dropped_frames": s.dropped_frames,
                "overruns": s.overruns,
                "underruns": s.underruns,
                "high_water": s.high_water,
            }
            for s in readers
        ],
    }


def _is_cpu(counter: str) -> bool:
    """Whether ``counter`` is CPU time (shown in the CPU section, not with the counters)."""
    return counter == "cpu_ms" or counter.startswith(CPU_PREFIX)


def _own_cpu_s() -> float:
    """This (the supervisor's) process's CPU seconds, user + system."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def cpu_account(actors: list[dict[str, Any]], supervisor_s: float) -> dict[str, dict[str, float]]:
    """CPU seconds per process and, for actors, per activity (their ``cpu_ms_<activity>``
    counters, :mod:`streamasr.actors.cpu_account`); ``other`` is what no activity claims
    (loops, messages, heartbeats). The supervisor's own (event relay, status) is
    ``supervisor``. Totals of the current incarnation of each actor."""
    out: dict[str, dict[str, float]] = {"supervisor": {"total": supervisor_s}}
    for a in actors:
        counters = a["counters"]
        if "cpu_ms" not in counters:
            continue
        row = {"total": counters["cpu_ms"] / 1000.0}
        for key, v in sorted(counters.items()):
            if key.startswith(CPU_PREFIX):
                row[key.removeprefix(CPU_PREFIX)] = v / 1000.0
        row["other"] = max(0.0, row["total"] - sum(v for k, v in row.items() if k != "total"))
        out[a["id"]] = row
    return out


def format_table(status: dict[str, Any]) -> str:
    """Render a status map as the terminal table ``status`` prints."""
    lines = [
        f"streamasr instance {status['instance']} (pid {status['pid']}, "
        f"{status['phase']}, up {status['uptime_s']:.0f} s)"
    ]
    names = {src["stream_id"]: src["name"] for src in status["sources"] if src["name"]}
    for src in status["sources"]:
        what = " ".join(part for part in (src["kind"], src["path"]) if part)
        lines.append(
            f"  stream {_labelled(src['stream_id'], names)}: "
            f"{what} {src['sample_rate_hz']} Hz x{src['channels']}"
        )
    lines.append("")
    lines.append(
        f"{'ACTOR':<16} {'STATE':<9} {'PID':>7} {'RESTARTS':>8} {'RSS MB':>7} "
        f"{'CPU%':>6} {'CHUNK':>6}  COUNTERS"
    )
    for a in status["actors"]:
        counters = " ".join(
            f"{k}={v}" for k, v in sorted(a["counters"].items()) if v and not _is_cpu(k)
        )
        lines.append(
            f"{a['id']:<16} {a['state']:<9} {a['pid']:>7} {a['restarts']:>8} "
            f"{a['rss_bytes'] / 2**20:>7.1f} {a['cpu_percent']:>6.1f} "
            f"{_chunk(a)}  {counters}"
        )
    cpu = status.get("cpu") or {}
    if len(cpu) > 1:
        lines += ["", f"{'CPU s':<16} {'total':>8}  by activity"]
        for proc, row in cpu.items():
            parts = ", ".join(f"{k} {v:.1f}" for k, v in row.items() if k != "total")
            lines.append(f"{proc:<16} {row['total']:>8.1f}  {parts}")
    lines += [
        "",
        f"{'RING':<34} {'CAP':>8} {'WRITES':>10} {'RDR':>3} {'FILL':>7} "
        f"{'LOST':>7} {'OVERRUN':>7} {'UNDERRUN':>8} {'HIGH':>7}",
    ]
    for r in status["rings"]:
        for rd in r["readers"] or [
            {
                "reader": "-",
                "fill": 0,
                "dropped_frames": 0,
                "overruns": 0,
                "underruns": 0,
                "high_water": 0,
            }
        ]:
            lines.append(
                f"{r['name']:<34} {r['capacity']:>8} {r['writes']:>10} "
                f"{rd['reader']:>3} {rd['fill']:>7} {rd['dropped_frames']:>7} "
                f"{rd['overruns']:>7} {rd['underruns']:>8} {rd['high_water']:>7}"
            )
    if status["latency"]:
        lines += [
            "",
            f"{'LATENCY':<24} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'n':>6} {'>budget':>8}",
        ]
        for k, v in status["latency"].items():
            share = f"{v['over_budget']:.0%}" if v["over_budget"] >= 0 else ""
            lines.append(
                f"{k:<24} {v['p50'] * 1e3:>8.1f} {v['p95'] * 1e3:>8.1f} "
                f"{v['p99'] * 1e3:>8.1f} {v['count']:>6} {share:>8}"
            )
    for sid, c in status["streams"].items():
        counts = " ".join(f"{k}={v}" for k, v in c.items())
        lines.append(f"\nstream {_labelled(sid, names)}: {counts}")
    ended = status.get("ended_streams", {})
    if ended.get("streams"):
        lines.append("\nended streams: " + " ".join(f"{k}={v}" for k, v in ended.items()))
    if status["protocol_errors"]:
        lines.append(f"protocol errors: {status['protocol_errors']}")
    return "\n".join(lines)


def _labelled(stream_id: str, names: Mapping[str, str]) -> str:
    """``ws-1 (alice)`` where the stream has a display name, else the id alone."""
    name = names.get(stream_id, "")
    return f"{stream_id} ({name})" if name else stream_id


def _chunk(actor: Mapping[str, Any]) -> str:
    """The CHUNK cell: the chunk size (ms) an actor reports as its ``chunk_ms`` gauge, or
    ``-`` for an actor that works on no fixed chunk (inference, refine, front doors)."""
    if actor.get("chunk_ms") is None:
        return f"{'-':>6}"
    return f"{actor['chunk_ms']:>4.0f}ms"
