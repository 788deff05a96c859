"""Errors raised by actors, engines and the message schema.

All derive from :class:`streamasr.ringbuf.errors.StreamAsrError`.
"""

from __future__ import annotations

from streamasr.ringbuf.errors import RingError, StreamAsrError

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
