"""Restart time of the inference actor, cold vs hot standby: SIGKILL -> first events.

Runs a real pipeline (first-pass finals) on conversation1..3 looped at real time, SIGKILLs
the inference actor ``--repeats`` times (after each replacement has decoded), and measures
from the SIGKILL to the replacement's ``actor.inference.ready`` (process start, model load
and warm-up) and to its first transcript (partial or final), first with cold restarts,
then with ``hot_standby = true`` (a warm spare is promoted). Prints p50/p95/max and ratios.

Usage: python benchmarks/bench_restart.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from streamasr.actors import messages as m
from streamasr.supervisor.client import NotRunning, Subscriber, request

AUDIO = Path(__file__).resolve().parents[1] / ".." / "shared" / "audio"


def _loop_file(dest: Path, seconds: float) -> None:
    parts, total_s, n = [], 0.0, 0
    while total_s < seconds:
        n = n % 3 + 1
        data, rate_hz = sf.read(str(AUDIO / f"conversation{n}.wav"), dtype="int16")
        parts.append(data)
        total_s += len(data) / rate_hz
    sf.write(str(dest), np.concatenate(parts), rate_hz, subtype="PCM_16")


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _wait(sub: Subscriber, want: str, timeout_s: float) -> float | None:
    """Monotonic time of the first message whose topic starts with ``want``."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        item = sub.recv(timeout_s=left)
        if item is not None and item[0].startswith(want):
            return time.monotonic()
    return None


def bench(repeats: int, standby: bool = False) -> tuple[list[float], list[float]]:
    """(seconds to Ready, seconds to first transcript) for each of ``repeats`` kills."""
    base = Path(tempfile.mkdtemp(prefix="br", dir="/tmp"))
    instance = f"bench{os.getpid()}"
    root = base / "streamasr" / instance
    wav = base / "loop.wav"
    _loop_file(wav, 30.0 + repeats * 8.0)
    cfg = base / "c.toml"
    cfg.write_text(
        f'[supervisor]\ninstance = "{instance}"\nruntime_dir = "{root}"\n'
        f"max_restarts = {repeats + 5}\nperiod_s = 3600.0\n"
        f"hot_standby = {'true' if standby else 'false'}\n"
    )
    env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}
    argv = [sys.executable, "-m", "streamasr.supervisor.cli", "up", "-c", str(cfg)]
    argv += ["--source", str(wav), "--finals", "fast", "--quiet", "--instance", instance]
    control = f"ipc://{root / 'control'}"
    ready_s: list[float] = []
    first_s: list[float] = []
    with Subscriber(f"ipc://{root / 'events'}", topics=("actor.inference.", "transcript.")) as sub:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            if _wait(sub, "transcript.", 60) is None:
                raise SystemExit("the pipeline produced no transcript")
            for _ in range(repeats):
                try:
                    status = request(control, m.StatusRequest()).status
                    while standby and not status["standby"].get("ready"):
                        _wait(sub, "transcript.", 0.2)  # the spare is still warming up
                        status = request(control, m.StatusRequest()).status
                except NotRunning:
                    break
                pid = next(a["pid"] for a in status["actors"] if a["id"] == "inference")
                t0 = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                t_ready = _wait(sub, "actor.inference.ready", 30)
                t_first = _wait(sub, "transcript.", 30)
                if t_ready is None or t_first is None:
                    break
                ready_s.append(t_ready - t0)
                first_s.append(t_first - t0)
                _wait(sub, "transcript.", 3)  # let it decode a little before the next kill
        finally:
            request(control, m.StopRequest("bench over"), timeout_s=5)
            proc.wait(timeout=60)
    return ready_s, first_s


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    cold = bench(args.repeats)
    hot = bench(args.repeats, standby=True)
    for mode, (ready_s, first_s) in (("cold", cold), ("hot standby", hot)):
        for name, values in (("SIGKILL -> Ready", ready_s), ("SIGKILL -> first event", first_s)):
            if values:
                print(
                    f"{mode:<12} {name:<24} n={len(values):<3} "
                    f"p50 {statistics.median(values) * 1e3:7.0f} ms  "
                    f"p95 {_pct(values, 0.95) * 1e3:7.0f} ms  max {max(values) * 1e3:7.0f} ms"
                )
    if cold[1] and hot[1]:
        ratio = statistics.median(cold[1]) / statistics.median(hot[1])
        print(f"hot standby is {ratio:.1f}x faster to the first event (p50); target < 150 ms")


if __name__ == "__main__":
    main()
