"""Wake-word benchmark: detections, misses, false wakes per hour, delay and CPU (issue 8).

Audio is made on the fly (see ``_wake_audio.py``): the wake phrase in 5 flite voices spliced
into the pauses of the three shared conversations (21 phrases per pass, two passes with other
voices), without added noise and at two pink-noise levels. False wakes are counted on the
conversations without the phrase, speed/gain perturbed to make more hours, and on flite
sentences that use the phrase's words in other contexts. Detection delay is the end of the
100 ms chunk at whose ``accept()``
the detection came back, minus the end of the phrase's speech. CPU is process time per second
of audio for the detector and for the full PocketSphinx LM decoder on the same audio.

    python benchmarks/bench_wake.py            # the defaults of WakeOptions (~2-3 min)
    python benchmarks/bench_wake.py --tune     # phrase x threshold sweep
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wake_audio as wa

from streamasr.actors.asr.decode import decode_all
from streamasr.actors.wake.base import Detection, WakeOptions
from streamasr.actors.wake.registry import create_wake_engine

CHUNK = 1600  # samples: 100 ms chunks
NOISE_LEVELS: tuple[tuple[str, float | None], ...] = (
    ("none", None),
    ("pink 20 dB", 20.0),
    ("pink 10 dB", 10.0),
)
FA_VARIANTS = ((1.0, 0.0), (0.9, -6.0), (1.1, 4.0), (0.95, 6.0), (1.05, -10.0))
CANDIDATES = ("hey computer", "okay computer", "hey sphinx", "hello jarvis", "computer")
SWEEP = (1e-5, 1e-10, 1e-15, 1e-20, 1e-25, 1e-30, 1e-35, 1e-40)


@dataclass(frozen=True, slots=True)
class Hit:
    """A detection and the stream position (samples) at which accept() returned it."""

    det: Detection
    emitted: int


def run(options: WakeOptions, pcm: wa.Pcm) -> tuple[list[Hit], float]:
    """All detections on ``pcm`` fed in 100 ms chunks, and the process CPU seconds it took."""
    engine = create_wake_engine("pocketsphinx", options)
    det = engine.create_detector(0)
    hits: list[Hit] = []
    t0 = time.process_time()
    for i in range(0, len(pcm), CHUNK):
        chunk = pcm[i : i + CHUNK]
        hits += [Hit(d, i + len(chunk)) for d in det.accept(chunk)]
    cpu = time.process_time() - t0
    det.close()
    return hits, cpu


def match(
    hits: Sequence[Hit], spans: Sequence[wa.Span], phrase: str, log_thr: float
) -> tuple[list[float], int]:
    """Delays (s) of the first hit on each detected span, and the hits outside any span."""
    slack = int(0.3 * wa.RATE_HZ)
    good = [h for h in hits if h.det.phrase == phrase and h.det.score >= log_thr]
    delays: list[float] = []
    used: set[int] = set()
    for span in spans:
        on = [
            h for h in good if h.det.start_frame < span.end + slack and h.det.end_frame > span.start
        ]
        if on:
            delays.append((min(h.emitted for h in on) - span.end) / wa.RATE_HZ)
            used.update(id(h) for h in on)
    return delays, sum(1 for h in good if id(h) not in used)


def fa_audio(minutes: float) -> tuple[wa.Pcm, wa.Pcm]:
    """(perturbed clean conversations of about ``minutes``, hard-negative sentences)."""
    convs = np.concatenate([wa.load(n) for n in wa.CONVERSATIONS])
    parts, total = [], 0
    for k in range(100):
        speed, gain = FA_VARIANTS[k % len(FA_VARIANTS)]
        gain += 2.0 * (k // len(FA_VARIANTS))
        parts.append(wa.perturbed(convs, speed, gain if gain < 8 else gain - 16))
        total += len(parts[-1])
        if total >= minutes * 60 * wa.RATE_HZ:
            break
    return np.concatenate(parts), wa.hard_negatives()


def pct(values: Sequence[float], q: float) -> float:
    """Percentile ``q`` of ``values`` (nan when empty)."""
    return float(np.percentile(values, q)) if values else float("nan")


def report_defaults(fa_minutes: float) -> None:
    """Benchmark :class:`WakeOptions` defaults: detection table, false wakes, CPU."""
    opts = WakeOptions()
    phrase = opts.phrases[0]
    thr = opts.threshold_for(0)
    print(
        f"phrase {phrase!r} threshold {thr:g} vad_gate {opts.vad_gate} verify {opts.verify} "
        f"(margin {opts.verify_margin:g}); 100 ms chunks"
    )
    summary: list[str] = []
    print(
        f"{'noise':12} {'inserted':>8} {'detected':>8} {'missed':>6} {'extra':>5} "
        f"{'delay p50':>9} {'p95 (s)':>7}"
    )
    for label, snr in NOISE_LEVELS:
        n_in, extra = 0, 0
        delays: list[float] = []
        for rotation in (0, 2):
            pcm, spans = wa.mixed_stream(phrase, rotation, seed=rotation)
            hits, _ = run(opts, wa.add_noise(pcm, snr, seed=11 + rotation))
            d, x = match(hits, spans, phrase, -math.inf)
            n_in, delays, extra = n_in + len(spans), delays + d, extra + x
        print(
            f"{label:12} {n_in:8d} {len(delays):8d} {n_in - len(delays):6d} {extra:5d} "
            f"{pct(delays, 50):9.2f} {pct(delays, 95):7.2f}"
        )
        summary.append(f"{label} {len(delays)}/{n_in} (p50 {pct(delays, 50):.2f} s)")
    convs, negatives = fa_audio(fa_minutes)
    print(f"{'false wakes':24} {'audio h':>8} {'wakes':>6} {'per hour':>8}")
    for label, pcm in (
        ("clean conversations", convs),
        ("hard negatives", negatives),
        ("convs pink 10 dB", wa.add_noise(convs[: 81 * wa.RATE_HZ * 2], 10.0, 3)),
    ):
        hits, _ = run(opts, pcm)
        hours = len(pcm) / wa.RATE_HZ / 3600
        print(
            f"{label:24} {hours:8.3f} {len(hits):6d} {len(hits) / hours:8.1f}"
            + "".join(f"  {h.det.start_frame / 16000:.1f}s" for h in hits[:5])
        )
        summary.append(f"FA/h {label} {len(hits) / hours:.1f}")
    cpu = report_cpu(opts)
    print("summary: detected " + ", ".join(summary[:3]))
    print("         " + ", ".join(summary[3:]))
    print(f"         CPU s/s on conversations: kws gated {cpu[0]:.4f}, LM decoder {cpu[1]:.4f}")


def report_cpu(opts: WakeOptions) -> tuple[float, float]:
    """CPU s per audio s: detector gated/ungated vs the LM decoder; (gated, LM) on convs."""
    from streamasr.actors.asr.pocketsphinx_backend import PocketsphinxRecognizer

    convs = np.concatenate([wa.load(n) for n in wa.CONVERSATIONS])
    idle = wa.background(60 * wa.RATE_HZ, np.random.default_rng(5))
    noisy_idle = wa.add_noise(np.concatenate([convs[:16000], idle]), 20.0, 9)[16000:]
    rec = PocketsphinxRecognizer()
    first: tuple[float, float] | None = None
    print(
        f"{'CPU s / audio s':24} {'kws gated':>9} {'ungated':>9} {'LM decoder':>10} {'gated/LM':>8}"
    )
    for label, pcm in (
        ("conversations", convs),
        ("idle (-60 dBFS bg)", idle),
        ("idle (pink, 20 dB SNR)", noisy_idle),
    ):
        secs = len(pcm) / wa.RATE_HZ
        _, gated = run(replace(opts, vad_gate=True), pcm)
        _, ungated = run(replace(opts, vad_gate=False), pcm)
        stream = rec.create_stream()
        t0 = time.process_time()
        decode_all(stream, pcm, CHUNK)
        lm = time.process_time() - t0
        stream.close()
        print(
            f"{label:24} {gated / secs:9.4f} {ungated / secs:9.4f} {lm / secs:10.4f} "
            f"{gated / lm if lm > 0 else math.nan:8.3f}"
        )
        first = first or (gated / secs, lm / secs)
    assert first is not None
    return first


def tune(fa_minutes: float) -> None:
    """Phrase x threshold sweep: every candidate at a very low threshold, then filter scores."""
    low = WakeOptions(phrases=CANDIDATES, thresholds=(1e-45,) * len(CANDIDATES))
    convs, negatives = fa_audio(fa_minutes)
    fa_hits = run(low, convs)[0] + run(low, negatives)[0]
    hours = (len(convs) + len(negatives)) / wa.RATE_HZ / 3600
    print(f"false-wake audio {hours:.3f} h (perturbed conversations + hard negatives)")
    print(
        f"{'phrase':14} {'thr':>6} "
        + " ".join(f"{lab:>16}" for lab, _ in NOISE_LEVELS)
        + f" {'FA/h':>6} {'p50 s':>5}"
    )
    for phrase in CANDIDATES:
        one = replace(low, phrases=(phrase,), thresholds=(1e-45,))
        runs = []
        for _label, snr in NOISE_LEVELS:
            for rotation in (0, 2):
                pcm, spans = wa.mixed_stream(phrase, rotation, seed=rotation)
                runs.append((snr, spans, run(one, wa.add_noise(pcm, snr, 11 + rotation))[0]))
        for thr in SWEEP:
            lt = math.log10(thr)
            cells: list[str] = []
            delays: list[float] = []
            for _label, snr in NOISE_LEVELS:
                n_in = n_det = n_x = 0
                for s, spans, hits in runs:
                    if s == snr:
                        d, x = match(hits, spans, phrase, lt)
                        n_in, n_det, n_x, delays = (
                            n_in + len(spans),
                            n_det + len(d),
                            n_x + x,
                            (delays + d),
                        )
                cells.append(f"{n_det:3d}/{n_in:<3d} x{n_x:<3d}")
            fa = sum(1 for h in fa_hits if h.det.phrase == phrase and h.det.score >= lt)
            print(
                f"{phrase:14} {thr:6.0e} "
                + " ".join(f"{c:>16}" for c in cells)
                + f" {fa / hours:6.1f} {pct(delays, 50):5.2f}"
            )


def main() -> None:
    """Parse arguments and run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--tune", action="store_true", help="phrase x threshold sweep")
    ap.add_argument(
        "--fa-minutes",
        type=float,
        default=4.0,
        help="minutes of perturbed conversations for false wakes",
    )
    args = ap.parse_args()
    if not wa.have_flite():
        sys.exit("flite is not on PATH (apt-get install flite)")
    t0 = time.perf_counter()
    if args.tune:
        tune(args.fa_minutes)
    else:
        report_defaults(args.fa_minutes)
    print(f"benchmark wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
