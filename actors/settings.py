"""The settings schema: every config section an actor reads, defined once.

The supervisor's loader (:mod:`streamasr.supervisor.config`) parses each TOML table into
these frozen dataclasses with :func:`streamasr.actors.typed.from_table` and runs their range
checks once, at load; the plan carries each section to the actors that need it in their
:class:`~streamasr.actors.spec.ActorSpec`, and an actor reads it back with
:meth:`ActorSpec.section`, through the same typed check (unknown keys rejected). Options
that only the supervisor reads (``[supervisor]``, ``[events]``, ``[display]``) live with it;
``[wake]`` lives with the wake engine (:mod:`streamasr.actors.wake.settings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from streamasr.actors.typed import require

__all__ = [
    "GAP_FILLS",
    "MAX_IDLE_TIMEOUT_S",
    "MAX_WORKERS",
    "SAMPLE",
    "AudioConfig",
    "FeatureConfig",
    "Finals",
    "GatewayConfig",
    "InferenceConfig",
    "OpenAIConfig",
    "RefineConfig",
    "SourceConfig",
    "SourceKind",
    "WyomingConfig",
]

SourceKind = Literal["mic", "file", "stdin", "none"]
Finals = Literal["accurate", "fast"]

#: Whisper's language codes (the multilingual models'; ``tests/unit/test_config.py`` checks
#: them against faster-whisper's list, which is private: ``tokenizer._LANGUAGE_CODES``).
WHISPER_LANGUAGES: tuple[str, ...] = (
    "af",
    "am",
    "ar",
    "as",
    "az",
    "ba",
    "be",
    "bg",
    "bn",
    "bo",
    "br",
    "bs",
    "ca",
    "cs",
    "cy",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fo",
    "fr",
    "gl",
    "gu",
    "ha",
    "haw",
    "he",
    "hi",
    "hr",
    "ht",
    "hu",
    "hy",
    "id",
    "is",
    "it",
    "ja",
    "jw",
    "ka",
    "kk",
    "km",
    "kn",
    "ko",
    "la",
    "lb",
    "ln",
    "lo",
    "lt",
    "lv",
    "mg",
    "mi",
    "mk",
    "ml",
    "mn",
    "mr",
    "ms",
    "mt",
    "my",
    "ne",
    "nl",
    "nn",
    "no",
    "oc",
    "pa",
    "pl",
    "ps",
    "pt",
    "ro",
    "ru",
    "sa",
    "sd",
    "si",
    "sk",
    "sl",
    "sn",
    "so",
    "sq",
    "sr",
    "su",
    "sv",
    "sw",
    "ta",
    "te",
    "tg",
    "th",
    "tk",
    "tl",
    "tr",
    "tt",
    "uk",
    "ur",
    "uz",
    "vi",
    "yi",
    "yo",
    "zh",
    "yue",
)

#: Most inference worker processes (``[inference] workers``).
MAX_WORKERS = 16

#: ``source.path`` value naming the speech sample shipped with the package.
SAMPLE = "sample"

#: Longest ``[wyoming] idle_timeout_s`` (seconds): a day.
MAX_IDLE_TIMEOUT_S = 86400.0

#: What fills frames a live source did not capture (``source.gap_fill``).
GAP_FILLS = ("comfort_noise", "zeros")


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """``[source]``: where audio comes from.

    ``kind``: ``mic`` (sounddevice input; ``device`` = name or index, ``""`` = default),
    ``file`` (WAV/FLAC at ``path``, relative to the config file; ``"sample"`` = the
    speech sample shipped with the package), ``stdin`` (raw PCM: ``raw_rate_hz``, ``raw_format``
    s16le/s32le/f32le, ``channels``), ``none`` (no local source: a box that only serves
    remote clients through the gateway or Wyoming server). ``realtime``: pace file/stdin
    sources at real time. Live sources (``mic``): a failed device is reopened after
    ``reopen_initial_s``, the delay multiplied by ``reopen_factor`` per further failure up to
    ``reopen_max_s`` and reset once the device stayed up ``reopen_stable_s``; an open device
    silent for ``stall_s`` counts as failed; ``gap_fill`` fills what it did not capture
    (``comfort_noise`` or ``zeros``). Seconds throughout.
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
        require(
            self.kind != "file" or self.path != "",
            "source.path",
            "required when source.kind = 'file'",
        )
        require(1 <= self.channels <= 64, "source.channels", "must be in 1..64")
        require(-1 <= self.channel < 64, "source.channel", "must be -1 (downmix) or 0..63")
        require(1000 <= self.raw_rate_hz <= 384000, "source.raw_rate_hz", "must be in 1000..384000")
        require(
            self.raw_format in ("s16le", "s32le", "f32le"),
            "source.raw_format",
            "must be one of s16le, s32le, f32le",
        )
        require(
            self.stream_id.replace("-", "").replace("_", "").isalnum(),
            "source.stream_id",
            "must be letters, digits, '-' or '_'",
        )
        for name in ("reopen_initial_s", "reopen_max_s", "reopen_stable_s", "stall_s"):
            require(getattr(self, name) > 0, f"source.{name}", "must be > 0")
        require(self.reopen_factor >= 1.0, "source.reopen_factor", "must be >= 1")
        require(
            self.reopen_max_s >= self.reopen_initial_s,
            "source.reopen_max_s",
            "must be >= source.reopen_initial_s",
        )
        require(
            self.gap_fill in GAP_FILLS,
            "source.gap_fill",
            f"must be one of {', '.join(GAP_FILLS)}",
        )


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
        require(
            self.sample_rate_hz in (8000, 16000), "audio.sample_rate_hz", "must be 8000 or 16000"
        )
        require(50 <= self.chunk_ms <= 200, "audio.chunk_ms", "must be in 50..200")
        require(4.0 <= self.ring_s <= 600.0, "audio.ring_s", "must be in 4..600")
        require(self.latency_budget_ms > 0, "audio.latency_budget_ms", "must be > 0")


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
        require(
            self.backend in ("pocketsphinx", "torch"),
            "inference.backend",
            "must be 'pocketsphinx' or 'torch'",
        )
        require(
            self.workers == "auto" or 1 <= self.workers <= MAX_WORKERS,
            "inference.workers",
            f"must be 'auto' or in 1..{MAX_WORKERS}",
        )

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
    ``beam_size``: the decoder beam of accurate finals (1: greedy); ``unsure_beam_size``:
    the beam of the views decoded again when a final's first view is unsure, where finals
    have no deadline (files read ``--fast``; live streams keep ``beam_size``: with 4
    real-time streams beam 5 there quadrupled the refine queue). Whisper partials are always
    greedy.
    ``language``: the language spoken (a Whisper language code: ``en``, ``de``, ``fr``, ...;
    ``auto``: Whisper detects it for each utterance, and each event says which);
    ``task``: ``transcribe`` (text in that language) or ``translate`` (English text). Other
    than English, or translating, the pipeline is Whisper-led: the first pass (English-only)
    only finds where utterances start and end, and Whisper writes the partials and finals.
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
    beam_size: int = 1
    unsure_beam_size: int = 5
    language: str = "en"
    task: Literal["transcribe", "translate"] = "transcribe"
    delay_ms: float = 0.0

    def validate(self) -> None:
        """Range checks."""
        require(
            self.language in (*WHISPER_LANGUAGES, "auto"),
            "refine.language",
            f"{self.language!r} is not one of Whisper's languages: 'auto' or "
            f"{', '.join(sorted(WHISPER_LANGUAGES))}",
        )
        require(
            self.finals == "accurate" or not self.whisper_led(),
            "refine.finals",
            f"language {self.language!r} / task {self.task!r} needs accurate finals "
            "(the first pass only knows English)",
        )
        require(1 <= self.beam_size <= 10, "refine.beam_size", "must be in 1..10")
        require(1 <= self.unsure_beam_size <= 10, "refine.unsure_beam_size", "must be in 1..10")
        require(0.0 <= self.margin_s <= 2.0, "refine.margin_s", "must be in 0..2")
        require(self.max_queue >= 1, "refine.max_queue", "must be >= 1")
        require(self.budget_s > 0, "refine.budget_s", "must be > 0")
        require(1 <= self.cpu_threads <= 64, "refine.cpu_threads", "must be in 1..64")
        require(
            100 <= self.partial_interval_ms <= 10_000,
            "refine.partial_interval_ms",
            "must be in 100..10000",
        )
        require(self.delay_ms >= 0, "refine.delay_ms", "must be >= 0")

    def whisper_led(self) -> bool:
        """Whether Whisper writes every text (a language other than English, or translation):
        the first pass then only segments utterances (``PocketsphinxOptions.words`` off)."""
        return self.language != "en" or self.task != "transcribe"

    def accurate_partials(self) -> bool:
        """Whether first-pass partials go to the refine actor: with accurate finals it keeps
        the audio of the utterance in progress, and makes Whisper partials when ``auto``."""
        return self.finals == "accurate"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """``[gateway]``: the WebSocket front door (Vosk-compatible, classic JSON, native).

    ``host``/``port``: where it listens (127.0.0.1:2700 by default). ``max_streams``:
    concurrent streams; ``max_connections``: TCP connections held at once, counted from
    accept, before any handshake (0 = derived from ``max_streams`` and the open-file limit,
    see :func:`~streamasr.actors.frontdoors.admission.connection_cap`);
    ``open_timeout_s``: seconds a connection has for its opening handshake;
    ``max_status_feeds``: concurrent ``/v1/status`` connections; ``max_message_bytes``:
    largest WebSocket message; ``idle_timeout_s``: a connection silent this long is closed;
    ``token``: shared secret a client must present (``?token=`` or ``Authorization:
    Bearer``), "" = none; ``tls_cert``/``tls_key``: PEM paths to serve wss://; ``origins``:
    browser origins allowed besides the gateway's own (``"*"`` = any; see
    :mod:`~streamasr.actors.frontdoors.origin`).
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 2700
    max_streams: int = 16
    max_connections: int = 0
    open_timeout_s: float = 10.0
    max_status_feeds: int = 8
    max_message_bytes: int = 1 << 20
    idle_timeout_s: float = 30.0
    token: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    origins: tuple[str, ...] = ()

    def validate(self) -> None:
        """Range checks."""
        require(0 <= self.port <= 65535, "gateway.port", "must be in 0..65535")
        require(1 <= self.max_streams <= 1024, "gateway.max_streams", "must be in 1..1024")
        require(
            self.max_connections == 0 or self.max_streams <= self.max_connections <= 65536,
            "gateway.max_connections",
            "must be 0 (auto) or in max_streams..65536",
        )
        require(0 < self.open_timeout_s <= 300, "gateway.open_timeout_s", "must be in (0, 300]")
        require(1 <= self.max_status_feeds <= 256, "gateway.max_status_feeds", "must be in 1..256")
        require(
            1024 <= self.max_message_bytes <= 1 << 26,
            "gateway.max_message_bytes",
            "must be in 1024..67108864",
        )
        require(self.idle_timeout_s > 0, "gateway.idle_timeout_s", "must be > 0")
        require(
            bool(self.tls_cert) == bool(self.tls_key),
            "gateway.tls_key",
            "tls_cert and tls_key go together",
        )
        for origin in self.origins:
            require(
                origin == "*" or origin.startswith(("http://", "https://")),
                "gateway.origins",
                f'{origin!r} is not "*" nor an origin like "https://example.com"',
            )


@dataclass(frozen=True, slots=True)
class WyomingConfig:
    """``[wyoming]``: a Wyoming protocol server for Home Assistant (TCP ``host``:``port``).

    ``max_streams``: concurrent transcriptions (and detect sessions); a client past it gets
    an ``error`` event (code ``busy``) and is closed. ``idle_timeout_s``: a connection that
    sends nothing for this many seconds is closed (its stream ended and released).
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 10300
    max_streams: int = 4
    idle_timeout_s: float = 30.0

    def validate(self) -> None:
        """Range checks."""
        require(0 <= self.port <= 65535, "wyoming.port", "must be in 0..65535")
        require(1 <= self.max_streams <= 256, "wyoming.max_streams", "must be in 1..256")
        require(
            0 < self.idle_timeout_s <= MAX_IDLE_TIMEOUT_S,
            "wyoming.idle_timeout_s",
            f"must be > 0 and <= {MAX_IDLE_TIMEOUT_S:g}",
        )


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """``[openai]``: the OpenAI-compatible transcription API on the gateway's port.

    ``enabled``: serve ``POST /v1/audio/transcriptions`` and ``GET /v1/models`` where the
    gateway runs. ``max_upload_bytes``: the largest request body (bytes; OpenAI's limit is
    25 MB), larger is refused with 413 before it is read. ``max_audio_s``: the longest audio
    an upload may decode to (seconds; a small compressed file can hold hours).
    """

    enabled: bool = True
    max_upload_bytes: int = 25 * 1024 * 1024
    max_audio_s: float = 7200.0

    def validate(self) -> None:
        """Range checks."""
        require(
            1024 <= self.max_upload_bytes <= 1 << 31,
            "openai.max_upload_bytes",
            "must be in 1024..2147483648",
        )
        require(0 < self.max_audio_s <= 86400, "openai.max_audio_s", "must be in (0, 86400]")
