"""Memory after streams come and go: N gateway streams at once, closed, R rounds (issue 20, item 5).

Usage::

    python benchmarks/bench_memory.py               # 20 streams x 50 rounds
    python benchmarks/bench_memory.py --rounds 5    # the same, 5 rounds
    python benchmarks/bench_memory.py --spares 32   # keep every decoder (as the old pool did)
    python benchmarks/bench_memory.py --config-extra x.toml   # append sections to the config

A round takes about 15-50 s on the 2-core test box (most of it loading the decoders of the
streams beyond the spares: about 0.9 s each, more when the box is busy).

``streamasr-supervisor serve --finals fast`` on a private instance. Each round opens N native
clients at once (each waits for its stream's first message, i.e. the stream is open), sends
``--seconds`` of conversation1 as fast as the gateway's backpressure lets it, ends, and
reads every event until ``end``. After the round, once no stream's ring is left and every
inference worker's heartbeat says it decodes no stream, the resident set size (RSS, MiB, read
with psutil) of each inference worker and of the supervisor, and the size of the status map
(msgpack bytes, as ``status`` carries it), are printed, with the actors' restarts so far
(a restarted worker is a fresh process: its RSS says nothing about memory returned). The
baseline is the same figures before the first round; the peak is the largest RSS a sampler
(every 0.2 s) saw during the rounds. The acceptance check: RSS after the last round is near
the baseline, with no restart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CHUNK, RATE_HZ, cpu_model, cut, load_average
from bench_gateway import GatewayServer

from streamasr.actors.frontdoors.client import NativeClient

MIB = 2**20


@dataclass
class Snapshot:
    """Memory figures at one moment: RSS per process (MiB) and the status map's size."""

    label: str
    rss_mib: dict[str, float]
    status_bytes: int
    ended_streams: int
    restarts: int


@dataclass
class PeakSampler:
    """Samples the RSS of some processes every 0.2 s in a thread; keeps each one's peak."""

    pids: dict[str, int]
    peak_mib: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for name, rss in rss_mib(self.pids).items():
                self.peak_mib[name] = max(self.peak_mib.get(name, 0.0), rss)

    def stop(self) -> dict[str, float]:
        """Stop sampling; the peaks seen (MiB)."""
        self._stop.set()
        self._thread.join()
        return self.peak_mib


def rss_mib(pids: dict[str, int]) -> dict[str, float]:
    """Name -> RSS in MiB of each process still alive."""
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid).memory_info().rss / MIB
        except psutil.NoSuchProcess:
            continue
    return out


def watched_pids(status: dict[str, Any]) -> dict[str, int]:
    """The supervisor and every inference worker of ``status``, by name."""
    pids = {"supervisor": int(status["pid"])}
    for actor in status["actors"]:
        if actor["id"].startswith("inference") and actor.get("pid"):
            pids[actor["id"]] = int(actor["pid"])
    return pids


def wait_settled(server: GatewayServer, timeout_s: float = 120.0) -> dict[str, Any]:
    """The status once no run-time ring is left and every inference worker's heartbeat,
    sent after that, reports no stream."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = server.status()
        t_ns = time.time_ns()
        if not st.get("rings"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the streams' rings did not go")
        time.sleep(0.2)
    while True:
        st = server.status()
        workers = [a for a in st["actors"] if a["id"].startswith("inference")]
        fresh = all(
            a["heartbeat_age_s"] >= 0 and time.time_ns() - a["heartbeat_age_s"] * 1e9 > t_ns
            for a in workers
        )
        if fresh and all(a["gauges"].get("streams", 1) == 0 for a in workers):
            return st
        if time.monotonic() > deadline:
            raise RuntimeError(f"inference still reports streams: {workers}")
        time.sleep(0.2)


def snapshot(label: str, server: GatewayServer, st: dict[str, Any]) -> Snapshot:
    """Memory figures now (``st``: a status map taken once the pipeline is idle)."""
    ended = int(st.get("ended_streams", {}).get("streams", 0))
    size = len(msgpack.packb(st, use_bin_type=True))
    restarts = sum(int(a["restarts"]) for a in st["actors"])
    return Snapshot(label, rss_mib(watched_pids(st)), size, ended, restarts)


async def one_stream(url: str, pcm: npt.NDArray[np.int16], name: str) -> int:
    """Open a stream, send ``pcm`` (no pacing), end it; the number of finals it got."""
    client = await NativeClient.connect(url, sample_rate_hz=RATE_HZ, name=name)
    finals = 0
    async with client:
        events = client.events()
        await asyncio.wait_for(anext(events), 60)  # the first message: the stream is open
        for i in range(0, len(pcm), CHUNK):
            await client.send_audio(pcm[i : i + CHUNK].tobytes())
        await client.end()
        async with asyncio.timeout(120):
            async for event in events:
                finals += int(event.get("type") == "final")
    return finals


async def one_round(url: str, pcm: npt.NDArray[np.int16], n: int, r: int) -> int:
    """N streams at once; the finals they got together."""
    got = await asyncio.gather(*(one_stream(url, pcm, f"mem-{r}-{i}") for i in range(n)))
    return sum(got)


def print_table(snaps: list[Snapshot], peak: dict[str, float]) -> None:
    """One row per snapshot: RSS per process (MiB), status bytes, ended streams."""
    names = sorted({k for s in snaps for k in s.rss_mib}, key=lambda k: (k == "supervisor", k))
    head = "".join(f"{n:>14}" for n in names)
    print(f"\n{'':<14}{head}{'status B':>10}{'ended':>7}{'restarts':>9}")
    for s in snaps:
        cells = "".join(f"{s.rss_mib.get(n, float('nan')):>14.1f}" for n in names)
        print(f"{s.label:<14}{cells}{s.status_bytes:>10}{s.ended_streams:>7}{s.restarts:>9}")
    print(f"{'peak':<14}" + "".join(f"{peak.get(n, float('nan')):>14.1f}" for n in names))
    first, last = snaps[0], snaps[-1]
    deltas = "".join(f"{last.rss_mib.get(n, 0) - first.rss_mib.get(n, 0):>+14.1f}" for n in names)
    print(f"{'last - base':<14}{deltas}{last.status_bytes - first.status_bytes:>+10}")


def run_rounds(server: GatewayServer, pcm: npt.NDArray[np.int16], args: argparse.Namespace) -> None:
    """The baseline, the rounds, then the table."""
    every = args.every or max(1, args.rounds // 5)
    st = wait_settled(server)
    snaps = [snapshot("baseline", server, st)]
    sampler = PeakSampler(watched_pids(st))
    t0 = time.monotonic()
    finals = 0
    try:
        for r in range(1, args.rounds + 1):
            finals += asyncio.run(one_round(server.url, pcm, args.streams, r))
            st = wait_settled(server)  # every round starts with no stream left
            if r % every == 0 or r in (1, args.rounds):
                snaps.append(snapshot(f"after {r}", server, st))
    except Exception:
        log = (server.base / "gw.err").read_text(errors="replace").splitlines()
        print("\n".join(line for line in log if "INFO" not in line)[-3000:])
        raise
    finally:
        peak = sampler.stop()
    print(f"# {time.monotonic() - t0:.0f} s; {finals} finals in all")
    print_table(snaps, peak)


def main() -> None:
    """Parse the arguments, start the gateway pipeline, run the rounds."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--streams", type=int, default=20, help="streams open at once per round")
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=1.0, help="audio per stream (s)")
    ap.add_argument("--spares", type=int, default=0, help="spare_decoders (0: the default)")
    ap.add_argument("--every", type=int, default=0, help="print a row every K rounds")
    ap.add_argument("--heartbeat-timeout-s", type=float, default=30.0)
    ap.add_argument(
        "--config-extra",
        type=Path,
        help="a TOML file appended to the config (more sections, e.g. [events] history = 0)",
    )
    args = ap.parse_args()
    pcm, _ = cut("conversation1", args.seconds)
    extra = f"[inference.pocketsphinx]\nspare_decoders = {args.spares}\n" if args.spares else ""
    if args.config_extra is not None:
        extra += "\n" + args.config_extra.read_text()
    print(f"# {cpu_model()}; load {load_average()}")
    print(
        f"# {args.streams} streams x {args.rounds} rounds, {args.seconds:g} s of audio each, "
        f"finals fast, spare_decoders {args.spares or 'default'}, "
        f"heartbeat_timeout_s {args.heartbeat_timeout_s:g}"
        + (f", config extra {args.config_extra}" if args.config_extra else "")
    )
    with tempfile.TemporaryDirectory(prefix="bmem") as tmp:
        server = GatewayServer(Path(tmp), "fast", extra)
        # a box shared with other work can starve a worker that decodes ten streams'
        # backlog for more than the default 5 s; a restart would hide what this measures
        toml = server.config.read_text()
        timeout = f"heartbeat_timeout_s = {args.heartbeat_timeout_s}\n[gateway]"
        server.config.write_text(toml.replace("[gateway]", timeout, 1))
        with server:
            run_rounds(server, pcm, args)


if __name__ == "__main__":
    main()
