"""Pipeline configuration: TOML (``tomllib``) into frozen dataclasses.

Every section is a frozen dataclass with documented defaults; the loader walks the TOML
tables generically, rejects unknown keys and wrongly typed values with their key path
(``ConfigError: supervisor.max_restarts: must be >= 0``) and runs each section's range
checks. Backend option tables (``[inference.pocketsphinx]``, ``[refine]``'s engine options)
are kept as plain maps here and validated by the backend factory, which knows their keys.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from streamasr.actors.errors import ConfigError
from streamasr.supervisor.mask import DisplayConfig

SourceKind = Literal["mic", "file", "stdin", "none"]
Strategy = Literal["one_for_one", "rest_for_one"]
Finals = Literal["accurate", "fast"]

#: Most inference worker processes (``[inference] workers``).
MAX_WORKERS = 16

#: ``source.path`` value naming the speech sample shipped with the package.
SAMPLE = "sample"


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """``[supervisor]``: process supervision. Times in seconds."""

    instance: str = "default"
    runtime_dir: str = ""
    strategy: Strategy = "one_for_one"
    max_restarts: int = 5
    period_s: float = 60.0
    heartbeat_interval_s: float = 0.5
    heartbeat_timeout_s: float = 5.0
    ready_timeout_s: float = 120.0
    shutdown_timeout_s: float = 5.0
    status_interval_s: float = 1.0
    hot_standby: bool = False

    def validate(self) -> None:
        """Range checks."""
        _require(
            self.instance.replace("-", "").replace("_", "").isalnum(),
            "supervisor.instance",
            "must be letters, digits, '-' or '_'",
        )
        _require(self.max_restarts >= 0, "supervisor.max_restarts", "must be >= 0")
        for name in (
            "period_s",
            "heartbeat_interval_s",
            "heartbeat_timeout_s",
            "ready_timeout_s",
            "shutdown_timeout_s",
            "status_interval_s",
        ):
            _require(getattr(self, name) > 0, f"supervisor.{name}", "must be > 0")
        _require(
            self.heartbeat_timeout_s > 2 * self.heartbeat_interval_s,
            "supervisor.heartbeat_timeout_s",
            "must be > 2 x heartbeat_interval_s",
        )


@dataclass(frozen=True, slots=True)
class EventsConfig:
    """``[events]``: where transcripts and lifecycle events are published.

    The PUB socket always binds ``ipc://<runtime_dir>/events``; ``tcp`` adds a TCP endpoint
    (``""`` = none). Bind 127.0.0.1 unless the box must serve other hosts. ``curve_secret``:
    a file holding the server's CURVE secret key (Z85; ``streamasr-supervisor keygen``); when
    set, TCP consumers must authenticate with a key whose public half is a file in
    ``curve_clients`` (a directory), and traffic is encrypted.
    """

    tcp: str = ""
    history: int = 1000
    curve_secret: str = ""
    curve_clients: str = ""

    def validate(self) -> None:
        """Range checks."""
        _require(
            self.tcp == "" or self.tcp.startswith("tcp://"),
            "events.tcp",
            "must be '' or a tcp:// endpoint",
        )
        _require(self.history >= 0, "events.history", "must be >= 0")
        _require(
            bool(self.curve_secret) == bool(self.curve_clients),
            "events.curve_clients",
            "curve_secret and curve_clients go together",
        )
        _require(
            not self.curve_secret or bool(self.tcp),
            "events.curve_secret",
            "CURVE protects the tcp endpoint: set events.tcp",
        )


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """``[source]``: where audio comes from.

    ``kind``: ``mic`` (sounddevice input; ``device`` = name or index, ``""`` = default),
    ``file`` (WAV/FLAC at ``path``, relative to the config file; ``"sample"`` = the
    speech sample shipped with the package), ``stdin`` (raw PCM: ``raw_rate_hz``, ``raw_format``
    s16le/s32le/f32le, ``channels``), ``none`` (no local source: a box that only serves
    remote clients through the gateway or Wyoming server). ``realtime``: pace file/stdin
    sources at real time.
    """

    kind: SourceKind = "mic"
    path: str = ""
    device: str = ""
    channels: int = 1
    channel: int = -1
    raw_rate_hz: int = 16000
    raw_format: str = "s16le"
    realtime: bool = True
    stream_id: str = "s0"
    name: str = ""
    gap_fill: Literal["comfort_noise", "zeros"] = "comfort_noise"
    reopen_initial_s: float = 0.2
    reopen_factor: float = 2.0
    reopen_max_s: float = 5.0
    reopen_stable_s: float = 10.0
    stall_s: float = 3.0

    def validate(self) -> None:
        """Range checks."""
        _require(
            self.kind != "file" or self.path != "",
            "source.path",
            "required when source.kind = 'file'",
        )
        _require(1 <= self.channels <= 64, "source.channels", "must be in 1..64")
        _require(-1 <= self.channel < 64, "source.channel", "must be -1 (downmix) or 0..63")
        _require(
            1000 <= self.raw_rate_hz <= 384000, "source.raw_rate_hz", "must be in 1000..384000"
        )
        _require(
            self.raw_format in ("s16le", "s32le", "f32le"),
            "source.raw_format",
            "must be one of s16le, s32le, f32le",
        )
        _require(
            self.stream_id.replace("-", "").replace("_", "").isalnum(),
            "source.stream_id",
            "must be letters, digits, '-' or '_'",
        )
        from streamasr.actors.capture.core import LiveOptions

        LiveOptions.from_source(dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """``[audio]``: rings and chunking.

    ``sample_rate_hz``: model rate the feature stage converts to. ``chunk_ms``: capture and
    feature chunk (50..200). ``ring_s``: seconds of audio each ring holds, enough to bridge
    an actor restart.
    """

    sample_rate_hz: int = 16000
    chunk_ms: int = 100
    ring_s: float = 32.0
    adaptive_chunk: bool = False
    latency_budget_ms: float = 100.0

    def validate(self) -> None:
        """Range checks."""
        _require(
            self.sample_rate_hz in (8000, 16000), "audio.sample_rate_hz", "must be 8000 or 16000"
        )
        _require(50 <= self.chunk_ms <= 200, "audio.chunk_ms", "must be in 50..200")
        _require(4.0 <= self.ring_s <= 600.0, "audio.ring_s", "must be in 4..600")
        _require(self.latency_budget_ms > 0, "audio.latency_budget_ms", "must be > 0")


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """``[feature]``: input conditioning. ``dc_block``: remove DC offset (one-pole high-pass)."""

    dc_block: bool = False

    def validate(self) -> None:
        """Nothing to check beyond types."""


@dataclass(frozen=True, slots=True)
class InferenceConfig:
    """``[inference]``: the streaming recogniser.

    ``backend``: ``pocketsphinx`` (default, offline) or ``torch``; the table
    ``[inference.<backend>]`` holds that backend's options, validated by the backend.
    ``delay_ms``: artificial CPU work per decoded chunk, in ms (fault injection: simulates a
    model slower than real time; 0 in production). ``workers``: inference processes; the
    streams are dealt to them in turn (one decoder loop per process: more workers decode
    streams in parallel on more cores). ``"auto"`` (default): one per CPU core this process
    may use, but no more than the streams the config can have (its local streams plus the
    front doors' ``max_streams``), so a single stream keeps a single worker.
    """

    backend: str = "pocketsphinx"
    delay_ms: float = 0.0
    workers: int | Literal["auto"] = "auto"
    pocketsphinx: dict[str, Any] = field(default_factory=dict)
    torch: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Range checks."""
        _require(
            self.backend in ("pocketsphinx", "torch"),
            "inference.backend",
            "must be 'pocketsphinx' or 'torch'",
        )
        _require(
            self.workers == "auto" or 1 <= self.workers <= MAX_WORKERS,
            "inference.workers",
            f"must be 'auto' or in 1..{MAX_WORKERS}",
        )
        if self.backend == "pocketsphinx":
            from streamasr.actors.asr.pocketsphinx_backend import PocketsphinxOptions
            from streamasr.actors.asr.registry import options_from_mapping

            options_from_mapping(PocketsphinxOptions, self.pocketsphinx, "inference.pocketsphinx")

    def backend_options(self) -> dict[str, Any]:
        """The option table of the selected backend."""
        return dict(self.pocketsphinx if self.backend == "pocketsphinx" else self.torch)


@dataclass(frozen=True, slots=True)
class RefineConfig:
    """``[refine]``: the accurate second pass.

    ``finals``: ``accurate`` (Whisper finals, default) or ``fast`` (first pass only).
    ``model``: ``base`` (weights from pip), a CTranslate2 Whisper directory, or a model name.
    ``margin_s``: audio added on each side of an utterance. ``max_queue``: pending jobs
    beyond which finals fall back to the first pass. ``budget_s``: a job older than this (in
    seconds since its endpoint) falls back too; neither applies when only files or stdin run
    with ``--fast`` and no front door is on (``plan.has_deadline``). ``cpu_threads``:
    CTranslate2 threads. ``partials``: ``auto`` (Whisper partials with local agreement while
    the refine actor has headroom, first-pass partials otherwise) or ``off``;
    ``partial_interval_ms``: milliseconds between two Whisper runs on one utterance.
    ``wide_view``: unsure finals of segments up to 12 s whose short-window views disagree,
    or agree while neither is sure (then only where finals have no deadline), are also
    decoded in the padded 30 s window (the most confident view is kept).
    ``delay_ms``: artificial CPU work per Whisper call, in ms (fault injection: simulates a
    slower machine; 0 in production).
    """

    finals: Finals = "accurate"
    model: str = "base"
    margin_s: float = 0.2
    max_queue: int = 16
    budget_s: float = 5.0
    cpu_threads: int = 2
    partials: Literal["auto", "off"] = "auto"
    partial_interval_ms: int = 500
    wide_view: bool = True
    delay_ms: float = 0.0

    def validate(self) -> None:
        """Range checks."""
        _require(0.0 <= self.margin_s <= 2.0, "refine.margin_s", "must be in 0..2")
        _require(self.max_queue >= 1, "refine.max_queue", "must be >= 1")
        _require(self.budget_s > 0, "refine.budget_s", "must be > 0")
        _require(1 <= self.cpu_threads <= 64, "refine.cpu_threads", "must be in 1..64")
        _require(
            100 <= self.partial_interval_ms <= 10_000,
            "refine.partial_interval_ms",
            "must be in 100..10000",
        )
        _require(self.delay_ms >= 0, "refine.delay_ms", "must be >= 0")

    def accurate_partials(self) -> bool:
        """Whether first-pass partials go to the refine actor: with accurate finals it keeps
        the audio of the utterance in progress, and makes Whisper partials when ``auto``."""
        return self.finals == "accurate"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """``[gateway]``: the WebSocket front door (Vosk-compatible, classic JSON, native).

    ``host``/``port``: where it listens (127.0.0.1:2700 by default). ``max_streams``:
    concurrent connections; ``max_message_bytes``: largest WebSocket message;
    ``idle_timeout_s``: a connection silent this long is closed; ``token``: shared secret a
    client must present (``?token=`` or ``Authorization: Bearer``), "" = none;
    ``tls_cert``/``tls_key``: PEM paths to serve wss://; ``origins``: browser Origin
    allow-list (empty = any).
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2700
    max_streams: int = 16
    max_message_bytes: int = 1 << 20
    idle_timeout_s: float = 30.0
    token: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    origins: tuple[str, ...] = ()

    def validate(self) -> None:
        """Range checks."""
        _require(0 <= self.port <= 65535, "gateway.port", "must be in 0..65535")
        _require(1 <= self.max_streams <= 1024, "gateway.max_streams", "must be in 1..1024")
        _require(
            1024 <= self.max_message_bytes <= 1 << 26,
            "gateway.max_message_bytes",
            "must be in 1024..67108864",
        )
        _require(self.idle_timeout_s > 0, "gateway.idle_timeout_s", "must be > 0")
        _require(
            bool(self.tls_cert) == bool(self.tls_key),
            "gateway.tls_key",
            "tls_cert and tls_key go together",
        )


@dataclass(frozen=True, slots=True)
class WyomingConfig:
    """``[wyoming]``: a Wyoming protocol server for Home Assistant (TCP ``host``:``port``)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 10300
    max_streams: int = 4

    def validate(self) -> None:
        """Range checks."""
        _require(0 <= self.port <= 65535, "wyoming.port", "must be in 0..65535")
        _require(1 <= self.max_streams <= 256, "wyoming.max_streams", "must be in 1..256")


@dataclass(frozen=True, slots=True)
class WakeConfig:
    """``[wake]``: wake-word gating of the local streams (the voice-assistant mode).

    While listening, a gated stream only feeds the wake-word detector (``engine``, with
    ``phrases`` and per-phrase ``thresholds``; empty lists take the engine's tuned defaults);
    on a detection, recognition starts ``preroll_ms`` before the detection fired but not
    before the phrase ended (audio taken back from the ring, so nothing said right after the
    phrase is lost) and runs until the command's final, then the stream listens again. No
    speech within ``command_timeout_ms`` of the phrase ends the command window; a command is
    cut at ``max_command_ms``. ``grammar`` (a JSGF file) or ``commands`` (a list of phrases)
    restricts what a command can be (pocketsphinx only; such finals are not re-decoded by the
    second pass). ``streams``: the stream ids to gate (empty: every local stream).
    """

    enabled: bool = False
    engine: str = "pocketsphinx"
    phrases: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()
    preroll_ms: int = 1000
    command_timeout_ms: int = 5000
    max_command_ms: int = 15000
    grammar: str = ""
    commands: tuple[str, ...] = ()
    streams: tuple[str, ...] = ()

    def validate(self) -> None:
        """Range checks; the phrases and the grammar are checked against the dictionary."""
        _require(0 <= self.preroll_ms <= 5000, "wake.preroll_ms", "must be in 0..5000")
        _require(
            500 <= self.command_timeout_ms <= 60000,
            "wake.command_timeout_ms",
            "must be in 500..60000",
        )
        _require(
            1000 <= self.max_command_ms <= 120000, "wake.max_command_ms", "must be in 1000..120000"
        )
        _require(
            not (self.grammar and self.commands),
            "wake.grammar",
            "give grammar or commands, not both",
        )
        if self.enabled:
            self.detector_options()

    def detector_options(self) -> Any:
        """The engine's :class:`~streamasr.actors.wake.base.WakeOptions` (raises ConfigError)."""
        from streamasr.actors.wake.base import WakeOptions

        kwargs: dict[str, Any] = {}
        if self.phrases:
            kwargs["phrases"] = self.phrases
        if self.thresholds:
            kwargs["thresholds"] = self.thresholds
        try:
            return WakeOptions(**kwargs)
        except ConfigError as exc:
            text = str(exc)
            raise ConfigError(text if text.startswith("wake.") else f"wake.{text}") from None

    def recognizer_options(self) -> dict[str, Any]:
        """Pocketsphinx options that restrict commands to the grammar (empty: no grammar)."""
        if self.grammar:
            return {"grammar_path": self.grammar}
        if self.commands:
            return {"commands": list(self.commands)}
        return {}


@dataclass(frozen=True, slots=True)
class Config:
    """The whole pipeline configuration."""

    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    feature: FeatureConfig = field(default_factory=FeatureConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    wyoming: WyomingConfig = field(default_factory=WyomingConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    streams: tuple[SourceConfig, ...] = ()

    def validate(self) -> None:
        """Validate every section."""
        for f in dataclasses.fields(self):
            if f.name != "streams":
                getattr(self, f.name).validate()
        ids = []
        for i, src in enumerate(self.streams):
            try:
                src.validate()
            except ConfigError as exc:
                raise ConfigError(f"streams[{i}].{str(exc).removeprefix('source.')}") from None
            ids.append(src.stream_id)
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        _require(not dupes, "streams", f"duplicate stream_id {', '.join(dupes)}")
        _require(
            not any(s.kind == "stdin" for s in self.streams[1:]),
            "streams",
            "only one stream can read stdin",
        )
        unknown = sorted(set(self.wake.streams) - {s.stream_id for s in self.sources()})
        _require(not unknown, "wake.streams", f"no local stream {', '.join(unknown)}")
        _require(
            not (self.wake.recognizer_options() and self.inference.backend != "pocketsphinx"),
            "wake.grammar",
            "command grammars need the pocketsphinx backend",
        )
        if self.wake.recognizer_options():
            from streamasr.actors.asr.pocketsphinx_backend import PocketsphinxOptions
            from streamasr.actors.asr.registry import options_from_mapping

            table = {**self.inference.pocketsphinx, **self.wake.recognizer_options()}
            try:
                options_from_mapping(PocketsphinxOptions, table, "inference.pocketsphinx")
            except ConfigError as exc:
                raise ConfigError(f"wake: {exc}") from None

    def sources(self) -> tuple[SourceConfig, ...]:
        """The local streams: ``[[streams]]`` if given, else ``[source]`` (none if kind=none)."""
        return tuple(s for s in (self.streams or (self.source,)) if s.kind != "none")

    def inference_workers(self, cores: int | None = None) -> int:
        """How many inference processes to run (``[inference] workers`` with "auto" resolved
        against ``cores``, default: the CPU cores this process may run on)."""
        if self.inference.workers != "auto":
            return self.inference.workers
        if cores is None:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        streams = len(self.sources()) + self.dynamic_streams()
        return max(1, min(cores, streams, MAX_WORKERS))

    def dynamic_streams(self) -> int:
        """How many streams front doors may open at run time."""
        return (self.gateway.max_streams if self.gateway.enabled else 0) + (
            self.wyoming.max_streams if self.wyoming.enabled else 0
        )


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _build(cls: type[Any], table: Any, path: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, checking keys and types by key path."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path or 'config'}: must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(f"{path + '.' if path else ''}{key}: unknown key")
    kwargs: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{path}.{name}" if path else name
        kwargs[name] = _coerce(hints[name], value, key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            try:
                return _coerce(arm, value, key)
            except ConfigError:
                continue
        arms = " or ".join(_describe(a) for a in typing.get_args(hint))
        raise ConfigError(f"{key}: must be {arms}, got {type(value).__name__} {value!r}")
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}: must be one of {', '.join(map(repr, choices))}")
        return value
    if origin is tuple:
        (item, _) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be an array")
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: must be a table")
        return dict(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise ConfigError(
        f"{key}: must be {getattr(hint, '__name__', hint)}, got {type(value).__name__} {value!r}"
    )


def _describe(hint: Any) -> str:
    """``int``, or ``'auto'`` for a one-value Literal (error messages)."""
    if typing.get_origin(hint) is Literal:
        return " or ".join(map(repr, typing.get_args(hint)))
    return str(getattr(hint, "__name__", hint))


def from_mapping(table: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a parsed TOML map."""
    cfg: Config = _build(Config, table, "")
    cfg.validate()
    return cfg


def load(path: str | Path) -> Config:
    """Load and validate a TOML config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error, unknown key or invalid value.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            table = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML (not UTF-8: {exc.reason})") from None
    cfg = _build(Config, table, "")
    cfg = _grammar_relative_to(cfg, p.parent)
    return _map_sources(cfg, lambda src: _relative_to(src, p.parent))


def _grammar_relative_to(cfg: Config, base: Path) -> Config:
    """``cfg`` with a relative ``[wake] grammar`` path resolved against the config's folder."""
    if cfg.wake.grammar and not Path(cfg.wake.grammar).is_absolute():
        wake = dataclasses.replace(cfg.wake, grammar=str((base / cfg.wake.grammar).resolve()))
        return dataclasses.replace(cfg, wake=wake)
    return cfg


def _relative_to(src: SourceConfig, base: Path) -> SourceConfig:
    if src.path and src.path != SAMPLE and not Path(src.path).is_absolute():
        return dataclasses.replace(src, path=str((base / src.path).resolve()))
    return src


def _map_sources(cfg: Config, fn: typing.Callable[[SourceConfig], SourceConfig]) -> Config:
    """``cfg`` with ``fn`` applied to ``[source]`` and to every ``[[streams]]`` entry."""
    new = dataclasses.replace(cfg, source=fn(cfg.source), streams=tuple(fn(s) for s in cfg.streams))
    new.validate()
    return new


def resolve_sample(cfg: Config) -> Config:
    """Replace the source path ``"sample"`` by the speech sample shipped with the package."""

    def fix(src: SourceConfig) -> SourceConfig:
        if src.kind == "file" and src.path == SAMPLE:
            from streamasr.actors.capture.sources import sample_path

            return dataclasses.replace(src, path=str(sample_path()))
        return src

    return _map_sources(cfg, fix)


def set_realtime(cfg: Config, realtime: bool) -> Config:
    """``cfg`` with every stream's ``realtime`` set (``--fast``)."""
    return _map_sources(cfg, lambda src: dataclasses.replace(src, realtime=realtime))


def replace(cfg: Config, section: str, **changes: Any) -> Config:
    """Return ``cfg`` with fields of one section changed (used for CLI overrides)."""
    new_section = dataclasses.replace(getattr(cfg, section), **changes)
    new = dataclasses.replace(cfg, **{section: new_section})
    new.validate()
    return new
