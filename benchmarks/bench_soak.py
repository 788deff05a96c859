"""Soak: the shared conversations looped at real time with random SIGKILLs of feature/inference.

Plays conversation1..3 back to back (repeated to fill ``--minutes``) through a real pipeline
(first-pass finals), SIGKILLs feature or inference every ``--kill-every`` seconds (jittered),
and reports: RSS of every process (growth %), frames lost, finals missing or duplicated
against the reference transcripts (each utterance of the loop matched by start time), and
restart times (SIGKILL -> the replacement's Ready).

RSS is sampled from every status the supervisor publishes (about once a second). Two
figures per process: *cold* (the first sample, before any audio was decoded) and *warm*
(the first sample after ``--warmup-s``, when allocator pools, decoder search structures
and result buffers have reached their working size) against the last sample, plus the
quartiles in between, so a steady leak (linear growth) and a one-off warm-up step can be
told apart. A process that was SIGKILLed in between is a different process at the end
(marked ``(restarted)``): only processes that lived through the whole run measure leaks;
``--kill-every 0`` runs without kills so every process does.

The supervisor keeps the last ``[events] history`` finals for late joiners (about 3 KB
each): with the default 1000 that buffer is still filling after 30 minutes of conversation
(~540 finals) and shows as steady growth, so the soak runs with ``--history 50``.

Usage: python benchmarks/bench_soak.py [--minutes 30] [--kill-every 20] [--seed 1]
       [--warmup-s 300] [--history 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import soundfile as sf

from streamasr.actors import messages as m
from streamasr.supervisor.client import NotRunning, Subscriber, request

AUDIO = Path(__file__).resolve().parents[1] / ".." / "shared" / "audio"
#: Seconds a final's start may differ from the reference utterance's start.
MATCH_S = 0.6


@dataclass
class SoakReport:
    """What a soak run measured; times in seconds, memory in bytes."""

    exit_code: int
    duration_s: float
    utterances: int
    finals: int
    kills: int
    restart_s: list[float]
    missing: list[str]
    duplicated: list[str]
    extra: list[str]
    frames_lost: int
    rss: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    warmup_s: float = 180.0
    stderr_tail: str = ""


def build_loop(dest: Path, minutes: float) -> list[tuple[float, str]]:
    """Write conversations 1..3 repeated (>= ``minutes``) to ``dest``; (start_s, text) refs."""
    parts, refs, offset_s = [], [], 0.0
    n = 0
    while offset_s < minutes * 60.0:
        n = n % 3 + 1
        data, rate_hz = sf.read(str(AUDIO / f"conversation{n}.wav"), dtype="int16")
        rows = (AUDIO / f"conversation{n}.tsv").read_text().splitlines()[1:]
        refs += [(offset_s + float(r.split("\t")[0]), r.split("\t")[2]) for r in rows]
        parts.append(data)
        offset_s += len(data) / rate_hz
    sf.write(str(dest), np.concatenate(parts), rate_hz, subtype="PCM_16")
    return refs


def match(refs: list[tuple[float, str]], finals: list[dict[str, Any]]) -> tuple[list[str], ...]:
    """(missing, duplicated, extra) utterances: finals matched to references by start time."""
    hits: dict[int, int] = {}
    extra = []
    starts = np.array([r[0] for r in refs])
    for f in finals:
        i = int(np.argmin(np.abs(starts - f["start_s"])))
        if abs(starts[i] - f["start_s"]) <= MATCH_S:
            hits[i] = hits.get(i, 0) + 1
        else:
            extra.append(f"{f['start_s']:.2f} {f['text']}")
    missing = [f"{refs[i][0]:.2f} {refs[i][1]}" for i in range(len(refs)) if i not in hits]
    dupes = [f"{refs[i][0]:.2f} {refs[i][1]}" for i, n in hits.items() if n > 1]
    return missing, dupes, extra


def _sample_rss(
    samples: dict[str, list[tuple[float, int, int]]], t: float, status: dict[str, Any], sup: int
) -> None:
    """Append (t, pid, rss bytes) of every actor in ``status`` and of the supervisor ``sup``."""
    for a in status["actors"]:
        if a["rss_bytes"] and a["pid"]:
            samples.setdefault(a["id"], []).append((t, int(a["pid"]), int(a["rss_bytes"])))
    with contextlib.suppress(psutil.Error):
        rss = psutil.Process(sup).memory_info().rss
        samples.setdefault("supervisor", []).append((t, sup, int(rss)))


def run_soak(
    base: Path,
    instance: str,
    *,
    minutes: float,
    kill_every_s: float,
    seed: int,
    warmup_s: float = 180.0,
    history: int = 1000,
) -> SoakReport:
    """Run the soak with runtime root ``base`` (XDG_RUNTIME_DIR) and instance ``instance``."""
    rng = random.Random(seed)
    root = base / "streamasr" / instance
    wav = base / "loop.wav"
    refs = build_loop(wav, minutes)
    config = base / "soak.toml"
    config.write_text(
        f'[supervisor]\ninstance = "{instance}"\nruntime_dir = "{root}"\nmax_restarts = 20\n'
        f"[events]\nhistory = {history}\n"
    )
    env = {**os.environ, "XDG_RUNTIME_DIR": str(base), "PYTHONUNBUFFERED": "1"}
    out_path, err_path = base / "soak.out", base / "soak.err"
    argv = [sys.executable, "-m", "streamasr.supervisor.cli", "up", "-c", str(config)]
    argv += ["--source", str(wav), "--finals", "fast", "--json", "--instance", instance]
    control = f"ipc://{root / 'control'}"
    restart_s: list[float] = []
    last: dict[str, Any] = {}
    rss: dict[str, list[tuple[float, int, int]]] = {}
    t0 = time.monotonic()
    with (
        out_path.open("wb") as out,
        err_path.open("wb") as err,
        Subscriber(f"ipc://{root / 'events'}", topics=("actor.", "status")) as sub,
    ):
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
        next_kill = None
        while proc.poll() is None:
            item = sub.recv(timeout_s=0.2)
            if item is not None and item[0] == "status":
                status = item[1].status
                if status["phase"] == "running" and all(
                    a["state"] == "running" for a in status["actors"]
                ):
                    last = status
                    _sample_rss(rss, time.monotonic() - t0, status, proc.pid)
                    if next_kill is None and kill_every_s > 0:
                        next_kill = time.monotonic() + kill_every_s
            if next_kill is not None and time.monotonic() >= next_kill:
                with_t = _kill_one(control, sub, rng.choice(["feature", "inference"]))
                if with_t is not None:
                    restart_s.append(with_t)
                next_kill = time.monotonic() + kill_every_s * rng.uniform(0.7, 1.3)
                if time.monotonic() - t0 > minutes * 60 - kill_every_s:
                    next_kill = float("inf")  # let the end of the file play undisturbed
        code = proc.wait()
    lines = [json.loads(ln) for ln in out_path.read_text().splitlines() if ln.strip()]
    finals = [e for e in lines if e["is_final"] and not e["provisional"]]
    missing, dupes, extra = match(refs, finals)
    inf: dict[str, Any] = next((a for a in last.get("actors", []) if a["id"] == "inference"), {})
    lost = int(inf.get("counters", {}).get("frames_lost", 0))
    lost += sum(rd["dropped_frames"] for r in last.get("rings", []) for rd in r["readers"])
    return SoakReport(
        exit_code=code,
        duration_s=time.monotonic() - t0,
        utterances=len(refs),
        finals=len(finals),
        kills=len(restart_s),
        restart_s=restart_s,
        missing=missing,
        duplicated=dupes,
        extra=extra,
        frames_lost=lost,
        rss=rss,
        warmup_s=warmup_s,
        stderr_tail="\n".join(err_path.read_text(errors="replace").splitlines()[-20:]),
    )


def _kill_one(control: str, sub: Subscriber, actor: str) -> float | None:
    """SIGKILL ``actor``; seconds until its replacement is Ready (None if not seen in 30 s)."""
    try:
        status = request(control, m.StatusRequest(), timeout_s=3).status
    except NotRunning:
        return None
    pid = next(a["pid"] for a in status["actors"] if a["id"] == actor)
    if not pid:
        return None
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while time.monotonic() - t0 < 30:
        item = sub.recv(timeout_s=0.5)
        if item is not None and item[0] == f"actor.{actor}.ready":
            return time.monotonic() - t0
    return None


def rss_lines(rss: dict[str, list[tuple[float, int, int]]], warmup_s: float) -> list[str]:
    """One line per process: cold and warm RSS against the end, quartiles in between (MB)."""
    out = [f"RSS (MB): cold = first sample, warm = first sample after {warmup_s:.0f} s"]
    for actor, series in rss.items():
        cold, end = series[0], series[-1]
        warm = next((x for x in series if x[0] >= warmup_s), cold)
        later = [x for x in series if x[0] >= warm[0]]
        quart = [later[min(len(later) - 1, len(later) * q // 4)][2] for q in (1, 2, 3)]
        mb = 2**20
        note = " (restarted)" if warm[1] != end[1] else ""
        out.append(
            f"  {actor:<10} cold {cold[2] / mb:6.1f}  warm {warm[2] / mb:6.1f}"
            f"  q1/q2/q3 {'/'.join(f'{q / mb:.1f}' for q in quart)}  end {end[2] / mb:6.1f}"
            f"  growth warm->end {(end[2] - warm[2]) / warm[2]:+.2%}"
            f" (cold->end {(end[2] - cold[2]) / cold[2]:+.1%}){note}"
        )
    return out


def main() -> None:
    """Run one soak and print its report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--kill-every", type=float, default=20.0, help="seconds between kills")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup-s", type=float, default=300.0, help="RSS baseline after this")
    ap.add_argument(
        "--history",
        type=int,
        default=50,
        help="[events] history: finals the supervisor keeps for late joiners (a bounded buffer "
        "of ~3 KB per final; small, so that it is full before the RSS baseline)",
    )
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sk", dir="/tmp"))
    r = run_soak(
        base,
        f"soak{os.getpid()}",
        minutes=args.minutes,
        kill_every_s=args.kill_every,
        seed=args.seed,
        warmup_s=args.warmup_s,
        history=args.history,
    )
    print(f"exit code {r.exit_code}, {r.duration_s:.0f} s, {r.kills} kills")
    print(f"utterances {r.utterances}, finals {r.finals}, frames lost {r.frames_lost}")
    print(f"missing {len(r.missing)} {r.missing[:5]}")
    print(f"duplicated {len(r.duplicated)} {r.duplicated[:5]}")
    print(f"extra {len(r.extra)} {r.extra[:5]}")
    if r.restart_s:
        rs = sorted(r.restart_s)
        p95 = rs[min(len(rs) - 1, int(0.95 * len(rs)))]
        print(f"restart s: p50 {statistics.median(rs):.2f} p95 {p95:.2f} max {rs[-1]:.2f}")
    for line in rss_lines(r.rss, r.warmup_s):
        print(line)
    if r.exit_code:
        print(r.stderr_tail)


if __name__ == "__main__":
    main()
