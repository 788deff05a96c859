"""A bounded pool of loaded decoders, and handing freed native memory back to the system.

A PocketSphinx decoder holds its own copy of the language model and its search state: about
45-90 MB of RSS each on the shipped US-English model, and about 0.9 s to load (measured on
the 2-core test box). A stream's decoder therefore goes back to a pool when the stream
closes, and the next stream takes it instead of loading one. A pool that only grows keeps
the peak for ever (an inference worker went from 135 to 1,006 MB after 20 concurrent
streams and stayed there), so :class:`DecoderPool` keeps at most ``max_idle`` decoders that
no stream uses (spares). Returning one more frees the spare that has been idle longest and
then calls :func:`trim_heap`.

Why the trim: glibc keeps most of a freed decoder's pages in its heap. Freeing 19 of 20
loaded decoders lowered RSS only from 1,946 to 1,189 MB; ``malloc_trim(0)`` then brought it
to 137 MB (about 10-35 ms per call at that heap size, once per freed decoder).

Why the longest-idle spare and not the decoder being returned: the caller (a stream's
``close()``) still holds the returned one, so dropping it would free nothing before the
trim; a spare has no other reference, so it is freed the moment the pool lets go of it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import platform
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DecoderPool", "trim_heap"]

logger = logging.getLogger(__name__)

D = TypeVar("D")


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        fn = ctypes.CDLL(None).malloc_trim  # this process's own C library
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    trim: Callable[[int], int] = fn
    return trim


def trim_heap() -> bool:
    """Return the C heap's free pages to the system (glibc ``malloc_trim(0)``).

    True if memory was released; False if there was none, or the C library is not glibc
    (then freed memory is reused by later allocations, not returned).
    """
    fn = _malloc_trim()
    return bool(fn is not None and fn(0))


class DecoderPool(Generic[D]):
    """Loaded decoders a stream may take; at most ``max_idle`` kept when nobody uses them.

    Attributes:
        loaded: decoders loaded so far.
        freed: decoders let go of because the pool already held ``max_idle`` spares.
    """

    def __init__(
        self, load: Callable[[], D], max_idle: int, trim: Callable[[], bool] = trim_heap
    ) -> None:
        """``load()`` makes a decoder (its errors propagate); ``max_idle`` >= 1 spares are
        kept; ``trim()`` runs after a spare is freed (default :func:`trim_heap`)."""
        if max_idle < 1:
            raise ValueError(f"max_idle must be >= 1, got {max_idle}")
        self._load = load
        self._trim = trim
        self.max_idle = max_idle
        self._idle: deque[D] = deque()  # oldest-returned first
        self.loaded = 0
        self.freed = 0

    @property
    def idle(self) -> int:
        """Spares: loaded decoders no stream uses."""
        return len(self._idle)

    @property
    def live(self) -> int:
        """Decoders loaded and not freed (in use by streams plus spares)."""
        return self.loaded - self.freed

    def preload(self) -> None:
        """Load one spare now (at start-up, so the first stream does not wait for it)."""
        self.give(self.take())

    def take(self) -> D:
        """The most recently returned spare, else a newly loaded decoder."""
        if self._idle:
            return self._idle.pop()
        decoder = self._load()
        self.loaded += 1
        return decoder

    def give(self, decoder: D) -> None:
        """Keep ``decoder`` as a spare; past ``max_idle`` spares, free the longest idle."""
        self._idle.append(decoder)
        if len(self._idle) <= self.max_idle:
            return
        self._idle.popleft()  # its last reference: the decoder is freed here
        self.freed += 1
        released = self._trim()
        logger.debug(
            "freed a spare decoder (%d live, %d idle; heap trimmed: %s)",
            self.live,
            self.idle,
            released,
        )
