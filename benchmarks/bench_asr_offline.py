"""Offline accuracy and speed of the PocketSphinx backend on the shared test conversations.

Decodes ``shared/audio/conversation{1,2,3}.wav`` in one plain process loop, fed in fixed chunks
(100 ms by default), and prints per file: word error rate (all finals joined against all reference
utterances joined, after :func:`normalize_words`), number of finals, the largest start/end
boundary error of finals matched to reference utterances, real-time factor (decode CPU time /
audio duration), plus the decoder load time.

Usage::

    python benchmarks/bench_asr_offline.py [--chunk-ms 100] [--set lw=7.5 --set vad_mode=1 ...]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr
from wer import WerCounts

from streamasr.actors.asr.base import Recognizer
from streamasr.actors.asr.decode import decode_all
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.asr.types import Result

AUDIO_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "audio"


@dataclass(frozen=True, slots=True)
class RefUtterance:
    """One reference utterance of a conversation .tsv (times in seconds)."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True, slots=True)
class FileScore:
    """Scores of one decoded file (boundary errors in seconds)."""

    counts: WerCounts
    n_finals: int
    n_refs: int
    n_matched: int
    max_start_err_s: float
    max_end_err_s: float
    audio_s: float
    decode_s: float


def load_refs(tsv: Path) -> list[RefUtterance]:
    """Reference utterances of a conversation .tsv file (start_s, end_s, text)."""
    with tsv.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [RefUtterance(float(r["start_s"]), float(r["end_s"]), r["text"]) for r in rows]


def load_pcm16k(path: Path) -> npt.NDArray[np.int16]:
    """Mono int16 PCM at 16 kHz (downmixed and resampled with soxr when needed)."""
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != 16000:
        mono = soxr.resample(mono, rate, 16000)
    pcm: npt.NDArray[np.int16] = np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)
    return pcm


def decode_pcm(recognizer: Recognizer, pcm: npt.NDArray[np.int16], chunk: int) -> list[Result]:
    """Finals of ``pcm`` fed in chunks of ``chunk`` samples, flushed at the end."""
    return decode_all(recognizer.create_stream(), pcm, chunk, close=True)


def score(finals: list[Result], refs: list[RefUtterance], rate_hz: int) -> FileScore:
    """WER, final count and boundary errors of ``finals`` against ``refs``."""
    counts = WerCounts.of(" ".join(r.text for r in refs), " ".join(f.text for f in finals))
    matched, start_err, end_err = 0, 0.0, 0.0
    for ref in refs:
        overlapping = [
            f
            for f in finals
            if f.start_frame / rate_hz < ref.end_s and f.end_frame / rate_hz > ref.start_s
        ]
        if len(overlapping) == 1:
            matched += 1
            f = overlapping[0]
            start_err = max(start_err, abs(f.start_frame / rate_hz - ref.start_s))
            end_err = max(end_err, abs(f.end_frame / rate_hz - ref.end_s))
    return FileScore(counts, len(finals), len(refs), matched, start_err, end_err, 0.0, 0.0)


def run_file(recognizer: Recognizer, wav: Path, chunk_ms: int) -> tuple[FileScore, list[Result]]:
    """Decode and score one conversation file."""
    pcm = load_pcm16k(wav)
    refs = load_refs(wav.with_suffix(".tsv"))
    t0 = time.process_time()
    finals = decode_pcm(recognizer, pcm, 16000 * chunk_ms // 1000)
    decode_s = time.process_time() - t0
    s = score(finals, refs, recognizer.sample_rate_hz)
    return dataclasses.replace(s, audio_s=len(pcm) / 16000, decode_s=decode_s), finals


def _parse_sets(items: list[str]) -> dict[str, object]:
    opts: dict[str, object] = {}
    for item in items:
        key, _, raw = item.partition("=")
        value: object = raw
        for conv in (int, float):
            try:
                value = conv(raw)
                break
            except ValueError:
                continue
        if raw in ("true", "false"):
            value = raw == "true"
        opts[key] = value
    return opts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk-ms", type=int, default=100)
    ap.add_argument("--set", action="append", default=[], help="pocketsphinx option key=value")
    ap.add_argument(
        "--files", nargs="*", default=["conversation1", "conversation2", "conversation3"]
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print every final")
    args = ap.parse_args(argv)
    if not AUDIO_DIR.is_dir():
        print(f"shared audio not found at {AUDIO_DIR}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    recognizer = create_recognizer("pocketsphinx", _parse_sets(args.set))
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recognizer.warm_up()
    print(f"decoder load {load_s:.3f} s, warm-up {time.perf_counter() - t0:.3f} s")
    total, audio_s, decode_s, n_finals, n_refs = WerCounts(), 0.0, 0.0, 0, 0
    for name in args.files:
        s, finals = run_file(recognizer, AUDIO_DIR / f"{name}.wav", args.chunk_ms)
        if args.verbose:
            for f in finals:
                rate = recognizer.sample_rate_hz
                print(f"  {f.start_frame / rate:7.2f} {f.end_frame / rate:7.2f}  {f.text}")
        print(
            f"{name}: WER {100 * s.counts.wer:5.1f}% ({s.counts.edits}/{s.counts.ref_words}) "
            f"finals {s.n_finals}/{s.n_refs} matched {s.n_matched} "
            f"max |start err| {s.max_start_err_s:.2f} s max |end err| {s.max_end_err_s:.2f} s "
            f"RTF {s.decode_s / s.audio_s:.3f}"
        )
        total, audio_s, decode_s = total + s.counts, audio_s + s.audio_s, decode_s + s.decode_s
        n_finals, n_refs = n_finals + s.n_finals, n_refs + s.n_refs
    print(
        f"TOTAL: WER {100 * total.wer:5.1f}% ({total.edits}/{total.ref_words}) "
        f"finals {n_finals}/{n_refs} RTF {decode_s / audio_s:.3f} (chunk {args.chunk_ms} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
