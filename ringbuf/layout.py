"""Byte layout of a ring's shared-memory header, its validation, and the ring's record types.

This module knows where every word of the header lives and whether a segment holds a ring
of this layout; :mod:`.ring` holds the producer/consumer protocol that uses those words.

Header layout (native byte order, all offsets in bytes; cf. CPython's ShareableList)::

      0   8s  magic b"SASRRING"
      8   I   layout version (1)            12  I  header size = data offset
     16   Q   creator pid (shm.OWNER_PID_OFFSET)
     24   Q   capacity (frames)             32  I  max_readers   36  I  ndim (<= 4)
     40  16s  dtype.str, NUL padded         56  4I frame shape (unused dims 0)
     72   q   sample_rate_hz (0 if n/a)     80  Q  format generation (owner bumps)
     88   Q   frame size (bytes)            96  32 bytes reserved
    128   Q   write counter                136  Q  claim counter
    144   Q   truncated frames (writes larger than capacity; oldest part skipped)
    152   40 bytes reserved (writer cache line ends at 192)
    192 + 64*i  reader slot i: Q cursor, Q frames read, Q frames lost, Q overruns,
                Q underruns, Q high-water fill (frames), Q reader pid, Q reserved
    192 + 64*max_readers: data, capacity * frame size bytes

Counter ownership: the write, claim and truncation words are written only by the producer;
a reader slot's words only by that slot's reader (see :mod:`.ring`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from .errors import RingError
from .shm import Segment

MAGIC = b"SASRRING"
LAYOUT_VERSION = 1
#: The static part of the header, bytes 0..96 (see the layout above).
STATIC = struct.Struct("=8sIIQQII16s4IqQQ")
#: Byte offsets of the producer's words.
W_OFFSET, CLAIM_OFFSET, TRUNC_OFFSET, FMT_GEN_OFFSET = 128, 136, 144, 80
#: First reader slot and the size of one slot, in bytes.
SLOT0, SLOT_BYTES = 192, 64
#: Byte offsets of a reader slot's words, relative to the slot.
CUR, READS, LOST, OVER, UNDER, HW, PID = 0, 8, 16, 24, 32, 40, 48
MAX_DIMS, MAX_READERS = 4, 64


class ReadResult(NamedTuple):
    """Outcome of one read: ``frames`` copied, starting at absolute ``start_frame``;
    ``lost_frames`` were lost just before them (range ``[start_frame - lost, start_frame)``).

    A NamedTuple, not a dataclass, because one is built per read on the audio hot path.
    """

    frames: int
    start_frame: int
    lost_frames: int


class LossRange(NamedTuple):
    """Absolute frame range ``[start_frame, end_frame)`` that a reader lost."""

    start_frame: int
    end_frame: int


@dataclass(frozen=True, slots=True)
class RingStats:
    """Counters of one reader slot plus the producer's, all in frames unless named."""

    reader: int
    capacity: int
    fill: int  # frames readable by this reader now (<= capacity)
    writes: int  # frames written since create (= write counter)
    reads: int  # frames delivered valid to this reader
    overruns: int  # read calls that found frames lost
    underruns: int  # read calls that asked for more frames than were readable
    dropped_frames: int  # frames this reader lost (overwritten before it read them)
    high_water: int  # largest fill this reader observed
    read_counter: int  # this reader's cursor (absolute frame index)
    truncated_frames: int  # frames skipped by writes longer than the capacity


def pow2(capacity: object) -> bool:
    """True if ``capacity`` is a positive power-of-two int (frames)."""
    return isinstance(capacity, int) and capacity > 0 and capacity & (capacity - 1) == 0


def check_layout(
    capacity: int, dtype: npt.DTypeLike, frame_shape: tuple[int, ...], max_readers: int
) -> np.dtype[Any]:
    """Validate the arguments of a new ring (``capacity`` in frames); returns the dtype.

    Raises:
        RingError: naming the first argument out of range.
    """
    if not pow2(capacity):
        raise RingError(f"capacity must be a positive power of two (frames), got {capacity}")
    dt = np.dtype(dtype)
    if dt.hasobject or dt.kind not in "biuf" or len(dt.str) > 16:
        raise RingError(f"dtype must be a numeric bool/int/uint/float dtype, got {dt}")
    if len(frame_shape) > MAX_DIMS or any(not isinstance(d, int) or d < 1 for d in frame_shape):
        raise RingError(f"frame_shape needs <= 4 dimensions each >= 1, got {frame_shape}")
    if not 1 <= max_readers <= MAX_READERS:
        raise RingError(f"max_readers must be in 1..{MAX_READERS}, got {max_readers}")
    return dt


def validate_header(
    seg: Segment, dtype: npt.DTypeLike | None, shape: tuple[int, ...] | None, reader: int | None
) -> None:
    """Raise RingError unless ``seg`` is a ring of this layout matching the expectations."""
    name = seg.name
    if seg.size_bytes < SLOT0 or bytes(seg.mapping[0:8]) != MAGIC:
        raise RingError(f"segment {name!r} is not a streamasr ring (bad magic)")
    (_, version, hdr, _, cap, nrd, ndim, dts, *shape4, _, _, fbytes) = STATIC.unpack_from(
        seg.mapping, 0
    )
    if version != LAYOUT_VERSION:
        raise RingError(f"ring {name!r} has layout version {version}, expected {LAYOUT_VERSION}")
    if seg.size_bytes < hdr + cap * fbytes or not pow2(cap) or ndim > MAX_DIMS:
        raise RingError(f"ring {name!r} header is inconsistent with its {seg.size_bytes} bytes")
    have_dt, have_shape = np.dtype(dts.rstrip(b"\0").decode()), tuple(shape4[:ndim])
    if dtype is not None and np.dtype(dtype) != have_dt:
        raise RingError(f"ring {name!r} holds dtype {have_dt}, expected {np.dtype(dtype)}")
    if shape is not None and tuple(shape) != have_shape:
        raise RingError(f"ring {name!r} has frame shape {have_shape}, expected {tuple(shape)}")
    if reader is not None and not (isinstance(reader, int) and 0 <= reader < nrd):
        raise RingError(f"reader slot {reader} out of range: ring {name!r} has {nrd} reader slots")
