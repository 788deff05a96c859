"""The TOML config loader (supervisor/config.py): shipped files, key paths, types and ranges."""

from __future__ import annotations

import ast
import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pytest

from streamasr.actors.assistant.settings import ActionConfig
from streamasr.actors.capture.sources import sample_path
from streamasr.actors.errors import ConfigError, ProtocolError
from streamasr.actors.typed import from_table
from streamasr.supervisor import config as c

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
CONFIG_FILES = sorted(CONFIGS.glob("*.toml"))


def _section_classes() -> dict[str, type[Any]]:
    cfg = c.Config()
    out: dict[str, type[Any]] = {
        f.name: type(getattr(cfg, f.name))
        for f in dataclasses.fields(c.Config)
        if f.name not in ("streams", "actions")
    }
    out["[streams]"] = c.SourceConfig  # an array of tables: [[streams]]
    out["[actions]"] = ActionConfig  # [[actions]]
    return out


def _write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------------- shipped files
def test_configs_folder_has_the_default() -> None:
    assert CONFIGS / "default.toml" in CONFIG_FILES


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.name for p in CONFIG_FILES])
def test_every_shipped_config_loads(path: Path) -> None:
    cfg = c.load(path)
    assert isinstance(cfg, c.Config)
    cfg.validate()
    resolved = c.resolve_sample(cfg)
    if resolved.source.kind == "file":
        assert Path(resolved.source.path).is_absolute()


def test_default_toml_equals_builtin_defaults() -> None:
    assert c.load(CONFIGS / "default.toml") == c.Config()


def test_builtin_defaults_validate() -> None:
    c.Config().validate()


def test_edge_toml_values() -> None:
    cfg = c.load(CONFIGS / "edge.toml")
    assert cfg.refine.finals == "fast"
    assert cfg.audio.chunk_ms == 200
    assert cfg.inference.pocketsphinx == {"endpoint_silence_ms": 500}
    assert cfg.inference.backend_options() == {"endpoint_silence_ms": 500}


def test_file_toml_keeps_sample_until_resolved() -> None:
    cfg = c.load(CONFIGS / "file.toml")
    assert cfg.source.kind == "file"
    assert cfg.source.path == c.SAMPLE
    resolved = c.resolve_sample(cfg)
    assert Path(resolved.source.path) == sample_path()
    assert sample_path().is_file()


def test_every_key_is_documented_in_configs_readme() -> None:
    readme = CONFIGS / "README.md"
    if not readme.exists():
        pytest.skip("configs/README.md not written yet")
    text = readme.read_text(encoding="utf-8")
    missing = []
    for section, cls in _section_classes().items():
        if f"[{section}]" not in text:
            missing.append(f"[{section}]")
        for f in dataclasses.fields(cls):
            if not re.search(rf"(?<![\w-]){re.escape(f.name)}(?![\w-])", text):
                missing.append(f"{section}.{f.name}")
    assert not missing, f"not mentioned in configs/README.md: {', '.join(missing)}"


# ------------------------------------------------------------------------------- load()
def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read config \(No such file"):
        c.load(tmp_path / "nope.toml")


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r": cannot read config \(Is a directory\)$"):
        c.load(tmp_path)


def test_load_invalid_toml(tmp_path: Path) -> None:
    p = _write(tmp_path, "[supervisor\nmax_restarts = 1\n")
    with pytest.raises(ConfigError, match=r"c\.toml: invalid TOML \(.*line 1"):
        c.load(p)


def test_load_duplicate_key_is_invalid_toml(tmp_path: Path) -> None:
    p = _write(tmp_path, "[audio]\nchunk_ms = 100\nchunk_ms = 150\n")
    with pytest.raises(ConfigError, match=r"c\.toml: invalid TOML \("):
        c.load(p)


def test_load_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bin.toml"
    p.write_bytes(b"\xff\xfe[supervisor]\n")
    with pytest.raises(ConfigError, match=r"bin\.toml: invalid TOML \(not UTF-8: "):
        c.load(p)


def test_load_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert c.load(_write(tmp_path, "")) == c.Config()


def test_load_reports_key_path_errors(tmp_path: Path) -> None:
    p = _write(tmp_path, "[supervisor]\nmax_restart = 3\n")
    with pytest.raises(
        ConfigError,
        match=r"^supervisor\.max_restart: unknown key \(did you mean 'max_restarts'\?\)$",
    ):
        c.load(p)


def test_relative_source_path_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    p = _write(sub, '[source]\nkind = "file"\npath = "../audio/a.wav"\n')
    cfg = c.load(p)
    assert cfg.source.path == str((tmp_path / "audio" / "a.wav").resolve())


def test_absolute_source_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "x" / "a.wav"
    p = _write(tmp_path, f'[source]\nkind = "file"\npath = "{target}"\n')
    assert c.load(p).source.path == str(target)


def test_sample_is_kept_by_load_and_resolved_by_resolve_sample(tmp_path: Path) -> None:
    p = _write(tmp_path, '[source]\nkind = "file"\npath = "sample"\n')
    cfg = c.load(p)
    assert cfg.source.path == "sample"
    assert c.resolve_sample(cfg).source.path == str(sample_path())


def test_resolve_sample_leaves_other_sources_alone() -> None:
    mic = c.Config()
    assert c.resolve_sample(mic) == mic
    other = c.from_mapping({"source": {"kind": "file", "path": "/a.wav"}})
    assert c.resolve_sample(other) == other


# ----------------------------------------------------------------------------- replace()
def test_replace_changes_one_section() -> None:
    cfg = c.replace(c.Config(), "audio", chunk_ms=150)
    assert cfg.audio.chunk_ms == 150
    assert cfg.supervisor == c.SupervisorConfig()
    assert c.Config().audio.chunk_ms == 100  # the original is untouched (frozen)


def test_replace_validates() -> None:
    with pytest.raises(ConfigError, match=r"^audio\.chunk_ms: must be in 50\.\.200$"):
        c.replace(c.Config(), "audio", chunk_ms=10)


def test_sections_are_frozen() -> None:
    cfg = c.Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(cfg.audio, "chunk_ms", 10)  # noqa: B010


# ------------------------------------------------------------------- keys and types
@pytest.mark.parametrize(
    ("table", "message"),
    [
        pytest.param(
            {"supervisor": {"max_restart": 3}},
            "supervisor.max_restart: unknown key (did you mean 'max_restarts'?)",
            id="unknown-key",
        ),
        pytest.param(
            {"superviser": {}},
            "superviser: unknown key (did you mean 'supervisor'?)",
            id="unknown-section",
        ),
        pytest.param(
            {"refine": {"final": "fast"}},
            "refine.final: unknown key (did you mean 'finals'?)",
            id="near-miss-is-suggested",
        ),
        pytest.param(
            {"supervisor": {"bogus_key": 1}},
            "supervisor.bogus_key: unknown key",
            id="no-near-miss-no-suggestion",
        ),
        pytest.param(
            {"audio": {"chunk_ms": 100, "chunk": 1}},
            "audio.chunk: unknown key (did you mean 'chunk_ms'?)",
            id="unknown-key-among-known",
        ),
        pytest.param({"supervisor": 5}, "supervisor: must be a table", id="section-not-table"),
        pytest.param(
            {"inference": {"pocketsphinx": 5}},
            "inference.pocketsphinx: must be a table",
            id="backend-not-table",
        ),
        pytest.param(
            {"supervisor": {"max_restarts": "5"}},
            "supervisor.max_restarts: must be int, got str '5'",
            id="int-given-str",
        ),
        pytest.param(
            {"supervisor": {"max_restarts": True}},
            "supervisor.max_restarts: must be int, got bool True",
            id="int-given-bool",
        ),
        pytest.param(
            {"supervisor": {"max_restarts": 5.0}},
            "supervisor.max_restarts: must be int, got float 5.0",
            id="int-given-float",
        ),
        pytest.param(
            {"supervisor": {"period_s": "60"}},
            "supervisor.period_s: must be float, got str '60'",
            id="float-given-str",
        ),
        pytest.param(
            {"supervisor": {"period_s": False}},
            "supervisor.period_s: must be float, got bool False",
            id="float-given-bool",
        ),
        pytest.param(
            {"feature": {"dc_block": 1}},
            "feature.dc_block: must be bool, got int 1",
            id="bool-given-int",
        ),
        pytest.param(
            {"source": {"device": 0}}, "source.device: must be str, got int 0", id="str-given-int"
        ),
        pytest.param(
            {"supervisor": {"strategy": "one_for_all"}},
            "supervisor.strategy: must be one of 'one_for_one', 'rest_for_one'",
            id="strategy",
        ),
        pytest.param(
            {"source": {"kind": "network"}},
            "source.kind: must be one of 'mic', 'file', 'stdin', 'none'",
            id="source-kind",
        ),
        pytest.param(
            {"refine": {"finals": "slow"}},
            "refine.finals: must be one of 'accurate', 'fast'",
            id="finals",
        ),
        pytest.param(
            {"display": {"mask_words": "shit"}},
            "display.mask_words: must be an array",
            id="mask-words-not-array",
        ),
        pytest.param(
            {"display": {"mask_words": [1]}},
            "display.mask_words[0]: must be str, got int 1",
            id="mask-word-not-str",
        ),
    ],
)
def test_key_and_type_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        c.from_mapping(table)


def test_a_wire_message_gets_no_suggestion() -> None:
    """A peer's unknown field is a protocol error, not a typo to correct."""
    with pytest.raises(ProtocolError, match=r"^supervisor\.max_restart: unknown key$"):
        from_table(c.SupervisorConfig, {"max_restart": 3}, "supervisor", ProtocolError)


def test_display_mask_words() -> None:
    from streamasr.supervisor.mask import DEFAULT_MASK_WORDS

    assert c.Config().display.mask_words == DEFAULT_MASK_WORDS
    assert c.from_mapping({"display": {"mask_words": []}}).display.mask_words == ()
    cfg = c.from_mapping({"display": {"mask_words": ["Frak"], "mask_second_pass": True}})
    assert (cfg.display.mask_words, cfg.display.mask_second_pass) == (("Frak",), True)


def test_int_is_widened_to_float() -> None:
    cfg = c.from_mapping({"supervisor": {"period_s": 30}})
    assert cfg.supervisor.period_s == 30.0
    assert type(cfg.supervisor.period_s) is float


# ------------------------------------------------------------------------- range checks
RANGE_ERRORS = [
    (
        {"events": {"tcp": "tcp://127.0.0.1:1", "curve_secret": "s"}},
        "events.curve_clients: curve_secret and curve_clients go together",
    ),
    (
        {"events": {"curve_secret": "s", "curve_clients": "d"}},
        "events.curve_secret: CURVE protects the tcp endpoint: set events.tcp",
    ),
    ({"source": {"channel": -2}}, "source.channel: must be -1 (downmix) or 0..63"),
    # [gateway] / [wyoming]
    ({"gateway": {"port": 70000}}, "gateway.port: must be in 0..65535"),
    ({"gateway": {"max_streams": 0}}, "gateway.max_streams: must be in 1..1024"),
    (
        {"gateway": {"max_message_bytes": 10}},
        "gateway.max_message_bytes: must be in 1024..67108864",
    ),
    ({"gateway": {"idle_timeout_s": 0}}, "gateway.idle_timeout_s: must be > 0"),
    (
        {"gateway": {"max_streams": 4, "max_connections": 3}},
        "gateway.max_connections: must be 0 (auto) or in max_streams..65536",
    ),
    ({"gateway": {"open_timeout_s": 0}}, "gateway.open_timeout_s: must be in (0, 300]"),
    ({"gateway": {"max_status_feeds": 0}}, "gateway.max_status_feeds: must be in 1..256"),
    (
        {"gateway": {"origins": ["example.com"]}},
        'gateway.origins: \'example.com\' is not "*" nor an origin like "https://example.com"',
    ),
    ({"gateway": {"tls_cert": "c.pem"}}, "gateway.tls_key: tls_cert and tls_key go together"),
    ({"wyoming": {"port": -1}}, "wyoming.port: must be in 0..65535"),
    ({"wyoming": {"max_streams": 0}}, "wyoming.max_streams: must be in 1..256"),
    ({"wyoming": {"idle_timeout_s": 0}}, "wyoming.idle_timeout_s: must be > 0 and <= 86400"),
    ({"wyoming": {"idle_timeout_s": -1.5}}, "wyoming.idle_timeout_s: must be > 0 and <= 86400"),
    (
        {"wyoming": {"idle_timeout_s": float("inf")}},
        "wyoming.idle_timeout_s: must be > 0 and <= 86400",
    ),
    (
        {"wyoming": {"idle_timeout_s": float("nan")}},
        "wyoming.idle_timeout_s: must be > 0 and <= 86400",
    ),
    ({"wyoming": {"idle_timeout_s": "30"}}, "wyoming.idle_timeout_s: must be float, got str '30'"),
    # [openai]
    (
        {"openai": {"max_upload_bytes": 1023}},
        "openai.max_upload_bytes: must be in 1024..2147483648",
    ),
    ({"openai": {"max_audio_s": 0}}, "openai.max_audio_s: must be in (0, 86400]"),
    # [[streams]]
    (
        {"streams": [{"stream_id": "a"}, {"stream_id": "a"}]},
        "streams: duplicate stream_id a",
    ),
    (
        {"streams": [{"kind": "stdin", "stream_id": "a"}, {"kind": "stdin", "stream_id": "b"}]},
        "streams: only one stream can read stdin",
    ),
    # [supervisor]
    (
        {"supervisor": {"instance": "a b"}},
        "supervisor.instance: must be letters, digits, '-' or '_'",
    ),
    ({"supervisor": {"instance": ""}}, "supervisor.instance: must be letters, digits, '-' or '_'"),
    ({"supervisor": {"max_restarts": -1}}, "supervisor.max_restarts: must be >= 0"),
    ({"supervisor": {"period_s": 0}}, "supervisor.period_s: must be > 0"),
    ({"supervisor": {"heartbeat_interval_s": 0}}, "supervisor.heartbeat_interval_s: must be > 0"),
    ({"supervisor": {"heartbeat_timeout_s": -1}}, "supervisor.heartbeat_timeout_s: must be > 0"),
    ({"supervisor": {"ready_timeout_s": 0}}, "supervisor.ready_timeout_s: must be > 0"),
    ({"supervisor": {"shutdown_timeout_s": 0}}, "supervisor.shutdown_timeout_s: must be > 0"),
    ({"supervisor": {"status_interval_s": 0}}, "supervisor.status_interval_s: must be > 0"),
    (
        {"supervisor": {"heartbeat_interval_s": 1.0, "heartbeat_timeout_s": 2.0}},
        "supervisor.heartbeat_timeout_s: must be > 2 x heartbeat_interval_s",
    ),
    # [events]
    ({"events": {"tcp": "udp://127.0.0.1:1"}}, "events.tcp: must be '' or a tcp:// endpoint"),
    ({"events": {"history": -1}}, "events.history: must be >= 0"),
    # [source]
    ({"source": {"kind": "file"}}, "source.path: required when source.kind = 'file'"),
    ({"source": {"channels": 0}}, "source.channels: must be in 1..64"),
    ({"source": {"channels": 65}}, "source.channels: must be in 1..64"),
    ({"source": {"raw_rate_hz": 999}}, "source.raw_rate_hz: must be in 1000..384000"),
    ({"source": {"raw_rate_hz": 384001}}, "source.raw_rate_hz: must be in 1000..384000"),
    ({"source": {"raw_format": "u8"}}, "source.raw_format: must be one of s16le, s32le, f32le"),
    ({"source": {"stream_id": "a/b"}}, "source.stream_id: must be letters, digits, '-' or '_'"),
    ({"source": {"reopen_initial_s": 0.0}}, "source.reopen_initial_s: must be > 0"),
    ({"source": {"reopen_factor": 0.5}}, "source.reopen_factor: must be >= 1"),
    (
        {"source": {"reopen_initial_s": 2.0, "reopen_max_s": 1.0}},
        "source.reopen_max_s: must be >= source.reopen_initial_s",
    ),
    ({"source": {"gap_fill": "pink"}}, "source.gap_fill: must be one of 'comfort_noise', 'zeros'"),
    # [audio]
    ({"audio": {"sample_rate_hz": 44100}}, "audio.sample_rate_hz: must be 8000 or 16000"),
    ({"audio": {"chunk_ms": 49}}, "audio.chunk_ms: must be in 50..200"),
    ({"audio": {"chunk_ms": 201}}, "audio.chunk_ms: must be in 50..200"),
    ({"audio": {"ring_s": 3.5}}, "audio.ring_s: must be in 4..600"),
    ({"audio": {"ring_s": 600.5}}, "audio.ring_s: must be in 4..600"),
    ({"audio": {"latency_budget_ms": 0}}, "audio.latency_budget_ms: must be > 0"),
    # [inference]
    ({"inference": {"backend": "kaldi"}}, "inference.backend: must be 'pocketsphinx' or 'torch'"),
    ({"inference": {"pocketsphinx": {"foo": 1}}}, "inference.pocketsphinx.foo: unknown key"),
    (
        {"inference": {"pocketsphinx": {"endpoint_silence_ms": "600"}}},
        "inference.pocketsphinx.endpoint_silence_ms: must be int, got str '600'",
    ),
    (
        {"inference": {"pocketsphinx": {"vad_mode": 5}}},
        "inference.pocketsphinx.vad_mode: must be 0..3, got 5",
    ),
    ({"inference": {"workers": 0}}, "inference.workers: must be 'auto' or in 1..16"),
    (
        {"inference": {"workers": "many"}},
        "inference.workers: must be int or 'auto', got str 'many'",
    ),
    # [refine]
    ({"refine": {"margin_s": -0.1}}, "refine.margin_s: must be in 0..2"),
    ({"refine": {"margin_s": 2.1}}, "refine.margin_s: must be in 0..2"),
    ({"refine": {"max_queue": 0}}, "refine.max_queue: must be >= 1"),
    ({"refine": {"budget_s": 0}}, "refine.budget_s: must be > 0"),
    ({"refine": {"cpu_threads": 0}}, "refine.cpu_threads: must be in 1..64"),
    ({"refine": {"cpu_threads": 65}}, "refine.cpu_threads: must be in 1..64"),
    ({"refine": {"partial_interval_ms": 99}}, "refine.partial_interval_ms: must be in 100..10000"),
    ({"refine": {"beam_size": 0}}, "refine.beam_size: must be in 1..10"),
    ({"refine": {"unsure_beam_size": 11}}, "refine.unsure_beam_size: must be in 1..10"),
    ({"refine": {"delay_ms": -1.0}}, "refine.delay_ms: must be >= 0"),
    # [wake]
    ({"wake": {"preroll_ms": -1}}, "wake.preroll_ms: must be in 0..5000"),
    ({"wake": {"command_timeout_ms": 100}}, "wake.command_timeout_ms: must be in 500..60000"),
    ({"wake": {"max_command_ms": 500}}, "wake.max_command_ms: must be in 1000..120000"),
    (
        {"wake": {"grammar": "a.jsgf", "commands": ["stop"]}},
        "wake.grammar: give grammar or commands, not both",
    ),
    ({"wake": {"streams": ["kitchen"]}}, "wake.streams: no local stream kitchen"),
    # [refine] language / task
    (
        {"refine": {"language": "xx"}},
        "refine.language: 'xx' is not one of Whisper's languages: 'auto' or af, am, ar, as, "
        "az, ba, be, bg, bn, bo, br, bs, ca, cs, cy, da, de, el, en, es, et, eu, fa, fi, fo, "
        "fr, gl, gu, ha, haw, he, hi, hr, ht, hu, hy, id, is, it, ja, jw, ka, kk, km, kn, ko, "
        "la, lb, ln, lo, lt, lv, mg, mi, mk, ml, mn, mr, ms, mt, my, ne, nl, nn, no, oc, pa, "
        "pl, ps, pt, ro, ru, sa, sd, si, sk, sl, sn, so, sq, sr, su, sv, sw, ta, te, tg, th, "
        "tk, tl, tr, tt, uk, ur, uz, vi, yi, yo, yue, zh",
    ),
    (
        {"refine": {"task": "translate", "finals": "fast"}},
        "refine.finals: language 'en' / task 'translate' needs accurate finals "
        "(the first pass only knows English)",
    ),
    (
        {"refine": {"language": "de"}, "inference": {"backend": "torch"}},
        "refine.language: other languages and translation need the pocketsphinx backend "
        "(it segments)",
    ),
    (
        {"refine": {"language": "de"}, "wake": {"commands": ["licht an"]}},
        "wake.grammar: command grammars are English-only (refine.language = 'en', "
        "task = 'transcribe')",
    ),
    # [assistant] / [tts] / [[actions]]
    ({"assistant": {"streams": ["hall"]}}, "assistant.streams: no local stream hall"),
    (
        {"assistant": {"enabled": True}},
        "assistant.streams: microphone stream s0 has no wake gating: every final is a command "
        "there, and the microphone hears the spoken replies (enable [wake], or [tts] output = "
        '"file" / engine = "none")',
    ),
    ({"assistant": {"intents": ""}}, "assistant.intents: must name a file or 'default'"),
    ({"assistant": {"min_confidence": 1.5}}, "assistant.min_confidence: must be in 0..1"),
    ({"assistant": {"mute_margin_ms": -1}}, "assistant.mute_margin_ms: must be in 0..60000"),
    (
        {
            "assistant": {"enabled": True},
            "tts": {"engine": "none"},
            "actions": [{"intent": "HassTurnOf"}],
        },
        "actions[0].intent: 'HassTurnOf' is not an intent of default (did you mean "
        "HassTurnOff?); known: HassCancelTimer, HassGetCurrentTime, HassNevermind, "
        "HassStartTimer, HassTurnOff, HassTurnOn, unknown",
    ),
    ({"actions": [{"intent": " "}]}, "actions[0].intent: must not be empty"),
    (
        {"actions": [{"intent": "x", "command": ["a"], "http": "http://h/"}]},
        "actions[0].command: set either command or http, not both",
    ),
    ({"actions": [{"intent": "x", "http": "ftp://h/"}]}, "actions[0].http: must be an http(s) URL"),
    ({"actions": [{"intent": "x", "http": "http:///p"}]}, "actions[0].http: must name a host"),
    (
        {"actions": [{"intent": "x", "command": [""]}]},
        "actions[0].command: the program must not be empty",
    ),
    (
        {"actions": [{"intent": "x", "headers": ["no colon"]}]},
        "actions[0].headers[0]: must be 'Name: value' on one line",
    ),
    (
        {"actions": [{"intent": "x", "timeout_s": 0}]},
        "actions[0].timeout_s: must be > 0 and <= 300",
    ),
    ({"tts": {"engine": "sam"}}, "tts.engine: must be one of flite, espeak-ng, wyoming, none"),
    ({"tts": {"output": "speaker"}}, "tts.output: must be one of device, file"),
    ({"tts": {"engine": "wyoming"}}, "tts.wyoming: required when tts.engine = 'wyoming'"),
    ({"tts": {"output": "file"}}, "tts.output_dir: required when tts.output = 'file'"),
    ({"tts": {"timeout_s": 0}}, "tts.timeout_s: must be > 0"),
    ({"tts": {"max_text_chars": 0}}, "tts.max_text_chars: must be >= 1"),
    (
        {"wake": {"commands": ["stop"]}, "inference": {"backend": "torch"}},
        "wake.grammar: command grammars need the pocketsphinx backend",
    ),
    (
        {"wake": {"enabled": True, "engine": "pocketsphinx", "phrases": ["hey frobnicator"]}},
        "wake.phrases: 'frobnicator' is not in the pronunciation dictionary",
    ),
    (
        {"wake": {"enabled": True, "phrases": ["hey frobnicator"]}},
        "wake.phrases: 'hey frobnicator' is not a 'micro' model (available: 'okay nabu', "
        "'hey jarvis', 'alexa', 'hey mycroft'; other phrases: engine = \"pocketsphinx\")",
    ),
    (
        {"wake": {"engine": "snowboy"}},
        "wake.engine: unknown engine 'snowboy' (known: 'micro', 'open', 'pocketsphinx')",
    ),
    (
        {"wake": {"refractory_ms": 70000}},
        "wake.refractory_ms: must be in 0..60000",
    ),
    # [display]
    (
        {"display": {"mask_words": ["shit", "ass hole"]}},
        "display.mask_words[1]: 'ass hole' must be a single word without punctuation",
    ),
]


@pytest.mark.parametrize(
    ("table", "message"),
    RANGE_ERRORS,
    ids=[f"{i}-{msg.split(':')[0]}" for i, (_, msg) in enumerate(RANGE_ERRORS)],
)
def test_range_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        c.from_mapping(table)


#: Where the config sections and their range checks are defined.
SECTION_MODULES = (
    "supervisor/config.py",
    "actors/settings.py",
    "actors/wake/settings.py",
    "actors/assistant/settings.py",
)


def _require_key_patterns() -> list[str]:
    """The key argument of every ``require(ok, key, message)`` call in the modules that define
    config sections, as regexes."""
    patterns: list[str] = []
    for module in SECTION_MODULES:
        patterns += _require_keys_of(REPO / module)
    return patterns


def _require_keys_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    patterns: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require":
            key = node.args[1]
            if isinstance(key, ast.Name):
                continue  # a helper's key, given by its callers (checked there)
            if isinstance(key, ast.Constant):
                patterns.append(re.escape(str(key.value)))
            else:
                assert isinstance(key, ast.JoinedStr)
                patterns.append(
                    "".join(
                        re.escape(str(v.value)) if isinstance(v, ast.Constant) else r"[\w\[\]]+"
                        for v in key.values
                    )
                )
    return patterns


def test_range_errors_cover_every_require() -> None:
    """Each ``require`` of the config sections has at least one case in RANGE_ERRORS."""
    patterns = _require_key_patterns()
    assert len(patterns) >= 15
    covered = {msg.split(":")[0] for _, msg in RANGE_ERRORS}
    missing = [p for p in patterns if not any(re.fullmatch(p, k) for k in covered)]
    assert not missing, f"no range case for {missing}"
    assert "inference.pocketsphinx.foo" in covered  # backend options go through the registry


@pytest.mark.parametrize(
    "table",
    [
        {"supervisor": {"instance": "edge-box_2", "max_restarts": 0}},
        {"supervisor": {"heartbeat_interval_s": 1.0, "heartbeat_timeout_s": 2.01}},
        {"events": {"tcp": "tcp://127.0.0.1:7700", "history": 0}},
        {"source": {"kind": "stdin", "channels": 64, "raw_rate_hz": 384000, "raw_format": "f32le"}},
        {"source": {"channels": 1, "raw_rate_hz": 1000, "raw_format": "s32le"}},
        {"audio": {"sample_rate_hz": 8000, "chunk_ms": 50, "ring_s": 4}},
        {"audio": {"chunk_ms": 200, "ring_s": 600, "adaptive_chunk": True}},
        {"refine": {"margin_s": 0, "max_queue": 1, "cpu_threads": 64}},
        {"refine": {"margin_s": 2.0, "cpu_threads": 1, "finals": "fast", "model": "/m"}},
        {"inference": {"backend": "torch", "torch": {"model_path": "/m.pt"}}},
    ],
    ids=lambda t: "-".join(t),
)
def test_boundary_values_are_accepted(table: dict[str, Any]) -> None:
    cfg = c.from_mapping(table)
    for section, values in table.items():
        for key, value in values.items():
            assert getattr(getattr(cfg, section), key) == value


def test_backend_options_of_the_selected_backend() -> None:
    cfg = c.from_mapping(
        {"inference": {"backend": "torch", "torch": {"a": 1}, "pocketsphinx": {"vad_mode": 2}}}
    )
    assert cfg.inference.backend_options() == {"a": 1}
    cfg = c.from_mapping({"inference": {"pocketsphinx": {"vad_mode": 2}}})
    assert cfg.inference.backend_options() == {"vad_mode": 2}


@pytest.mark.parametrize(
    ("table", "cores", "expected"),
    [
        ({}, 4, 1),  # one local stream: one worker whatever the cores
        (
            {
                "streams": [
                    {"kind": "file", "path": "a.wav", "stream_id": f"s{i}"} for i in range(3)
                ]
            },
            2,
            2,
        ),
        (
            {
                "streams": [
                    {"kind": "file", "path": "a.wav", "stream_id": f"s{i}"} for i in range(3)
                ]
            },
            8,
            3,
        ),
        ({"source": {"kind": "none"}, "gateway": {"enabled": True, "max_streams": 5}}, 8, 5),
        ({"source": {"kind": "none"}, "gateway": {"enabled": True}}, 1, 1),
        ({"source": {"kind": "none"}, "gateway": {"enabled": True}}, 64, 16),
        ({"inference": {"workers": 3}}, 1, 3),  # an explicit count is kept
    ],
)
def test_auto_inference_workers_follow_cores_and_streams(
    table: dict[str, Any], cores: int, expected: int
) -> None:
    cfg = c.from_mapping(table)
    assert cfg.inference.workers == table.get("inference", {}).get("workers", "auto")
    assert cfg.inference_workers(cores) == expected


def test_auto_inference_workers_default_to_this_machine() -> None:
    table = {
        "streams": [{"kind": "file", "path": "a.wav", "stream_id": f"s{i}"} for i in range(64)]
    }
    assert c.from_mapping(table).inference_workers() == min(16, len(os.sched_getaffinity(0)))


def test_whisper_languages_are_faster_whispers() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    from streamasr.actors.settings import WHISPER_LANGUAGES

    assert tuple(WHISPER_LANGUAGES) == tuple(_LANGUAGE_CODES)
