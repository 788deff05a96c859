"""Exception hierarchy root shared by every streamasr package.

``ringbuf`` sits at the bottom of the dependency graph (``ringbuf`` <- ``actors`` <-
``supervisor``) and imports nothing of streamasr, so the root class lives here and the other
packages extend it. Code above ``ringbuf`` imports the whole hierarchy from
:mod:`streamasr.actors.errors`.
"""

from __future__ import annotations


class StreamAsrError(Exception):
    """Base class of every error streamasr raises on purpose."""


class RingError(StreamAsrError):
    """Misuse of a ring buffer or a segment that is not a compatible ring."""
