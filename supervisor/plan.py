"""From a config to a pipeline plan: which rings to create and which actors to spawn.

Pure apart from probing each source's native format. Every stream gets an audio ring (its
source's rate and channels), a PCM ring (model rate, mono), a capture and a feature actor;
the streams are dealt in turn to the inference workers (``[inference] workers``; "auto": one
per core, at most one per stream), and (with accurate finals) one refine actor
re-transcribes every stream's utterances. Front doors (``gateway``, ``wyoming``) come next
(the streams they open at run time are managed by :mod:`streamasr.supervisor.dynamic`),
and the voice ``assistant`` last.
With a single stream the per-stream actors are simply ``capture`` and ``feature``; with
several, ``capture-<stream>`` / ``feature-<stream>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from streamasr.actors.asr.pocketsphinx_options import PocketsphinxOptions
from streamasr.actors.capture.formats import SourceFormat
from streamasr.actors.capture.sources import probe_source
from streamasr.actors.settings import SourceConfig
from streamasr.actors.spec import ActorSpec, RingRef
from streamasr.actors.typed import table_of
from streamasr.ringbuf import Ring
from streamasr.supervisor.config import Config
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.restart_types import ChildSpec

#: Reader slots of the PCM ring: inference, refine.
PCM_READER_INFERENCE, PCM_READER_REFINE = 0, 1


@dataclass(frozen=True, slots=True)
class RingPlan:
    """One ring the supervisor creates: name, capacity (frames), frame shape, rate (Hz)."""

    stream_id: str
    role: str
    name: str
    capacity: int
    frame_shape: tuple[int, ...]
    sample_rate_hz: int
    dtype: str = "float32"

    def create(self) -> Ring:
        """Create the ring's segment (the supervisor owns it and unlinks it at the end)."""
        return Ring.create(
            self.name,
            self.capacity,
            np.dtype(self.dtype),
            self.frame_shape,
            max_readers=2,
            sample_rate_hz=self.sample_rate_hz,
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """Rings in creation order, actor specs in start order, and each stream's chain."""

    formats: dict[str, SourceFormat]
    rings: tuple[RingPlan, ...]
    actors: tuple[ActorSpec, ...]
    children: tuple[ChildSpec, ...]
    chains: dict[str, tuple[str, ...]]

    def actor(self, actor_id: str) -> ActorSpec:
        """The spec of ``actor_id``."""
        for a in self.actors:
            if a.actor_id == actor_id:
                return a
        raise KeyError(actor_id)

    def next_actor(self, stream_id: str, actor_id: str) -> str | None:
        """The actor after ``actor_id`` in ``stream_id``'s chain (None for the last)."""
        chain = self.chains[stream_id]
        i = chain.index(actor_id)
        return chain[i + 1] if i + 1 < len(chain) else None

    def workers(self) -> list[str]:
        """Ids of the inference workers, in the order streams are dealt to them."""
        return [a.actor_id for a in self.actors if a.kind == "inference"]

    def captures(self) -> list[str]:
        """Ids of the capture actors."""
        return [a.actor_id for a in self.actors if a.kind == "capture"]


def pow2_at_least(n: int) -> int:
    """The smallest power of two >= ``n`` (frames)."""
    return 1 << max(0, int(np.ceil(np.log2(max(1, n)))))


def probe(src: SourceConfig) -> SourceFormat:
    """The native format (rate Hz, channels) of one configured source."""
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


@dataclass(frozen=True, slots=True)
class _Ctx:
    cfg: Config
    paths: InstancePaths
    supervisor_pid: int
    log_level: str

    def spec(
        self,
        actor_id: str,
        kind: str,
        stream_id: str,
        rings: dict[str, RingRef],
        bells: dict[str, str],
        options: dict[str, Any],
    ) -> ActorSpec:
        return ActorSpec(
            actor_id=actor_id,
            kind=kind,
            supervisor_pid=self.supervisor_pid,
            control=self.paths.control,
            rings=rings,
            bells=bells,
            stream_id=stream_id,
            heartbeat_interval_s=self.cfg.supervisor.heartbeat_interval_s,
            options=options,
            log_level=self.log_level,
        )


def build(
    cfg: Config,
    paths: InstancePaths,
    supervisor_pid: int,
    formats: dict[str, SourceFormat],
    log_level: str = "WARNING",
) -> Plan:
    """The rings and actors for ``cfg``; ``formats`` maps stream id -> its source format."""
    ctx = _Ctx(cfg, paths, supervisor_pid, log_level)
    sources = cfg.sources()
    single = len(sources) == 1
    rings: list[RingPlan] = []
    actors: list[ActorSpec] = []
    workers = inference_ids(cfg)
    inf_rings: dict[str, dict[str, RingRef]] = {w: {} for w in workers}
    inf_bells: dict[str, dict[str, str]] = {w: {} for w in workers}
    ref_rings: dict[str, RingRef] = {}
    chains: dict[str, tuple[str, ...]] = {}
    for i, src in enumerate(sources):
        sid, fmt = src.stream_id, formats[src.stream_id]
        worker = workers[i % len(workers)]
        audio = RingPlan(
            sid,
            "audio",
            paths.segment(sid, "audio"),
            pow2_at_least(int(cfg.audio.ring_s * fmt.sample_rate_hz)),
            (fmt.channels,),
            fmt.sample_rate_hz,
        )
        pcm = RingPlan(
            sid,
            "pcm",
            paths.segment(sid, "pcm"),
            pow2_at_least(int(pcm_ring_s(cfg) * cfg.audio.sample_rate_hz)),
            (1,),
            cfg.audio.sample_rate_hz,
        )
        rings += [audio, pcm]
        cap_id = "capture" if single else f"capture-{sid}"
        feat_id = "feature" if single else f"feature-{sid}"
        actors.append(
            ctx.spec(
                cap_id,
                "capture",
                sid,
                {"out": RingRef(audio.name)},
                {"out": paths.bell(f"{sid}-audio", 0)},
                sections(cfg, "audio", source=src),
            )
        )
        actors.append(
            ctx.spec(
                feat_id,
                "feature",
                sid,
                {"in": RingRef(audio.name, 0), "out": RingRef(pcm.name)},
                {"in": paths.bell(f"{sid}-audio", 0), "out": paths.bell(f"{sid}-pcm", 0)},
                sections(cfg, "audio", "feature", source=src),
            )
        )
        inf_rings[worker][f"in:{sid}"] = RingRef(pcm.name, PCM_READER_INFERENCE)
        inf_bells[worker][f"in:{sid}"] = paths.bell(f"{sid}-pcm", 0)
        ref_rings[f"in:{sid}"] = RingRef(pcm.name, PCM_READER_REFINE)
        chains[sid] = (cap_id, feat_id, worker)
    first = sources[0].stream_id if sources else ""
    for worker in workers:
        rings_of = inf_rings[worker]
        actors.append(
            ctx.spec(
                worker,
                "inference",
                next(iter(rings_of), "in:")[3:],
                rings_of,
                inf_bells[worker],
                {
                    **sections(cfg, "inference", "refine", "audio", "wake", "endpoint"),
                    "wake_streams": gated_streams(cfg),
                    "deadline": has_deadline(cfg),
                },
            )
        )
    if cfg.refine.finals == "accurate":
        actors.append(
            ctx.spec(
                "refine",
                "refine",
                first,
                ref_rings,
                {},
                {**sections(cfg, "refine"), "deadline": has_deadline(cfg)},
            )
        )
        chains = {sid: (*chain, "refine") for sid, chain in chains.items()}
    front: dict[str, Any] = {
        **sections(cfg, "audio", "wake", "refine"),
        "events_endpoint": paths.events,
    }
    if cfg.gateway.enabled:
        actors.append(
            ctx.spec(
                "gateway",
                "gateway",
                "",
                {},
                {},
                {**front, **sections(cfg, "gateway", "openai")},
            )
        )
    if cfg.wyoming.enabled:
        actors.append(
            ctx.spec(
                "wyoming",
                "wyoming",
                "",
                {},
                {},
                {**front, **sections(cfg, "wyoming")},
            )
        )
    if cfg.assistant.enabled:
        served = assistant_streams(cfg)
        chains = {sid: (*c, "assistant") if sid in served else c for sid, c in chains.items()}
        actors.append(
            ctx.spec(
                "assistant",
                "assistant",
                "",
                {},
                {},
                {
                    **sections(cfg, "assistant", "tts"),
                    "actions": [table_of(a) for a in cfg.actions],
                    "events_endpoint": paths.events,
                    "served_streams": served,
                    "mic_streams": [s.stream_id for s in cfg.sources() if s.kind == "mic"],
                    "wake_streams": gated_streams(cfg),
                },
            )
        )
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
    return Plan(
        formats=formats, rings=tuple(rings), actors=tuple(actors), children=children, chains=chains
    )


def sections(cfg: Config, *names: str, **given: Any) -> dict[str, Any]:
    """Spec options: the config sections ``names`` (and ``given`` ones, e.g. one stream's
    ``source``) as the plain maps an actor reads back with :meth:`ActorSpec.section`."""
    chosen = {name: getattr(cfg, name) for name in names} | given
    return {name: table_of(section) for name, section in chosen.items()}


def has_deadline(cfg: Config) -> bool:
    """Whether accurate finals have a deadline (``refine.budget_s`` / ``max_queue`` apply).

    False only when every stream is a file or stdin read faster than real time (``--fast``)
    and no front door can open live streams: then the refine actor's ring cursor holds the
    reader back (backpressure), nobody waits on a clock, and every final is Whisper's however
    slow the machine is.
    """
    if cfg.gateway.enabled or cfg.wyoming.enabled:
        return True
    sources = cfg.sources()
    return not sources or any(s.kind not in ("file", "stdin") or s.realtime for s in sources)


#: Seconds the PCM ring holds beyond the longest possible utterance (margins, look-back).
_RING_SLACK_S = 4.0


def pcm_ring_s(cfg: Config, deadline: bool | None = None) -> float:
    """Seconds of audio each PCM ring holds: ``audio.ring_s``; where finals have no deadline
    (files read ``--fast``, see :func:`has_deadline`; or ``deadline=False``: a run-time
    stream its front door paces by the ring's room), more if the longest utterance the first
    pass can make (twice ``max_utterance_s``, see PocketsphinxOptions) would not fit: the
    refine actor keeps an utterance in progress in the ring and such a reader waits for it, so
    an utterance longer than the ring would stall it. A live source never waits: what it
    overwrites of a longer utterance is counted, and ``ring_s`` stays the user's."""
    if deadline is None:
        deadline = has_deadline(cfg)
    if cfg.inference.backend != "pocketsphinx" or deadline:
        return cfg.audio.ring_s
    ps = cfg.inference.pocketsphinx
    max_utt = float(ps.get("max_utterance_s", PocketsphinxOptions().max_utterance_s))
    if max_utt <= 0.0:  # monologues never split: no bound to size for
        return cfg.audio.ring_s
    return max(cfg.audio.ring_s, 2.0 * max_utt + _RING_SLACK_S)


def gated_streams(cfg: Config) -> list[str]:
    """Local stream ids that ``[wake]`` gates (none unless it is enabled)."""
    if not cfg.wake.enabled:
        return []
    local = [s.stream_id for s in cfg.sources()]
    return [sid for sid in local if not cfg.wake.streams or sid in cfg.wake.streams]


def assistant_streams(cfg: Config) -> list[str]:
    """Local stream ids whose commands the assistant answers (``[assistant] streams``; empty:
    every local stream). Streams opened by the front doors are not among them: a Wyoming
    client (Home Assistant) runs its own intents and speech."""
    local = [s.stream_id for s in cfg.sources()]
    return [sid for sid in local if not cfg.assistant.streams or sid in cfg.assistant.streams]


def inference_ids(cfg: Config) -> list[str]:
    """Actor ids of the inference workers: ``inference``, then ``inference-1`` ... (one per
    ``[inference] workers``, "auto" resolved on this machine); streams are dealt to them in
    turn."""
    return ["inference", *(f"inference-{k}" for k in range(1, cfg.inference_workers()))]
