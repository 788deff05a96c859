"""Test audio for the wake-word benchmark: flite phrases spliced into the shared conversations.

Everything is made on the fly (nothing is written to the repository): the wake phrase is
synthesised with Debian's ``flite`` and ``espeak-ng`` in several voices (``espeak:<voice>``
names an espeak-ng voice), trimmed to its speech, and spliced into
the pauses of ``conversation{1,2,3}.wav`` (the pause is widened, so no conversation speech is
covered), half of the time followed by a command utterance; then pink noise is added at a given
SNR relative to the speech level. The exact sample span of every inserted phrase is returned.
"""

from __future__ import annotations

import functools
import itertools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

AUDIO_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
RATE_HZ = 16000
FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
ESPEAK_VOICES = ("espeak:en-us", "espeak:en-gb-x-rp", "espeak:en-us+f3")
VOICES = FLITE_VOICES + ESPEAK_VOICES
CONVERSATIONS = ("conversation1", "conversation2", "conversation3")
BG_DBFS = -60.0  # level of the conversations' own background noise

Pcm = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Span:
    """An inserted phrase: absolute sample span in the mixed stream, and its voice."""

    start: int
    end: int
    voice: str


def have_flite() -> bool:
    """True when the ``flite`` command is on PATH."""
    return shutil.which("flite") is not None


def have_espeak() -> bool:
    """True when the ``espeak-ng`` command is on PATH."""
    return shutil.which("espeak-ng") is not None


def _trim(x: npt.NDArray[np.float64], rel_db: float = -35.0) -> npt.NDArray[np.float64]:
    """Cut leading/trailing 10 ms frames quieter than ``rel_db`` below the loudest frame."""
    n = len(x) // 160
    rms = np.sqrt(np.mean(x[: n * 160].reshape(n, 160) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > rel_db)[0]
    return x[loud[0] * 160 : (loud[-1] + 1) * 160]


@functools.lru_cache(maxsize=1024)
def synth(text: str, voice: str, trim: bool = True) -> Pcm:
    """``text`` spoken by flite ``voice`` as 16 kHz int16 PCM (speech-trimmed unless ``trim``)."""
    with tempfile.TemporaryDirectory(prefix="streamasr-flite-") as tmp:
        path = Path(tmp) / "x.wav"
        if voice.startswith("espeak:"):
            cmd = ["espeak-ng", "-v", voice.split(":", 1)[1], "-w", str(path), text]
        else:
            cmd = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
        subprocess.run(cmd, check=True, timeout=60)
        data, rate = sf.read(str(path), dtype="float64")
    if rate != RATE_HZ:
        data = soxr.resample(data, rate, RATE_HZ)
    if trim:
        data = _trim(np.asarray(data, dtype=np.float64))
    return to_pcm(np.asarray(data) * 32768.0)


def to_pcm(x: npt.NDArray[np.float64]) -> Pcm:
    """Round and clip float samples (int16 scale) to int16."""
    pcm: Pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    return pcm


def load(name: str) -> Pcm:
    """16 kHz mono int16 PCM of ``<name>.wav`` in the shared audio folder."""
    data, rate = sf.read(str(AUDIO_DIR / f"{name}.wav"), dtype="int16")
    assert rate == RATE_HZ and data.ndim == 1, name
    pcm: Pcm = data
    return pcm


def refs(name: str) -> list[tuple[float, float]]:
    """(start_s, end_s) of the utterances of ``<name>.tsv``."""
    rows = (AUDIO_DIR / f"{name}.tsv").read_text().splitlines()[1:]
    return [(float(r.split("\t")[0]), float(r.split("\t")[1])) for r in rows]


def background(n: int, rng: np.random.Generator) -> Pcm:
    """``n`` samples of white noise at the conversations' background level."""
    return to_pcm(rng.standard_normal(n) * 32768.0 * 10 ** (BG_DBFS / 20))


def pink(n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``n`` samples of unit-RMS pink (1/f power) noise."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / RATE_HZ)
    spec[1:] /= np.sqrt(f[1:] / f[1])
    spec[0] = 0.0
    x = np.fft.irfft(spec, n)
    out: npt.NDArray[np.float64] = x / (np.sqrt(np.mean(x**2)) + 1e-12)
    return out


def speech_rms(pcm: Pcm) -> float:
    """RMS (int16 units) of the 10 ms frames within 30 dB of the loudest one."""
    x = pcm.astype(np.float64)
    n = len(x) // 160
    rms = np.sqrt(np.mean(x[: n * 160].reshape(n, 160) ** 2, axis=1))
    loud = rms[rms > rms.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(loud**2)))


def add_noise(pcm: Pcm, snr_db: float | None, seed: int) -> Pcm:
    """``pcm`` plus pink noise ``snr_db`` below its speech level (None: unchanged)."""
    if snr_db is None:
        return pcm
    level = speech_rms(pcm) * 10 ** (-snr_db / 20)
    noise = pink(len(pcm), np.random.default_rng(seed)) * level
    return to_pcm(pcm.astype(np.float64) + noise)


def mixed_stream(phrase: str, rotation: int, seed: int) -> tuple[Pcm, list[Span]]:
    """The three conversations with ``phrase`` spliced into every pause (clean).

    The voice rotates over :data:`VOICES` starting at ``rotation``; every second phrase is
    followed after 0.25 s by a command utterance; phrase gain varies by +-4 dB.
    """
    rng = np.random.default_rng(seed)
    commands = sorted((AUDIO_DIR / "utterances").glob("utt*.wav"))
    parts: list[Pcm] = []
    spans: list[Span] = []
    pos, k = 0, rotation
    for name in CONVERSATIONS:
        pcm, rows = load(name), refs(name)
        cursor = 0
        for (_, end_a), (start_b, _) in itertools.pairwise(rows):
            cut = int((end_a + start_b) / 2 * RATE_HZ)
            voice = VOICES[k % len(VOICES)]
            gain = 10 ** (rng.uniform(-4.0, 4.0) / 20)
            said = to_pcm(synth(phrase, voice).astype(np.float64) * gain)
            lead = background(int(0.4 * RATE_HZ), rng)
            piece = [pcm[cursor:cut], lead, said]
            start = pos + cut - cursor + len(lead)
            spans.append(Span(start, start + len(said), voice))
            if k % 2:
                cmd, _ = sf.read(str(commands[k % len(commands)]), dtype="int16")
                piece += [background(int(0.25 * RATE_HZ), rng), cmd]
            piece.append(background(int(0.4 * RATE_HZ), rng))
            parts += piece
            pos += sum(len(p) for p in piece)
            cursor, k = cut, k + 1
        parts.append(pcm[cursor:])
        pos += len(pcm) - cursor
    return np.concatenate(parts), spans


def perturbed(pcm: Pcm, speed: float, gain_db: float) -> Pcm:
    """``pcm`` played ``speed`` times faster (pitch moves too) and ``gain_db`` louder."""
    x = pcm.astype(np.float64)
    if speed != 1.0:
        x = soxr.resample(x, RATE_HZ * speed, RATE_HZ)
    return to_pcm(x * 10 ** (gain_db / 20))


#: Sentences with the phrase's words in other contexts (hard negatives for false wakes).
HARD_NEGATIVES = (
    "my computer is very slow today",
    "hey there, how are you doing",
    "okay, let me think about it",
    "the computer science class starts at nine",
    "hey, can you compute the total for me",
    "she bought a new laptop computer yesterday",
    "hello, is anybody home",
    "okay, put it on the computer desk",
    "they said hey to the commuter on the train",
    "a computer can play chess better than me",
)


#: Confusable phrases per wake phrase (near-rhymes, the phrase's words in other senses).
CONFUSABLES: dict[str, tuple[str, ...]] = {
    "okay nabu": (
        "okay, now book it for me",
        "oh kay, not you",
        "okay, a new boot",
        "the canoe is blue",
        "okay, nobody knows",
        "okay, nab the bus",
        "hey, nabil, you too",
        "okay, now boo them",
        "a kabuki play",
        "okay, let me know",
    ),
    "hey jarvis": (
        "hey, travis, are you there",
        "hey, jar of peanuts",
        "harvest the carrots",
        "they are jarring noises",
        "hey, chavis, how is it",
        "jarvis is a butler in the movie",
        "hey there, carlos",
        "hey, service please",
    ),
}


def hard_negatives(
    voices: tuple[str, ...] = ("slt", "rms", "awb", "kal16"), phrase: str = ""
) -> Pcm:
    """Every :data:`HARD_NEGATIVES` sentence (and ``phrase``'s :data:`CONFUSABLES`) in every
    voice, joined by 0.8 s background."""
    rng = np.random.default_rng(7)
    parts: list[Pcm] = []
    for voice in voices:
        for text in HARD_NEGATIVES + CONFUSABLES.get(phrase, ()):
            parts += [synth(text, voice, trim=False), background(int(0.8 * RATE_HZ), rng)]
    return np.concatenate(parts)
