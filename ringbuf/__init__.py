"""Lock-free shared-memory ring buffers (single producer, one cursor per consumer).

Public API: :class:`Ring` (create/attach/write/read_into/zero-copy regions/seek/read_at),
:class:`ReadResult`, :class:`LossRange`, :class:`RingStats`, :class:`RingError`, and the
segment helpers :func:`list_segments`, :func:`remove_stale`, :data:`NAME_PREFIX`.

The bottom layer: imports only numpy and the standard library; ``actors`` and ``supervisor``
build on it.
"""

from .errors import RingError, StreamAsrError
from .ordering import MECHANISM as ORDERING_MECHANISM
from .ring import LAYOUT_VERSION, LossRange, ReadResult, Ring, RingStats
from .shm import NAME_PREFIX, Segment, list_segments, remove_stale

__all__ = [
    "LAYOUT_VERSION",
    "NAME_PREFIX",
    "ORDERING_MECHANISM",
    "LossRange",
    "ReadResult",
    "Ring",
    "RingError",
    "RingStats",
    "Segment",
    "StreamAsrError",
    "list_segments",
    "remove_stale",
]
