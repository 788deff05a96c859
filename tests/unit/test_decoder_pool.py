"""The bounded decoder pool (issue 20, item 5): spares past ``max_idle`` are freed, the
longest idle first, and the heap is trimmed after each. Pure: fake decoders, fake trim."""

from __future__ import annotations

import platform
import weakref

import pytest

from streamasr.actors.asr import decoder_pool
from streamasr.actors.asr.decoder_pool import DecoderPool, trim_heap


class FakeDecoder:
    """A decoder stand-in that can be watched with a weak reference."""

    def __init__(self, n: int) -> None:
        self.n = n


class Loader:
    """Makes numbered fake decoders and counts the loads."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self) -> FakeDecoder:
        self.loads += 1
        return FakeDecoder(self.loads)


def test_twenty_streams_closed_leave_max_idle_spares_and_free_the_rest() -> None:
    trims: list[int] = []

    def trim() -> bool:
        trims.append(len(trims))
        return True

    load = Loader()
    pool = DecoderPool(load, max_idle=2, trim=trim)
    taken = [pool.take() for _ in range(20)]
    assert (load.loads, pool.live, pool.idle) == (20, 20, 0)
    refs = [weakref.ref(d) for d in taken]
    for d in taken:
        pool.give(d)
    del taken, d
    assert (pool.idle, pool.live, pool.freed, len(trims)) == (2, 2, 18, 18)
    alive = [r() for r in refs if r() is not None]
    # the 18 returned first are gone (nothing else held them); the last two are the spares
    assert [x.n for x in alive if x is not None] == [19, 20]


def test_take_reuses_the_most_recent_spare_without_loading() -> None:
    load = Loader()
    pool = DecoderPool(load, max_idle=2, trim=lambda: True)
    pool.preload()
    a, b = pool.take(), pool.take()
    assert load.loads == 2 and pool.idle == 0
    pool.give(a)
    pool.give(b)
    assert pool.take() is b and pool.take() is a and load.loads == 2


def test_a_failing_load_is_not_counted() -> None:
    def broken() -> FakeDecoder:
        raise RuntimeError("no model")

    pool: DecoderPool[FakeDecoder] = DecoderPool(broken, max_idle=1, trim=lambda: True)
    with pytest.raises(RuntimeError, match=r"^no model$"):
        pool.take()
    assert (pool.loaded, pool.live, pool.idle) == (0, 0, 0)


def test_max_idle_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^max_idle must be >= 1, got 0$"):
        DecoderPool(Loader(), max_idle=0)


def test_trim_heap_is_glibc_malloc_trim_and_a_no_op_elsewhere() -> None:
    assert isinstance(trim_heap(), bool)
    found = decoder_pool._malloc_trim() is not None
    assert found == (platform.libc_ver()[0] == "glibc")
