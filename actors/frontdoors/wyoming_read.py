"""Reading Wyoming events with bounded memory.

The ``wyoming`` package's ``async_read_event`` trusts the sizes a client declares: a header
line with ``payload_length`` of 1e10 makes it read and hold whatever the client sends. This
reader takes the same wire format (a JSON header line, then ``data_length`` bytes of JSON
and ``payload_length`` bytes of payload) and refuses, before reading them, sizes past its
limits, and header lines past the stream reader's line limit.
"""

from __future__ import annotations

import asyncio
import json

from wyoming.event import Event

from streamasr.actors.errors import StreamAsrError

__all__ = ["MAX_DATA_BYTES", "MAX_PAYLOAD_BYTES", "EventTooLarge", "read_event"]

#: Most bytes of an event's extra JSON data (``data_length``).
MAX_DATA_BYTES = 64 * 1024
#: Most bytes of an event's payload (``payload_length``): one audio chunk of up to ~2.7 s of
#: 48 kHz stereo 32-bit audio; Home Assistant sends chunks of 2 KiB or so.
MAX_PAYLOAD_BYTES = 1024 * 1024


class EventTooLarge(StreamAsrError):
    """A Wyoming client declared (or sent) more bytes than the reader accepts."""


def _length(header: dict[str, object], key: str, most: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer, got {value!r}")
    if value > most:
        raise EventTooLarge(f"{key} {value} exceeds the limit of {most} bytes")
    return value


async def read_event(
    reader: asyncio.StreamReader,
    max_data_bytes: int = MAX_DATA_BYTES,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> Event | None:
    """The next event, or None at the end of the stream.

    Raises:
        EventTooLarge: a header line longer than the reader's limit, or a declared data or
            payload length over its maximum (nothing of it is read).
        ValueError: a header that is not a JSON object with a string ``type``, or lengths
            that are not non-negative integers.
        asyncio.IncompleteReadError: the connection ended inside an event.
    """
    try:
        line = await reader.readline()
    except ValueError as exc:  # asyncio's LimitOverrunError for an over-long line
        raise EventTooLarge(f"header line over the reader's limit ({exc})") from None
    if not line:
        return None
    header = json.loads(line)
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ValueError("a Wyoming header must be a JSON object with a string 'type'")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError("a Wyoming header's 'data' must be a JSON object")
    data_length = _length(header, "data_length", max_data_bytes)
    payload_length = _length(header, "payload_length", max_payload_bytes)
    if data_length:
        extra = json.loads(await reader.readexactly(data_length))
        if not isinstance(extra, dict):
            raise ValueError("a Wyoming event's extra data must be a JSON object")
        data = {**data, **extra}
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=header["type"], data=data, payload=payload)
