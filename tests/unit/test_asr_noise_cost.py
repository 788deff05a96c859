"""The first pass in steady noise: its search is capped, so its cost stays bounded.

In white noise the Viterbi beams keep tens of thousands of HMMs active per frame: measured
on a 19 s noisy passage, PocketSphinx's own limit (30000) cost 1.34 CPU s per audio s and
2.5 s for the lattice search at the end of one 12 s utterance, which, on a loaded box,
outlasted the inference actor's heartbeat timeout: the actor was restarted as hung and an
utterance's words were lost. ``maxhmmpf`` (default :data:`DEFAULT_MAXHMMPF`) bounds it.
Both decoders run here in one process, one after the other, so the ratio of their CPU
times holds on a loaded box.
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pytest
from synth import needs_flite, say
from wer import word_edits

from streamasr.actors.asr.decode import decode_all
from streamasr.actors.asr.pocketsphinx_options import DEFAULT_MAXHMMPF, PocketsphinxOptions
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.errors import ConfigError

SENTENCE = "the train left the station at seven"
SNR_DB = 15.0


def speech(snr_db: float | None) -> npt.NDArray[np.int16]:
    """:data:`SENTENCE` by flite between short pauses, in white noise at ``snr_db`` (seeded;
    None: clean)."""
    gap = np.zeros(4000, np.float32)
    x = np.concatenate([gap, say(SENTENCE), gap])
    if snr_db is not None:
        rms = float(np.sqrt(np.mean(x**2)))
        noise = np.random.default_rng(7).standard_normal(len(x)).astype(np.float32)
        x = x + noise * rms / 10 ** (snr_db / 20)
    out: npt.NDArray[np.int16] = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    return out


def cpu_of(maxhmmpf: int, pcm: npt.NDArray[np.int16]) -> tuple[float, str]:
    """Process CPU seconds to decode ``pcm`` in 100 ms chunks, and the finals' text."""
    rec = create_recognizer("pocketsphinx", {"maxhmmpf": maxhmmpf, "fwdflat": False})
    rec.warm_up()
    stream = rec.create_stream()
    t0 = time.process_time()
    finals = decode_all(stream, pcm, 1600, close=True)
    return time.process_time() - t0, " ".join(r.text for r in finals)


@needs_flite
def test_search_in_noise_is_capped_and_clean_speech_reads_the_same() -> None:
    noisy = speech(SNR_DB)
    capped_s, capped_text = cpu_of(DEFAULT_MAXHMMPF, noisy)
    free_s, _ = cpu_of(0, noisy)  # PocketSphinx's own limit
    assert capped_s < 0.7 * free_s, (capped_s, free_s)
    assert capped_text  # still an utterance with words
    clean = speech(None)
    text = cpu_of(DEFAULT_MAXHMMPF, clean)[1]
    assert text == cpu_of(0, clean)[1]
    assert word_edits(SENTENCE.split(), text.split()) <= 1, text


def test_maxhmmpf_reaches_the_decoder_and_is_validated() -> None:
    assert PocketsphinxOptions().decoder_kwargs()["maxhmmpf"] == DEFAULT_MAXHMMPF
    assert "maxhmmpf" not in PocketsphinxOptions(maxhmmpf=0).decoder_kwargs()
    with pytest.raises(ConfigError, match=r"maxhmmpf: must be >= 0"):
        create_recognizer("pocketsphinx", {"maxhmmpf": -1})
