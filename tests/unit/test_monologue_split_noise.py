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
import soundfile as sf
from speech_sets import noisy_unseen
from synth import needs_flite

from streamasr.actors.asr.decode import decode_all
from streamasr.actors.asr.registry import create_recognizer

RATE_HZ = 16000
#: Seconds of the file decoded: the first five sentences, one split's worth (the sentence
#: that was cut is the fourth, 11.5-14.0 s).
SECONDS = 16.0
#: A cut this far inside a sentence's flite span counts as cutting it (the span's ends are
#: the clip's own edges, which hold a few ms of silence).
INSIDE_S = 0.08


@needs_flite
def test_splits_in_pink_noise_fall_between_sentences(tmp_path: Path) -> None:
    item = next(i for i in noisy_unseen(tmp_path) if "pink" in i.name)
    pcm, rate = sf.read(str(item.path), dtype="int16")
    assert rate == RATE_HZ
    pcm = pcm[: int(SECONDS * RATE_HZ)]
    rec = create_recognizer("pocketsphinx", {"fwdflat": False})
    stream = rec.create_stream()
    finals = decode_all(stream, np.ascontiguousarray(pcm), 1600)
    cuts = [r.end_frame / RATE_HZ for r in finals if r.continued]
    assert cuts, "no monologue split: the set no longer exercises the rule"
    spans = [(s.start_s, s.end_s, s.text) for s in item.segments if s.end_s < SECONDS]
    inside = [
        (round(cut, 2), text)
        for cut in cuts
        for start, end, text in spans
        if start + INSIDE_S < cut < end - INSIDE_S
    ]
    assert not inside, f"splits inside sentences: {inside}"
