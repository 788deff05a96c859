"""Wake-word detector (PocketSphinx kws): placement, false wakes, chunking, reset, errors."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from streamasr.actors.errors import AudioFormatError, ConfigError, ModelError
from streamasr.actors.wake.base import Detection, WakeOptions
from streamasr.actors.wake.pocketsphinx_kws import PocketsphinxKwsDetector, PocketsphinxKwsEngine
from streamasr.actors.wake.registry import create_wake_engine

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
RATE = 16000
PHRASE = WakeOptions().phrases[0]
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not on PATH")
needs_audio = pytest.mark.skipif(
    not (AUDIO / "conversation1.wav").is_file(), reason=f"shared test audio not found in {AUDIO}"
)

Pcm = npt.NDArray[np.int16]


def synth(text: str, voice: str, tmp: Path) -> Pcm:
    """flite speech, resampled to 16 kHz and trimmed to frames within 35 dB of the loudest."""
    path = tmp / f"{voice}.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    data, rate = sf.read(str(path), dtype="float64")
    if rate != RATE:
        data = soxr.resample(data, rate, RATE)
    n = len(data) // 160
    rms = np.sqrt(np.mean(data[: n * 160].reshape(n, 160) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(rms > rms.max() * 10 ** (-35 / 20))[0]
    data = data[loud[0] * 160 : (loud[-1] + 1) * 160]
    pcm: Pcm = np.round(data * 32767).astype(np.int16)
    return pcm


def quiet(seconds: float, seed: int = 0) -> Pcm:
    """Background noise at about -60 dBFS."""
    noise = np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * 33.0
    pcm: Pcm = noise.astype(np.int16)
    return pcm


def feed(detector: object, pcm: Pcm, chunk: int) -> list[Detection]:
    out: list[Detection] = []
    for i in range(0, len(pcm), chunk):
        out += detector.accept(pcm[i : i + chunk])  # type: ignore[attr-defined]
    return out


@pytest.fixture(scope="module")
def engine() -> PocketsphinxKwsEngine:
    eng = create_wake_engine("pocketsphinx", WakeOptions())
    assert isinstance(eng, PocketsphinxKwsEngine)
    eng.warm_up()
    return eng


@pytest.fixture(scope="module")
def phrase_pcm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcm]:
    if shutil.which("flite") is None:
        pytest.skip("flite is not on PATH")
    yield synth(PHRASE, "slt", tmp_path_factory.mktemp("flite"))


@needs_flite
def test_phrase_in_silence_is_detected_where_it_was_placed(
    engine: PocketsphinxKwsEngine, phrase_pcm: Pcm
) -> None:
    start = 3 * RATE + 123
    pcm = np.concatenate([quiet(3)[:start], phrase_pcm, quiet(1.5, 1)])
    det = engine.create_detector(500)
    found = feed(det, pcm, 1600)
    det.close()
    assert [d.phrase for d in found] == [PHRASE]
    assert abs(found[0].start_frame - 500 - start) < 0.3 * RATE
    assert abs(found[0].end_frame - 500 - (start + len(phrase_pcm))) < 0.3 * RATE
    assert found[0].score >= np.log10(WakeOptions().threshold_for(0))


@needs_flite
@needs_audio
def test_phrase_between_conversation_utterances_is_detected(
    engine: PocketsphinxKwsEngine, phrase_pcm: Pcm
) -> None:
    conv, _ = sf.read(str(AUDIO / "conversation1.wav"), dtype="int16")
    cut = int(2.8 * RATE)  # the pause between utterances 1 and 2
    pcm = np.concatenate([conv[:cut], quiet(0.3), phrase_pcm, quiet(0.3), conv[cut : 10 * RATE]])
    start = cut + int(0.3 * RATE)
    det = engine.create_detector()
    found = [d for d in feed(det, pcm, 1600) if d.phrase == PHRASE]
    det.close()
    assert len(found) == 1
    assert abs(found[0].start_frame - start) < 0.3 * RATE
    assert abs(found[0].end_frame - (start + len(phrase_pcm))) < 0.3 * RATE


@needs_audio
def test_no_wake_on_a_conversation_without_the_phrase(engine: PocketsphinxKwsEngine) -> None:
    conv, _ = sf.read(str(AUDIO / "conversation2.wav"), dtype="int16")
    det = engine.create_detector()
    assert feed(det, conv, 1600) == []
    assert det.position_frame == len(conv)
    det.close()


@needs_flite
@needs_audio
def test_detections_do_not_depend_on_chunk_size(
    engine: PocketsphinxKwsEngine, phrase_pcm: Pcm
) -> None:
    conv, _ = sf.read(str(AUDIO / "conversation1.wav"), dtype="int16")
    pcm = np.concatenate([quiet(1), phrase_pcm, quiet(0.5), conv[: 6 * RATE], phrase_pcm])
    pcm = np.concatenate([pcm, quiet(1)])
    results = []
    for chunk in (320, 8000, 1234):
        det = engine.create_detector()
        results.append(feed(det, pcm, chunk))
        det.close()
    assert len(results[0]) == 2
    for other in results[1:]:
        assert len(other) == len(results[0])
        for a, b in zip(results[0], other, strict=True):
            assert a.phrase == b.phrase
            assert abs(a.start_frame - b.start_frame) <= 320
            assert abs(a.end_frame - b.end_frame) <= 320


@needs_flite
def test_reset_rebases_positions(engine: PocketsphinxKwsEngine, phrase_pcm: Pcm) -> None:
    pcm = np.concatenate([quiet(1), phrase_pcm, quiet(1)])
    det = engine.create_detector(0)
    first = feed(det, pcm[: RATE + 800], 1600)  # stop inside the phrase
    assert first == []
    base = 10**9 + 7
    det.reset(base)
    assert det.position_frame == base
    again = feed(det, pcm, 1600)
    det.close()
    ref = engine.create_detector(0)
    plain = feed(ref, pcm, 1600)
    ref.close()
    assert len(plain) == 1 and len(again) == 1
    assert again[0].start_frame - base == plain[0].start_frame
    assert again[0].end_frame - base == plain[0].end_frame


@needs_flite
def test_segment_restart_finds_a_straddling_phrase_once(phrase_pcm: Pcm) -> None:
    opts = WakeOptions(vad_gate=False, max_segment_s=5.0, overlap_ms=2000)
    eng = create_wake_engine("pocketsphinx", opts)
    start = 5 * RATE - len(phrase_pcm) // 2  # the phrase crosses the restart at 5 s
    pcm = np.concatenate([quiet(12)[:start], phrase_pcm, quiet(6.5, 2)])
    det = eng.create_detector()
    found = feed(det, pcm, 1600)
    det.close()
    assert len(found) == 1
    assert abs(found[0].start_frame - start) < 0.3 * RATE


def test_vad_gate_searches_nothing_in_silence(engine: PocketsphinxKwsEngine) -> None:
    det = engine.create_detector()
    assert feed(det, quiet(20), 1600) == []
    assert not det.in_segment
    assert det.samples_searched < 0.1 * 20 * RATE  # the VAD may fire once while it adapts
    det.close()


def test_bad_audio_is_rejected(engine: PocketsphinxKwsEngine) -> None:
    det = engine.create_detector()
    with pytest.raises(AudioFormatError, match=r"wake: expected int16 mono \(n,\), got float32"):
        det.accept(np.zeros(160, dtype=np.float32))
    with pytest.raises(AudioFormatError, match=r"got int16 \(160, 2\)"):
        det.accept(np.zeros((160, 2), dtype=np.int16))
    assert det.position_frame == 0
    det.close()
    with pytest.raises(ModelError, match="wake: detector is closed"):
        det.accept(np.zeros(160, dtype=np.int16))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"phrases": ("hey xyzzyq",)},
            "wake.phrases: 'xyzzyq' is not in the pronunciation dictionary",
        ),
        ({"phrases": ()}, "wake.phrases: at least one phrase is needed"),
        ({"phrases": ("Hey Computer",)}, "wake.phrases: 'Hey Computer' must be lower case"),
        ({"phrases": ("hey computer", "hey computer")}, "wake.phrases: phrases must be distinct"),
        ({"thresholds": (1e-20, 1e-10)}, r"wake.thresholds: need one per phrase \(1\), got 2"),
        ({"thresholds": (0.0,)}, "wake.thresholds: must be finite and > 0, got 0.0"),
        ({"sample_rate_hz": 8000}, "wake.sample_rate_hz: must be 16000, got 8000"),
        ({"vad_mode": 4}, "wake.vad_mode: must be 0..3, got 4"),
        ({"preroll_ms": -1}, "wake.preroll_ms: must be >= 0, got -1"),
        ({"hangover_ms": 50}, "wake.hangover_ms: must be >= 100, got 50"),
        ({"max_segment_s": 1.0}, "wake.max_segment_s: must be >= 5, got 1.0"),
        ({"overlap_ms": 20000}, "wake.overlap_ms: must be below half of max_segment_s"),
        ({"verify_margin": float("nan")}, "wake.verify_margin: must be finite, got nan"),
        ({"verify_post_ms": 2000}, r"wake.verify_post_ms: must be 0..1000, got 2000"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WakeOptions(**kwargs)


def test_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"wake\.engine: unknown engine 'snowboy'"):
        create_wake_engine("snowboy", WakeOptions())


def test_thresholds_default_per_phrase() -> None:
    opts = WakeOptions(phrases=("hey computer", "hello jarvis"), thresholds=())
    assert opts.threshold_for(0) > 0 and opts.threshold_for(1) > 0
    assert WakeOptions(thresholds=(1e-7,)).threshold_for(0) == 1e-7


@needs_flite
def test_verifier_separates_the_phrase_from_similar_speech(
    engine: PocketsphinxKwsEngine, phrase_pcm: Pcm, tmp_path: Path
) -> None:
    verifier = engine.verifier
    assert verifier is not None
    pad = quiet(0.3, 4)
    other = synth("they said hey to the commuter", "slt", tmp_path)
    good = verifier.margin(PHRASE, np.concatenate([pad, phrase_pcm, pad]))
    bad = verifier.margin(PHRASE, np.concatenate([pad, other, pad]))
    assert good >= WakeOptions().verify_margin > bad


@needs_flite
def test_verification_keeps_or_drops_hits_by_margin(phrase_pcm: Pcm, tmp_path: Path) -> None:
    other = synth("a computer can play chess better than me", "slt", tmp_path)
    pcm = np.concatenate([quiet(1), phrase_pcm, quiet(1, 1), other, quiet(1, 2)])
    found: dict[float | None, tuple[list[Detection], int]] = {}
    for margin in (None, -1e6, 1e6):
        opts = WakeOptions(thresholds=(1e-45,), verify=margin is not None)
        eng = create_wake_engine("pocketsphinx", replace(opts, verify_margin=margin or 0.0))
        det = eng.create_detector()
        assert isinstance(det, PocketsphinxKwsDetector)
        found[margin] = (feed(det, pcm, 1600), len(det.rejected))
    raw, _ = found[None]
    assert len(raw) == 2  # the phrase and "computer" in the sentence
    assert found[-1e6] == (raw, 0)
    assert found[1e6] == ([], len(raw))
