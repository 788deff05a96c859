"""The PocketSphinx recogniser and wake engine return the decoders they no longer need
(issue 20, item 5): after a burst of streams closes, one spare decoder is left and the
process's RSS is back near where it was before the burst."""

from __future__ import annotations

import json
import subprocess
import sys

from streamasr.actors.wake.base import WakeOptions
from streamasr.actors.wake.pocketsphinx_kws import SPARE_DECODERS, PocketsphinxKwsEngine

#: Streams opened at once (each loads a decoder: about 0.9 s and 45-90 MB of RSS).
BURST = 3


#: Run in a fresh interpreter: in a process that ran other tests first, freed memory on the
#: allocator's free lists is reused by the new decoders and RSS does not show the burst.
_BURST_SCRIPT = f"""
import json, numpy as np, psutil
from streamasr.actors.asr.pocketsphinx_backend import PocketsphinxOptions, PocketsphinxRecognizer
rss = lambda: psutil.Process().memory_info().rss / 2**20
rec = PocketsphinxRecognizer(PocketsphinxOptions(spare_decoders=1))
rec.warm_up()
before = rss()
streams = [rec.create_stream() for _ in range({BURST})]
for s in streams:  # a little search state too, not only the loaded model
    s.accept(np.zeros(1600, dtype=np.int16))
    s.step()
live_at_peak = rec.live_decoders
grown = rss() - before
for s in streams:
    s.close()
left = rss() - before
idle, live = rec.idle_decoders, rec.live_decoders
rec.create_stream().close()
print(json.dumps(dict(grown=grown, left=left, peak=live_at_peak, idle=idle, live=live,
                      reused_live=rec.live_decoders)))
"""


def test_burst_of_streams_closed_returns_decoders_and_their_memory() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BURST_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["peak"] == BURST
    grown, left = r["grown"], r["left"]
    assert grown > 40 * (BURST - 1), f"{BURST} decoders grew RSS by only {grown:.0f} MiB"
    # one decoder (the spare) was there before the burst too: nearly all of it went back
    assert left < 0.25 * grown, f"RSS grew {grown:.0f} MiB, {left:.0f} MiB still held"
    assert (r["idle"], r["live"]) == (1, 1)
    assert r["reused_live"] == 1  # the spare, not a new load


def test_wake_detectors_closed_leave_one_spare_decoder() -> None:
    engine = PocketsphinxKwsEngine(WakeOptions())
    detectors = [engine.create_detector() for _ in range(5)]
    assert engine.live_decoders == 5 and engine.idle_decoders == 0
    for d in detectors:
        d.close()
    assert engine.idle_decoders == engine.live_decoders == SPARE_DECODERS == 1
