"""Two-pass recogniser benchmark: accuracy, latency, batching and real-time capacity.

One command, one run; prints the figures side by side and a markdown table for README.md::

    python benchmarks/bench_two_pass.py                      # everything (about 5 minutes)
    python benchmarks/bench_two_pass.py --streams 1,6 --fast-streams 12
    python benchmarks/bench_two_pass.py --no-pipeline        # direct refiner figures only
    python benchmarks/bench_two_pass.py --no-direct --streams 1 --fast-streams ""

Direct figures: the 24 conversation utterances (``../shared/audio/conversation{1,2,3}``) cut
by their ``.tsv`` times plus the pipeline's 0.2 s margin, transcribed by
:class:`WhisperRefiner` with the short window (with and without the VAD-trimmed second
view), with the padded 30 s window, and in batches of 1 and 4.

Pipeline figures: ``streamasr-supervisor up --json`` on N real-time file streams (copies of
the three conversations, one ``[[streams]]`` table each) with accurate finals, and with
first-pass finals only; ``status --json`` is polled for ring losses and refine fallbacks.
Accurate rows run once per ``--partials`` setting (``refine.partials``): with ``auto`` the
row also counts the Whisper (pass 2) partials and the utterances that got one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from wer import WerCounts

from streamasr.actors.refine.options import RefineOptions
from streamasr.actors.refine.refiner import WhisperRefiner

AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
NAMES = ("conversation1", "conversation2", "conversation3")
MARGIN_S = 0.2


def refs(name: str) -> list[tuple[float, float, str]]:
    """(start_s, end_s, text) rows of a conversation .tsv."""
    rows = (AUDIO / f"{name}.tsv").read_text().splitlines()[1:]
    return [(float(a), float(b), t) for a, b, t in (r.split("\t") for r in rows)]


def utterances() -> list[tuple[np.ndarray, float, str]]:
    """(audio, start_s, text) of the 24 utterances with the pipeline's margin."""
    import soundfile as sf

    out = []
    for name in NAMES:
        x, sr = sf.read(str(AUDIO / f"{name}.wav"), dtype="float32")
        for s, e, text in refs(name):
            a, b = max(0, int((s - MARGIN_S) * sr)), int((e + MARGIN_S) * sr)
            out.append((x[a:b].copy(), a / sr, text))
    return out


def direct(r: WhisperRefiner, items: list[Any], batch: int) -> tuple[float, float]:
    """(WER, mean wall seconds per utterance) of the refiner over ``items``."""
    total = WerCounts()
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        outs = r.transcribe_batch([(a, s) for a, s, _ in chunk])
        for (_, _, text), o in zip(chunk, outs, strict=True):
            total += WerCounts.of(text, o.text if o else "")
    return total.wer, (time.perf_counter() - t0) / len(items)


def direct_figures(threads: int) -> dict[str, tuple[float, float]]:
    """Direct refiner figures: name -> (WER, seconds per utterance)."""
    items = utterances()
    r = WhisperRefiner(RefineOptions(cpu_threads=threads))
    r.warm_up()
    base = r.options
    figs = {}
    for label, opts, batch in (
        ("short window, 2 views, batch 1", base, 1),
        ("short window, 2 views, batch 4", base, 4),
        ("short window, gated 2nd view, batch 1",
         dataclasses.replace(base, trim_view_logprob=-0.5), 1),
        ("short window, 1 view, batch 1", dataclasses.replace(base, trim_view=False), 1),
        ("short window, 1 view, batch 4", dataclasses.replace(base, trim_view=False), 4),
        ("padded 30 s window, 1 view", dataclasses.replace(base, trim_view=False,
                                                           min_window_s=30.0), 1),
    ):  # fmt: skip
        r.options = opts
        figs[label] = direct(r, items, batch)
        print(f"  {label:34s} WER {figs[label][0]:.3f}  {1000 * figs[label][1]:6.0f} ms/utt",
              flush=True)  # fmt: skip
    return figs


def pct(xs: list[float], q: float) -> float:
    """Percentile ``q`` (0..100) of ``xs`` (nan if empty)."""
    return float(np.percentile(xs, q)) if xs else float("nan")


def _losses(status: dict[str, Any]) -> tuple[int, int]:
    """(frames dropped or overrun on any ring, refine fallbacks) from a status map."""
    lost = sum(
        int(rd.get("dropped_frames", 0)) + int(rd.get("overruns", 0))
        for ring in status.get("rings", [])
        for rd in ring.get("readers", [])
    )
    fallbacks = sum(
        int((a.get("counters") or {}).get("fallbacks", 0))
        for a in status.get("actors", [])
        if a.get("id") == "refine"
    )
    return lost, fallbacks


#: TOML appended to every pipeline config (``--config-extra``).
EXTRA: list[str] = []


def pipeline(n: int, finals: str, base: Path, partials: str = "off") -> dict[str, float]:
    """Run ``up`` on ``n`` real-time streams; return loss, fallback, WER and latency figures."""
    inst = f"bench{os.getpid()}{n}{finals[0]}{partials[:2]}"
    root = base / inst
    root.mkdir()
    tables = "".join(
        f'[[streams]]\nkind = "file"\npath = "{AUDIO / NAMES[i % 3]}.wav"\n'
        f'stream_id = "s{i}"\nrealtime = true\n\n'
        for i in range(n)
    )
    cfg = root / "c.toml"
    cfg.write_text(
        f'[supervisor]\ninstance = "{inst}"\nruntime_dir = "{root}/streamasr/{inst}"\n'
        f'[refine]\nfinals = "{finals}"\npartials = "{partials}"\n{"".join(EXTRA)}\n{tables}'
    )
    env = {**os.environ, "XDG_RUNTIME_DIR": str(root)}
    cli = [sys.executable, "-m", "streamasr.supervisor.cli"]
    t0 = time.monotonic()
    sink = (root / "events.jsonl").open("w")  # a file: a pipe read only at the end fills up
    proc = subprocess.Popen(
        [*cli, "up", "-c", str(cfg), "--json", "--instance", inst],
        stdout=sink, stderr=subprocess.DEVNULL, text=True, env=env, cwd=root,
    )  # fmt: skip
    lost = fallbacks = 0
    cpu: dict[str, dict[str, float]] = {}
    while proc.poll() is None:
        res = subprocess.run(
            [*cli, "status", "--json", "--instance", inst],
            capture_output=True, text=True, env=env, cwd=root, timeout=60, check=False,
        )  # fmt: skip
        if res.returncode == 0 and res.stdout.strip():
            status = json.loads(res.stdout)
            lo, fb = _losses(status)
            lost, fallbacks = max(lost, lo), max(fallbacks, fb)
            cpu = status.get("cpu") or cpu
        time.sleep(0.5)
    sink.close()
    wall = time.monotonic() - t0
    out = (root / "events.jsonl").read_text()
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    audio_s = sum(refs(NAMES[i % 3])[-1][1] for i in range(n))  # to each file's last word
    print_cpu(cpu, audio_s)
    return {"partials": partials == "auto", **_summarise(events, n, finals, lost, fallbacks, wall)}


def print_cpu(cpu: dict[str, dict[str, float]], audio_s: float) -> None:
    """The status map's CPU account (its last sample, ~0.5 s before the end: startup
    excluded) as CPU seconds per audio second, by process and activity."""
    if not cpu or audio_s <= 0:
        return
    parts = []
    for proc, row in cpu.items():
        work = {k: v for k, v in row.items() if k not in ("total", "startup")}
        split = " ".join(f"{k} {v / audio_s:.3f}" for k, v in work.items() if v > 0)
        parts.append(f"{proc} {sum(work.values()) if work else row['total']:.1f} s ({split})")
    total = sum(sum(v for k, v in r.items() if k not in ("total", "startup")) or r["total"]
                for r in cpu.values())  # fmt: skip
    print(f"    CPU per audio s {total / audio_s:.3f}: " + "; ".join(parts), flush=True)


def _summarise(
    events: list[dict[str, Any]], n: int, finals: str, lost: int, fallbacks: int, wall: float
) -> dict[str, float]:
    last: dict[str, dict[str, Any]] = {}
    for e in events:
        if e["is_final"] and not e["provisional"]:
            last[e["utterance_id"]] = e
    total = WerCounts()
    for i in range(n):
        mine = sorted((e for e in last.values() if e["stream_id"] == f"s{i}"),
                      key=lambda e: e["start_s"])  # fmt: skip
        ref = " ".join(t for _, _, t in refs(NAMES[i % 3]))
        total += WerCounts.of(ref, " ".join(e["text"] for e in mine))
    first = [e["latency_s"] for e in events if e["is_final"] and e["pass"] == 1]
    second = [e for e in last.values() if e["pass"] == 2]
    after = [e["stages_s"].get("refine_queue", 0) + e["stages_s"].get("refine", 0) for e in second]
    shed = sum(1 for e in last.values() if e["pass"] == 1) if finals == "accurate" else 0
    p2 = [e for e in events if not e["is_final"] and e["pass"] == 2]
    row = {
        "streams": n, "wer": total.wer, "lost": lost, "fallbacks": max(fallbacks, shed),
        "first_p50": pct(first, 50), "first_p95": pct(first, 95),
        "after_p50": pct(after, 50), "after_p95": pct(after, 95),
        "acc_p50": pct([e["latency_s"] for e in second], 50),
        "acc_p95": pct([e["latency_s"] for e in second], 95), "wall_s": wall,
        "queue_p50": pct([e["stages_s"].get("refine_queue", 0) for e in second], 50),
        "compute_p50": pct([e["stages_s"].get("refine", 0) for e in second], 50),
        "p2_partials": len(p2), "p2_utts": len({e["utterance_id"] for e in p2}),
        "utts": len(last),
    }  # fmt: skip
    print(f"  {finals:8s} N={n:2d}  WER {row['wer']:.3f}  lost {lost}  fallbacks "
          f"{row['fallbacks']}  endpoint->accurate p50/p95 {1000 * row['after_p50']:.0f}/"
          f"{1000 * row['after_p95']:.0f} ms  first-pass final p50 "
          f"{1000 * row['first_p50']:.0f} ms  (refine queue/compute p50 "
          f"{1000 * row['queue_p50']:.0f}/{1000 * row['compute_p50']:.0f} ms)  "
          f"pass-2 partials {len(p2)} on "
          f"{row['p2_utts']}/{len(last)} utterances  ({wall:.0f} s)", flush=True)  # fmt: skip
    return row


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", default="1,4,6,8", help="accurate-final stream counts")
    ap.add_argument("--fast-streams", default="6,12", help="first-pass-only stream counts")
    ap.add_argument("--threads", type=int, default=2, help="CTranslate2 threads (direct)")
    ap.add_argument("--partials", default="off,auto", help="refine.partials of accurate rows")
    ap.add_argument("--no-pipeline", action="store_true", help="direct figures only")
    ap.add_argument("--no-direct", action="store_true", help="pipeline figures only")
    ap.add_argument(
        "--refine-extra", default="", help="TOML lines added to [refine] (e.g. 'beam_size = 5')"
    )
    args = ap.parse_args()
    if args.refine_extra:
        EXTRA.append(args.refine_extra.replace(";", "\n") + "\n")
    print(f"load average at start: {os.getloadavg()}, cpus {os.cpu_count()}")
    figs: dict[str, tuple[float, float]] = {}
    if not args.no_direct:
        print("direct refiner, 24 utterances:")
        figs = direct_figures(args.threads)
    rows: list[dict[str, float]] = []
    if not args.no_pipeline:
        print("pipeline, real-time file streams:")
        with tempfile.TemporaryDirectory(prefix="sab", dir="/tmp") as tmp:
            runs = [("accurate", p, args.streams) for p in args.partials.split(",") if p]
            runs.append(("fast", "off", args.fast_streams))
            for finals, partials, counts in runs:
                for n in (int(c) for c in counts.split(",") if c):
                    row = pipeline(n, finals, Path(tmp), partials)
                    rows.append({"accurate": finals == "accurate", **row})
    print(f"load average at end: {os.getloadavg()}")
    print_table(figs, rows)


_HEAD1 = "| second pass (Whisper base int8) | WER (24 utt.) | ms / utterance | vs first row |"
_HEAD2 = (
    "| finals | streams | WER | frames lost | fallbacks | endpoint -> accurate final p50 / p95"
    " (ms) | first-pass final latency p50 / p95 (ms) | accurate final latency p50 / p95 (ms) |"
    " utterances with Whisper partials |"
)


def _ms(row: dict[str, float], key: str) -> str:
    return f"{1000 * row[key + '_p50']:.0f} / {1000 * row[key + '_p95']:.0f}"


def print_table(figs: dict[str, tuple[float, float]], rows: list[dict[str, float]]) -> None:
    """The markdown tables for README.md."""
    if figs:
        b1 = next(iter(figs.values()))[1]
        print("\n" + _HEAD1 + "\n|---|---|---|---|")
        for label, (w, s) in figs.items():
            print(f"| {label} | {w:.3f} | {1000 * s:.0f} | {s / b1:.2f}x |")
    if not rows:
        return
    print("\n" + _HEAD2 + "\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        acc = r["accurate"]
        kind = ("accurate + partials" if r["partials"] else "accurate") if acc else "first pass"
        p2 = f"{r['p2_utts']:.0f} / {r['utts']:.0f}" if r["partials"] else "-"
        print(
            f"| {kind} | {r['streams']:.0f} | {r['wer']:.3f} | "
            f"{r['lost']:.0f} | {r['fallbacks']:.0f} | {_ms(r, 'after') if acc else '-'} | "
            f"{_ms(r, 'first')} | {_ms(r, 'acc') if acc else '-'} | {p2} |"
        )


if __name__ == "__main__":
    main()
