"""Lock-free single-producer ring of fixed-shape frames in POSIX shared memory.

A ring has a single writer and, per reader slot, a single reader; their identities
cannot be interchanged (JACK's rule). Up to ``max_readers`` readers each own a cursor
slot; the writer never waits for any of them. Capacity is a power of two in *frames*
(a frame is one array of ``frame_shape`` and ``dtype``, e.g. one ``(channels,)`` int16
audio sample or one ``(n_mels,)`` float32 feature vector). Counters are absolute 64-bit
frame indices that only grow; the slot of frame ``k`` is ``k & (capacity - 1)``.

Protocol (see :mod:`.ordering` for why it is safe across processes): the writer first
publishes a *claim* counter (end of the region it is about to overwrite), copies the
frames, then publishes the write counter. A reader observes the write counter, copies,
then re-observes the claim and discards every copied frame whose slot may have been
overwritten meanwhile (position < claim - capacity); those count as lost. Counter
ownership: the write, claim and truncation words are written only by the producer;
a reader slot's cursor, reads, lost frames, overruns, underruns and high-water words
only by that slot's reader.

The header's byte layout, its validation and the record types (:class:`ReadResult`,
:class:`LossRange`, :class:`RingStats`) live in :mod:`.layout`; they are re-exported here.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from . import ordering
from .errors import RingError
from .layout import CLAIM_OFFSET as _CLAIM
from .layout import CUR as _CUR
from .layout import FMT_GEN_OFFSET as _FMT_GEN
from .layout import HW as _HW
from .layout import LAYOUT_VERSION, MAGIC, LossRange, ReadResult, RingStats
from .layout import LOST as _LOST
from .layout import MAX_DIMS as _MAX_DIMS
from .layout import MAX_READERS as _MAX_READERS  # noqa: F401  (importable from here)
from .layout import OVER as _OVER
from .layout import PID as _PID
from .layout import READS as _READS
from .layout import SLOT0 as _SLOT0
from .layout import SLOT_BYTES as _SLOT_BYTES
from .layout import STATIC as _STATIC
from .layout import TRUNC_OFFSET as _TRUNC
from .layout import UNDER as _UNDER
from .layout import W_OFFSET as _W
from .layout import check_layout as _check_layout
from .layout import pow2 as _pow2  # noqa: F401  (importable from here)
from .layout import validate_header as _validate_header
from .ordering import observe_counter, publish_counter
from .shm import Segment, pid_alive

logger = logging.getLogger(__name__)

__all__ = ["LAYOUT_VERSION", "MAGIC", "LossRange", "ReadResult", "Ring", "RingStats"]


class Ring:
    """Handle on a shared-memory ring: the producer (``reader=None``) or one reader slot."""

    def __init__(self, seg: Segment, reader: int | None) -> None:
        """Map the data area of ``seg``; use :meth:`create` or :meth:`attach` instead."""
        (_m, _v, hdr, _p, cap, nrd, ndim, dts, *shape4, rate, _g, _f) = _STATIC.unpack_from(
            seg.mapping, 0
        )
        self.name, self._seg = seg.name, seg
        self.capacity: int = int(cap)
        self.max_readers: int = int(nrd)
        self.dtype: np.dtype[Any] = np.dtype(dts.rstrip(b"\0").decode())
        self.frame_shape: tuple[int, ...] = tuple(shape4[:ndim])
        self.sample_rate_hz: int = rate
        self._mask, self._ndim1 = cap - 1, ndim + 1
        self._words = memoryview(seg.mapping)[:hdr].cast("Q")
        data = np.frombuffer(seg.mapping, self.dtype, cap * int(np.prod(self.frame_shape)), hdr)
        self._data = data.reshape((cap, *self.frame_shape))
        self.reader, self._closed = reader, False
        self._can_write, self._can_read = reader is None, reader is not None
        self._w = observe_counter(self._words, _W)
        self._claim = max(observe_counter(self._words, _CLAIM), self._w)
        self._last_loss: LossRange | None = None
        self._pending_w, self._pending_r = 0, (0, 0)
        self._slot = _SLOT0 + _SLOT_BYTES * (reader or 0)
        vals = [observe_counter(self._words, self._slot + o) for o in range(0, 48, 8)]
        self._r, self._reads, self._lost, self._over, self._under, self._hw = vals
        self._creator_pid = int(_p)

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(
        cls,
        name: str,
        capacity: int,
        dtype: npt.DTypeLike,
        frame_shape: tuple[int, ...],
        *,
        max_readers: int = 4,
        sample_rate_hz: int = 0,
    ) -> Ring:
        """Create ring ``name`` (must start with ``streamasr-``) and return its owner,
        which is also the producer handle. ``capacity`` in frames (power of two)."""
        ordering.require_supported()
        frame_shape = tuple(frame_shape)
        dt = _check_layout(capacity, dtype, frame_shape, max_readers)
        if not isinstance(sample_rate_hz, int) or sample_rate_hz < 0:
            raise RingError(f"sample_rate_hz must be an int >= 0, got {sample_rate_hz}")
        hdr = _SLOT0 + _SLOT_BYTES * max_readers
        fbytes = dt.itemsize * int(np.prod(frame_shape))
        seg = Segment.create(name, hdr + capacity * fbytes)
        shape4 = [*frame_shape, 0, 0, 0, 0][:_MAX_DIMS]
        _STATIC.pack_into(seg.mapping, 0, b"\0" * 8, LAYOUT_VERSION, hdr, os.getpid(), capacity,
                          max_readers, len(frame_shape), dt.str.encode(), *shape4,
                          sample_rate_hz, 0, fbytes)  # fmt: skip
        seg.mapping[0:8] = MAGIC  # magic last: a half-built header never looks like a ring
        ring = cls(seg, None)
        logger.debug("created ring %s: %d x %s %s", name, capacity, frame_shape, dt)
        return ring

    @classmethod
    def attach(
        cls,
        name: str,
        *,
        reader: int | None = None,
        dtype: npt.DTypeLike | None = None,
        frame_shape: tuple[int, ...] | None = None,
    ) -> Ring:
        """Attach to ring ``name`` as the producer (``reader=None``) or as reader slot
        ``reader``, resuming from that slot's shared cursor. Optional ``dtype`` and
        ``frame_shape`` are checked against the header. Never unlinks the segment."""
        ordering.require_supported()
        seg = Segment.attach(name)
        try:
            _validate_header(seg, dtype, frame_shape, reader)
            ring = cls(seg, reader)
            if reader is not None:
                ring._claim_slot()
        except BaseException:
            seg.close()
            raise
        return ring

    def reserve_reader(self, reader: int) -> None:
        """Owner only: hold reader slot ``reader`` for a reader that has not attached yet.

        The slot's cursor is set to the current write counter and marked in use, so the
        producer's ``readable``/``writable`` already count it (a writer that paces itself on
        ``writable`` waits for it instead of overwriting audio nobody has read). The reader
        that attaches to the slot later takes the reservation over.
        """
        if not self._seg.owner:
            raise RingError(f"reserve_reader: only the owner of ring {self.name!r} may reserve")
        if not 0 <= reader < self.max_readers:
            raise RingError(
                f"reserve_reader: reader {reader} out of range 0..{self.max_readers - 1}"
            )
        slot = _SLOT0 + _SLOT_BYTES * reader
        publish_counter(self._words, slot + _CUR, observe_counter(self._words, _W))
        publish_counter(self._words, slot + _PID, os.getpid())

    def _claim_slot(self) -> None:
        pid = observe_counter(self._words, self._slot + _PID)
        if pid not in (0, os.getpid(), self._creator_pid) and pid_alive(pid):
            self._release_views()
            raise RingError(f"reader slot {self.reader} of ring {self.name!r} is held by pid {pid}")
        publish_counter(self._words, self._slot + _PID, os.getpid())

    def _release_views(self) -> None:
        self._closed, self._can_read, self._can_write = True, False, False
        del self._data
        self._words.release()

    def close(self) -> None:
        """Unmap this handle; a reader frees its slot for others. The owner's close
        also unlinks the name. Idempotent."""
        if self._closed:
            return
        if self.reader is not None:
            publish_counter(self._words, self._slot + _PID, 0)
        self._release_views()
        if self._seg.owner:
            self._seg.unlink()
        try:
            self._seg.close()
        except BufferError:  # caller still holds region views; unmapped when they die
            logger.debug("ring %s: views still alive at close", self.name)

    def unlink(self) -> None:
        """Remove the ring's name from /dev/shm (owner only; mappings stay valid)."""
        if not self._seg.owner:
            raise RingError(f"unlink: only the creating process may unlink ring {self.name!r}")
        self._seg.unlink()

    def __enter__(self) -> Ring:
        """Context manager: ``close()`` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close (and, for the owner, unlink)."""
        self.close()

    # ------------------------------------------------------------------ errors
    def _deny(self, op: str) -> None:
        if self._closed:
            raise RingError(f"{op}: ring {self.name!r} is closed")
        role = "the producer" if self.reader is None else f"reader {self.reader}"
        raise RingError(f"{op}: not allowed on {role} handle of ring {self.name!r}")

    def _bad_frames(self, op: str, arr: object) -> None:
        if not isinstance(arr, np.ndarray):
            raise RingError(f"{op}: expected a numpy array, got {type(arr).__name__}")
        if arr.dtype != self.dtype:
            raise RingError(f"{op}: dtype {arr.dtype} does not match ring dtype {self.dtype}")
        want = "(n, " + ", ".join(map(str, self.frame_shape)) + ")" if self.frame_shape else "(n,)"
        raise RingError(f"{op}: shape {arr.shape} is not {want} as ring {self.name!r} needs")

    def _check_open(self, op: str) -> None:
        if self._closed:
            raise RingError(f"{op}: ring {self.name!r} is closed")

    # ------------------------------------------------------------------ producer
    def write(self, frames: npt.NDArray[Any]) -> int:
        """Append ``frames`` (shape ``(n, *frame_shape)``); never blocks, overwrites the
        oldest frames. If ``n > capacity`` only the newest ``capacity`` are stored (the
        rest counted as truncated; the write counter still advances by ``n``). Returns n."""
        if not self._can_write:
            self._deny("write")
        if (not isinstance(frames, np.ndarray) or frames.dtype != self.dtype
                or frames.ndim != self._ndim1 or frames.shape[1:] != self.frame_shape):  # fmt: skip
            self._bad_frames("write", frames)
        n: int = frames.shape[0]
        cap, w = self.capacity, self._w
        start, m = w, n
        if n > cap:
            start, m, frames = w + n - cap, cap, frames[n - cap :]
            truncated = observe_counter(self._words, _TRUNC) + n - cap
            publish_counter(self._words, _TRUNC, truncated)
        end = w + n
        if end > self._claim:
            self._claim = end
            publish_counter(self._words, _CLAIM, end)
        idx = start & self._mask
        first = cap - idx
        if m <= first:
            np.copyto(self._data[idx : idx + m], frames)
        else:
            np.copyto(self._data[idx:], frames[:first])
            np.copyto(self._data[: m - first], frames[first:])
        self._w = end
        publish_counter(self._words, _W, end)
        return n

    def write_regions(self, n: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Zero-copy write: two views (second empty unless wrapping) totalling ``n``
        frames to fill, then :meth:`commit`. ``0 <= n <= capacity``."""
        if not self._can_write:
            self._deny("write_regions")
        if not 0 <= n <= self.capacity:
            raise RingError(f"write_regions: n must be in 0..{self.capacity}, got {n}")
        end = self._w + n
        if end > self._claim:
            self._claim = end
            publish_counter(self._words, _CLAIM, end)
        self._pending_w = n
        return self._regions(self._w, n)

    def commit(self, n: int) -> None:
        """Publish the first ``n`` frames filled through :meth:`write_regions`."""
        if not self._can_write:
            self._deny("commit")
        if not 0 <= n <= self._pending_w:
            raise RingError(f"commit: n must be in 0..{self._pending_w} (regions taken), got {n}")
        self._pending_w = 0
        self._w += n
        publish_counter(self._words, _W, self._w)

    def bump_format_generation(self) -> int:
        """Increment the free-form format generation (owner only); returns the new value."""
        self._check_open("bump_format_generation")
        if not self._seg.owner:
            raise RingError(f"bump_format_generation: only the owner of {self.name!r} may bump")
        gen = observe_counter(self._words, _FMT_GEN) + 1
        publish_counter(self._words, _FMT_GEN, gen)
        return gen

    # ------------------------------------------------------------------ consumer
    def _start_read(self, want: int) -> tuple[int, int]:
        """Apply overrun loss; count underrun/high-water. Returns (cursor, available)."""
        r, cap = self._r, self.capacity
        avail = observe_counter(self._words, _W) - r
        if avail > cap:
            r, avail = r + avail - cap, cap
        if avail > self._hw:
            self._hw = avail
            publish_counter(self._words, self._slot + _HW, avail)
        if want > avail:
            self._under += 1
            publish_counter(self._words, self._slot + _UNDER, self._under)
        return r, avail

    def _overwritten(self, r: int, n: int) -> int:
        """How many of the ``n`` frames from ``r`` may have been overwritten by now."""
        bad = observe_counter(self._words, _CLAIM) - self.capacity - r
        return 0 if bad <= 0 else min(bad, n)

    def _finish_read(self, r0: int, r: int, n: int) -> ReadResult:
        """Account loss ``[r0, r)`` and ``n`` delivered frames; publish the cursor."""
        lost = r - r0
        if lost:
            self._over += 1
            self._lost += lost
            self._last_loss = LossRange(r0, r)
            publish_counter(self._words, self._slot + _OVER, self._over)
            publish_counter(self._words, self._slot + _LOST, self._lost)
        self._r = r + n
        self._reads += n
        publish_counter(self._words, self._slot + _READS, self._reads)
        publish_counter(self._words, self._slot + _CUR, self._r)
        return ReadResult(n, r, lost)

    def read_into(self, out: npt.NDArray[Any]) -> ReadResult:
        """Copy up to ``len(out)`` frames at this reader's cursor into ``out[:frames]``.

        Frames the writer overwrote before or during the copy are never handed out:
        they are reported as ``lost_frames`` just before ``start_frame``."""
        if not self._can_read:
            self._deny("read_into")
        if (not isinstance(out, np.ndarray) or out.dtype != self.dtype
                or out.ndim != self._ndim1 or out.shape[1:] != self.frame_shape):  # fmt: skip
            self._bad_frames("read_into", out)
        r0 = self._r
        r, avail = self._start_read(out.shape[0])
        n: int = min(out.shape[0], avail)
        if n:
            self._copy_out(r, n, out)
            bad = self._overwritten(r, n)
            if bad:
                out[: n - bad] = out[bad:n]
                r, n = r + bad, n - bad
        return self._finish_read(r0, r, n)

    def read_regions(self, n: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """Zero-copy read: views of up to ``n`` readable frames at the cursor (two if
        wrapping), valid until :meth:`release`. Loss found here updates ``last_loss``."""
        if not self._can_read:
            self._deny("read_regions")
        if n < 0:
            raise RingError(f"read_regions: n must be >= 0, got {n}")
        r0 = self._r
        r, avail = self._start_read(n)
        m = min(n, avail)
        self._finish_read(r0, r, 0)
        self._pending_r = (r, m)
        return self._regions(r, m)

    def release(self, n: int) -> int:
        """Consume ``n`` frames taken by :meth:`read_regions`. Returns how many were
        still intact (the first ``n - result`` were overwritten while held: lost)."""
        if not self._can_read:
            self._deny("release")
        r, m = self._pending_r
        if not 0 <= n <= m or r != self._r:
            raise RingError(f"release: n must be in 0..{m} (regions taken), got {n}")
        self._pending_r = (r, 0)
        bad = self._overwritten(r, n)
        return self._finish_read(r, r + bad, n - bad).frames

    def seek(self, frame: int) -> None:
        """Move this reader's cursor to absolute ``frame``, which must still be in the
        ring: ``write_counter - capacity <= frame <= write_counter``."""
        if not self._can_read:
            self._deny("seek")
        w = observe_counter(self._words, _W)
        oldest = max(0, w - self.capacity)
        if not oldest <= frame <= w:
            raise RingError(f"seek: frame {frame} is outside the ring's [{oldest}, {w}]")
        self._r, self._pending_r = frame, (frame, 0)
        publish_counter(self._words, self._slot + _CUR, frame)

    def read_at(self, start_frame: int, out: npt.NDArray[Any]) -> int:
        """Copy frames from absolute ``start_frame`` into ``out`` without moving any
        cursor. Returns the number of frames copied (fewer if not yet written); raises
        RingError if ``start_frame`` is not in the ring or was overwritten during the copy."""
        self._check_open("read_at")
        if (not isinstance(out, np.ndarray) or out.dtype != self.dtype
                or out.ndim != self._ndim1 or out.shape[1:] != self.frame_shape):  # fmt: skip
            self._bad_frames("read_at", out)
        w = observe_counter(self._words, _W)
        oldest = max(0, w - self.capacity)
        if not oldest <= start_frame <= w:
            raise RingError(f"read_at: frame {start_frame} is not in the ring [{oldest}, {w})")
        n: int = min(out.shape[0], w - start_frame)
        self._copy_out(start_frame, n, out)
        if n and self._overwritten(start_frame, n):
            raise RingError(f"read_at: frames from {start_frame} were overwritten during copy")
        return n

    peek = read_at

    def _copy_out(self, r: int, n: int, out: npt.NDArray[Any]) -> None:
        idx = r & self._mask
        first = self.capacity - idx
        if n <= first:
            np.copyto(out[:n], self._data[idx : idx + n])
        else:
            np.copyto(out[:first], self._data[idx:])
            np.copyto(out[first:n], self._data[: n - first])

    def _regions(self, pos: int, n: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        idx = pos & self._mask
        first = min(n, self.capacity - idx)
        return self._data[idx : idx + first], self._data[: n - first]

    # ------------------------------------------------------------------ state
    @property
    def write_counter(self) -> int:
        """Absolute index of the next frame the producer will write (frames written)."""
        self._check_open("write_counter")
        return observe_counter(self._words, _W)

    @property
    def read_counter(self) -> int:
        """This reader's cursor: absolute index of its next frame (reader handles only)."""
        if not self._can_read:
            self._deny("read_counter")
        return self._r

    @property
    def readable(self) -> int:
        """Frames this reader can read now (<= capacity); for the producer handle, the
        fill of the furthest-behind attached reader."""
        self._check_open("readable")
        w = observe_counter(self._words, _W)
        if self.reader is not None:
            return min(w - self._r, self.capacity)
        fills = [min(w - observe_counter(self._words, s + _CUR), self.capacity)
                 for s in self._slots() if observe_counter(self._words, s + _PID)]  # fmt: skip
        return max(fills, default=0)

    @property
    def writable(self) -> int:
        """Frames that can be written before this reader (for the producer handle: any
        attached reader) starts losing data: ``capacity - readable``."""
        return self.capacity - self.readable

    @property
    def last_loss(self) -> LossRange | None:
        """Absolute range of the most recent frames this handle's reader lost, if any."""
        return self._last_loss

    @property
    def format_generation(self) -> int:
        """The owner's free-form format generation counter."""
        self._check_open("format_generation")
        return observe_counter(self._words, _FMT_GEN)

    def _slots(self) -> list[int]:
        return [_SLOT0 + _SLOT_BYTES * i for i in range(self.max_readers)]

    def stats(self, reader: int | None = None) -> RingStats:
        """Counters of reader slot ``reader`` (default: this handle's slot, else 0)."""
        self._check_open("stats")
        i = (self.reader or 0) if reader is None else reader
        if not 0 <= i < self.max_readers:
            raise RingError(f"stats: reader {i} out of range 0..{self.max_readers - 1}")
        s = _SLOT0 + _SLOT_BYTES * i
        cur, reads, lost, over, under, hw = (
            observe_counter(self._words, s + o) for o in range(0, 48, 8)
        )
        w = observe_counter(self._words, _W)
        trunc = observe_counter(self._words, _TRUNC)
        fill = min(w - cur, self.capacity)
        return RingStats(i, self.capacity, fill, w, reads, over, under, lost, hw, cur, trunc)

    def stats_all(self) -> list[RingStats]:
        """:meth:`stats` of every reader slot."""
        return [self.stats(i) for i in range(self.max_readers)]
