"""Hypothesis state machine: the ring against a deque model (FIFO, counters, loss)."""

from __future__ import annotations

import os
import uuid
from collections import deque

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from streamasr.ringbuf import NAME_PREFIX, LossRange, ReadResult, Ring

CAP = 8
READERS = 2


def values(start: int, n: int) -> np.ndarray:
    """Frame payloads: column 0 is the absolute index, column 1 a derived checksum."""
    idx = np.arange(start, start + n, dtype=np.int64)
    return np.stack([idx, idx * 7 + 3], axis=1)


class RingMachine(RuleBasedStateMachine):
    """Random writes, zero-copy writes, reads, region reads, seeks and peeks."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: Ring | None = None
        self.readers: list[Ring] = []
        self.model: deque[int] = deque(maxlen=CAP)  # absolute indices still in the ring
        self.w = 0
        self.claim = 0
        self.cursor = [0] * READERS
        self.reads = [0] * READERS
        self.lost = [0] * READERS
        self.overruns = [0] * READERS
        self.underruns = [0] * READERS
        self.high_water = [0] * READERS
        self.truncated = 0

    @initialize()
    def setup(self) -> None:
        name = f"{NAME_PREFIX}prop-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.owner = Ring.create(name, CAP, np.int64, (2,), max_readers=READERS)
        self.readers = [Ring.attach(name, reader=i) for i in range(READERS)]

    def teardown(self) -> None:
        for rd in self.readers:
            rd.close()
        if self.owner is not None:
            self.owner.close()

    def _produced(self, n: int) -> None:
        self.model.extend(range(self.w, self.w + n))
        self.w += n
        self.claim = max(self.claim, self.w)

    @rule(n=st.integers(0, 3 * CAP))
    def write(self, n: int) -> None:
        assert self.owner is not None
        assert self.owner.write(values(self.w, n)) == n
        self.truncated += max(0, n - CAP)
        self._produced(n)

    @rule(n=st.integers(0, CAP), data=st.data())
    def write_zero_copy(self, n: int, data: st.DataObject) -> None:
        assert self.owner is not None
        a, b = self.owner.write_regions(n)
        assert len(a) + len(b) == n
        m = data.draw(st.integers(0, n), label="commit")
        both = np.concatenate([a, b])
        both[:m] = values(self.w, m)
        a[:] = both[: len(a)]
        b[:] = both[len(a) :]
        self.claim = max(self.claim, self.w + n)
        self.owner.commit(m)
        self._produced(m)

    def _start(self, i: int, want: int) -> tuple[int, int]:
        """Model the start of a read: overrun jump, underrun, high water -> (start, n)."""
        r = self.cursor[i]
        avail = self.w - r
        if avail > CAP:
            r, avail = self.w - CAP, CAP
        self.high_water[i] = max(self.high_water[i], avail)
        if want > avail:
            self.underruns[i] += 1
        return r, min(want, avail)

    def _finish(self, i: int, r0: int, r: int, n: int) -> None:
        if r > r0:
            self.overruns[i] += 1
            self.lost[i] += r - r0
        self.cursor[i] = r + n
        self.reads[i] += n

    def _expect(self, i: int, want: int) -> tuple[int, int, int]:
        """Model a copying read of ``want`` frames: (start, frames, lost)."""
        r0 = self.cursor[i]
        r, n = self._start(i, want)
        bad = self.claim - CAP - r
        if n and bad > 0:
            k = min(bad, n)
            r, n = r + k, n - k
        self._finish(i, r0, r, n)
        return r, n, r - r0

    def _check_frames(self, got: np.ndarray, start: int) -> None:
        expected = [v for v in self.model if start <= v < start + len(got)]
        np.testing.assert_array_equal(got, values(start, len(got)))
        assert list(got[:, 0]) == expected

    @rule(i=st.integers(0, READERS - 1), want=st.integers(0, 2 * CAP))
    def read(self, i: int, want: int) -> None:
        out = np.full((want, 2), -1, np.int64)
        start, n, lost = self._expect(i, want)
        res = self.readers[i].read_into(out)
        assert res == ReadResult(n, start, lost)
        if lost:
            assert self.readers[i].last_loss == LossRange(start - lost, start)
        self._check_frames(out[:n], start)

    @rule(i=st.integers(0, READERS - 1), want=st.integers(0, 2 * CAP), data=st.data())
    def read_zero_copy(self, i: int, want: int, data: st.DataObject) -> None:
        a, b = self.readers[i].read_regions(want)
        got = np.concatenate([a, b]).copy()
        r0 = self.cursor[i]
        start, n = self._start(i, want)
        self._finish(i, r0, start, 0)
        assert self.readers[i].read_counter == start
        assert len(got) == n
        self._check_frames(got, start)  # uncommitted claimed slots still hold old frames
        release = data.draw(st.integers(0, n), label="release")
        bad = min(max(0, self.claim - CAP - start), release)
        assert self.readers[i].release(release) == release - bad
        self._finish(i, start, start + bad, release - bad)

    @precondition(lambda self: self.w > 0)
    @rule(i=st.integers(0, READERS - 1), back=st.integers(0, CAP))
    def seek(self, i: int, back: int) -> None:
        frame = max(0, self.w - CAP, self.w - back)
        self.readers[i].seek(frame)
        self.cursor[i] = frame

    @precondition(lambda self: self.w > 0)
    @rule(back=st.integers(0, CAP), want=st.integers(1, CAP))
    def peek(self, back: int, want: int) -> None:
        assert self.owner is not None
        start = max(0, self.w - CAP, self.w - back, self.claim - CAP)
        out = np.zeros((want, 2), np.int64)
        n = self.owner.read_at(start, out)
        assert n == min(want, self.w - start)
        self._check_frames(out[:n], start)

    @invariant()
    def counters_match_model(self) -> None:
        if self.owner is None:
            return
        assert self.owner.write_counter == self.w
        for i, rd in enumerate(self.readers):
            st_ = rd.stats()
            assert (st_.reads, st_.dropped_frames) == (self.reads[i], self.lost[i])
            assert (st_.overruns, st_.underruns) == (self.overruns[i], self.underruns[i])
            assert st_.truncated_frames == self.truncated
            assert rd.read_counter == self.cursor[i]
            behind = self.w - self.cursor[i]
            if behind <= CAP:  # not overrun
                assert rd.readable == behind
                assert rd.readable + rd.writable == CAP
            else:
                assert rd.readable == CAP and rd.writable == 0
            assert st_.high_water == self.high_water[i]


RingMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestRingStateMachine = RingMachine.TestCase
