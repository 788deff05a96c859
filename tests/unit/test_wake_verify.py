"""``[wake] verify = "open"``: each microWakeWord detection confirmed by openWakeWord, with
the real models on synthesised speech (flite, espeak-ng)."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import numpy.typing as npt
import pytest
from synth import espeak, needs_flite, say, silence

from streamasr.actors.errors import ConfigError
from streamasr.actors.wake.base import Detection, WakeDetector
from streamasr.actors.wake.bundled import NeuralWakeOptions
from streamasr.actors.wake.registry import create_wake_engine
from streamasr.actors.wake.settings import WakeConfig
from streamasr.actors.wake.verified import SETTLE_S, VerifiedDetector, VerifiedWakeEngine

RATE = 16000

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pymicro_wakeword") is None
    or importlib.util.find_spec("pyopen_wakeword") is None,
    reason="pip install 'streamasr[wake]'",
)

_LOADED: dict[str, VerifiedWakeEngine] = {}


def verified() -> VerifiedWakeEngine:
    """micro + open at the default confirmation threshold (loaded once per module)."""
    if "v" not in _LOADED:
        engine = create_wake_engine("micro", NeuralWakeOptions("micro", verify="open"))
        assert isinstance(engine, VerifiedWakeEngine)
        _LOADED["v"] = engine
    return _LOADED["v"]


def pcm16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """Float audio as int16 PCM."""
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def feed(det: WakeDetector, pcm: npt.NDArray[np.int16], chunk: int = 1600) -> list[Detection]:
    """Every detection of ``pcm`` fed in ``chunk``-sample pieces."""
    out: list[Detection] = []
    for i in range(0, len(pcm), chunk):
        out += det.accept(pcm[i : i + chunk])
    return out


def with_command(phrase: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    """1 s of quiet, ``phrase``, a command, 1 s of quiet."""
    command = say("turn on the kitchen light", "kal16")
    return pcm16(np.concatenate([silence(1.0), phrase, command, silence(1.0)]))


@needs_flite
@pytest.mark.parametrize("voice", ["kal16", "rms", "awb"])
def test_a_real_phrase_is_confirmed_with_the_listeners_frames(voice: str) -> None:
    """The phrase followed at once by a command: one detection, at the frames microWakeWord
    alone gives, reported at most SETTLE_S (+ one chunk) later."""
    pcm = with_command(say("okay nabu", voice))
    alone = create_wake_engine("micro", NeuralWakeOptions("micro")).create_detector(0)
    plain: list[tuple[Detection, int]] = []
    for i in range(0, len(pcm), 1600):
        plain += [(d, i) for d in alone.accept(pcm[i : i + 1600])]
    alone.close()
    det = verified().create_detector(0)
    assert isinstance(det, VerifiedDetector)
    checked: list[tuple[Detection, int]] = []
    for i in range(0, len(pcm), 1600):
        checked += [(d, i) for d in det.accept(pcm[i : i + 1600])]
    assert [d for d, _ in checked] == [d for d, _ in plain] and len(plain) == 1
    late_s = (checked[0][1] - plain[0][1]) / RATE
    assert 0.0 <= late_s <= SETTLE_S + 0.1
    assert det.confirmed == 1 and det.rejected == 0
    assert det.last_probability >= verified().options.verify_threshold
    assert det.position_frame == len(pcm)
    det.close()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_a_near_rhyme_that_wakes_the_listener_is_rejected() -> None:
    """ "okay, now boo them" (espeak-ng en-us) wakes microWakeWord; openWakeWord gives it a
    probability near 0, so the cascade stays asleep and counts the rejection."""
    pcm = pcm16(np.concatenate([silence(1.0), espeak("okay, now boo them", "en-us"), silence(1.5)]))
    alone = create_wake_engine("micro", NeuralWakeOptions("micro")).create_detector(0)
    assert len(feed(alone, pcm)) == 1  # the listener alone wakes
    alone.close()
    det = verified().create_detector(0)
    assert isinstance(det, VerifiedDetector)
    assert feed(det, pcm) == []
    assert det.rejected == 1 and det.confirmed == 0
    assert det.last_probability < 0.05
    det.close()


@needs_flite
def test_chunk_sizes_and_reset_do_not_change_detections() -> None:
    pcm = with_command(say("okay nabu", "kal16"))
    runs = []
    for chunk in (len(pcm), 1600, 333):
        det = verified().create_detector(0)
        runs.append([d.end_frame for d in feed(det, pcm, chunk)])
        det.close()
    assert runs[0] == runs[1] == runs[2] and len(runs[0]) == 1, runs
    det = verified().create_detector(0)
    feed(det, pcm[: len(pcm) // 3])  # a reset in the middle of anything forgets it
    det.reset(50_000)
    assert [d.end_frame - 50_000 for d in feed(det, pcm)] == runs[0]
    det.close()


def test_verify_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"wake\.verify: must be \"open\" or \"\""):
        NeuralWakeOptions("micro", verify="sphinx")
    with pytest.raises(ConfigError, match=r"wake\.verify: only the 'micro' engine"):
        NeuralWakeOptions("open", verify="open")
    with pytest.raises(ConfigError, match=r"wake\.verify_threshold: a probability"):
        NeuralWakeOptions("micro", verify="open", verify_threshold=1.5)
    with pytest.raises(ConfigError, match=r"wake\.verify: only the 'micro' engine"):
        WakeConfig(enabled=True, engine="open", verify="open").validate()
    opts = WakeConfig(enabled=True, verify="open", verify_threshold=0.3).detector_options()
    assert isinstance(opts, NeuralWakeOptions)
    assert (opts.verify, opts.verify_threshold) == ("open", 0.3)
