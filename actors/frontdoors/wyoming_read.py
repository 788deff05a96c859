"""Reading Wyoming events with bounded memory.

The ``wyoming`` package's ``async_read_event`` trusts the sizes a client declares: a header
line with ``payload_length`` of 1e10 makes it read and hold whatever the client sends. This
reader takes the same wire format (a JSON header line, then ``data_length`` bytes of JSON
and ``payload_length`` bytes of payload) and refuses, before reading them, sizes past its
limits, and header lines past the stream reader's line limit. A header (or extra data)
that is not a JSON object of the expected shape raises :class:`MalformedEvent` with a
one-line reason, whatever the bytes were (``[1,2]``, ``42``, invalid UTF-8, nesting deep
enough to exhaust the JSON parser's recursion).
"""

from __future__ import annotations

import asyncio
import json

from wyoming.event import Event

from streamasr.actors.errors import StreamAsrError

__all__ = ["MAX_DATA_BYTES", "MAX_PAYLOAD_BYTES", "EventTooLarge", "MalformedEvent", "read_event"]

#: Most bytes of an event's extra JSON data (``data_length``).
MAX_DATA_BYTES = 64 * 1024
#: Most bytes of an event's payload (``payload_length``): one audio chunk of up to ~2.7 s of
#: 48 kHz stereo 32-bit audio; Home Assistant sends chunks of 2 KiB or so.
MAX_PAYLOAD_BYTES = 1024 * 1024


class EventTooLarge(StreamAsrError):
    """A Wyoming client declared (or sent) more bytes than the reader accepts."""


class MalformedEvent(StreamAsrError, ValueError):
    """A Wyoming client sent a header or extra data that is not a well-formed event."""


def _object(raw: bytes, what: str) -> dict[str, object]:
    """``raw`` parsed as a JSON object (``what`` names it in the error)."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON or UTF-8, 4300+ digits, deep nesting
        raise MalformedEvent(f"{what} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise MalformedEvent(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


def _length(header: dict[str, object], key: str, most: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedEvent(f"{key} must be a non-negative integer")
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
        MalformedEvent: a header that is not a JSON object with a string ``type`` (and an
            object ``data``), extra data that is not a JSON object, or lengths that are not
            non-negative integers.
        asyncio.IncompleteReadError: the connection ended inside an event.
    """
    try:
        line = await reader.readline()
    except ValueError as exc:  # asyncio's LimitOverrunError for an over-long line
        raise EventTooLarge(f"header line over the reader's limit ({exc})") from None
    if not line:
        return None
    header = _object(line, "the event header")
    kind = header.get("type")
    if not isinstance(kind, str):
        raise MalformedEvent("the event header has no string 'type'")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise MalformedEvent("the event header's 'data' must be a JSON object")
    data_length = _length(header, "data_length", max_data_bytes)
    payload_length = _length(header, "payload_length", max_payload_bytes)
    if data_length:
        extra = _object(await reader.readexactly(data_length), "the event's extra data")
        data = {**data, **extra}
    payload = await reader.readexactly(payload_length) if payload_length else None
    return Event(type=kind, data=data, payload=payload)
