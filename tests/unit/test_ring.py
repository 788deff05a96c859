"""Unit tests of streamasr.ringbuf: every error, regions, readers, stats, segment lifetime."""

from __future__ import annotations

import _posixshmem
import multiprocessing as mp
import os
import stat
import struct
import uuid
from collections.abc import Iterator
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Event

import numpy as np
import pytest

from streamasr.ringbuf import (
    NAME_PREFIX,
    LossRange,
    ReadResult,
    Ring,
    RingError,
    list_segments,
    ordering,
    remove_stale,
)

SPAWN = mp.get_context("spawn")
DEADLINE_S = 20.0


@pytest.fixture
def name() -> Iterator[str]:
    """A unique segment name; unlinked afterwards if a test left it behind."""
    n = f"{NAME_PREFIX}test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    yield n
    if n in list_segments(n):
        _posixshmem.shm_unlink("/" + n)


@pytest.fixture
def ring(name: str) -> Iterator[Ring]:
    """An 8-frame int64 scalar-frame ring with 2 reader slots (owner/producer handle)."""
    r = Ring.create(name, 8, np.int64, (), max_readers=2)
    yield r
    r.close()


def seq(start: int, n: int) -> np.ndarray:
    """Frames whose value is their absolute index."""
    return np.arange(start, start + n, dtype=np.int64)


# ----------------------------------------------------------------- create errors
@pytest.mark.parametrize("capacity", [1000, 0, -8, 6])
def test_create_rejects_bad_capacity(name: str, capacity: int) -> None:
    with pytest.raises(
        RingError, match=rf"capacity must be a positive power of two \(frames\), got {capacity}$"
    ):
        Ring.create(name, capacity, np.int16, (1,))


def test_create_rejects_negative_frame_dim(name: str) -> None:
    with pytest.raises(
        RingError, match=r"frame_shape needs <= 4 dimensions each >= 1, got \(2, -1\)"
    ):
        Ring.create(name, 8, np.int16, (2, -1))


def test_create_rejects_object_dtype(name: str) -> None:
    with pytest.raises(
        RingError, match="dtype must be a numeric bool/int/uint/float dtype, got object"
    ):
        Ring.create(name, 8, object, (1,))


def test_create_rejects_zero_readers(name: str) -> None:
    with pytest.raises(RingError, match=r"max_readers must be in 1\.\.64, got 0"):
        Ring.create(name, 8, np.int16, (1,), max_readers=0)


def test_create_rejects_negative_sample_rate(name: str) -> None:
    with pytest.raises(RingError, match="sample_rate_hz must be an int >= 0, got -1"):
        Ring.create(name, 8, np.int16, (1,), sample_rate_hz=-1)


def test_create_rejects_name_without_prefix() -> None:
    with pytest.raises(RingError, match="segment name 'other-x' must start with 'streamasr-'"):
        Ring.create("other-x", 8, np.int16, (1,))


def test_create_rejects_existing_name(ring: Ring, name: str) -> None:
    with pytest.raises(RingError, match=f"shared-memory segment '{name}' already exists"):
        Ring.create(name, 8, np.int16, (1,))


# ----------------------------------------------------------------- attach errors
def test_attach_missing(name: str) -> None:
    with pytest.raises(RingError, match=f"no shared-memory segment named '{name}'"):
        Ring.attach(name)


def test_attach_foreign_segment(name: str) -> None:
    shm = SharedMemory(name=name, create=True, size=4096)
    try:
        with pytest.raises(
            RingError, match=f"segment '{name}' is not a streamasr ring \\(bad magic\\)"
        ):
            Ring.attach(name)
    finally:
        shm.close()
        shm.unlink()


def test_attach_other_layout_version(ring: Ring, name: str) -> None:
    struct.pack_into("=I", ring._seg.mapping, 8, 99)
    with pytest.raises(RingError, match=f"ring '{name}' has layout version 99, expected 1"):
        Ring.attach(name)


def test_attach_expected_dtype_mismatch(ring: Ring, name: str) -> None:
    with pytest.raises(RingError, match=f"ring '{name}' holds dtype int64, expected float32"):
        Ring.attach(name, dtype=np.float32)


def test_attach_expected_shape_mismatch(name: str) -> None:
    with Ring.create(name, 8, np.float32, (80,)):
        with pytest.raises(RingError, match=r"has frame shape \(80,\), expected \(40,\)"):
            Ring.attach(name, frame_shape=(40,))
        ok = Ring.attach(name, reader=1, dtype=np.float32, frame_shape=(80,))
        assert (ok.dtype, ok.frame_shape) == (np.dtype(np.float32), (80,))
        ok.close()


@pytest.mark.parametrize("slot", [2, -1])
def test_attach_reader_slot_out_of_range(ring: Ring, name: str, slot: int) -> None:
    with pytest.raises(
        RingError, match=rf"reader slot {slot} out of range: ring '{name}' has 2 reader slots"
    ):
        Ring.attach(name, reader=slot)


# ----------------------------------------------------------------- usage errors
def test_write_wrong_dtype(ring: Ring) -> None:
    with pytest.raises(RingError, match="write: dtype int32 does not match ring dtype int64"):
        ring.write(np.zeros(3, np.int32))


def test_write_wrong_shape(ring: Ring) -> None:
    with pytest.raises(RingError, match=r"write: shape \(3, 2\) is not \(n,\) as ring"):
        ring.write(np.zeros((3, 2), np.int64))


def test_write_not_an_array(ring: Ring) -> None:
    with pytest.raises(RingError, match="write: expected a numpy array, got list"):
        ring.write([1, 2])  # type: ignore[arg-type,unused-ignore]


def test_read_into_wrong_shape(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=0) as rd:
        with pytest.raises(RingError, match=r"read_into: shape \(4, 1\) is not \(n,\)"):
            rd.read_into(np.zeros((4, 1), np.int64))
        with pytest.raises(RingError, match="read_into: dtype float64 does not match"):
            rd.read_into(np.zeros(4))


def test_roles_are_not_interchangeable(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=0) as rd:
        with pytest.raises(
            RingError, match=f"write: not allowed on reader 0 handle of ring '{name}'"
        ):
            rd.write(seq(0, 1))
        with pytest.raises(
            RingError, match=f"read_into: not allowed on the producer handle of ring '{name}'"
        ):
            ring.read_into(np.zeros(1, np.int64))


def test_region_size_errors(ring: Ring, name: str) -> None:
    with pytest.raises(RingError, match=r"write_regions: n must be in 0\.\.8, got -1"):
        ring.write_regions(-1)
    with pytest.raises(RingError, match=r"write_regions: n must be in 0\.\.8, got 9"):
        ring.write_regions(9)
    ring.write_regions(2)
    with pytest.raises(RingError, match=r"commit: n must be in 0\.\.2 \(regions taken\), got 3"):
        ring.commit(3)
    ring.commit(2)
    with Ring.attach(name, reader=0) as rd:
        with pytest.raises(RingError, match="read_regions: n must be >= 0, got -1"):
            rd.read_regions(-1)
        rd.read_regions(1)
        with pytest.raises(
            RingError, match=r"release: n must be in 0\.\.1 \(regions taken\), got 2"
        ):
            rd.release(2)


def test_seek_errors(ring: Ring, name: str) -> None:
    ring.write(seq(0, 20))
    with Ring.attach(name, reader=0) as rd:
        with pytest.raises(RingError, match=r"seek: frame -1 is outside the ring's \[12, 20\]"):
            rd.seek(-1)
        with pytest.raises(RingError, match=r"seek: frame 11 is outside the ring's \[12, 20\]"):
            rd.seek(11)
        with pytest.raises(RingError, match=r"seek: frame 21 is outside the ring's \[12, 20\]"):
            rd.seek(21)


def test_read_at_outside_ring(ring: Ring) -> None:
    ring.write(seq(0, 20))
    with pytest.raises(RingError, match=r"read_at: frame 5 is not in the ring \[12, 20\)"):
        ring.read_at(5, np.zeros(2, np.int64))


@pytest.mark.parametrize(
    "op",
    [
        "write",
        "write_regions",
        "read_into",
        "readable",
        "stats",
        "write_counter",
        "read_at",
        "seek",
    ],
)
def test_use_after_close(name: str, op: str) -> None:
    owner = Ring.create(name, 8, np.int64, ())
    rd = Ring.attach(name, reader=0)
    owner.close()
    rd.close()
    handle = rd if op in ("read_into", "seek") else owner
    calls = {
        "write": lambda: owner.write(seq(0, 1)),
        "write_regions": lambda: owner.write_regions(1),
        "read_into": lambda: rd.read_into(np.zeros(1, np.int64)),
        "readable": lambda: owner.readable,
        "stats": lambda: owner.stats(),
        "write_counter": lambda: owner.write_counter,
        "read_at": lambda: owner.read_at(0, np.zeros(1, np.int64)),
        "seek": lambda: rd.seek(0),
    }
    with pytest.raises(RingError, match=f"{op}: ring '{handle.name}' is closed"):
        calls[op]()


def test_unlink_and_bump_are_owner_only(ring: Ring, name: str) -> None:
    with Ring.attach(name) as producer:
        with pytest.raises(
            RingError, match=f"unlink: only the creating process may unlink ring '{name}'"
        ):
            producer.unlink()
        with pytest.raises(
            RingError, match=f"bump_format_generation: only the owner of '{name}' may bump"
        ):
            producer.bump_format_generation()
    assert ring.bump_format_generation() == 1


def test_stats_reader_out_of_range(ring: Ring) -> None:
    with pytest.raises(RingError, match=r"stats: reader 5 out of range 0\.\.1"):
        ring.stats(5)


# ----------------------------------------------------------------- behaviour
def test_fifo_across_wraps_and_absolute_positions(ring: Ring, name: str) -> None:
    out = np.zeros(5, np.int64)
    with Ring.attach(name, reader=0) as rd:
        pos = 0
        for _ in range(10):
            assert ring.write(seq(pos, 5)) == 5
            res = rd.read_into(out)
            assert res == ReadResult(5, pos, 0)
            np.testing.assert_array_equal(out, seq(pos, 5))
            pos += 5
        assert (ring.write_counter, rd.read_counter) == (50, 50)


def test_overrun_reports_exact_loss(ring: Ring, name: str) -> None:
    out = np.zeros(8, np.int64)
    with Ring.attach(name, reader=0) as rd:
        ring.write(seq(0, 3))
        assert rd.read_into(out).frames == 3
        ring.write(seq(3, 20))  # reader at 3; ring holds [15, 23)
        res = rd.read_into(out)
        assert res == ReadResult(8, 15, 12)
        np.testing.assert_array_equal(out, seq(15, 8))
        assert rd.last_loss == LossRange(3, 15)
        st = rd.stats()
        assert (st.overruns, st.dropped_frames, st.reads, st.writes) == (1, 12, 11, 23)
        assert st.truncated_frames == 12  # one write of 20 frames into 8 slots


def test_underrun_counted(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=0) as rd:
        ring.write(seq(0, 2))
        assert rd.read_into(np.zeros(5, np.int64)) == ReadResult(2, 0, 0)
        assert rd.read_into(np.zeros(1, np.int64)).frames == 0
        assert rd.stats().underruns == 2


def test_readable_writable_and_high_water(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=0) as rd:
        ring.write(seq(0, 6))
        assert (rd.readable, rd.writable) == (6, 2)
        assert (ring.readable, ring.writable) == (6, 2)
        rd.read_into(np.zeros(4, np.int64))
        assert rd.readable + rd.writable == 8
        assert rd.stats().high_water == 6


def test_zero_copy_regions_wrap(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=0) as rd:
        ring.write(seq(0, 6))
        rd.read_into(np.zeros(6, np.int64))
        a, b = ring.write_regions(5)  # slots 6,7 then 0,1,2
        assert (len(a), len(b)) == (2, 3)
        a[:] = seq(6, 2)
        b[:] = seq(8, 3)
        assert rd.readable == 0  # nothing visible before commit
        ring.commit(5)
        a, b = rd.read_regions(8)
        np.testing.assert_array_equal(np.concatenate([a, b]), seq(6, 5))
        assert rd.release(5) == 5
        assert rd.read_counter == 11


def test_release_detects_overwrite_while_held(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=0) as rd:
        ring.write(seq(0, 8))
        rd.read_regions(8)
        ring.write(seq(8, 3))  # overwrites frames 0..2 while the reader holds them
        assert rd.release(8) == 5
        assert rd.last_loss == LossRange(0, 3)
        assert (rd.stats().dropped_frames, rd.read_counter) == (3, 8)


def test_read_discards_frames_claimed_by_writer(ring: Ring, name: str) -> None:
    """A write in progress (claimed, not committed) invalidates the slots it will fill."""
    with Ring.attach(name, reader=0) as rd:
        ring.write(seq(0, 8))
        ring.write_regions(3)  # the producer is about to overwrite frames 0..2
        out = np.full(8, -1, np.int64)
        res = rd.read_into(out)
        assert res == ReadResult(5, 3, 3)
        np.testing.assert_array_equal(out[:5], seq(3, 5))


def test_multi_reader_independent_cursors(ring: Ring, name: str) -> None:
    r0, r1 = Ring.attach(name, reader=0), Ring.attach(name, reader=1)
    ring.write(seq(0, 6))
    r0.read_into(np.zeros(6, np.int64))
    r1.read_into(np.zeros(2, np.int64))
    assert (r0.readable, r1.readable, ring.readable) == (0, 4, 4)
    ring.write(seq(6, 6))  # r1 (at 2) loses frames 2..3; r0 loses nothing
    assert r0.read_into(np.zeros(8, np.int64)) == ReadResult(6, 6, 0)
    assert r1.read_into(np.zeros(8, np.int64)) == ReadResult(8, 4, 2)
    stats = ring.stats_all()
    assert [s.dropped_frames for s in stats] == [0, 2]
    assert [s.reads for s in stats] == [12, 10]
    r0.close()
    r1.close()


def test_stats_visible_from_another_attach(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=1) as rd:
        ring.write(seq(0, 5))
        rd.read_into(np.zeros(3, np.int64))
    with Ring.attach(name) as observer:
        st = observer.stats(1)
        assert (st.writes, st.reads, st.fill, st.read_counter) == (5, 3, 2, 3)


def test_reader_resumes_from_shared_cursor(ring: Ring, name: str) -> None:
    with Ring.attach(name, reader=0) as rd:
        ring.write(seq(0, 6))
        rd.read_into(np.zeros(4, np.int64))
    with Ring.attach(name, reader=0) as again:
        out = np.zeros(4, np.int64)
        assert again.read_into(out) == ReadResult(2, 4, 0)
        np.testing.assert_array_equal(out[:2], seq(4, 2))


def test_seek_rewind_and_read_at(ring: Ring, name: str) -> None:
    ring.write(seq(0, 12))
    with Ring.attach(name, reader=0) as rd:
        rd.seek(10)
        out = np.zeros(3, np.int64)
        assert rd.read_into(out) == ReadResult(2, 10, 0)
        rd.seek(4)  # rewind for re-decoding
        assert rd.read_into(out) == ReadResult(3, 4, 0)
        peek = np.zeros(4, np.int64)
        assert rd.read_at(9, peek) == 3
        np.testing.assert_array_equal(peek[:3], seq(9, 3))
        assert rd.read_counter == 7


def test_read_at_detects_overwrite_during_copy(ring: Ring) -> None:
    ring.write(seq(0, 8))
    ring.write_regions(2)  # claim: frames 0..1 may now be overwritten
    with pytest.raises(RingError, match="read_at: frames from 0 were overwritten during copy"):
        ring.read_at(0, np.zeros(4, np.int64))


def test_header_metadata_visible_to_attach(name: str) -> None:
    with Ring.create(name, 16, np.int16, (2,), max_readers=3, sample_rate_hz=48000) as owner:
        owner.bump_format_generation()
        with Ring.attach(name) as other:
            assert (other.capacity, other.max_readers, other.sample_rate_hz) == (16, 3, 48000)
            assert (other.dtype, other.frame_shape) == (np.dtype(np.int16), (2,))
            assert other.format_generation == 1


def test_producer_reattach_continues_counter(ring: Ring, name: str) -> None:
    ring.write(seq(0, 5))
    with Ring.attach(name) as producer, Ring.attach(name, reader=0) as rd:
        assert producer.write_counter == 5
        producer.write(seq(5, 2))
        out = np.zeros(8, np.int64)
        assert rd.read_into(out) == ReadResult(7, 0, 0)
        np.testing.assert_array_equal(out[:7], seq(0, 7))


# ----------------------------------------------------------------- segments
def test_segment_permissions_and_prefix(ring: Ring, name: str) -> None:
    mode = os.stat(f"/dev/shm/{name}").st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert list_segments(name) == [name]


def test_owner_close_unlinks(name: str) -> None:
    Ring.create(name, 8, np.int64, ()).close()
    assert list_segments(name) == []


def _attach_and_exit(name: str, result: mp.Queue[int]) -> None:
    with Ring.attach(name, reader=0) as rd:
        out = np.zeros(4, np.int64)
        result.put(rd.read_into(out).frames)


def _hold_slot(name: str, held: Event, done: Event) -> None:
    rd = Ring.attach(name, reader=1)
    held.set()
    done.wait(DEADLINE_S)
    rd.close()


def test_attach_in_child_does_not_unlink_on_exit(ring: Ring, name: str) -> None:
    ring.write(seq(0, 3))
    result: mp.Queue[int] = SPAWN.Queue()
    proc = SPAWN.Process(target=_attach_and_exit, args=(name, result))
    proc.start()
    assert result.get(timeout=DEADLINE_S) == 3
    proc.join(DEADLINE_S)
    assert proc.exitcode == 0
    assert list_segments(name) == [name]
    assert ring.stats(0).reads == 3  # the child's cursor survived in shared memory


def test_reader_slot_held_by_live_process(ring: Ring, name: str) -> None:
    held, done = SPAWN.Event(), SPAWN.Event()
    proc = SPAWN.Process(target=_hold_slot, args=(name, held, done))
    proc.start()
    try:
        assert held.wait(DEADLINE_S)
        with pytest.raises(
            RingError, match=f"reader slot 1 of ring '{name}' is held by pid {proc.pid}"
        ):
            Ring.attach(name, reader=1)
    finally:
        done.set()
        proc.join(DEADLINE_S)
    Ring.attach(name, reader=1).close()  # freed by the child's close


def test_remove_stale_keeps_live_removes_dead(name: str) -> None:
    proc = SPAWN.Process(target=int)
    proc.start()
    proc.join(DEADLINE_S)
    dead_pid = proc.pid
    assert dead_pid is not None
    prefix = name + "-"
    live = Ring.create(prefix + "live", 8, np.int64, ())
    stale = Ring.create(prefix + "stale", 8, np.int64, ())
    struct.pack_into("=Q", stale._seg.mapping, 16, dead_pid)
    try:
        assert remove_stale(prefix) == [prefix + "stale"]
        assert list_segments(prefix) == [prefix + "live"]
    finally:
        live.close()
        stale.close()  # its name is already gone; close must still work
    with pytest.raises(RingError, match="remove_stale prefix 'x' must start with 'streamasr-'"):
        remove_stale("x")


# ----------------------------------------------------------------- ordering
def test_ordering_mechanism_selection() -> None:
    assert ordering.select_mechanism("x86_64", False) == "x86-64-tso-plain"
    assert ordering.select_mechanism("aarch64", True) == "atomics-acq-rel-rmw"
    assert ordering.select_mechanism("aarch64", False) == "unsupported"
    assert ordering.select_mechanism(os.uname().machine, False) == ordering.MECHANISM


def test_publish_observe_roundtrip_full_64_bits() -> None:
    buf = memoryview(bytearray(32)).cast("Q")
    ordering.publish_counter(buf, 16, 2**64 - 2)
    assert ordering.observe_counter(buf, 16) == 2**64 - 2
    assert ordering.observe_counter(buf, 8) == 0


def test_reserved_reader_slot_counts_before_the_reader_attaches() -> None:
    """A run-time stream's decoder has not attached yet: the producer must already wait."""
    import uuid

    name = f"streamasr-test-reserve-{uuid.uuid4().hex[:8]}"
    owner = Ring.create(name, 16, np.float32, (1,), max_readers=2)
    try:
        owner.write(np.zeros((4, 1), np.float32))
        owner.reserve_reader(0)
        assert owner.writable == 16  # the reservation starts at the write counter
        owner.write(np.zeros((10, 1), np.float32))
        assert owner.writable == 6  # ... and holds the 10 frames nobody has read yet
        reader = Ring.attach(name, reader=0)  # the reader takes the reservation over
        try:
            assert reader.read_counter == 4 and reader.readable == 10
        finally:
            reader.close()
        with pytest.raises(RingError, match=r"reserve_reader: reader 5 out of range 0\.\.1"):
            owner.reserve_reader(5)
    finally:
        owner.close()


def test_only_the_owner_may_reserve() -> None:
    import uuid

    name = f"streamasr-test-reserve-{uuid.uuid4().hex[:8]}"
    owner = Ring.create(name, 16, np.float32, (1,), max_readers=2)
    try:
        other = Ring.attach(name)
        try:
            with pytest.raises(RingError, match="reserve_reader: only the owner"):
                other.reserve_reader(0)
        finally:
            other.close()
    finally:
        owner.close()
