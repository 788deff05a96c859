"""What every capture source shares: the native format, the pull-source protocol, the push
sink's signature, the raw stdin formats and the test microphone's device prefix.

Plain types only (numpy and the standard library), so :mod:`~streamasr.actors.capture.sources`,
:mod:`~streamasr.actors.capture.mic` and the test-only
:mod:`~streamasr.actors.capture.testing_sources` all build on it without importing each other
in a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

__all__ = ["FILE_MIC_PREFIX", "RAW_FORMATS", "BlockSource", "MicSink", "SourceFormat"]

#: Raw PCM formats accepted on stdin: name -> (numpy little-endian dtype, scale to [-1, 1]).
RAW_FORMATS: Final[dict[str, tuple[str, float]]] = {
    "s16le": ("<i2", 1.0 / 32768.0),
    "s32le": ("<i4", 1.0 / 2147483648.0),
    "f32le": ("<f4", 1.0),
}


@dataclass(frozen=True, slots=True)
class SourceFormat:
    """Native format of a capture source.

    Attributes:
        sample_rate_hz: frames per second delivered by the source.
        channels: samples per frame.
    """

    sample_rate_hz: int
    channels: int


class BlockSource(Protocol):
    """A pull source: ``read_block()`` returns float32 ``(n, channels)`` or ``None`` at the end."""

    @property
    def format(self) -> SourceFormat:
        """Native rate (Hz) and channel count of the blocks."""
        ...

    def read_block(self) -> NDArray[np.float32] | None:
        """Next block of float32 frames ``(n, channels)``, or ``None`` at end of source."""
        ...

    def close(self) -> None:
        """Release the underlying file or stream."""
        ...


#: Device spec prefix selecting the test-only :class:`FileMic` (``"file-mic:/path/x.wav"``).
FILE_MIC_PREFIX: Final = "file-mic:"

#: Signature of the sink a :class:`MicSource` feeds: ``(indata (frames, channels) float32
#: (int16 if the source was made with ``dtype="int16"``), frames, status_flags)``. It runs on
#: PortAudio's thread: no allocation, locks or logging.
MicSink = Callable[[NDArray[np.float32], int, Any], None]
