"""From a config to a pipeline plan: which rings to create and which actors to spawn.

Pure apart from probing the source's native format. One stream per pipeline today; every
name and message already carries the stream id, so more streams add rings and actors here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamasr.actors.sources import SourceFormat, probe_source
from streamasr.actors.spec import ActorSpec, RingRef
from streamasr.supervisor.config import Config
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.restart_policy import ChildSpec


@dataclass(frozen=True, slots=True)
class RingPlan:
    """One ring the supervisor creates: name, capacity (frames), frame shape, rate (Hz)."""

    role: str
    name: str
    capacity: int
    frame_shape: tuple[int, ...]
    sample_rate_hz: int
    dtype: str = "float32"


@dataclass(frozen=True, slots=True)
class Plan:
    """Rings in creation order and actor specs in start order."""

    source: SourceFormat
    rings: tuple[RingPlan, ...]
    actors: tuple[ActorSpec, ...]
    children: tuple[ChildSpec, ...]

    def actor(self, actor_id: str) -> ActorSpec:
        """The spec of ``actor_id``."""
        for a in self.actors:
            if a.actor_id == actor_id:
                return a
        raise KeyError(actor_id)

    def next_actor(self, actor_id: str) -> str | None:
        """The actor after ``actor_id`` in the chain (None for the last)."""
        ids = [a.actor_id for a in self.actors]
        i = ids.index(actor_id)
        return ids[i + 1] if i + 1 < len(ids) else None


def pow2_at_least(n: int) -> int:
    """The smallest power of two >= ``n`` (frames)."""
    return 1 << max(0, int(np.ceil(np.log2(max(1, n)))))


def probe(cfg: Config) -> SourceFormat:
    """The native format (rate Hz, channels) of the configured source."""
    src = cfg.source
    if src.kind == "mic":
        device: str | int | None = src.device or None
        if isinstance(device, str) and device.isdigit():
            device = int(device)
        return probe_source("mic", raw_channels=src.channels, device=device)
    if src.kind == "stdin":
        return probe_source(
            "-", raw_rate_hz=src.raw_rate_hz, raw_channels=src.channels, raw_format=src.raw_format
        )
    return probe_source(src.path)


def build(
    cfg: Config,
    paths: InstancePaths,
    supervisor_pid: int,
    fmt: SourceFormat,
    log_level: str = "WARNING",
) -> Plan:
    """The rings and actors for ``cfg`` reading a source of format ``fmt``."""
    sid = cfg.source.stream_id
    model_rate = cfg.audio.sample_rate_hz
    audio = RingPlan(
        "audio",
        paths.segment(sid, "audio"),
        pow2_at_least(int(cfg.audio.ring_s * fmt.sample_rate_hz)),
        (fmt.channels,),
        fmt.sample_rate_hz,
    )
    pcm = RingPlan(
        "pcm",
        paths.segment(sid, "pcm"),
        pow2_at_least(int(cfg.audio.ring_s * model_rate)),
        (1,),
        model_rate,
    )
    sections = {f.name: dataclasses.asdict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}

    def spec(
        kind: str, rings: dict[str, RingRef], bells: dict[str, str], keys: tuple[str, ...]
    ) -> ActorSpec:
        options: dict[str, Any] = {k: sections[k] for k in keys}
        return ActorSpec(
            actor_id=kind,
            kind=kind,
            supervisor_pid=supervisor_pid,
            control=paths.control,
            rings=rings,
            bells=bells,
            stream_id=sid,
            heartbeat_interval_s=cfg.supervisor.heartbeat_interval_s,
            options=options,
            log_level=log_level,
        )

    actors = [
        spec(
            "capture",
            {"out": RingRef(audio.name)},
            {"out": paths.bell("audio", 0)},
            ("source", "audio"),
        ),
        spec(
            "feature",
            {"in": RingRef(audio.name, 0), "out": RingRef(pcm.name)},
            {"in": paths.bell("audio", 0), "out": paths.bell("pcm", 0)},
            ("source", "audio", "feature"),
        ),
        spec(
            "inference",
            {"in": RingRef(pcm.name, 0)},
            {"in": paths.bell("pcm", 0)},
            ("inference", "refine", "audio"),
        ),
    ]
    if cfg.refine.finals == "accurate":
        actors.append(spec("refine", {"in": RingRef(pcm.name, 1)}, {}, ("refine",)))
    sup = cfg.supervisor
    children = tuple(
        ChildSpec(
            id=a.actor_id,
            restart="permanent",
            shutdown_timeout_s=sup.shutdown_timeout_s,
            heartbeat_timeout_s=sup.heartbeat_timeout_s,
            ready_timeout_s=sup.ready_timeout_s,
        )
        for a in actors
    )
    return Plan(source=fmt, rings=(audio, pcm), actors=tuple(actors), children=children)
