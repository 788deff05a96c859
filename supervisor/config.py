"""Pipeline configuration: TOML (``tomllib``) into frozen dataclasses.

Every section is a frozen dataclass with documented defaults; the loader walks the TOML
tables generically, rejects unknown keys and wrongly typed values with their key path
(``ConfigError: supervisor.max_restarts: must be >= 0``) and runs each section's range
checks. Backend option tables (``[inference.pocketsphinx]``, ``[refine]``'s engine options)
are kept as plain maps here and validated by the backend factory, which knows their keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from streamasr.actors.asr.endpoint_policy import EndpointOptions
from streamasr.actors.assistant.settings import ActionConfig, AssistantConfig, TtsConfig
from streamasr.actors.errors import ConfigError
from streamasr.actors.settings import (
    MAX_WORKERS,
    SAMPLE,
    AudioConfig,
    FeatureConfig,
    GatewayConfig,
    InferenceConfig,
    OpenAIConfig,
    RefineConfig,
    SourceConfig,
    WyomingConfig,
)
from streamasr.actors.typed import from_table, require
from streamasr.actors.wake.settings import WakeConfig
from streamasr.supervisor.mask import DisplayConfig

Strategy = Literal["one_for_one", "rest_for_one"]

__all__ = [
    "Config",
    "EventsConfig",
    "SupervisorConfig",
    "from_mapping",
    "load",
    "replace",
    "resolve_sample",
    "set_realtime",
]


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
        require(
            self.instance.replace("-", "").replace("_", "").isalnum(),
            "supervisor.instance",
            "must be letters, digits, '-' or '_'",
        )
        require(self.max_restarts >= 0, "supervisor.max_restarts", "must be >= 0")
        for name in (
            "period_s",
            "heartbeat_interval_s",
            "heartbeat_timeout_s",
            "ready_timeout_s",
            "shutdown_timeout_s",
            "status_interval_s",
        ):
            require(getattr(self, name) > 0, f"supervisor.{name}", "must be > 0")
        require(
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
        require(
            self.tcp == "" or self.tcp.startswith("tcp://"),
            "events.tcp",
            "must be '' or a tcp:// endpoint",
        )
        require(self.history >= 0, "events.history", "must be >= 0")
        require(
            bool(self.curve_secret) == bool(self.curve_clients),
            "events.curve_clients",
            "curve_secret and curve_clients go together",
        )
        require(
            not self.curve_secret or bool(self.tcp),
            "events.curve_secret",
            "CURVE protects the tcp endpoint: set events.tcp",
        )


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
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    endpoint: EndpointOptions = field(default_factory=EndpointOptions)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    assistant: AssistantConfig = field(default_factory=AssistantConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    actions: tuple[ActionConfig, ...] = ()
    streams: tuple[SourceConfig, ...] = ()

    def validate(self) -> None:
        """Validate every section (the backend tables by the backend's own options)."""
        from streamasr.actors.asr.pocketsphinx_options import PocketsphinxOptions
        from streamasr.actors.asr.registry import options_from_mapping

        for f in dataclasses.fields(self):
            if f.name not in ("streams", "actions"):
                getattr(self, f.name).validate()
        for i, action in enumerate(self.actions):
            action.validate(f"actions[{i}]")
        ids = []
        for i, src in enumerate(self.streams):
            try:
                src.validate()
            except ConfigError as exc:
                raise ConfigError(f"streams[{i}].{str(exc).removeprefix('source.')}") from None
            ids.append(src.stream_id)
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        require(not dupes, "streams", f"duplicate stream_id {', '.join(dupes)}")
        require(
            not any(s.kind == "stdin" for s in self.streams[1:]),
            "streams",
            "only one stream can read stdin",
        )
        if self.inference.backend == "pocketsphinx":
            options_from_mapping(
                PocketsphinxOptions, self.inference.pocketsphinx, "inference.pocketsphinx"
            )
        unknown = sorted(set(self.wake.streams) - {s.stream_id for s in self.sources()})
        require(not unknown, "wake.streams", f"no local stream {', '.join(unknown)}")
        require(
            not (self.wake.recognizer_options() and self.inference.backend != "pocketsphinx"),
            "wake.grammar",
            "command grammars need the pocketsphinx backend",
        )
        require(
            not (self.wake.recognizer_options() and self.refine.whisper_led()),
            "wake.grammar",
            "command grammars are English-only (refine.language = 'en', task = 'transcribe')",
        )
        require(
            not (self.refine.whisper_led() and self.inference.backend != "pocketsphinx"),
            "refine.language",
            "other languages and translation need the pocketsphinx backend (it segments)",
        )
        if self.wake.recognizer_options():
            table = {**self.inference.pocketsphinx, **self.wake.recognizer_options()}
            try:
                options_from_mapping(PocketsphinxOptions, table, "inference.pocketsphinx")
            except ConfigError as exc:
                raise ConfigError(f"wake: {exc}") from None

        self._validate_assistant()

    def _validate_assistant(self) -> None:
        """The assistant's streams exist, its intents load, and every ``[[actions]]`` entry
        names one of them (or ``unknown``)."""
        unknown = sorted(set(self.assistant.streams) - {s.stream_id for s in self.sources()})
        require(not unknown, "assistant.streams", f"no local stream {', '.join(unknown)}")
        if not self.assistant.enabled:
            return
        if self.tts.engine != "none" and self.tts.output == "device":
            gated = (
                set(self.wake.streams)
                if self.wake.streams
                else {s.stream_id for s in self.sources()}
            )
            loud = sorted(
                s.stream_id
                for s in self.sources()
                if s.kind == "mic"
                and (not self.assistant.streams or s.stream_id in self.assistant.streams)
                and not (self.wake.enabled and s.stream_id in gated)
            )
            require(
                not loud,
                "assistant.streams",
                f"microphone stream {', '.join(loud)} has no wake gating: every final is a "
                "command there, and the microphone hears the spoken replies (enable [wake], "
                'or [tts] output = "file" / engine = "none")',
            )
        from streamasr.actors.assistant.intents import IntentRecognizer

        names = IntentRecognizer(self.assistant.intents).names
        for i, action in enumerate(self.actions):
            if action.intent != "unknown" and action.intent not in names:
                close = difflib.get_close_matches(action.intent, names, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                require(
                    False,
                    f"actions[{i}].intent",
                    f"{action.intent!r} is not an intent of {self.assistant.intents}{hint}; "
                    f"known: {', '.join(names)}, unknown",
                )

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
        """How many streams front doors may open at run time (all doors together)."""
        return sum(self.door_stream_limits().values())

    def door_stream_limits(self) -> dict[str, int]:
        """Front-door actor id -> the run-time streams it may hold at once: its own
        ``max_streams``, so one door's clients can never take another door's capacity."""
        limits: dict[str, int] = {}
        if self.gateway.enabled:
            limits["gateway"] = self.gateway.max_streams
        if self.wyoming.enabled:
            limits["wyoming"] = self.wyoming.max_streams
        return limits


def from_mapping(table: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a parsed TOML map."""
    cfg = from_table(Config, table, "")
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
    cfg = from_table(Config, table, "")
    cfg = _grammar_relative_to(cfg, p.parent)
    cfg = _intents_relative_to(cfg, p.parent)
    return _map_sources(cfg, lambda src: _relative_to(src, p.parent))


def _grammar_relative_to(cfg: Config, base: Path) -> Config:
    """``cfg`` with a relative ``[wake] grammar`` path resolved against the config's folder."""
    if cfg.wake.grammar and not Path(cfg.wake.grammar).is_absolute():
        wake = dataclasses.replace(cfg.wake, grammar=str((base / cfg.wake.grammar).resolve()))
        return dataclasses.replace(cfg, wake=wake)
    return cfg


def _intents_relative_to(cfg: Config, base: Path) -> Config:
    """``cfg`` with a relative ``[assistant] intents`` path resolved against the config's
    folder (``"default"`` names the bundled templates)."""
    from streamasr.actors.assistant.intents import DEFAULT_INTENTS

    path = cfg.assistant.intents
    if path and path != DEFAULT_INTENTS and not Path(path).is_absolute():
        assistant = dataclasses.replace(cfg.assistant, intents=str((base / path).resolve()))
        return dataclasses.replace(cfg, assistant=assistant)
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
