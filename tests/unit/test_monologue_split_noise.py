"""A monologue split in steady noise lands in a pause between sentences, never in a word.

In pink noise at 10 dB SNR the WebRTC-style VAD hears the pauses between sentences as
speech, so no utterance ends by silence and each is split once it passes
``max_utterance_s`` (12 s), at the next pause the frame energy shows. That rule took the
closure inside "the concert starts at eight" for a pause: the split cut the sentence and
the accurate pass lost it (the noisy unseen set of ``bench_quality.py``). Silero's second
opinion (:mod:`streamasr.actors.asr.pause_check`) vetoes such pauses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import speech_sets as ss
from synth import needs_flite

from streamasr.actors.asr.decode import decode_all
from streamasr.actors.asr.registry import create_recognizer

RATE_HZ = 16000
#: The first sentences of the unseen set (by its voices, with its pauses): the fourth, "the
#: concert starts at eight in the evening", is where the utterance passes 12 s.
SENTENCES = 5
#: A cut this far inside a sentence's flite span counts as cutting it (the span's ends are
#: the clip's own edges, which hold a few ms of silence).
INSIDE_S = 0.08


def pink_noise_file(cache: Path) -> tuple[npt.NDArray[np.int16], list[tuple[float, float, str]]]:
    """The first :data:`SENTENCES` of ``bench_quality.py``'s noisy unseen set as it makes
    them (0.5 s lead, 0.8-1.2 s pauses, a -60 dBFS floor, pink noise 10 dB below the whole
    file's RMS), and each sentence's span in seconds."""
    parts, spans, at = [ss._silence(0.5)], [], 0.5
    for i, (voice, text) in enumerate(ss.UNSEEN[:SENTENCES]):
        clip = ss._flite(text, voice)
        spans.append((at, at + len(clip) / RATE_HZ, text))
        gap = ss._silence(ss._unseen_gap_s(i))
        parts += [clip, gap]
        at += (len(clip) + len(gap)) / RATE_HZ
    clean = ss._mix(cache, np.concatenate(parts), "whitenoise", 0.0, floor=True)
    return ss._mix(cache, clean, "pinknoise", 10.0), spans


@needs_flite
def test_splits_in_pink_noise_fall_between_sentences(tmp_path: Path) -> None:
    pcm, spans = pink_noise_file(tmp_path)
    rec = create_recognizer("pocketsphinx", {"fwdflat": False})
    stream = rec.create_stream()
    finals = decode_all(stream, pcm, 1600)
    assert stream.split_vetoes > 0  # the closure in "concert" was asked about and refused
    cuts = [r.end_frame / RATE_HZ for r in finals if r.continued]
    assert cuts, "no monologue split: the file no longer exercises the rule"
    inside = [
        (round(cut, 2), text)
        for cut in cuts
        for start, end, text in spans
        if start + INSIDE_S < cut < end - INSIDE_S
    ]
    assert not inside, f"splits inside sentences: {inside}"
