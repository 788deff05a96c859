"""Realistic test speech, synthesised on demand: long-form reading, noise, reverberation and
unseen short sentences, each with its exact reference text.

Everything is made with Debian's ``flite`` (voices slt, rms, awb, kal16) and ``sox`` into a
cache directory the caller names, as 16 kHz mono int16 WAV. The output is deterministic
(flite is; sox runs with ``-R``, its repeatable mode, and ``-D``, no dither; mixing is plain
numpy arithmetic), so the same call writes the same bytes, and each file is named by a hash
of its recipe (text, voice, effect, :data:`RECIPE_VERSION`), so a repeated call only checks
that the files exist.

Sets (see the functions of the same names):

- :func:`long_form`: ten passages of 15–30 s of continuous reading, one voice each, spread
  over the four voices. Eight are one flite call over sentences full of commas (flite pauses
  about 50–250 ms at a comma and longer at a full stop), several built of parallel, repeated
  clauses, some with numbers written as words. Two are separate sentences joined by 150–400 ms
  of silence, so the pauses inside a passage vary.
- :func:`noisy`: passages (by default one per voice) with white noise at 15 dB or pink noise
  at 10 dB SNR (noise from ``sox synth``, repeatable mode).
- :func:`reverberant`: the same passages through ``sox reverb`` (reverberance 50 % or 80 %).
- :func:`unseen_sentences`: fourteen 2–5 s sentences unlike ``shared/audio/utterances``, joined
  by 0.8–1.2 s pauses into one file, with a ``.tsv`` of start, end and text like the shared
  ``conversation*.tsv`` (times include flite's own lead-in and tail).

Every file carries a background floor of white noise at -60 dBFS RMS, as the shared
conversations do (real microphones never give exact zeros, and long runs of them upset
PocketSphinx's cepstral mean normalisation). This module imports only the standard library,
numpy and soundfile, so tests import it as ``benchmarks.speech_sets`` and the benchmark
scripts beside it as ``speech_sets``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf

__all__ = [
    "PASSAGES",
    "RATE_HZ",
    "UNSEEN",
    "VOICES",
    "Passage",
    "Segment",
    "SpeechItem",
    "all_sets",
    "long_form",
    "noisy",
    "reverberant",
    "unseen_sentences",
]

RATE_HZ = 16000
VOICES = ("slt", "rms", "awb", "kal16")
#: Bump when a recipe changes: every cached file name changes with it.
RECIPE_VERSION = 1
#: RMS of the background floor added to every file, dBFS.
FLOOR_DBFS = -60.0
#: Seconds of each cached noise file (longer items repeat it).
NOISE_S = 60.0
#: RMS (full scale 1.0, about -46 dBFS) below which a 10 ms frame counts as silence when
#: trimming flite's lead-in and tail, and the milliseconds kept beyond the first and last
#: louder frame.
_TRIM_RMS = 0.005
_TRIM_KEEP_MS = 30

Pcm = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Segment:
    """One sentence of a multi-sentence file: stream seconds and its text."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True, slots=True)
class SpeechItem:
    """One generated file and what was said in it.

    Attributes:
        path: the 16 kHz mono int16 WAV.
        text: the exact reference text (the synthesiser's input, punctuation included).
        set_name: ``long_form``, ``noisy``, ``reverberant``, ``unseen`` or ``noisy_unseen``.
        name: the passage's name, unique within its set.
        voice: the flite voice (``mixed`` for a file of several voices).
        duration_s: length of the file, seconds.
        segments: the sentences with their times, for multi-sentence files (else empty).
        tsv: ``start_s``/``end_s``/``text`` table of ``segments`` beside the WAV, or None.
    """

    path: Path
    text: str
    set_name: str
    name: str
    voice: str
    duration_s: float
    segments: tuple[Segment, ...] = ()
    tsv: Path | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """A long-form reading: ``sentences`` spoken by ``voice``.

    ``joined``: False reads the whole text in one flite call (flite's own pauses); True
    synthesises each sentence apart, trims flite's lead-in and tail, and joins them with
    150–400 ms of silence (:func:`_join_gap_s`).
    """

    name: str
    voice: str
    sentences: tuple[str, ...]
    joined: bool = False

    @property
    def text(self) -> str:
        """The reference text: the sentences joined by spaces."""
        return " ".join(self.sentences)


PASSAGES: tuple[Passage, ...] = (
    Passage("times", "slt", (  # Dickens, A Tale of Two Cities (1859), public domain
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, "
        "it was the season of light, it was the season of darkness, it was the spring of hope, "
        "it was the winter of despair.",
    )),
    Passage("build", "rms", (
        "We shall build on the hills, we shall build in the valleys, we shall build along the "
        "rivers and beside the sea, and we shall not rest until every family has a warm home.",
        "We shall plant in the spring, we shall gather in the autumn, and we shall share what "
        "we gather.",
    )),
    Passage("train", "awb", (
        "The morning train left the station at seven fifteen, carrying three hundred twelve "
        "passengers, forty two bicycles, and nine crates of apples.",
        "By noon it had covered sixty five miles and stopped in eleven towns.",
        "The driver, who had worked on the line for twenty three years, said it was the "
        "quietest trip of his life.",
    )),
    Passage("bread", "kal16", (
        "First, take two cups of flour, one spoon of salt, and a little warm water.",
        "Mix them slowly, then knead the dough for ten minutes, until it is smooth and soft.",
        "Leave it in a warm place for one hour, shape it into a round loaf, and bake it for "
        "forty minutes in a hot oven.",
    )),
    Passage("weather", "slt", (
        "Tomorrow will be cold in the north, mild in the south, wet in the west, and windy "
        "everywhere.",
        "In the morning there will be fog on the hills, rain on the coast, and frost in the "
        "valleys.",
        "By the evening the rain will move east, the wind will ease, and the sky will clear, "
        "so the night will be cold but calm.",
    )),
    Passage("door", "rms", (
        "She walked to the door, she opened the door, she looked outside, and she closed the "
        "door again.",
        "Nobody was there, nobody had been there, and nobody would come.",
        "She sat by the window, she waited by the window, and she watched the road until the "
        "lamps were lit.",
    )),
    Passage("clock", "awb", (
        "A year has twelve months, a week has seven days, a day has twenty four hours, an "
        "hour has sixty minutes, and a minute has sixty seconds.",
        "So a day has one thousand four hundred forty minutes, and a week has one hundred "
        "sixty eight hours, which is more time than most of us think.",
    )),
    Passage("directions", "kal16", (
        "Turn left at the bakery, walk past the old church, and cross the bridge over the "
        "river.",
        "Keep going until you see a red door, then turn right, climb the hill, and count four "
        "houses on your left.",
        "The fifth house, the one with the blue gate, is where my grandmother lived for fifty "
        "years.",
    )),
    Passage("market", "slt", (
        "The market opens at six in the morning.",
        "Farmers bring eggs, cheese and fresh bread.",
        "By eight the square is full of people.",
        "Children run between the stalls.",
        "A man plays the violin near the fountain.",
        "The baker sells out before ten.",
        "At noon the traders pack their vans and drive home.",
    ), joined=True),
    Passage("garden", "awb", (
        "Our garden is small but very green.",
        "There are three apple trees near the fence.",
        "My father planted them twenty years ago.",
        "In summer the bees are busy all day long.",
        "Every autumn we pick the fruit together.",
        "We keep some apples for the winter.",
        "The rest we give to our neighbours.",
    ), joined=True),
)  # fmt: skip

#: Passages of :func:`noisy` and :func:`reverberant` by default: one per voice.
EFFECT_PASSAGES: tuple[Passage, ...] = PASSAGES[:4]

#: (voice, text) of :func:`unseen_sentences`; none is in ``shared/audio/utterances``.
UNSEEN: tuple[tuple[str, str], ...] = tuple(
    (VOICES[i % len(VOICES)], text)
    for i, text in enumerate(
        (
            "the library closes early on sundays",
            "please water the plants on the balcony",
            "my brother lives in a small town by the sea",
            "the concert starts at eight in the evening",
            "how many eggs do we need for the cake",
            "turn the heating down a little before bed",
            "the children are playing football in the park",
            "write a short note to the landlord about the rent",
            "the blue car is parked behind the school",
            "we ran out of coffee this morning",
            "what is the capital of australia",
            "the dog barked at the postman again",
            "book a table for four people on saturday",
            "the river flooded the fields last spring",
        )
    )
)


def _spread(i: int, low: float, high: float) -> float:
    """A fixed, well-mixed value in ``low..high`` for index ``i`` (no random generator)."""
    return low + (high - low) * ((i * 7) % 11) / 10


def _join_gap_s(i: int) -> float:
    """Silence put after sentence ``i`` of a joined passage: 0.10–0.35 s (with the trimmed
    sentences' kept edges and their quiet first and last sounds, a pause of 0.15–0.40 s)."""
    return _spread(i, 0.10, 0.35)


def _unseen_gap_s(i: int) -> float:
    """Pause after sentence ``i`` of the unseen-sentence file: 0.8–1.2 s."""
    return _spread(i, 0.8, 1.2)


# --- low-level tools ----------------------------------------------------------------------


def _run(argv: Sequence[str]) -> None:
    """Run a tool; raise with its stderr when it fails."""
    res = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {res.returncode}: {res.stderr.strip()}")


def _read(path: Path) -> Pcm:
    """Mono int16 samples of a 16 kHz WAV."""
    data, rate_hz = sf.read(str(path), dtype="int16")
    if rate_hz != RATE_HZ or data.ndim != 1:
        raise ValueError(f"{path}: expected {RATE_HZ} Hz mono, got {rate_hz} Hz {data.shape}")
    pcm: Pcm = data
    return pcm


def _write(path: Path, pcm: Pcm) -> None:
    """Write 16 kHz mono int16 PCM to ``path`` atomically (temporary file, then rename)."""
    fd, tmp = tempfile.mkstemp(suffix=".wav", dir=path.parent)
    os.close(fd)
    sf.write(tmp, pcm, RATE_HZ, subtype="PCM_16")
    os.replace(tmp, path)


def _to_pcm(x: Floats) -> Pcm:
    """Float samples (full scale 1.0) to int16, rounded and clipped."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def _flite(text: str, voice: str) -> Pcm:
    """``text`` spoken by flite ``voice``, 16 kHz mono int16 (flite's native rate)."""
    with tempfile.TemporaryDirectory(prefix="speech_sets") as tmp:
        wav = Path(tmp) / "say.wav"
        _run(["flite", "-voice", voice, "-t", text, "-o", str(wav)])
        return _read(wav)


def _trim(pcm: Pcm) -> Pcm:
    """``pcm`` without its leading and trailing silence (10 ms frames below :data:`_TRIM_RMS`),
    keeping :data:`_TRIM_KEEP_MS` beyond the speech at each end."""
    frame = RATE_HZ // 100
    n = len(pcm) // frame
    x = pcm[: n * frame].astype(np.float64).reshape(n, frame) / 32768.0
    loud = np.nonzero(np.sqrt(np.mean(x**2, axis=1)) > _TRIM_RMS)[0]
    if loud.size == 0:
        return pcm
    keep = RATE_HZ * _TRIM_KEEP_MS // 1000
    return pcm[max(0, int(loud[0]) * frame - keep) : (int(loud[-1]) + 1) * frame + keep]


def _silence(seconds: float) -> Pcm:
    """``seconds`` of digital silence (the floor is added to the whole file afterwards)."""
    return np.zeros(round(seconds * RATE_HZ), dtype=np.int16)


def _noise(cache_dir: Path, color: str, n: int) -> Floats:
    """``n`` samples of ``sox synth`` ``color`` noise (``whitenoise``/``pinknoise``), scaled
    to RMS 1; cached as one :data:`NOISE_S` file per colour and repeated when ``n`` is longer."""
    path = cache_dir / f"noise-{color}-v{RECIPE_VERSION}.wav"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(suffix=".wav", dir=cache_dir)
        os.close(fd)
        _run(["sox", "-R", "-n", "-r", str(RATE_HZ), "-c", "1", "-b", "32",
              "-e", "floating-point", tmp, "synth", str(NOISE_S), color])  # fmt: skip
        os.replace(tmp, path)
    data, _ = sf.read(str(path), dtype="float64")
    noise: Floats = np.resize(data, n)
    return noise / float(np.sqrt(np.mean(noise**2)))


def _mix(cache_dir: Path, pcm: Pcm, color: str, snr_db: float, floor: bool = False) -> Pcm:
    """``pcm`` plus ``color`` noise, ``snr_db`` below the RMS of the whole of ``pcm``
    (pauses included); ``floor``: at :data:`FLOOR_DBFS` instead, whatever ``pcm`` holds."""
    x = pcm.astype(np.float64) / 32768.0
    noise = _noise(cache_dir, color, len(x))
    if floor:
        level = 10 ** (FLOOR_DBFS / 20)
    else:
        level = float(np.sqrt(np.mean(x**2))) / 10 ** (snr_db / 20)
    return _to_pcm(x + level * noise)


def _key(*parts: object) -> str:
    """Hex digest of a recipe (its parts as JSON plus :data:`RECIPE_VERSION`)."""
    blob = json.dumps([RECIPE_VERSION, *parts], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _cached(path: Path, build: Callable[[], Pcm]) -> Path:
    """``path``, writing ``build()`` there first unless it exists."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(path, build())
    return path


def _item(path: Path, text: str, set_name: str, name: str, voice: str) -> SpeechItem:
    """A :class:`SpeechItem` for an existing file (duration read from its header)."""
    return SpeechItem(path, text, set_name, name, voice, sf.info(str(path)).duration)


# --- the sets -----------------------------------------------------------------------------


def _clean_pcm(cache_dir: Path, p: Passage) -> Pcm:
    """The passage read by its voice (joined or in one call), with the background floor."""
    if p.joined:
        parts: list[Pcm] = [_silence(0.2)]
        for i, sentence in enumerate(p.sentences):
            parts.append(_trim(_flite(sentence, p.voice)))
            gap = _join_gap_s(i) if i + 1 < len(p.sentences) else 0.3
            parts.append(_silence(gap))
        speech = np.concatenate(parts)
    else:
        speech = _flite(p.text, p.voice)
    return _mix(cache_dir, speech, "whitenoise", 0.0, floor=True)


def _clean_path(cache_dir: Path, p: Passage) -> Path:
    """The clean passage's file (synthesised on first use)."""
    key = _key("long_form", p.voice, list(p.sentences), p.joined, FLOOR_DBFS)
    path = cache_dir / f"long_form-{p.name}-{key}.wav"
    return _cached(path, lambda: _clean_pcm(cache_dir, p))


def long_form(cache_dir: Path, passages: Sequence[Passage] = PASSAGES) -> list[SpeechItem]:
    """The long-form passages (15–30 s each), clean but for the -60 dBFS floor."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    return [
        _item(_clean_path(cache_dir, p), p.text, "long_form", p.name, p.voice) for p in passages
    ]


#: (sox noise colour, SNR in dB) of :func:`noisy`, taken in turn by the passages.
NOISES: tuple[tuple[str, float], ...] = (("whitenoise", 15.0), ("pinknoise", 10.0))


def _noisy_pcm(cache_dir: Path, clean: Path, color: str, snr_db: float) -> Pcm:
    """The clean file ``clean`` with ``color`` noise at ``snr_db`` (see :func:`_mix`)."""
    return _mix(cache_dir, _read(clean), color, snr_db)


def noisy(cache_dir: Path, passages: Sequence[Passage] = EFFECT_PASSAGES) -> list[SpeechItem]:
    """``passages`` with noise mixed in: white at 15 dB and pink at 10 dB SNR in turn
    (SNR against the RMS of the whole clean passage, pauses included)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(passages):
        color, snr_db = NOISES[i % len(NOISES)]
        clean = _clean_path(cache_dir, p)
        key = _key("noisy", clean.name, color, snr_db)
        path = cache_dir / f"noisy-{p.name}-{key}.wav"
        _cached(path, functools.partial(_noisy_pcm, cache_dir, clean, color, snr_db))
        out.append(_item(path, p.text, "noisy", f"{p.name}+{color[:-5]}{snr_db:.0f}dB", p.voice))
    return out


#: sox ``reverb`` reverberance (%) of :func:`reverberant`, taken in turn by the passages.
REVERBERANCE = (50, 80)


def _reverb_argv(src: Path, dest: Path, reverberance: int) -> list[str]:
    """sox command: 6 dB headroom, 0.3 s for the tail, reverb (HF damping 50 %, room scale
    100 %, pre-delay 20 ms), peak normalised to -3 dBFS; repeatable, no dither."""
    return ["sox", "-R", "-D", str(src), "-b", "16", str(dest), "gain", "-6", "pad", "0", "0.3",
            "reverb", str(reverberance), "50", "100", "100", "20", "norm", "-3"]  # fmt: skip


def reverberant(cache_dir: Path, passages: Sequence[Passage] = EFFECT_PASSAGES) -> list[SpeechItem]:
    """``passages`` through ``sox reverb`` at 50 % and 80 % reverberance in turn."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for i, p in enumerate(passages):
        amount = REVERBERANCE[i % len(REVERBERANCE)]
        clean = _clean_path(cache_dir, p)
        path = cache_dir / f"reverberant-{p.name}-{_key('reverb', clean.name, amount)}.wav"
        if not path.exists():
            fd, tmp = tempfile.mkstemp(suffix=".wav", dir=cache_dir)
            os.close(fd)
            _run(_reverb_argv(clean, Path(tmp), amount))
            os.replace(tmp, path)
        out.append(_item(path, p.text, "reverberant", f"{p.name}+reverb{amount}", p.voice))
    return out


def _unseen_pcm(cache_dir: Path) -> tuple[Pcm, list[Segment]]:
    """The unseen sentences joined by 0.8–1.2 s pauses (0.5 s lead, 1 s tail), with times."""
    parts: list[Pcm] = [_silence(0.5)]
    segments: list[Segment] = []
    at = len(parts[0])
    for i, (voice, text) in enumerate(UNSEEN):
        clip = _flite(text, voice)
        segments.append(Segment(at / RATE_HZ, (at + len(clip)) / RATE_HZ, text))
        gap = _silence(_unseen_gap_s(i) if i + 1 < len(UNSEEN) else 1.0)
        parts += [clip, gap]
        at += len(clip) + len(gap)
    pcm = _mix(cache_dir, np.concatenate(parts), "whitenoise", 0.0, floor=True)
    return pcm, segments


def _write_tsv(path: Path, segments: Sequence[Segment]) -> None:
    """``start_s``/``end_s``/``text`` rows (3 decimals) with a header, like the shared tsv."""
    rows = [
        "start_s\tend_s\ttext",
        *(f"{s.start_s:.3f}\t{s.end_s:.3f}\t{s.text}" for s in segments),
    ]
    path.write_text("\n".join(rows) + "\n")


def _read_tsv(path: Path) -> tuple[Segment, ...]:
    """The rows of a ``.tsv`` written by :func:`_write_tsv`."""
    rows = [r.split("\t") for r in path.read_text().splitlines()[1:]]
    return tuple(Segment(float(a), float(b), t) for a, b, t in rows)


def unseen_sentences(cache_dir: Path) -> list[SpeechItem]:
    """One file of the :data:`UNSEEN` sentences (2–5 s each, 0.8–1.2 s pauses) and its
    ``.tsv`` beside it; a list of one item, like the other sets."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _key("unseen", [list(u) for u in UNSEEN], FLOOR_DBFS)
    path, tsv = cache_dir / f"unseen-{key}.wav", cache_dir / f"unseen-{key}.tsv"
    if not (path.exists() and tsv.exists()):
        pcm, segments = _unseen_pcm(cache_dir)
        _write(path, pcm)
        _write_tsv(tsv, segments)
    segs = _read_tsv(tsv)
    text = " ".join(s.text for s in segs)
    item = _item(path, text, "unseen", "unseen", "mixed")
    return [SpeechItem(item.path, text, "unseen", "unseen", "mixed", item.duration_s, segs, tsv)]


def noisy_unseen(cache_dir: Path) -> list[SpeechItem]:
    """The :func:`unseen_sentences` file with noise mixed in, once per :data:`NOISES` entry
    (white 15 dB, pink 10 dB SNR against the RMS of the whole clean file, pauses included):
    sentences with 0.8–1.2 s of noise between them, where a model run on the whole file
    meets stretches of noise alone. Same references and ``.tsv`` times as the clean file."""
    (clean,) = unseen_sentences(cache_dir)
    out = []
    for color, snr_db in NOISES:
        key = _key("noisy_unseen", clean.path.name, color, snr_db)
        path = cache_dir / f"noisy-unseen-{key}.wav"
        _cached(path, functools.partial(_noisy_pcm, cache_dir, clean.path, color, snr_db))
        item = _item(
            path, clean.text, "noisy_unseen", f"unseen+{color[:-5]}{snr_db:.0f}dB", "mixed"
        )
        out.append(dataclasses.replace(item, segments=clean.segments, tsv=clean.tsv))
    return out


def all_sets(cache_dir: Path) -> dict[str, list[SpeechItem]]:
    """Every set by name: ``long_form``, ``noisy``, ``reverberant``, ``unseen``,
    ``noisy_unseen``."""
    return {
        "long_form": long_form(cache_dir),
        "noisy": noisy(cache_dir),
        "reverberant": reverberant(cache_dir),
        "unseen": unseen_sentences(cache_dir),
        "noisy_unseen": noisy_unseen(cache_dir),
    }
