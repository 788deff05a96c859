"""The endpoint policy by table, its options' validation, and the real Smart Turn model on
complete and cut-off commands."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from streamasr.actors.asr import turn_model
from streamasr.actors.asr.endpoint_policy import EndpointOptions, decide, ends_open
from streamasr.actors.asr.registry import options_from_mapping
from streamasr.actors.errors import ConfigError

OPTS = EndpointOptions()  # 200 / 600 / 1500 ms, complete >= 0.5, unfinished < 0.2
UTTERANCES = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio" / "utterances"


@pytest.mark.parametrize(
    ("silence_ms", "p", "open_word", "overloaded", "expected"),
    [
        (100, 0.99, False, False, None),  # before the earliest endpoint
        (200, 0.90, False, False, "early"),  # a complete turn ends at once
        (200, 0.50, False, False, "early"),  # the threshold is inclusive
        (200, 0.90, True, False, None),  # "set a timer for": the text is open
        (400, 0.40, False, False, None),  # unsure: wait for the fixed silence
        (600, 0.40, False, False, "normal"),  # unsure, not clearly unfinished: fixed rule
        (600, 0.90, False, False, "normal"),  # complete at the fixed silence is normal
        (600, 0.10, False, False, None),  # clearly unfinished: wait longer
        (600, 0.90, True, False, None),  # open word: wait longer
        (1000, 0.10, False, False, None),
        (1500, 0.10, False, False, "extended"),  # at most max_silence_ms
        (1500, 0.90, True, False, "extended"),
        (1200, 0.70, False, False, "normal"),  # became complete while waiting
        # no model, or overloaded: the fixed rule
        (200, None, False, False, None),
        (599, None, False, False, None),
        (600, None, True, False, "normal"),
        (200, 0.99, False, True, None),
        (600, 0.01, True, True, "normal"),
    ],
)
def test_decide(
    silence_ms: int, p: float | None, open_word: bool, overloaded: bool, expected: str | None
) -> None:
    assert decide(silence_ms, p, open_word, overloaded, OPTS) == expected


def test_the_fixed_policy_ignores_the_model() -> None:
    fixed = EndpointOptions(policy="fixed")
    assert decide(200, 0.99, False, False, fixed) is None
    assert decide(600, 0.01, True, False, fixed) == "normal"
    assert fixed.checkpoints_ms() == [600]


def test_checkpoints_are_fixed_silences() -> None:
    assert OPTS.checkpoints_ms() == [200, 400, 600, 800, 1000, 1200, 1400, 1500]
    odd = EndpointOptions(min_silence_ms=250, silence_ms=500, max_silence_ms=900, recheck_ms=300)
    assert odd.checkpoints_ms() == [250, 500, 550, 850, 900]


@pytest.mark.parametrize(
    ("text", "open_"),
    [
        ("set a timer for", True),
        ("turn on the", True),
        ("remind me to", True),
        ("set a timer for ten minutes", False),
        ("turn on the kitchen lights.", False),
        ("", False),
        ("And", True),
    ],
)
def test_open_words(text: str, open_: bool) -> None:
    assert ends_open(text) is open_


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"policy": "smart"}, "endpoint.policy: must be one of 'adaptive', 'fixed'"),
        ({"min_silence_ms": 700}, "endpoint.silence: need 60 <= min_silence_ms"),
        ({"max_silence_ms": 500}, "endpoint.silence: need"),
        ({"recheck_ms": 5}, "endpoint.recheck_ms: must be in 20..5000"),
        ({"unfinished_probability": 0.8}, "endpoint.probability: need"),
        ({"silence": 600}, "endpoint.silence: unknown key"),
        ({"min_silence_ms": "fast"}, "endpoint.min_silence_ms: must be int, got str 'fast'"),
    ],
)
def test_bad_options_are_one_line_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        options_from_mapping(EndpointOptions, table, "endpoint")
    assert "\n" not in str(err.value)


def test_a_policy_built_in_code_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=re.escape("policy: must be 'adaptive' or 'fixed'")):
        EndpointOptions(policy="smart")  # type: ignore[arg-type]


def test_a_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"endpoint\.model: no such file"):
        turn_model.load(str(tmp_path / "nope.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"endpoint\.model: cannot load"):
        turn_model.load(str(bad))


def _speech(name: str) -> np.ndarray:
    """The utterance up to its last loud sample (flite's own tail cut off)."""
    audio, rate = sf.read(UTTERANCES / name, dtype="float32")
    assert rate == turn_model.SAMPLE_RATE_HZ
    loud = np.nonzero(np.abs(audio) > 0.01)[0]
    return np.asarray(audio[: loud[-1]], dtype=np.float32)


def _then_quiet(speech: np.ndarray, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    quiet = rng.standard_normal(int(seconds * turn_model.SAMPLE_RATE_HZ)) * 1e-3
    return np.concatenate([speech, quiet.astype(np.float32)])


def test_smart_turn_hears_finished_and_cut_off_commands() -> None:
    """The real model, shipped by pipecat-ai: finished commands (with 0.5 s of quiet after
    them) score above the threshold; the same commands cut before their object, below."""
    if turn_model.bundled_model() is None:
        pytest.skip("pipecat-ai is not installed (the turn model's package)")
    model = turn_model.load()
    assert model is not None
    finished = {
        "utt02_rms.wav": "set a timer for ten minutes",
        "utt06_rms.wav": "turn off all the lights downstairs",
    }
    for name in finished:
        assert model.probability(_then_quiet(_speech(name), 0.5)) >= OPTS.complete_probability
    for name in finished:
        cut = _speech(name)
        cut = cut[: len(cut) // 2]  # "set a timer", "turn off all"
        assert model.probability(_then_quiet(cut, 0.3)) < OPTS.unfinished_probability
