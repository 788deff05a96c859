"""Benchmark the Whisper second pass on the 24 shared conversation utterances.

Compares the short encoder window (utterance + pad, >= 6 s) with faster-whisper's padded
30 s ``transcribe``: WER and per-utterance compute p50/p95/max, measured in one run. Then
throughput (utterances/s) of ``transcribe_batch`` at batch sizes 1, 2, 4, 8, and model load
and first-time weight assembly times.

Usage: python benchmarks/bench_refine.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from wer import wer

from streamasr.actors.refine.model_store import ensure_model
from streamasr.actors.refine.options import RefineOptions
from streamasr.actors.refine.refiner import WhisperRefiner

AUDIO = Path(__file__).resolve().parents[1] / ".." / "shared" / "audio"
SR = 16_000
MARGIN_S = 0.2

Item = tuple[np.ndarray, float, str]


def load_items() -> list[Item]:
    """(audio, start_s, reference) for every utterance of conversation1-3, 0.2 s margins."""
    items: list[Item] = []
    for n in (1, 2, 3):
        audio, rate = sf.read(AUDIO / f"conversation{n}.wav", dtype="float32")
        assert rate == SR
        with (AUDIO / f"conversation{n}.tsv").open() as f:
            for row in csv.DictReader(f, delimiter="\t"):
                s = max(0.0, float(row["start_s"]) - MARGIN_S)
                e = float(row["end_s"]) + MARGIN_S
                items.append((audio[int(s * SR) : int(e * SR)], s, row["text"]))
    return items


def pct(values: list[float], q: float) -> float:
    """q-th percentile (0-100) of values."""
    return float(np.percentile(np.asarray(values), q))


def timing_line(name: str, wers: list[float], secs: list[float]) -> str:
    """One formatted summary row."""
    return (
        f"{name:<22} WER {statistics.mean(wers):.3f}  compute p50 {pct(secs, 50):.3f} s  "
        f"p95 {pct(secs, 95):.3f} s  max {max(secs):.3f} s"
    )


def bench_windows(refiner: WhisperRefiner, items: list[Item]) -> None:
    """Short window vs padded 30 s, interleaved per utterance so load affects both alike."""
    short_w, short_t, ref_w, ref_t = [], [], [], []
    for audio, start_s, text in items:
        t0 = time.perf_counter()
        out = refiner.transcribe(audio, start_s)
        short_t.append(time.perf_counter() - t0)
        short_w.append(wer(text, out.text if out else ""))
        t0 = time.perf_counter()
        hyp = refiner.transcribe_reference(audio)
        ref_t.append(time.perf_counter() - t0)
        ref_w.append(wer(text, hyp))
    print(timing_line("short window (+VAD)", short_w, short_t))
    print(timing_line("padded 30 s reference", ref_w, ref_t))
    print(
        f"ratio 30s/short: p50 {pct(ref_t, 50) / pct(short_t, 50):.2f}x  "
        f"max {max(ref_t) / max(short_t):.2f}x"
    )


def bench_batches(refiner: WhisperRefiner, items: list[Item], repeats: int) -> None:
    """Throughput of transcribe_batch at several batch sizes (best of ``repeats``)."""
    pairs = [(a, s) for a, s, _ in items]
    base = 0.0
    for size in (1, 2, 4, 8):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(0, len(pairs), size):
                refiner.transcribe_batch(pairs[i : i + size])
            best = min(best, time.perf_counter() - t0)
        rate = len(pairs) / best
        base = base or rate
        print(
            f"batch {size}: {rate:.2f} utt/s  ({best / len(pairs):.3f} s/utt, x{rate / base:.2f})"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print figures to stdout."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="CTranslate2 threads (0 = all cores)")
    ap.add_argument("--repeats", type=int, default=2, help="batch runs per size (best kept)")
    args = ap.parse_args(argv)
    if not AUDIO.is_dir():
        print(f"shared audio missing: {AUDIO}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ensure_model(Path(tmp))
        print(f"first-time weight assembly (join + sha256): {time.perf_counter() - t0:.2f} s")
    ensure_model()
    t0 = time.perf_counter()
    refiner = WhisperRefiner(RefineOptions(cpu_threads=args.threads))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    refiner.warm_up()
    print(f"model load {load_s:.2f} s, warm-up {time.perf_counter() - t0:.2f} s")
    items = load_items()
    durs = [len(a) / SR for a, _, _ in items]
    print(f"{len(items)} utterances, {min(durs):.2f}-{max(durs):.2f} s each")
    bench_windows(refiner, items)
    bench_batches(refiner, items, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
