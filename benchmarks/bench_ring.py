"""Benchmark of streamasr.ringbuf: per-chunk cost, throughput, cross-process hand-off.

Run: ``python benchmarks/bench_ring.py [--iterations N]``. Prints, in one run:

* median cost of ``write`` + ``read_into`` of one 100 ms chunk (1600 frames int16 mono);
* single-process frames/s throughput with that chunk size;
* one-way hand-off latency p50/p99 from a producer process to a consumer process for
  (a) ring write + ZeroMQ doorbell (PUSH->PULL over ipc, 8-byte message) + ring read,
  (b) the same 3200 bytes as a plain ZeroMQ message, (c) ``multiprocessing.Queue``;
  with ratios. Latency = ``time.monotonic_ns()`` (CLOCK_MONOTONIC, system-wide) taken
  by the consumer after its copy minus the one taken by the producer before sending.
  Sends are lock-step (the producer waits for an ack), so no queueing inflates them,
  and the three modes are interleaved round-robin in one process pair.

Targets: write+read <= 10 us per 100 ms chunk; ring hand-off p99 <= 1.2x plain ZeroMQ.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid
from typing import Any

import numpy as np
import zmq

from streamasr.ringbuf import NAME_PREFIX, Ring

CHUNK = 1600  # frames: 100 ms of 16 kHz mono
MODES = ("ring+doorbell", "zmq", "mp.Queue")


def bench_local(iterations: int) -> tuple[float, float, float, float]:
    """Median write+read, write, read (us) per chunk and frames/s, in one process."""
    name = f"{NAME_PREFIX}bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    with Ring.create(name, 8192, np.int16, (1,)) as owner, Ring.attach(name, reader=0) as rd:
        chunk = (np.arange(CHUNK) % 3000).astype(np.int16).reshape(CHUNK, 1)
        out = np.empty_like(chunk)
        both, wr, re = [], [], []
        clock = time.perf_counter_ns
        for _ in range(iterations):
            t0 = clock()
            owner.write(chunk)
            t1 = clock()
            rd.read_into(out)
            t2 = clock()
            both.append(t2 - t0)
            wr.append(t1 - t0)
            re.append(t2 - t1)
        assert np.array_equal(out, chunk)
        t0 = clock()
        for _ in range(iterations):
            owner.write(chunk)
            rd.read_into(out)
        fps = iterations * CHUNK / ((clock() - t0) / 1e9)
    med = statistics.median
    return med(both) / 1e3, med(wr) / 1e3, med(re) / 1e3, fps


def _consumer(ring_name: str, ipc: str, queue: Any, n: int) -> None:
    """Receive ``n`` chunks per mode, modes interleaved round-robin; send back the
    per-mode latencies (ns) at the end."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(f"{ipc}-data")
    ack = ctx.socket(zmq.PUSH)
    ack.connect(f"{ipc}-ack")
    rd = Ring.attach(ring_name, reader=0)
    out = np.empty((CHUNK, 1), np.int16)
    lat: dict[str, list[int]] = {m: [] for m in MODES}
    for i in range(n * len(MODES)):
        mode = MODES[i % len(MODES)]
        if mode == "ring+doorbell":
            t_send = int.from_bytes(pull.recv(copy=True), "little")
            rd.read_into(out)
        elif mode == "zmq":
            msg = pull.recv(copy=True)
            t_send = int.from_bytes(msg[:8], "little")
            np.copyto(out, np.frombuffer(msg, np.int16, offset=8).reshape(CHUNK, 1))
        else:
            t_send, payload = queue.get()
            np.copyto(out, np.frombuffer(payload, np.int16).reshape(CHUNK, 1))
        lat[mode].append(time.monotonic_ns() - t_send)
        ack.send(b"")
    ack.send_pyobj(lat)
    rd.close()
    pull.close(0)
    ack.close(0)
    ctx.term()


def bench_handoff(n: int) -> dict[str, list[int]]:
    """One-way latencies (ns) of ``n`` lock-step hand-offs of one chunk per mode; the
    modes are interleaved so machine noise hits all of them alike."""
    ipc = f"ipc://{tempfile.gettempdir()}/streamasr-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    name = f"{NAME_PREFIX}bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    spawn = mp.get_context("spawn")
    owner = Ring.create(name, 8192, np.int16, (1,))
    queue = spawn.Queue()
    ctx = zmq.Context()
    push, ack = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    push.bind(f"{ipc}-data")
    ack.bind(f"{ipc}-ack")
    proc = spawn.Process(target=_consumer, args=(name, ipc, queue, n))
    proc.start()
    chunk = (np.arange(CHUNK) % 3000).astype(np.int16).reshape(CHUNK, 1)
    payload = chunk.tobytes()
    for i in range(n * len(MODES)):
        mode = MODES[i % len(MODES)]
        t = time.monotonic_ns()
        if mode == "ring+doorbell":
            owner.write(chunk)
            push.send(t.to_bytes(8, "little"), copy=True)
        elif mode == "zmq":
            push.send(t.to_bytes(8, "little") + chunk.tobytes(), copy=True)
        else:
            queue.put((t, payload))
        ack.recv()
    lat: dict[str, list[int]] = ack.recv_pyobj()
    proc.join(30)
    push.close(0)
    ack.close(0)
    ctx.term()
    owner.close()
    return {m: v[n // 10 :] for m, v in lat.items()}  # drop warm-up


def _pct(values: list[int], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) / 1e3


def main() -> None:
    """Run every benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20000, help="local iterations")
    parser.add_argument("--handoffs", type=int, default=5000, help="hand-offs per mode")
    args = parser.parse_args()
    both, wr, re, fps = bench_local(args.iterations)
    print(f"chunk: {CHUNK} frames int16 mono (100 ms @ 16 kHz)")
    print(f"write+read median: {both:.2f} us  (write {wr:.2f} us, read {re:.2f} us)"
          f"  target <= 10 us: {'OK' if both <= 10 else 'MISSED'}")  # fmt: skip
    print(f"throughput: {fps / 1e6:.1f} M frames/s ({fps / 16000:.0f}x real time)")
    res = bench_handoff(args.handoffs)
    for m in MODES:
        print(f"hand-off {m:14s} p50 {_pct(res[m], 50):7.1f} us  p99 {_pct(res[m], 99):7.1f} us")
    for q in (50, 99):
        ring = _pct(res[MODES[0]], q)
        print(f"p{q} ratio ring/zmq {ring / _pct(res['zmq'], q):.2f}  "
              f"ring/mp.Queue {ring / _pct(res['mp.Queue'], q):.2f}")  # fmt: skip
    ratio99 = _pct(res[MODES[0]], 99) / _pct(res["zmq"], 99)
    print(f"target ring p99 <= 1.2x zmq: {'OK' if ratio99 <= 1.2 else 'MISSED'}")


if __name__ == "__main__":
    main()
