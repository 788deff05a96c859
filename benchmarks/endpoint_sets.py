"""Test speech for endpoints: sentences with pauses inside them, synthesised on demand.

Each sentence is read in one flite call with commas at its hesitation points ("set a timer
for, ten minutes": flite makes a phrase break there, its voice not falling as at a sentence's
end), and each comma's pause is stretched to 300–900 ms: the hesitations an endpoint must not
cut. (Parts read by separate calls would each end like a sentence, which no speaker does
mid-sentence and which a turn model rightly takes for a finished turn.) Sentences are 2.5 s
apart, so a merged pair is just as visible. One file for all voices, with a ``.tsv`` of each
sentence's start, end and text beside it (as the shared ``conversation*.tsv``), made with
:mod:`speech_sets`'s tools (deterministic output, cached by recipe hash, -60 dBFS floor).
Imports as ``benchmarks.endpoint_sets`` from tests, as ``endpoint_sets`` from the scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

try:  # from the benchmark scripts beside this file
    import speech_sets as ss
except ImportError:  # from tests (the repository root on sys.path)
    from benchmarks import speech_sets as ss

__all__ = ["GAP_S", "PAUSED", "PAUSES_MS", "paused_sentences"]

#: (voice, parts) of each sentence; the parts are read with a pause between them.
PAUSED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("slt", ("set a timer for", "ten minutes")),
    ("rms", ("turn on the", "kitchen lights")),
    ("awb", ("remind me to", "call my mother", "tomorrow morning")),
    ("kal16", ("play some music", "in the living room")),
    ("slt", ("what is the weather", "like in paris")),
    ("rms", ("add milk and eggs", "and bread to the shopping list")),
    ("awb", ("send a message to", "john saying i will be late")),
    ("kal16", ("set the thermostat to", "twenty one degrees")),
    ("slt", ("how long does it take", "to drive to the airport")),
    ("rms", ("book a table for", "four people", "on saturday evening")),
    ("awb", ("turn off", "the lights in the bedroom")),
    ("kal16", ("wake me up at", "seven thirty")),
)
#: Pauses inside sentences, taken in turn, milliseconds.
PAUSES_MS = (300, 450, 600, 750, 900)
#: Silence between two sentences, seconds.
GAP_S = 2.5


#: RMS (full scale 1.0) below which a 10 ms frame is quiet, when finding flite's comma pauses.
_QUIET_RMS = 0.005


def _quiet_runs(pcm: ss.Pcm) -> list[tuple[int, int]]:
    """(start, end) samples of the runs of quiet 10 ms frames inside ``pcm`` (not its ends)."""
    frame = ss.RATE_HZ // 100
    n = len(pcm) // frame
    x = pcm[: n * frame].astype(np.float64).reshape(n, frame) / 32768.0
    quiet = np.sqrt(np.mean(x**2, axis=1)) < _QUIET_RMS
    runs, start = [], None
    for i, q in enumerate(quiet):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if start > 0:
                runs.append((start * frame, i * frame))
            start = None
    return runs


def _hesitant(voice: str, pieces: tuple[str, ...], pauses_ms: list[int]) -> ss.Pcm:
    """The sentence read in one flite call with a comma between its pieces (a phrase break:
    the voice stays up, as before a hesitation, instead of ending each piece as a sentence),
    each comma's pause stretched with silence to its entry of ``pauses_ms``."""
    pcm = ss._trim(ss._flite(", ".join(pieces), voice))
    runs = sorted(sorted(_quiet_runs(pcm), key=lambda r: r[0] - r[1])[: len(pieces) - 1])
    if len(runs) != len(pieces) - 1:
        raise RuntimeError(f"{pieces}: found {len(runs)} comma pauses")
    out: list[ss.Pcm] = []
    at = 0
    for (start, end), ms in zip(runs, pauses_ms, strict=True):
        mid = (start + end) // 2
        extra = max(0, round(ms * ss.RATE_HZ / 1000) - (end - start))
        out += [pcm[at:mid], ss._silence(extra / ss.RATE_HZ)]
        at = mid
    out.append(pcm[at:])
    return np.concatenate(out)


def _file_pcm(
    sentences: Sequence[tuple[str, tuple[str, ...]]], cache_dir: Path
) -> tuple[ss.Pcm, list[ss.Segment]]:
    """The sentences with their inner pauses, 0.5 s lead and :data:`GAP_S` after each."""
    parts: list[ss.Pcm] = [ss._silence(0.5)]
    segments: list[ss.Segment] = []
    at, k = len(parts[0]), 0
    for voice, pieces in sentences:
        pauses = [PAUSES_MS[(k + j) % len(PAUSES_MS)] for j in range(len(pieces) - 1)]
        k += len(pauses)
        clip = _hesitant(voice, pieces, pauses)
        segments.append(
            ss.Segment(at / ss.RATE_HZ, (at + len(clip)) / ss.RATE_HZ, " ".join(pieces))
        )
        gap = ss._silence(GAP_S)
        parts += [clip, gap]
        at += len(clip) + len(gap)
    pcm = ss._mix(cache_dir, np.concatenate(parts), "whitenoise", 0.0, floor=True)
    return pcm, segments


def paused_sentences(cache_dir: Path) -> list[ss.SpeechItem]:
    """One file of :data:`PAUSED` (the sentences of all voices in turn, about 50 s) and its
    ``.tsv``; a list of one item, like :func:`speech_sets.unseen_sentences`."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = ss._key(
        "paused-commas", [[v, list(p)] for v, p in PAUSED], PAUSES_MS, GAP_S, ss.FLOOR_DBFS
    )
    path, tsv = cache_dir / f"paused-{key}.wav", cache_dir / f"paused-{key}.tsv"
    if not (path.exists() and tsv.exists()):
        pcm, segments = _file_pcm(PAUSED, cache_dir)
        ss._write(path, pcm)
        ss._write_tsv(tsv, segments)
    segs = ss._read_tsv(tsv)
    text = " ".join(s.text for s in segs)
    item = ss._item(path, text, "paused", "paused", "mixed")
    return [ss.SpeechItem(item.path, text, "paused", "paused", "mixed", item.duration_s, segs, tsv)]
