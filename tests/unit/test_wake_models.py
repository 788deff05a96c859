"""The bundled wake engines (microWakeWord ``micro``, openWakeWord ``open``) with their real
models on real synthesised speech (flite), their config errors, and how Wyoming names them."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
from conftest import audio_file
from synth import needs_flite, say, silence

from streamasr.actors.errors import AudioFormatError, ConfigError, ModelError
from streamasr.actors.frontdoors.wyoming_info import build_info, name_key, wake_name
from streamasr.actors.wake.base import WakeDetector, WakeEngine
from streamasr.actors.wake.bundled import NeuralWakeOptions
from streamasr.actors.wake.registry import create_wake_engine
from streamasr.actors.wake.settings import WakeConfig

RATE = 16000
#: Detected phrase ends must lie this close to the end of the phrase's speech, seconds.
END_TOLERANCE_S = 0.35

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pymicro_wakeword") is None
    or importlib.util.find_spec("pyopen_wakeword") is None,
    reason="pip install 'streamasr[wake]'",
)

_ENGINES: dict[tuple[str, tuple[str, ...], int], WakeEngine] = {}


def engine(name: str, phrases: tuple[str, ...] = ("okay nabu",), refractory_ms: int = 2000) -> Any:
    """A loaded engine (cached per module: the open engine takes ~1 s to load)."""
    key = (name, phrases, refractory_ms)
    if key not in _ENGINES:
        opts = NeuralWakeOptions(name, phrases, refractory_ms=refractory_ms)
        _ENGINES[key] = create_wake_engine(name, opts)
    return _ENGINES[key]


def pcm16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """Float audio as int16 PCM."""
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def feed(det: WakeDetector, pcm: npt.NDArray[np.int16], chunk: int = 1600) -> list[Any]:
    """Every detection of ``pcm`` fed in ``chunk``-sample pieces."""
    out: list[Any] = []
    for i in range(0, len(pcm), chunk):
        out += det.accept(pcm[i : i + chunk])
    return out


def phrase_then_silence(voice: str, text: str = "okay nabu") -> tuple[npt.NDArray[np.int16], int]:
    """1 s of quiet, the phrase, 1.5 s of quiet; and the sample where the phrase's speech
    ends (flite pads its output with silence)."""
    said = say(text, voice)
    loud = np.nonzero(np.abs(said) > 0.02 * np.abs(said).max())[0]
    pcm = np.concatenate([silence(1.0), said, silence(1.5)])
    return pcm16(pcm), RATE + int(loud[-1]) + 1


@needs_flite
@pytest.mark.parametrize(
    ("name", "voice"), [("micro", "kal16"), ("micro", "rms"), ("micro", "awb"), ("open", "kal16")]
)
def test_the_phrase_is_detected_where_it_ends(name: str, voice: str) -> None:
    pcm, end = phrase_then_silence(voice)
    det = engine(name).create_detector(5000)
    found = feed(det, pcm)
    assert [d.phrase for d in found] == ["okay nabu"]
    assert abs(found[0].end_frame - 5000 - end) < END_TOLERANCE_S * RATE, (found[0], end)
    assert found[0].start_frame < found[0].end_frame
    assert 0.0 < found[0].score <= 1.0
    assert det.position_frame == 5000 + len(pcm)
    det.close()


@needs_flite
def test_detections_do_not_depend_on_chunk_sizes() -> None:
    pcm, _ = phrase_then_silence("kal16")
    for name in ("micro", "open"):
        runs = []
        for chunk in (len(pcm), 1600, 333):
            det = engine(name).create_detector(0)
            runs.append([(d.phrase, d.end_frame) for d in feed(det, pcm, chunk)])
            det.close()
        assert runs[0] == runs[1] == runs[2] and len(runs[0]) == 1, (name, runs)


@needs_flite
def test_refractory_time_and_reset_positions() -> None:
    """Two phrases 2.5 s apart: two detections; with a 5 s refractory time, one. After
    ``reset(n)`` the same audio gives the same detections, shifted by ``n``."""
    one, _ = phrase_then_silence("rms")
    pcm = np.concatenate([one, one])
    det = engine("micro").create_detector(0)
    first = feed(det, pcm)
    assert len(first) == 2, first
    det.reset(100_000)
    again = feed(det, pcm)
    assert [d.end_frame - 100_000 for d in again] == [d.end_frame for d in first]
    det.close()
    slow = engine("micro", refractory_ms=5000).create_detector(0)
    assert len(feed(slow, pcm)) == 1
    slow.close()


def test_no_wake_in_a_conversation() -> None:
    """27 s of conversation (3 voices, no wake phrase) never wakes either engine."""
    conv, rate = sf.read(audio_file("conversation1.wav"), dtype="int16")
    assert rate == RATE
    for name in ("micro", "open"):
        det = engine(name, ("okay nabu", "hey jarvis")).create_detector(0)
        assert feed(det, conv) == [], name
        det.close()


@needs_flite
def test_two_phrases_each_detected_as_itself() -> None:
    nabu, _ = phrase_then_silence("kal16")
    jarvis, _ = phrase_then_silence("rms", "hey jarvis")
    det = engine("micro", ("okay nabu", "hey jarvis")).create_detector(0)
    assert [d.phrase for d in feed(det, np.concatenate([nabu, jarvis]))] == [
        "okay nabu",
        "hey jarvis",
    ]
    det.close()


def test_bad_audio_and_closed_detectors() -> None:
    det = engine("micro").create_detector(0)
    with pytest.raises(AudioFormatError, match=r"wake: expected int16 mono \(n,\), got float32"):
        det.accept(np.zeros(160, dtype=np.float32))  # type: ignore[arg-type]
    det.close()
    det.close()  # idempotent
    with pytest.raises(ModelError, match="wake: detector is closed"):
        det.accept(np.zeros(160, dtype=np.int16))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"engine": "micro", "phrases": ("hey computer",)},
            "wake.phrases: 'hey computer' is not a 'micro' model (available: 'okay nabu', "
            "'hey jarvis', 'alexa', 'hey mycroft'; other phrases: engine = \"pocketsphinx\")",
        ),
        (
            {"engine": "micro", "phrases": ("hey rhasspy",)},
            "wake.phrases: 'hey rhasspy' is not a 'micro' model",
        ),
        (
            {"engine": "open", "thresholds": (1e-20, 0.5)},
            "wake.thresholds: need one per phrase (1), got 2",
        ),
        (
            {"engine": "open", "thresholds": (1.5,), "phrases": ("hey rhasspy",)},
            "wake.thresholds: a 'open' threshold is a probability 0 < t < 1, got 1.5",
        ),
        ({"engine": "alexa"}, "wake.engine: unknown engine 'alexa' (known: 'micro', 'open'"),
        ({"refractory_ms": -1}, "wake.refractory_ms: must be in 0..60000"),
    ],
)
def test_config_errors_are_one_line_and_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        WakeConfig(enabled=True, **table).validate()
    assert "\n" not in str(info.value)


def test_a_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "pyopen_wakeword" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError) as info:
        WakeConfig(enabled=True, engine="open").validate()
    assert str(info.value) == (
        "wake.engine: 'open' needs the package pyopen-wakeword "
        "(pip install 'streamasr[wake]' or pip install pyopen-wakeword)"
    )
    WakeConfig(enabled=True, engine="micro").validate()  # the other engine is unaffected


def test_wyoming_names_as_home_assistant_knows_them() -> None:
    """As wyoming-microwakeword / wyoming-openwakeword: program ``microWakeWord`` /
    ``openwakeword``, model ``okay_nabu``, phrase ``Okay Nabu``; keyphrases by phrase."""
    for engine_name, program in (("micro", "microWakeWord"), ("open", "openwakeword")):
        (wake,) = build_info("fast", engine_name, ("okay nabu", "hey jarvis"), "1").wake
        assert wake.name == program and wake.installed
        assert [(md.name, md.phrase) for md in wake.models] == [
            ("okay_nabu", "Okay Nabu"),
            ("hey_jarvis", "Hey Jarvis"),
        ]
    (wake,) = build_info("fast", "pocketsphinx", ("hey computer",), "1").wake
    assert [(md.name, md.phrase) for md in wake.models] == [("hey computer", "hey computer")]
    assert wake_name("micro", "okay nabu") == "okay_nabu"
    assert name_key("Okay Nabu") == name_key("okay_nabu") == name_key(" okay  nabu") == "okay_nabu"
    assert WakeConfig().wake_phrases() == ("okay nabu",)
    assert WakeConfig(engine="pocketsphinx").wake_phrases() == ("hey computer",)
