"""What users read, against what the same model reads on the whole file.

Run: ``python benchmarks/bench_quality.py`` (all sets, 3 runs each, partials at 1 and 2
real-time streams; about 25 minutes on a 2-core box). ``--sets`` picks sets, ``--runs`` the
repeats, ``--realtime 1,2`` the stream counts of the partial section (``--realtime ""``
skips it).

**Finals** (section 1): each file goes through ``streamasr-supervisor up --source FILE --fast
--json`` (the default config: two passes, accurate finals), ``--runs`` times, exactly as a user
runs it. In the same run, the same Whisper base weights transcribe the whole file with
faster-whisper's ``transcribe`` and its defaults (beam 5, its own VAD off, temperature
fallback; ``language="en"``, as the pipeline's), the baseline. Per set it prints the WER of the
pipeline's accurate finals (the last non-provisional final of each utterance), the
whole-file WER, their ratio, the first-pass WER (its finals alone), empty accurate finals where
the first pass had words, the files whose finals differed between runs, and the CPU seconds
per audio second of the pipeline (every process) against the whole-file run.

Sets: ``conversations`` (the shared conversation1–3 and their .tsv), ``long_form`` (ten 15–30 s
passages of continuous reading, several of parallel, repeated clauses), ``noisy`` (white 15 dB
/ pink 10 dB SNR), ``reverberant``, ``unseen`` (fourteen sentences unlike the shared ones, 0.8–1.2 s
pauses), ``noisy_unseen`` (that file in white 15 dB and pink 10 dB noise: stretches of noise
alone between sentences), made
by :mod:`speech_sets` with flite and sox; and ``real`` (``shared/audio/real``, real human
dialogue without a transcript: the whole-file transcript is its reference, so the pipeline's
figure there is its disagreement with the model on the whole file and the baseline is 0).

**Partials** (section 2): conversation1 (and conversation2 for the second stream) paced at real
time, one ``[[streams]]`` table per stream, the default config. Per utterance: partial updates,
retractions of committed words (a partial's first ``committed_words`` words changed by a later
partial, or by the final), switches between passes (PocketSphinx ↔ Whisper) within an
utterance, and the word edit distance of each partial to the final's prefix of its length.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _quality_metrics as qm
import speech_sets
from _common import AUDIO_DIR, CONVERSATIONS, PipelineRun, cpu_model, load_average
from wer import WerCounts

SETS = ("conversations", "long_form", "noisy", "reverberant", "unseen", "noisy_unseen", "real")
#: Targets of the transcript-quality issue: pipeline WER / whole-file WER.
TARGET_RATIO = 1.0
TARGET_RATIO_NOISY = 0.9
NOISY_SETS = ("noisy", "reverberant", "noisy_unseen")
#: Largest CPU growth per stream against ``--baseline-rev``.
MAX_CPU_GROWTH = 1.25
#: The real set has no transcript: the pipeline's disagreement with the whole-file
#: transcript of the same model (its reference) may be at most this.
REAL_DISAGREEMENT = 0.05
#: TOML added to every pipeline's config (``--config-extra``).
CONFIG_EXTRA = ""
#: Absolute slack (WER points) under which a ratio is not meaningful (e.g. 0.5 % vs 0.3 %).
RATIO_FLOOR = 0.005


@dataclass(slots=True)
class Item:
    """One benchmark file: its path, reference text (``None``: the whole-file transcript is
    the reference) and length in seconds."""

    set_name: str
    name: str
    path: Path
    text: str | None
    duration_s: float


def items(sets: Sequence[str], cache: Path) -> list[Item]:
    """The files of ``sets`` (generated sets are made in ``cache`` on first use)."""
    import soundfile as sf

    out: list[Item] = []
    gen = {
        "long_form": speech_sets.long_form,
        "noisy": speech_sets.noisy,
        "reverberant": speech_sets.reverberant,
        "unseen": speech_sets.unseen_sentences,
        "noisy_unseen": speech_sets.noisy_unseen,
    }
    for s in sets:
        if s == "conversations":
            for name in CONVERSATIONS:
                path = AUDIO_DIR / f"{name}.wav"
                rows = (AUDIO_DIR / f"{name}.tsv").read_text().splitlines()[1:]
                text = " ".join(r.split("\t")[2] for r in rows)
                out.append(Item(s, name, path, text, sf.info(str(path)).duration))
        elif s == "real":
            for path in sorted((AUDIO_DIR / "real").glob("*.wav")):
                out.append(Item(s, path.stem, path, None, sf.info(str(path)).duration))
        else:
            for it in gen[s](cache):
                out.append(Item(s, it.name, it.path, it.text, it.duration_s))
    return out


def whole_file(paths: Sequence[Path]) -> tuple[dict[Path, str], float]:
    """The same Whisper base weights on each whole file (faster-whisper defaults, beam 5):
    text per path and the CPU seconds it took (this process)."""
    from faster_whisper import WhisperModel

    from streamasr.actors.refine.model_store import resolve_model

    model = WhisperModel(str(resolve_model("base")), device="cpu", compute_type="int8")
    out: dict[Path, str] = {}
    t0 = time.process_time()
    for p in paths:
        segments, _ = model.transcribe(str(p), language="en")
        out[p] = " ".join(s.text.strip() for s in segments)
    return out, time.process_time() - t0


def pipeline_events(path: Path) -> tuple[list[dict[str, Any]], float, int]:
    """``up --source PATH --fast --json``: its events, CPU seconds (all processes), exit."""
    run = PipelineRun(CONFIG_EXTRA)
    res = run.run(["--source", str(path), "--fast"], json_stdout=True, timeout_s=900)
    if res.returncode != 0:
        print(f"  ! {path.name}: exit {res.returncode}: {res.stderr[-400:]}", file=sys.stderr)
    return [e for _, e in res.events if "is_final" in e], res.cpu_s, res.returncode


@dataclass(slots=True)
class FileResult:
    """One file's figures over its runs."""

    item: Item
    accurate: list[str]
    first: list[str]
    empty: int
    cpu_s: float


def run_file(item: Item, runs: int) -> FileResult:
    """``runs`` pipeline runs of one file."""
    accurate, first, empty, cpu = [], [], 0, 0.0
    for _ in range(runs):
        events, cpu_s, _rc = pipeline_events(item.path)
        accurate.append(" ".join(e["text"] for e in qm.last_finals(events, accurate=True)))
        first.append(" ".join(e["text"] for e in qm.last_finals(events, accurate=False)))
        empty += qm.empty_accurate(events)
        cpu += cpu_s
    return FileResult(item, accurate, first, empty, cpu)


def _fmt(x: float) -> str:
    return f"{100 * x:5.1f}%" if x == x else "    -"


def section_finals(sets: Sequence[str], runs: int, cache: Path) -> bool:
    """Section 1; True when every set meets its target."""
    its = items(sets, cache)
    print(f"\n## 1. Accurate finals vs the same model on the whole file ({runs} runs)\n")
    base, base_cpu = whole_file([i.path for i in its])
    results = []
    for it in its:
        t0 = time.monotonic()
        results.append(run_file(it, runs))
        print(f"  {it.set_name}/{it.name}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    print(
        "| set | files | audio s | pipeline WER | whole-file WER | ratio | target | met |"
        " first-pass WER | empty finals | files differing between runs |"
        " CPU s/audio s pipeline | whole file |"
    )
    print("|" + "---|" * 13)
    ok = True
    base_rtf = base_cpu / sum(i.duration_s for i in its)
    for s in sets:
        rs = [r for r in results if r.item.set_name == s]
        if not rs:
            continue
        pipe = whole = first = WerCounts()
        for r in rs:
            ref = r.item.text if r.item.text is not None else base[r.item.path]
            for k in range(runs):
                pipe = pipe + qm.counts(ref, r.accurate[k])
                first = first + qm.counts(ref, r.first[k])
                whole = whole + qm.counts(ref, base[r.item.path])
        audio = sum(r.item.duration_s for r in rs)
        differing = sum(len(set(r.accurate)) > 1 for r in rs)
        empty = sum(r.empty for r in rs)
        target = TARGET_RATIO_NOISY if s in NOISY_SETS else TARGET_RATIO
        ratio = pipe.wer / whole.wer if whole.wer > 0 else float("inf") if pipe.wer else 1.0
        if s == "real":  # the whole file is the reference: the figure is the disagreement
            met, target_s = pipe.wer <= REAL_DISAGREEMENT, f"<= {_fmt(REAL_DISAGREEMENT)}"
        else:
            met, target_s = pipe.wer <= target * whole.wer + RATIO_FLOOR, f"<= {target:.1f}x"
        met = met and empty == 0 and differing == 0
        ok = ok and met
        cpu = sum(r.cpu_s for r in rs) / runs / audio
        print(
            f"| {s} | {len(rs)} | {audio:.0f} | {_fmt(pipe.wer)} | {_fmt(whole.wer)} |"
            f" {ratio:.2f}x | {target_s} | {'yes' if met else 'NO'} | {_fmt(first.wer)} |"
            f" {empty} | {differing} | {cpu:.3f} | {base_rtf:.3f} |"
        )
    print("\nPer file (run 1; WER against the reference):")
    for r in results:
        ref = r.item.text if r.item.text is not None else base[r.item.path]
        p, w = qm.counts(ref, r.accurate[0]), qm.counts(ref, base[r.item.path])
        print(f"  {r.item.set_name}/{r.item.name}: pipeline {_fmt(p.wer)} whole file {_fmt(w.wer)}")
    return ok


def realtime_events(
    n: int, pythonpath: str | None = None
) -> tuple[list[dict[str, Any]], float, float]:
    """``n`` real-time streams (conversation1, 2, 3, 1, ...): events, CPU s, audio s.
    ``pythonpath``: run the ``streamasr`` found there instead (see :func:`baseline_tree`)."""
    import soundfile as sf

    tables, audio = "", 0.0
    for i in range(n):
        path = AUDIO_DIR / f"{CONVERSATIONS[i % len(CONVERSATIONS)]}.wav"
        audio += sf.info(str(path)).duration
        tables += (
            f'[[streams]]\nkind = "file"\npath = "{path}"\nstream_id = "s{i}"\nrealtime = true\n\n'
        )
    run = PipelineRun(CONFIG_EXTRA + "\n" + tables)
    if pythonpath is not None:
        run.env["PYTHONPATH"] = pythonpath
    res = run.run([], json_stdout=True, timeout_s=600)
    if res.returncode != 0:
        print(f"  ! {n} streams: exit {res.returncode}: {res.stderr[-400:]}", file=sys.stderr)
    return [e for _, e in res.events if "is_final" in e], res.cpu_s, audio


def baseline_tree(rev: str) -> str:
    """A ``PYTHONPATH`` entry whose ``streamasr`` package is this repository at ``rev`` (a
    git worktree in a temporary directory; its three folders linked under ``streamasr/``)."""
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="bq-base-"))
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", "-f", str(tmp / "tree"), rev],
        check=True,
        capture_output=True,
    )
    (tmp / "pkg" / "streamasr").mkdir(parents=True)
    for d in ("actors", "ringbuf", "supervisor"):
        (tmp / "pkg" / "streamasr" / d).symlink_to(tmp / "tree" / d)
    return str(tmp / "pkg")


def drop_baseline_tree(pythonpath: str) -> None:
    """Remove the worktree made by :func:`baseline_tree`."""
    root = Path(__file__).resolve().parents[1]
    tree = Path(pythonpath).parent / "tree"
    argv = ["git", "-C", str(root), "worktree", "remove", "--force", str(tree)]
    subprocess.run(argv, check=False, capture_output=True)
    shutil.rmtree(Path(pythonpath).parent, ignore_errors=True)


def section_partials(counts: Sequence[int], baseline_rev: str | None = None) -> bool:
    """Section 2; True when no committed word was retracted, no utterance switched source
    more than once and (with ``baseline_rev``) CPU per stream grew by at most 25 %."""
    print("\n## 2. Partials at real time (default config)\n")
    base_path = baseline_tree(baseline_rev) if baseline_rev is not None else None
    rows, cpu_rows, ok = [], [], True
    try:
        for n in counts:
            events, cpu_s, audio = realtime_events(n)
            trs: list[qm.Trace] = []
            for sid in sorted({e["stream_id"] for e in events}):
                trs += qm.traces(e for e in events if e["stream_id"] == sid)
            f = qm.partial_summary(trs)
            ok = ok and f["committed_retracted"] == 0 and f["max_switches_per_utt"] <= 1
            rows.append(
                f"| {n} | {f['utterances']:.0f} | {f['partials']:.0f} |"
                f" {f['updates_p50']:.0f}/{f['updates_p95']:.0f} |"
                f" {f['committed_retracted']:.0f} / {f['committed_changed_by_final']:.0f} |"
                f" {f['pass_switches']:.0f} / {f['max_switches_per_utt']:.0f} |"
                f" {f['dist_mean']:.3f}/{f['dist_p95']:.3f} |"
            )
            if base_path is not None:  # the baseline right after, on the same box
                _, base_s, _ = realtime_events(n, base_path)
                ratio = cpu_s / base_s
                met = ratio <= MAX_CPU_GROWTH
                ok = ok and met
                cpu_rows.append(
                    f"| {n} | {base_s / audio / n:.3f} | {cpu_s / audio / n:.3f} | {ratio:.2f}x |"
                    f" <= {MAX_CPU_GROWTH:.2f}x | {'yes' if met else 'NO'} |"
                )
            else:
                cpu_rows.append(f"| {n} | - | {cpu_s / audio / n:.3f} | - | - | - |")
    finally:
        if base_path is not None:
            drop_baseline_tree(base_path)
    print(
        "| streams | utterances | partials | updates/utt p50/p95 | committed words retracted"
        " (by partials / by the final) | source switches (total / max per utterance) |"
        " partial-to-final distance mean/p95 |"
    )
    print("|" + "---|" * 7)
    print("\n".join(rows))
    print(f"\nCPU seconds per audio second per stream (every process), against {baseline_rev}:\n")
    print("| streams | baseline | now | ratio | target | met |")
    print("|" + "---|" * 6)
    print("\n".join(cpu_rows))
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tables; exit 1 when a target is missed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated of {SETS}")
    ap.add_argument("--runs", type=int, default=3, help="pipeline runs per file")
    ap.add_argument("--realtime", default="1,2", help="stream counts for partials ('' skips)")
    ap.add_argument(
        "--baseline-rev",
        default=None,
        help="git revision whose pipeline CPU per stream section 2 compares with (e.g. the"
        " commit before a change)",
    )
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "streamasr-speech")
    ap.add_argument(
        "--config-extra", type=Path, default=None, help="a TOML file added to every config"
    )
    args = ap.parse_args(argv)
    global CONFIG_EXTRA
    if args.config_extra is not None:
        CONFIG_EXTRA = args.config_extra.read_text()
    sets = [s for s in args.sets.split(",") if s]
    bad = [s for s in sets if s not in SETS]
    if bad:
        ap.error(f"unknown set(s) {bad}; known: {SETS}")
    print(f"# bench_quality: {cpu_model()}, load average {load_average()}")
    ok = section_finals(sets, args.runs, args.cache) if sets else True
    counts = [int(c) for c in args.realtime.split(",") if c]
    if counts:
        ok = section_partials(counts, args.baseline_rev) and ok
    print(json.dumps({"all_targets_met": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
