"""Failover identity: finals after a SIGKILL of one actor against a fault-free run (issue 20).

Runs ``up --source FILE --fast --json`` once without faults and then once per kill point
and actor, SIGKILLing the actor (``inference``, ``feature`` or ``refine``) when a chosen
event comes out of the pipeline: the first partial of utterance *k* (mid-utterance; for
refine, the provisional final of utterance *k*, so a job is in flight). The finals of each
run are matched to the fault-free run's by time and compared word for word (the exact
text, case and punctuation included).

Prints per actor and finals mode: runs, utterances identical / changed / missing / extra,
and each changed utterance (fault-free text -> text after the kill). The default file is
the shared conversations 1+2 (57 s, 16 utterances with pauses); ``--file`` takes another
16 kHz WAV (a long-form passage, say, whose monologue is split at its pauses).

    python benchmarks/bench_failover.py                       # 3 actors x 2 modes x 5 kills
    python benchmarks/bench_failover.py --actors inference --kills 2,5,8 --modes accurate
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CLI, concat, write_wav

ACTORS = ("inference", "feature", "refine")


@dataclass
class Run:
    """One ``up`` run: its finals (last per utterance), the kill's stream time, its exit code."""

    finals: list[dict[str, Any]] = field(default_factory=list)
    killed_at_s: float | None = None
    code: int = 0


def _status(env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [*CLI, "status", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    return dict(json.loads(out.stdout))


def _pid(env: dict[str, str], actor: str) -> int:
    for a in _status(env)["actors"]:
        if a["id"] == actor and a["pid"]:
            return int(a["pid"])
    raise RuntimeError(f"no pid for {actor}")


def _trigger(actor: str, k: int, event: dict[str, Any], starts: list[float]) -> bool:
    """True at the event to kill on: utterance k's first partial (refine: its provisional
    final). ``starts`` collects the start times of the utterances seen so far."""
    if event.get("type", "transcript") != "transcript" or "start_s" not in event:
        return False
    if event["start_s"] not in starts:
        starts.append(event["start_s"])
    index = starts.index(event["start_s"])
    if actor == "refine":
        return index >= k and bool(event["is_final"] and event.get("provisional"))
    return index >= k and not event["is_final"]


def run(path: Path, mode: str, actor: str | None, k: int, extra: str) -> Run:
    """One run of ``path`` with ``--finals mode``; SIGKILL ``actor`` at utterance ``k``."""
    base = Path(tempfile.mkdtemp(prefix="sab", dir="/tmp"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}  # a private instance
    cfg = base / "c.toml"
    cfg.write_text("[refine]\nbudget_s = 60.0\n" + extra)
    argv = [*CLI, "up", "-c", str(cfg), "--source", str(path), "--fast", "--json"]
    argv += ["--finals", mode]
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out = Run()
    drain = threading.Thread(target=lambda: proc.stderr and proc.stderr.read(), daemon=True)
    drain.start()  # the pipeline's log, read so that it never blocks on a full pipe
    starts: list[float] = []
    finals: dict[str, dict[str, Any]] = {}
    armed = actor is not None
    for line in proc.stdout or []:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("is_final") and not event.get("provisional"):
            finals[event["utterance_id"]] = event
        if armed and actor is not None and _trigger(actor, k, event, starts):
            armed = False
            try:
                os.kill(_pid(env, actor), signal.SIGKILL)
                out.killed_at_s = float(event["end_s"])
            except (RuntimeError, ProcessLookupError, ValueError) as exc:
                print(f"  kill failed: {exc}", file=sys.stderr)
    out.code = proc.wait(timeout=300)
    drain.join(timeout=10)
    shutil.rmtree(base, ignore_errors=True)
    out.finals = sorted(finals.values(), key=lambda e: e["start_s"])
    return out


def compare(
    ref: list[dict[str, Any]], got: list[dict[str, Any]]
) -> tuple[int, list[str], int, int]:
    """(identical, changes, missing, extra): finals matched by the overlap of their spans."""
    used: set[int] = set()
    same, changes, missing = 0, [], 0
    for r in ref:
        best, overlap = None, 0.0
        for i, g in enumerate(got):
            ov = min(r["end_s"], g["end_s"]) - max(r["start_s"], g["start_s"])
            if i not in used and ov > overlap:
                best, overlap = i, ov
        if best is None:
            missing += 1
            changes.append(f"    missing [{r['start_s']:.2f}-{r['end_s']:.2f}] {r['text']!r}")
            continue
        used.add(best)
        g = got[best]
        if g["text"] == r["text"]:
            same += 1
        else:
            changes.append(
                f"    [{r['start_s']:.2f}-{r['end_s']:.2f}] {r['text']!r}\n"
                f"    [{g['start_s']:.2f}-{g['end_s']:.2f}] {g['text']!r}"
            )
    extra = len(got) - len(used)
    for i, g in enumerate(got):
        if i not in used:
            changes.append(f"    extra [{g['start_s']:.2f}-{g['end_s']:.2f}] {g['text']!r}")
    return same, changes, missing, extra


def main() -> None:
    """Parse arguments and run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--actors", default=",".join(ACTORS))
    ap.add_argument("--modes", default="accurate,fast")
    ap.add_argument("--kills", default="1,3,5,7,9", help="utterance indices to kill at")
    ap.add_argument("--file", default="", help="a 16 kHz WAV instead of conversations 1+2")
    ap.add_argument("--config-extra", default="", help="TOML appended to each run's config")
    args = ap.parse_args()
    extra = Path(args.config_extra).read_text() if args.config_extra else ""
    if args.file:
        path = Path(args.file)
    else:
        pcm, _ = concat(["conversation1", "conversation2"])
        path = write_wav(Path(tempfile.mkdtemp(prefix="sab")) / "c12.wav", pcm.astype(np.int16))
    t0 = time.perf_counter()
    for mode in args.modes.split(","):
        ref = run(path, mode, None, 0, extra)
        again = run(path, mode, None, 0, extra)
        s, ch, mi, ex = compare(ref.finals, again.finals)
        print(
            f"{mode}: fault-free {len(ref.finals)} finals; a second fault-free run: "
            f"{s} identical, {len(ref.finals) - s - mi} changed, {mi} missing, {ex} extra"
        )
        for c in ch:
            print(c)
        for actor in args.actors.split(","):
            tot = [0, 0, 0, 0]
            lines: list[str] = []
            for k in (int(x) for x in args.kills.split(",")):
                r = run(path, mode, actor, k, extra)
                s, ch, mi, ex = compare(ref.finals, r.finals)
                tot = [tot[0] + s, tot[1] + len(ref.finals) - s - mi, tot[2] + mi, tot[3] + ex]
                at = f"{r.killed_at_s:.2f} s" if r.killed_at_s is not None else "never"
                lines.append(
                    f"  kill at utterance {k} ({at}), exit {r.code}: "
                    f"{s}/{len(ref.finals)} identical"
                )
                lines += ch
            print(
                f"{mode} {actor}: identical {tot[0]}, changed {tot[1]}, missing {tot[2]}, "
                f"extra {tot[3]}"
            )
            print("\n".join(lines), flush=True)
    print(f"benchmark wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
