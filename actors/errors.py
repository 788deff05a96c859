"""The exception hierarchy, as every layer above ``ringbuf`` imports it.

``StreamAsrError`` -> ``ConfigError``, ``ProtocolError``, ``AudioFormatError``,
``DeviceError``, ``ModelError`` and ``RingError``. Actors, engines and the supervisor import
all of them from here, never from ``ringbuf``: the root class and ``RingError`` are defined in
``ringbuf`` only because it is the bottom layer (it imports nothing of streamasr, so the root
cannot live above it) and are taken here from its public API.
"""

from __future__ import annotations

from streamasr.ringbuf import RingError, StreamAsrError

__all__ = [
    "AudioFormatError",
    "ConfigError",
    "DeviceError",
    "ModelError",
    "ProtocolError",
    "RingError",
    "StreamAsrError",
]


class ConfigError(StreamAsrError):
    """A configuration value is missing, unknown or invalid; the message names its key path."""


class ProtocolError(StreamAsrError):
    """A wire message could not be decoded; the message says what was wrong."""


class AudioFormatError(StreamAsrError):
    """Audio has an unsupported rate, dtype, channel count or shape."""


class DeviceError(StreamAsrError):
    """An audio device is missing or failed (PortAudio error, unplugged microphone)."""


class ModelError(StreamAsrError):
    """A recognition model is missing, corrupt or failed to load."""
