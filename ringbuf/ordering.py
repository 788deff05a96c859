"""The two places where a ring counter is published and observed across processes.

Every cross-process counter of a ring (write counter, claim counter, reader cursors,
statistics) is an aligned unsigned 64-bit word in the shared-memory header. This module
is the only code that stores or loads such a word, so the memory-ordering mechanism
lives in one spot. ``buf`` is a ``memoryview`` of the header cast to format ``"Q"``
(unsigned 64-bit); ``offset`` is a byte offset that must be a multiple of 8.

Why a reader never observes a counter before the data it covers
----------------------------------------------------------------
The producer copies frames into the data area, *then* publishes the write counter; a
reader observes the write counter, *then* copies frames. Before copying it also
publishes a *claim* counter (the end of the region it is about to overwrite), and a
reader re-observes the claim after copying to discard frames that may have been
overwritten while it copied (seqlock-style). Two properties make this safe:

1. Atomicity: a counter is one naturally aligned 8-byte word, written by one C-level
   store. ``memoryview.__setitem__`` for format ``"Q"`` packs with a fixed-size 8-byte
   ``memcpy`` into an 8-byte aligned address, which compilers emit as a single ``mov``
   (x86-64) / ``str`` (ARM64); aligned 8-byte accesses are single-copy atomic on both
   architectures, so no reader can see a torn counter.
2. Ordering: the data copy (``numpy.copyto``) and the counter store are separate calls
   of the interpreter, so the *compiler* cannot reorder them; what remains is the CPU.

**x86-64 (TSO).** Stores are not reordered with other stores, loads are not reordered
with other loads, and stores become visible to other cores in program order. So the
frame stores become visible before the write-counter store (publish is a release
store for free) and the claim store becomes visible before the overwriting data
stores; a reader's data loads happen before its re-load of the claim (observe is an
acquire load for free). On x86-64 both functions are therefore plain aligned stores
and loads (mechanism ``"x86-64-tso-plain"``). This is the mechanism exercised by the
tests and the cross-process stress test on this machine.

**ARM64 and other weakly ordered CPUs.** Stores may become visible out of program
order and loads may be satisfied out of order, so plain stores are *not* enough: the
reader could see a new write counter and still read stale frames. The fix needs real
barriers, which pure Python cannot emit (``ctypes`` cannot call a compiler intrinsic).
If the optional PyPI package ``atomics`` is importable, both functions use an atomic
read-modify-write with acquire+release ordering on the counter word (``exchange`` to
publish, ``fetch_add(0)`` to observe): the release half orders every earlier data
access before it and the acquire half orders every later access after it, which gives
both the publish (data -> counter) and the seqlock re-check (data loads -> claim load)
the ordering they need (mechanism ``"atomics-acq-rel-rmw"``). The reader's
``fetch_add(0)`` writes the cache line but never changes the value, so each counter
still has exactly one writer of its value. Without ``atomics`` on such a CPU, creating
or attaching a ring raises :class:`RingError` rather than risk handing out torn audio
(mechanism ``"unsupported"``). The ARM64 path is argued here but untested on hardware:
this project's CI is x86-64 only.
"""

from __future__ import annotations

import importlib
import platform
from types import ModuleType
from typing import Any

from .errors import RingError

#: Machine names (``platform.machine()``) whose memory model is TSO-like.
TSO_MACHINES = frozenset({"x86_64", "amd64", "AMD64", "i386", "i686"})


def select_mechanism(machine: str, have_atomics: bool) -> str:
    """Return the ordering mechanism name for a CPU ``machine`` string.

    Pure function (unit-tested for every branch): ``"x86-64-tso-plain"`` on TSO CPUs,
    ``"atomics-acq-rel-rmw"`` on weakly ordered CPUs when ``atomics`` is importable,
    ``"unsupported"`` otherwise.
    """
    if machine in TSO_MACHINES:
        return "x86-64-tso-plain"
    return "atomics-acq-rel-rmw" if have_atomics else "unsupported"


def _load_atomics() -> ModuleType | None:
    try:
        return importlib.import_module("atomics")
    except ImportError:
        return None


_ATOMICS: ModuleType | None = None
if platform.machine() not in TSO_MACHINES:  # pragma: no cover - not reachable on x86-64
    _ATOMICS = _load_atomics()

#: The mechanism this process uses; see the module docstring.
MECHANISM = select_mechanism(platform.machine(), _ATOMICS is not None)


def require_supported() -> None:
    """Raise :class:`RingError` if this CPU has no safe publish/observe mechanism."""
    if MECHANISM == "unsupported":
        raise RingError(
            f"ringbuf on {platform.machine()} needs the 'atomics' package for "
            "release/acquire ordering of ring counters (pip install atomics)"
        )


def _rmw(buf: memoryview, offset: int, value: int | None) -> int:  # pragma: no cover
    """Acquire+release atomic RMW on the word at ``offset`` (weakly ordered CPUs)."""
    assert _ATOMICS is not None
    raw = buf.cast("B")[offset : offset + 8]
    view: Any = _ATOMICS.atomicview(buffer=raw, atype=_ATOMICS.UINT)
    order = _ATOMICS.MemoryOrder.ACQ_REL
    with view as atom:
        if value is None:
            return int(atom.fetch_add(0, order=order))
        return int(atom.exchange(value, order=order))


if MECHANISM == "x86-64-tso-plain":

    def publish_counter(buf: memoryview, offset: int, value: int) -> None:
        """Publish ``value`` (unsigned 64-bit) at byte ``offset``, after all earlier stores.

        On x86-64 this is one plain aligned 8-byte store (TSO keeps store order).
        """
        buf[offset >> 3] = value

    def observe_counter(buf: memoryview, offset: int) -> int:
        """Observe the 64-bit counter at byte ``offset``, ordered with surrounding loads.

        On x86-64 this is one plain aligned 8-byte load (TSO keeps load order).
        """
        return int(buf[offset >> 3])

else:  # pragma: no cover - weakly ordered CPUs only

    def publish_counter(buf: memoryview, offset: int, value: int) -> None:
        """Publish ``value`` at byte ``offset`` with an acquire+release atomic exchange."""
        _rmw(buf, offset, value)

    def observe_counter(buf: memoryview, offset: int) -> int:
        """Observe the counter at byte ``offset`` with an acquire+release ``fetch_add(0)``."""
        return _rmw(buf, offset, None)
