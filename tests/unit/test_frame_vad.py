"""First-pass frame VAD (``actors/asr/frame_vad.py``): Silero's decisions in noise, their
independence of the chunking, and utterance segmentation in noise that the WebRTC-style VAD
hears as speech."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from streamasr.actors.asr.decode import decode_all
from streamasr.actors.asr.frame_vad import SileroFrameVad, WebrtcFrameVad
from streamasr.actors.asr.pocketsphinx_options import PocketsphinxOptions
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.errors import ConfigError

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
pytestmark = pytest.mark.skipif(
    not (AUDIO / "conversation1.wav").is_file(), reason=f"shared test audio not found in {AUDIO}"
)
RATE = 16000
HEAD = RATE * 10  # samples: the first 10 s of conversation1 hold utterances 1-3


def spans(name: str) -> list[tuple[float, float]]:
    with (AUDIO / f"{name}.tsv").open(newline="") as f:
        return [(float(r["start_s"]), float(r["end_s"])) for r in csv.DictReader(f, delimiter="\t")]


def speech(name: str) -> npt.NDArray[np.int16]:
    data, rate = sf.read(str(AUDIO / f"{name}.wav"), dtype="int16")
    assert rate == RATE and data.ndim == 1
    pcm: npt.NDArray[np.int16] = data
    return pcm


def pink(n: int, seed: int = 7) -> npt.NDArray[np.float64]:
    """Unit-RMS pink (1/f power) noise, ``n`` samples."""
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    out: npt.NDArray[np.float64] = x / np.sqrt(np.mean(x**2))
    return out


def in_noise(pcm: npt.NDArray[np.int16], snr_db: float) -> npt.NDArray[np.int16]:
    """``pcm`` plus pink noise ``snr_db`` below its RMS (pauses included)."""
    x = pcm.astype(np.float64)
    level = np.sqrt(np.mean(x**2)) / 10 ** (snr_db / 20)
    y = np.clip(np.round(x + level * pink(len(x))), -32768, 32767)
    out: npt.NDArray[np.int16] = y.astype(np.int16)
    return out


def frames(pcm: npt.NDArray[np.int16], n: int) -> npt.NDArray[np.int16]:
    k = len(pcm) // n
    return pcm[: k * n].reshape(k, n)


def labels(n_frames: int, frame_len: int, name: str) -> tuple[list[int], list[int]]:
    """Indices of frames inside a spoken span, and of frames 0.3 s or more from any."""
    inside, far = [], []
    for i in range(n_frames):
        t = (i + 0.5) * frame_len / RATE
        if any(a <= t <= b for a, b in spans(name)):
            inside.append(i)
        elif all(t < a - 0.3 or t > b + 0.3 for a, b in spans(name)):
            far.append(i)
    return inside, far


def test_silero_decisions_do_not_depend_on_how_frames_are_grouped() -> None:
    fr = frames(speech("conversation1"), 512)
    one = SileroFrameVad()
    ref = [d for f in fr for d in one.decide(f[None, :])]
    grouped, rng, i, out = SileroFrameVad(), np.random.default_rng(3), 0, []
    while i < len(fr):
        k = int(rng.integers(1, 9))
        out += grouped.decide(fr[i : i + k])
        i += k
    assert out == ref


def test_silero_tells_speech_from_pink_noise_where_webrtc_does_not() -> None:
    pcm = in_noise(speech("conversation1"), 10.0)
    sil = frames(pcm, 512)
    dec = SileroFrameVad().decide(sil)
    inside, far = labels(len(sil), 512, "conversation1")
    assert np.mean([dec[i] for i in inside]) > 0.7
    assert np.mean([dec[i] for i in far]) < 0.1
    web = WebrtcFrameVad(0, RATE, 30)
    wfr = frames(pcm, web.frame_len)
    wdec = web.decide(wfr)
    _, wfar = labels(len(wfr), web.frame_len, "conversation1")
    assert np.mean([wdec[i] for i in wfar]) > 0.5  # the noise between utterances is "speech"


def test_silero_stream_ends_each_utterance_in_pink_noise() -> None:
    """The first 10 s of conversation1 (utterances 1-3) in pink noise at 10 dB: one final
    per utterance, each within 0.5 s of its reference span (the WebRTC-style VAD hears the
    noise between them as speech, see the test above, and merges them)."""
    pcm = in_noise(speech("conversation1"), 10.0)[:HEAD]
    expected = [(a, b) for a, b in spans("conversation1") if b < HEAD / RATE]
    stream = create_recognizer("pocketsphinx", {"vad": "silero"}).create_stream()
    finals = decode_all(stream, pcm, 1600)
    assert len(finals) == len(expected) == 3, [f.text for f in finals]
    for f, (a, b) in zip(finals, expected, strict=True):
        assert abs(f.start_frame / RATE - a) < 0.5 and abs(f.end_frame / RATE - b) < 0.5


def test_silero_stream_finals_do_not_depend_on_the_chunk_size() -> None:
    pcm = speech("conversation1")[:HEAD]
    opts = {"vad": "silero"}
    ref = decode_all(create_recognizer("pocketsphinx", opts).create_stream(), pcm, 1600)
    got = decode_all(create_recognizer("pocketsphinx", opts).create_stream(), pcm, 800)
    assert len(ref) == 3
    assert [(f.text, f.start_frame, f.end_frame) for f in got] == [
        (f.text, f.start_frame, f.end_frame) for f in ref
    ]


def test_vad_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"vad: must be 'auto', 'webrtc' or 'silero', got 'x'"):
        create_recognizer("pocketsphinx", {"vad": "x"})
    with pytest.raises(ConfigError, match=r"vad: 'silero' needs 16000 Hz, got 8000"):
        create_recognizer("pocketsphinx", {"vad": "silero", "sample_rate_hz": 8000})
    with pytest.raises(ConfigError, match=r"silero_threshold: must be in \[0.2, 0.95\]"):
        create_recognizer("pocketsphinx", {"vad": "silero", "silero_threshold": 0.05})
    assert PocketsphinxOptions().frame_vad == "webrtc"
    assert PocketsphinxOptions(vad="auto").frame_vad == "silero"
    assert PocketsphinxOptions(vad="auto", sample_rate_hz=8000).frame_vad == "webrtc"
