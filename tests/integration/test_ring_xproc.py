"""Cross-process ring tests: 10M frames through a 4096-frame ring, loss accounting,
SIGKILL of consumer and producer. Frame value = its absolute index (int64), so every
delivered frame is checked and every gap must have been reported as lost."""

from __future__ import annotations

import _posixshmem
import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

import numpy as np
import pytest

from streamasr.ringbuf import NAME_PREFIX, Ring, list_segments

SPAWN = mp.get_context("spawn")
CAP = 4096
DEADLINE_S = 30.0


@dataclass(frozen=True)
class ConsumerReport:
    """What a consumer process saw, in frames (``first`` = cursor it resumed from)."""

    first: int
    end: int
    delivered: int
    lost: int
    overruns: int
    error: str = ""


def _producer(
    name: str, go: Event | None, stop: Event, total: int, chunk: int, paced: bool
) -> None:
    """Write frames [write_counter, total) as absolute indices; paced: never overrun readers."""
    ring = Ring.attach(name)
    if go is not None and not go.wait(DEADLINE_S):
        raise SystemExit("consumer never became ready")
    ramp = np.arange(chunk, dtype=np.int64)
    w = ring.write_counter
    deadline = time.monotonic() + DEADLINE_S
    i = 0
    while w < total:
        i += 1
        if i % 256 == 0 and (stop.is_set() or time.monotonic() > deadline):
            break
        n = min(chunk, total - w)
        if paced and ring.writable < n:
            os.sched_yield()
            continue
        ring.write(ramp[:n] + w)
        w += n
    ring.close()


def _consumer(
    name: str, reader: int, total: int, read_max: int, slow: int, ready: Event, out: Any
) -> None:
    """Read until frame ``total``; check values and that every gap was reported."""
    ring = Ring.attach(name, reader=reader, dtype=np.int64, frame_shape=())
    ready.set()
    buf = np.empty(read_max, np.int64)
    ramp = np.arange(read_max, dtype=np.int64)
    first, pos, delivered, lost, overruns, error = -1, -1, 0, 0, 0, ""
    deadline = time.monotonic() + DEADLINE_S
    while (pos < total or delivered == 0) and time.monotonic() < deadline:
        res = ring.read_into(buf)
        if first < 0:
            first = pos = res.start_frame - res.lost_frames
        if res.start_frame - res.lost_frames != pos:
            error = f"gap not reported: expected {pos}, got {res}"
            break
        for _ in range(slow + 1):  # slow > 0: a deliberately slow consumer
            ok = np.array_equal(buf[: res.frames], ramp[: res.frames] + res.start_frame)
        if not ok:
            error = f"corrupt frames in {res}"
            break
        delivered, lost = delivered + res.frames, lost + res.lost_frames
        overruns += res.lost_frames > 0
        pos = res.start_frame + res.frames
        if res.frames == 0:
            os.sched_yield()
    out.put(ConsumerReport(first, pos, delivered, lost, overruns, error))
    ring.close()


class Harness:
    """The owning handle of a ring plus the processes a test started on it."""

    def __init__(self, owner: Ring) -> None:
        self.owner = owner
        self.procs: list[Any] = []

    def start(self, target: Any, *args: Any) -> Any:
        """Spawn ``target(ring_name, *args)`` as a daemon process."""
        proc = SPAWN.Process(target=target, args=(self.owner.name, *args), daemon=True)
        proc.start()
        self.procs.append(proc)
        return proc


@pytest.fixture
def harness() -> Iterator[Harness]:
    """A fresh 4096-frame int64 ring; kills leftovers and asserts no segment leaks."""
    name = f"{NAME_PREFIX}xproc-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    h = Harness(Ring.create(name, CAP, np.int64, (), max_readers=2))
    try:
        yield h
    finally:
        for p in h.procs:
            if p.is_alive():
                p.kill()
            p.join(DEADLINE_S)
        h.owner.close()
        if list_segments(name):
            _posixshmem.shm_unlink("/" + name)
            pytest.fail(f"segment {name} leaked after the owner closed")


def _wait_until(cond: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        os.sched_yield()


def test_ten_million_frames_lossless_when_paced(harness: Harness) -> None:
    owner = harness.owner
    total = 10_000_000
    ready, stop, q = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    cons = harness.start(_consumer, 0, total, CAP, 0, ready, q)
    prod = harness.start(_producer, ready, stop, total, 1024, True)
    rep: ConsumerReport = q.get(timeout=DEADLINE_S * 2)
    prod.join(DEADLINE_S)
    cons.join(DEADLINE_S)
    assert rep.error == ""
    assert (rep.first, rep.end, rep.delivered, rep.lost) == (0, total, total, 0)
    st = owner.stats(0)
    assert (st.writes, st.reads, st.dropped_frames, st.overruns) == (total, total, 0, 0)
    assert (prod.exitcode, cons.exitcode) == (0, 0)


def test_slow_consumer_loss_matches_missing_frames(harness: Harness) -> None:
    owner = harness.owner
    total = 3_000_000
    ready, stop, q = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    harness.start(_consumer, 1, total, 3000, 3, ready, q)
    harness.start(_producer, ready, stop, total, 1000, False)
    rep: ConsumerReport = q.get(timeout=DEADLINE_S * 2)
    assert rep.error == ""
    assert rep.end == total
    assert rep.lost > 0, "the slow consumer was expected to be overrun"
    assert rep.delivered + rep.lost == total  # every frame not delivered was reported
    st = owner.stats(1)
    assert (st.reads, st.dropped_frames, st.overruns) == (rep.delivered, rep.lost, rep.overruns)
    assert st.writes == total


def test_sigkill_consumer_new_consumer_resumes(harness: Harness) -> None:
    owner = harness.owner
    ready, stop, q = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    victim = harness.start(_consumer, 0, 2**62, CAP, 0, ready, q)
    prod = harness.start(_producer, ready, stop, 2**62, 512, False)  # never waits
    _wait_until(lambda: owner.stats(0).reads > 200_000, "the first consumer to make progress")
    victim.kill()
    victim.join(DEADLINE_S)
    victim_stats = owner.stats(0)
    cursor = victim_stats.read_counter
    w_at_kill = owner.write_counter
    _wait_until(lambda: owner.write_counter > w_at_kill + CAP, "the producer to keep writing")
    assert prod.is_alive()
    ready2, q2 = SPAWN.Event(), SPAWN.Queue()
    goal = owner.write_counter + 500_000
    harness.start(_consumer, 0, goal, CAP, 0, ready2, q2)
    rep: ConsumerReport = q2.get(timeout=DEADLINE_S)
    stop.set()
    prod.join(DEADLINE_S)
    assert rep.error == ""
    assert rep.first == cursor  # resumed from the shared cursor of the killed consumer
    assert rep.end >= goal  # the free-running producer may be far ahead by now
    assert rep.delivered > 0
    assert rep.delivered + rep.lost == rep.end - cursor
    st = owner.stats(0)
    assert (st.read_counter, st.reads) == (rep.end, victim_stats.reads + rep.delivered)
    assert st.dropped_frames == victim_stats.dropped_frames + rep.lost


def test_sigkill_producer_new_producer_continues(harness: Harness) -> None:
    owner = harness.owner
    total = 2_000_000
    ready, stop, q = SPAWN.Event(), SPAWN.Event(), SPAWN.Queue()
    cons = harness.start(_consumer, 0, total, CAP, 0, ready, q)
    first = harness.start(_producer, ready, stop, total, 700, True)
    _wait_until(lambda: owner.write_counter > 300_000, "the first producer to make progress")
    first.kill()
    first.join(DEADLINE_S)
    w_at_kill = owner.write_counter
    assert w_at_kill < total
    _wait_until(lambda: owner.stats(0).read_counter == w_at_kill, "the consumer to drain")
    assert cons.is_alive()
    harness.start(_producer, None, stop, total, 700, True)
    rep: ConsumerReport = q.get(timeout=DEADLINE_S)
    assert rep.error == ""
    assert (rep.first, rep.end) == (0, total)
    assert rep.delivered + rep.lost == total
    assert (rep.delivered, rep.lost) == (total, 0)  # the torn write was never published
