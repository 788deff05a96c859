"""The PocketSphinx recogniser and wake engine return the decoders they no longer need
(issue 20, item 5): after a burst of streams closes, one spare decoder is left and the
process's RSS is back near where it was before the burst."""

from __future__ import annotations

import numpy as np
import psutil

from streamasr.actors.asr.pocketsphinx_backend import PocketsphinxOptions, PocketsphinxRecognizer
from streamasr.actors.wake.base import WakeOptions
from streamasr.actors.wake.pocketsphinx_kws import SPARE_DECODERS, PocketsphinxKwsEngine

#: Streams opened at once (each loads a decoder: about 0.9 s and 45-90 MB of RSS).
BURST = 3


def rss_mb() -> float:
    """This process's resident set size, MiB."""
    return float(psutil.Process().memory_info().rss) / 2**20


def test_burst_of_streams_closed_returns_decoders_and_their_memory() -> None:
    rec = PocketsphinxRecognizer(PocketsphinxOptions(spare_decoders=1))
    rec.warm_up()
    before = rss_mb()
    streams = [rec.create_stream() for _ in range(BURST)]
    for s in streams:  # a little search state too, not only the loaded model
        s.accept(np.zeros(1600, dtype=np.int16))
        s.step()
    assert rec.live_decoders == BURST and rec.idle_decoders == 0
    grown = rss_mb() - before
    for s in streams:
        s.close()
    left = rss_mb() - before
    assert grown > 40 * (BURST - 1), f"{BURST} decoders grew RSS by only {grown:.0f} MiB"
    # one decoder (the spare) was there before the burst too: nearly all of it went back
    assert left < 0.25 * grown, f"RSS grew {grown:.0f} MiB, {left:.0f} MiB still held"
    assert rec.idle_decoders == 1 and rec.live_decoders == 1
    reused = rec.create_stream()
    assert rec.live_decoders == 1  # the spare, not a new load
    reused.close()


def test_wake_detectors_closed_leave_one_spare_decoder() -> None:
    engine = PocketsphinxKwsEngine(WakeOptions())
    detectors = [engine.create_detector() for _ in range(5)]
    assert engine.live_decoders == 5 and engine.idle_decoders == 0
    for d in detectors:
        d.close()
    assert engine.idle_decoders == engine.live_decoders == SPARE_DECODERS == 1
