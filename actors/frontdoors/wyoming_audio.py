"""Wyoming audio: the formats an ``audio-start`` may announce, and PCM bytes as float32.

Pure (numpy only): the server checks each ``audio-start`` with :func:`check_format` and
converts each ``audio-chunk``'s payload with :func:`pcm_to_float` before conditioning it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.errors import AudioFormatError

__all__ = ["MAX_CHANNELS", "MAX_RATE_HZ", "MIN_RATE_HZ", "check_format", "pcm_to_float"]

#: Accepted ``audio-start`` rates, Hz.
MIN_RATE_HZ, MAX_RATE_HZ = 1000, 384000
#: Accepted channel counts.
MAX_CHANNELS = 32


def pcm_to_float(payload: bytes, width: int, channels: int) -> NDArray[np.float32]:
    """Interleaved PCM bytes -> float32 ``(frames, channels)`` in [-1, 1).

    ``width`` is bytes per sample: 1 = unsigned 8-bit (WAV convention), 2/3/4 = signed
    little-endian. ``payload`` must hold whole frames.

    Raises:
        AudioFormatError: an unsupported width or a partial frame.
    """
    frame_bytes = width * channels
    if width not in (1, 2, 3, 4) or channels < 1:
        raise AudioFormatError(f"unsupported sample width {width} bytes / {channels} channels")
    if len(payload) % frame_bytes:
        raise AudioFormatError(f"{len(payload)} bytes is not a whole number of frames")
    raw = np.frombuffer(payload, dtype=np.uint8)
    if width == 1:
        x = (raw.astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float32) / float(1 << 23)
    else:
        dtype = np.dtype("<i2") if width == 2 else np.dtype("<i4")
        scale = float(1 << (8 * width - 1))
        x = (np.frombuffer(payload, dtype=dtype).astype(np.float64) / scale).astype(np.float32)
    return x.reshape(-1, channels)


def check_format(rate_hz: int, width: int, channels: int) -> None:
    """Check an ``audio-start``'s format: ``rate_hz`` (Hz), ``width`` (bytes per sample),
    ``channels``.

    Raises:
        AudioFormatError: a value outside what the server takes (the text says which).
    """
    if type(rate_hz) is not int or not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise AudioFormatError(
            f"audio-start rate {rate_hz!r} Hz outside {MIN_RATE_HZ}..{MAX_RATE_HZ}"
        )
    if type(width) is not int or width not in (1, 2, 3, 4):
        raise AudioFormatError(f"audio-start width {width!r} bytes (1, 2, 3 or 4)")
    if type(channels) is not int or not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(f"audio-start channels {channels!r} outside 1..{MAX_CHANNELS}")
