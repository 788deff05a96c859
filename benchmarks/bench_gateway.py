"""WebSocket gateway capacity: N real-time native clients on one pipeline, against the file path.

Usage::

    python benchmarks/bench_gateway.py            # N = 1, 2, 4, ... 16, 13 s cut; about 5 min
    python benchmarks/bench_gateway.py --quick    # N = 1, 2, 4, 9.7 s cut; about 2 min

What is measured (every clock is ``time.time_ns()`` on this one machine):

* **Gateway path.** ``streamasr-supervisor serve --finals fast`` on a private instance. For
  each N, N :class:`~streamasr.actors.frontdoors.client.NativeClient` s in *one* asyncio loop in
  this process each send the same cut of conversation1 (16 kHz mono s16le) in 100 ms
  messages paced to absolute deadlines (client ``i`` starts ``i * 100 / N`` ms after client
  0, so the streams are not phase-locked). ``W_k`` is the wall clock just after message
  ``k`` (its last sample) was handed to the socket. A partial's ``end_s`` is the decoder's
  fed position (PocketSphinx ``Result.end_frame``), i.e. the newest sample the partial
  covers; its chunk is ``k = ceil(end_s * rate / 1600) - 1``. **Partial latency** =
  receipt at the client - ``W_k``. ``pipeline`` = the event's ``latency_s`` (gateway ring
  write -> inference publication); ``hop`` = latency - ``latency_s`` (client -> gateway
  socket, supervisor relay, gateway -> client socket, client decode).
* **Losses** from the supervisor's status, requested after every client has sent its last
  chunk and before any sends ``end`` (the streams' rings still exist): readers'
  ``dropped_frames`` and ``overruns`` of the rings, inference ``frames_lost`` + ``resyncs``,
  event ``gaps``; plus the gateway counters over the round (``aborted``, ``refused``,
  ``protocol_errors``, ``frames_in`` against the frames the clients sent) and the clients'
  own ``seq`` gaps. Any of them non-zero = lost.
* **File path baseline.** ``up --source CUT --finals fast --json`` at real time with an
  external Subscriber process. The capture actor stamps chunk ``k`` at ``t0 + (k+1) * 100 ms``
  (plus wake-up jitter); ``t0`` is fitted as ``min(R - latency_s - (k+1) * 0.1 s)`` over the
  partials, so the latency ``R - t0 - (k+1) * 0.1 s`` is low by at most the smallest
  relay + jitter of the run (well under a millisecond to a few ms). It runs once before and
  once after the gateway rounds; the two are pooled (the box's other load drifts).
* ``end_s`` of a PocketSphinx partial is the fed position rounded down to its 30 ms VAD
  frame, so it always falls in the chunk that completed that position.

A round passes when nothing is lost and the p95 partial latency is under the chunk duration
(100 ms). The ladder stops at the first failing N (``--keep-going``: goes on until a round
loses frames or its p95 exceeds 5 s, i.e. the pipeline is overloaded); the
report gives the largest N up to which every round passed, and the same for losses alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    CHUNK,
    CHUNK_MS,
    CLI,
    RATE_HZ,
    PipelineRun,
    cpu_model,
    cut,
    load_average,
    losses,
    pct,
    write_wav,
)

from streamasr.actors.frontdoors.client import NativeClient
from streamasr.actors.messages import StatusRequest
from streamasr.supervisor.client import request

CHUNK_S = CHUNK_MS / 1000
LADDER = (1, 2, 4, 6, 8, 10, 12, 14, 16)
LOSS_KEYS = ("dropped_frames", "overruns", "frames_lost", "gaps")
GW_KEYS = ("aborted", "refused", "protocol_errors")
#: ``--keep-going`` still stops past this p95 (s): the backlog only grows with N from there.
OVERLOAD_S = 5.0


def chunk_index(end_s: float) -> int:
    """Index of the 100 ms chunk holding the last sample before stream second ``end_s``."""
    return max(0, math.ceil(round(end_s * RATE_HZ) / CHUNK) - 1)


def ms3(values: Sequence[float]) -> str:
    """p50/p95 of seconds, as milliseconds text."""
    return f"{1000 * pct(values, 50):.1f}/{1000 * pct(values, 95):.1f}"


# --- the gateway pipeline --------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayServer:
    """``serve --finals FINALS`` on a private instance; a context manager."""

    def __init__(self, base: Path, finals: str = "fast", extra_toml: str = "") -> None:
        """Write the config under ``base`` (a short /tmp directory); ``extra_toml`` is
        appended to it (more sections)."""
        self.base = base
        self.finals = finals
        self.name = f"bgw{uuid.uuid4().hex[:8]}"
        self.root = base / "r"
        self.port = free_port()
        self.config = base / "gw.toml"
        self.config.write_text(
            f'[supervisor]\ninstance = "{self.name}"\nruntime_dir = "{self.root}"\n'
            "[gateway]\nmax_streams = 32\n" + extra_toml
        )
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(base)}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The native endpoint."""
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    @property
    def control(self) -> str:
        """The supervisor's control endpoint."""
        return f"ipc://{self.root / 'control'}"

    def status(self) -> dict[str, Any]:
        """The supervisor's status map."""
        st: dict[str, Any] = request(self.control, StatusRequest(), timeout_s=5.0).status
        return st

    def __enter__(self) -> GatewayServer:
        """Start and wait (up to 120 s) until ``/healthz`` answers."""
        argv = [*CLI, "serve", "--port", str(self.port), "-c", str(self.config)]
        with (self.base / "gw.err").open("wb") as err:
            self.proc = subprocess.Popen(
                [*argv, "--finals", self.finals, "--quiet"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=self.env,
                cwd=self.base,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                tail = (self.base / "gw.err").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"serve exited {self.proc.returncode}: {tail}")
            url = f"http://127.0.0.1:{self.port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2):
                return self
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("gateway did not answer /healthz within 120 s")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        """``down``, then wait; kill the group if it lingers; remove our segments."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            subprocess.run(
                [*CLI, "down", "-c", str(self.config)],
                env=self.env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for seg in Path("/dev/shm").glob(f"streamasr-{self.name}-*"):
            with contextlib.suppress(OSError):
                seg.unlink()

    def gateway_counters(self, st: dict[str, Any]) -> dict[str, int]:
        """The gateway actor's counters in status ``st``."""
        for actor in st["actors"]:
            if actor["id"] == "gateway":
                return {k: int(v) for k, v in (actor.get("counters") or {}).items()}
        return {}

    def settled_counters(
        self, before: dict[str, int], frames: int, streams: int, timeout_s: float = 10.0
    ) -> dict[str, int]:
        """Gateway counters once a heartbeat shows ``frames`` more frames in and ``streams``
        more streams finished (completed or aborted) than ``before``, or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.gateway_counters(self.status())
            done = sum(now.get(k, 0) - before.get(k, 0) for k in ("streams_completed", "aborted"))
            grown = now.get("frames_in", 0) - before.get("frames_in", 0) >= frames
            if (grown and done >= streams) or time.monotonic() > deadline:
                return now
            time.sleep(0.2)

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Wait until no stream ring is left (the previous round's streams are gone)."""
        deadline = time.monotonic() + timeout_s
        while self.status().get("rings"):
            if time.monotonic() > deadline:
                raise RuntimeError("gateway streams did not close")
            time.sleep(0.2)


# --- one round of N clients ------------------------------------------------------------------


@dataclass(slots=True)
class ClientLog:
    """One client's record.

    Attributes:
        sent_ns: wall clock just after chunk ``k`` was handed to the socket.
        late_s: how late each send was against its deadline (client-loop lag), seconds.
        partials: ``(receipt_ns, event)`` per partial.
        seqs: ``seq`` of every transcript event.
        ended: the gateway sent ``end``.
    """

    sent_ns: list[int] = field(default_factory=list)
    late_s: list[float] = field(default_factory=list)
    partials: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    ended: bool = False


@dataclass(slots=True)
class Round:
    """What one round of N clients measured (seconds; loss counts)."""

    n: int
    total_s: list[float]
    pipeline_s: list[float]
    hop_s: list[float]
    late_s: list[float]
    lost: dict[str, int]
    backpressure_waits: int
    max_backlog_s: float
    load: str
    cpu_pct: dict[str, float]
    restarts: int

    @property
    def lost_total(self) -> int:
        """Sum of every loss count."""
        return sum(self.lost.values())

    @property
    def passed(self) -> bool:
        """Nothing lost and p95 partial latency under the chunk duration."""
        return self.lost_total == 0 and pct(self.total_s, 95) < CHUNK_S


class Barrier:
    """Lets the last client to finish sending sample the status before anyone sends ``end``."""

    def __init__(self, n: int, server: GatewayServer) -> None:
        """Wait for ``n`` clients."""
        self.left, self.server = n, server
        self.done = asyncio.Event()
        self.status: dict[str, Any] = {}

    async def arrive(self) -> None:
        """Called by each client after its last chunk; returns once the status is taken."""
        self.left -= 1
        if self.left == 0:
            self.status = await asyncio.to_thread(self.server.status)
            self.done.set()
        await self.done.wait()


async def one_client(
    url: str, pcm: npt.NDArray[np.int16], t0: float, barrier: Barrier, name: str
) -> ClientLog:
    """Stream ``pcm`` in 100 ms messages due at ``t0 + (k+1) * 100 ms`` (monotonic)."""
    out = ClientLog()
    client = await NativeClient.connect(url, sample_rate_hz=RATE_HZ, name=name)
    opened = asyncio.Event()

    async def receive() -> None:
        async for event in client.events():
            now = time.time_ns()
            opened.set()
            kind = event.get("type")
            if kind in ("partial", "final"):
                out.seqs.append(int(event["seq"]))
            if kind == "partial":
                out.partials.append((now, event))
            elif kind == "end":
                out.ended = True

    receiver = asyncio.ensure_future(receive())
    async with client:
        await asyncio.wait_for(opened.wait(), 30)  # the first advice: the stream is open
        for k, i in enumerate(range(0, len(pcm), CHUNK)):
            due = t0 + (k + 1) * CHUNK_S
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            out.late_s.append(max(0.0, time.monotonic() - due))
            await client.send_audio(pcm[i : i + CHUNK].tobytes())
            out.sent_ns.append(time.time_ns())
        await barrier.arrive()
        await client.end()
        await asyncio.wait_for(receiver, 120)
    return out


async def run_clients(
    server: GatewayServer, pcm: npt.NDArray[np.int16], n: int
) -> tuple[list[ClientLog], dict[str, Any]]:
    """N clients at once; their logs and the status sampled before the streams end."""
    barrier = Barrier(n, server)
    start = time.monotonic() + 2.0  # time to connect and open every stream
    tasks = [
        one_client(server.url, pcm, start + i * CHUNK_S / n, barrier, f"bench-{i}")
        for i in range(n)
    ]
    logs = await asyncio.gather(*tasks)
    return list(logs), barrier.status


def actor_cpu_s(st: dict[str, Any]) -> dict[str, float]:
    """User + system CPU seconds so far of the inference and gateway processes in ``st``."""
    out: dict[str, float] = {}
    for actor in st["actors"]:
        if actor["id"] in ("inference", "gateway") and actor.get("pid"):
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(int(actor["pid"])).cpu_times()
                out[actor["id"]] = t.user + t.system
    return out


def measure_round(server: GatewayServer, pcm: npt.NDArray[np.int16], n: int) -> Round:
    """Run one round and reduce it to latencies and losses."""
    server.wait_idle()
    st0 = server.status()
    before = server.gateway_counters(st0)
    cpu0, t0 = actor_cpu_s(st0), time.monotonic()
    logs, st = asyncio.run(run_clients(server, pcm, n))
    cpu1, wall = actor_cpu_s(st0), time.monotonic() - t0
    restarts = sum(int(a.get("restarts", 0)) for a in server.status()["actors"]) - sum(
        int(a.get("restarts", 0)) for a in st0["actors"]
    )
    after = server.settled_counters(before, n * len(pcm), n)
    total, pipe, hop = [], [], []
    for log in logs:
        for receipt, e in log.partials:
            k = chunk_index(float(e["end_s"]))
            if k >= len(log.sent_ns):
                continue
            t = (receipt - log.sent_ns[k]) / 1e9
            total.append(t)
            pipe.append(float(e["latency_s"]))
            hop.append(t - float(e["latency_s"]))
    lost = losses(st)
    for key in GW_KEYS:
        lost[f"gw_{key}"] = after.get(key, 0) - before.get(key, 0)
    sent_frames = n * len(pcm)
    lost["gw_frames_missing"] = sent_frames - (after["frames_in"] - before["frames_in"])
    lost["client_seq_gaps"] = sum(
        (max(log.seqs) - min(log.seqs) + 1 - len(log.seqs)) if log.seqs else 0 for log in logs
    )
    lost["client_no_end"] = sum(not log.ended for log in logs)
    backlog = [
        float(v)
        for a in st["actors"]
        if a["id"] == "inference"
        for k, v in (a.get("gauges") or {}).items()
        if k.startswith("backlog_s.")
    ]
    return Round(
        n=n,
        total_s=total,
        pipeline_s=pipe,
        hop_s=hop,
        late_s=[x for log in logs for x in log.late_s],
        lost=lost,
        backpressure_waits=after.get("backpressure_waits", 0) - before.get("backpressure_waits", 0),
        max_backlog_s=max(backlog, default=0.0),
        load=load_average(),
        cpu_pct={a: 100 * (cpu1[a] - cpu0[a]) / wall for a in cpu0 if a in cpu1},
        restarts=restarts,
    )


# --- the file path baseline --------------------------------------------------------------------


def file_baseline(wav: Path) -> tuple[list[float], list[float], dict[str, int]]:
    """``up --source WAV --finals fast --json`` at real time: latency, ``latency_s``, losses."""
    res = PipelineRun().run(["--source", str(wav), "--finals", "fast", "--json"], subscribe=True)
    if res.returncode != 0:
        raise RuntimeError(f"up exited {res.returncode}:\n{res.stderr}")
    rows = [
        (receipt / 1e9, float(e["latency_s"]), chunk_index(float(e["end_s"])))
        for receipt, e in res.events
        if not e["is_final"]
    ]
    if not rows:
        raise RuntimeError("the file path produced no partials")
    t0 = min(r - lat - (k + 1) * CHUNK_S for r, lat, k in rows)
    total = [r - t0 - (k + 1) * CHUNK_S for r, _, k in rows]
    lost = {key: 0 for key in LOSS_KEYS}
    for st in res.statuses:
        for key, value in losses(st).items():
            lost[key] = max(lost[key], value)
    pipe = [lat for _, lat, _ in rows]
    print(
        f"  {len(total)} partials  latency p50/p95 {ms3(total)} ms  "
        f"(pipeline latency_s {ms3(pipe)} ms)  losses {lost}  load {load_average()}",
        flush=True,
    )
    return total, pipe, lost


# --- report ------------------------------------------------------------------------------------


def print_round(r: Round) -> None:
    """One line per N."""
    nonzero = {k: v for k, v in r.lost.items() if v}
    cpu = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r.cpu_pct.items()))
    print(
        f"  N={r.n:2d}: {len(r.total_s):4d} partials  latency p50/p95 {ms3(r.total_s)} ms  "
        f"(pipeline {ms3(r.pipeline_s)}, hop {ms3(r.hop_s)})  lost {r.lost_total} "
        f"{nonzero or ''}  send lag p95 {1000 * pct(r.late_s, 95):.1f} ms  "
        f"backpressure waits {r.backpressure_waits}  inference backlog {r.max_backlog_s:.2f} s  "
        f"CPU % of a core {cpu}  actor restarts {r.restarts}  load {r.load}  "
        f"-> {'pass' if r.passed else 'FAIL'}",
        flush=True,
    )


def largest(rounds: Sequence[Round], ok: Callable[[Round], bool]) -> str:
    """The largest N of the leading run of rounds that satisfy ``ok`` ("none" if N=1 fails)."""
    best = "none"
    for r in rounds:
        if not ok(r):
            break
        best = str(r.n)
    return best


def print_table(
    rounds: Sequence[Round],
    file_total: Sequence[float],
    file_pipe: Sequence[float],
    file_lost: int,
) -> None:
    """The final markdown table, the largest passing N and the gateway's added latency."""
    print(
        "\n| path | N | partials | latency p50/p95 (ms) | pipeline p50/p95 (ms) | hop p50/p95 (ms) "
        "| lost | result |\n|---|---|---|---|---|---|---|---|"
    )
    print(
        f"| file (`up --source`) | 1 | {len(file_total)} | {ms3(file_total)} | {ms3(file_pipe)} "
        f"| - | {file_lost} | baseline |"
    )
    for r in rounds:
        print(
            f"| gateway | {r.n} | {len(r.total_s)} | {ms3(r.total_s)} | {ms3(r.pipeline_s)} "
            f"| {ms3(r.hop_s)} | {r.lost_total} | {'pass' if r.passed else '**fail**'} |"
        )
    print(
        f"\nlargest N with no lost frames and p95 < {CHUNK_MS} ms (every smaller N too): "
        f"{largest(rounds, lambda r: r.passed)}"
    )
    print(f"largest N with no lost frames: {largest(rounds, lambda r: r.lost_total == 0)}")
    if rounds and rounds[0].n == 1:
        one = rounds[0]
        for q in (50, 95):
            added = pct(one.total_s, q) - pct(file_total, q)
            print(
                f"added latency of the gateway path (N=1 minus file path), p{q}: "
                f"{1000 * added:+.1f} ms"
            )


def main() -> None:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N up to 4, a 10 s cut")
    ap.add_argument("--keep-going", action="store_true", help="do not stop at a failing N")
    ap.add_argument("--max-n", type=int, default=16, help="largest N to try (default 16)")
    args = ap.parse_args()
    pcm, _ = cut("conversation1", 10.0 if args.quick else 15.0)
    ladder = [n for n in LADDER if n <= (4 if args.quick else args.max_n)]
    print(f"# gateway benchmark on {cpu_model()}, {os.cpu_count()} cores")
    print(f"load average at start: {load_average()}")
    print(
        f"cut: conversation1, {len(pcm) / RATE_HZ:.1f} s, {CHUNK_MS} ms chunks at real time; "
        "clients: NativeClient x N in one asyncio loop in this process",
        flush=True,
    )
    base = Path(tempfile.mkdtemp(prefix="sa", dir="/tmp"))
    try:
        wav = write_wav(base / "cut.wav", pcm)
        print("\n## file path baseline (up --source, real time, --finals fast)", flush=True)
        file_total, file_pipe, file_lost = file_baseline(wav)
        print("\n## gateway path (serve --finals fast)", flush=True)
        rounds: list[Round] = []
        with GatewayServer(base) as server:
            for n in ladder:
                rounds.append(measure_round(server, pcm, n))
                print_round(rounds[-1])
                r = rounds[-1]
                overloaded = r.lost_total > 0 or pct(r.total_s, 95) > OVERLOAD_S
                if not r.passed and (not args.keep_going or overloaded):
                    break
        print("\n## file path baseline again (pooled with the first run)", flush=True)
        again = file_baseline(wav)
        print(f"\nload average at end: {load_average()}")
        lost = sum(file_lost.values()) + sum(again[2].values())
        print_table(rounds, [*file_total, *again[0]], [*file_pipe, *again[1]], lost)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
