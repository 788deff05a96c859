"""The bounded Wyoming event reader: the wire format as the wyoming package writes it, and
sizes refused before anything of them is read."""

from __future__ import annotations

import asyncio
import json

import pytest
from wyoming.audio import AudioChunk
from wyoming.event import Event, async_write_event

from streamasr.actors.frontdoors.wyoming_read import (
    MAX_PAYLOAD_BYTES,
    EventTooLarge,
    MalformedEvent,
    read_event,
)


class _Sink:
    """An asyncio writer stand-in collecting bytes (what async_write_event writes to)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, b: bytes) -> None:
        self.data += b

    def writelines(self, lines: list[bytes]) -> None:
        for b in lines:
            self.data += b

    async def drain(self) -> None:
        return None


def _reader(raw: bytes, eof: bool = True) -> asyncio.StreamReader:
    r = asyncio.StreamReader(limit=64 * 1024)
    r.feed_data(raw)
    if eof:
        r.feed_eof()
    return r


def test_reads_what_the_wyoming_package_writes() -> None:
    async def go() -> list[Event | None]:
        sink = _Sink()
        chunk = AudioChunk(16000, 2, 1, b"\x01\x02" * 800).event()
        await async_write_event(chunk, sink)  # type: ignore[arg-type]
        await async_write_event(Event("transcribe", {"language": "en"}), sink)  # type: ignore[arg-type]
        r = _reader(bytes(sink.data))
        return [await read_event(r), await read_event(r), await read_event(r)]

    chunk, transcribe, end = asyncio.run(go())
    assert chunk is not None and chunk.type == "audio-chunk"
    assert chunk.payload == b"\x01\x02" * 800 and chunk.data["rate"] == 16000
    assert transcribe is not None and transcribe.data == {"language": "en"}
    assert end is None


@pytest.mark.parametrize(
    "header",
    [
        {"type": "audio-chunk", "payload_length": 10_000_000_000},
        {"type": "audio-chunk", "payload_length": MAX_PAYLOAD_BYTES + 1},
        {"type": "transcribe", "data_length": 10_000_000},
    ],
)
def test_oversized_declarations_are_refused_before_reading(header: dict[str, object]) -> None:
    """The reader raises as soon as the header is read: the client's bytes after it (here
    none: the stream is still open) are never waited for, let alone held."""

    async def go() -> None:
        r = _reader(json.dumps(header).encode() + b"\n", eof=False)
        await asyncio.wait_for(read_event(r), 5)

    with pytest.raises(EventTooLarge, match="exceeds the limit"):
        asyncio.run(go())


def test_an_endless_header_line_is_refused() -> None:
    async def go() -> None:
        await read_event(_reader(b"{" + b" " * 200_000, eof=False))

    with pytest.raises(EventTooLarge, match="header line"):
        asyncio.run(go())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1, 2]\n", "the event header must be a JSON object, got list"),
        (b'"x"\n', "the event header must be a JSON object, got str"),
        (b"42\n", "the event header must be a JSON object, got int"),
        (b"null\n", "the event header must be a JSON object, got NoneType"),
        (b"not json\n", "the event header is not valid JSON"),
        (b"\xff\xfe{}\n", "the event header is not valid JSON"),
        (b"[" * 60000 + b"\n", "the event header is not valid JSON"),  # parser recursion
        (b'{"type": 1' + b"0" * 5000 + b"}\n", "the event header is not valid JSON"),
        (b'{"data": {}}\n', "the event header has no string 'type'"),
        (b'{"type": ["x"]}\n', "the event header has no string 'type'"),
        (b'{"type": "x", "data": [1]}\n', "the event header's 'data' must be a JSON object"),
        (b'{"type": "x", "payload_length": -5}\n', "payload_length must be a non-negative"),
        (b'{"type": "x", "data_length": 2}\n[]', "the event's extra data must be a JSON object"),
        (b'{"type": "x", "data_length": 2}\n{x', "the event's extra data is not valid JSON"),
    ],
    ids=lambda v: v.decode(errors="replace")[:40] if isinstance(v, bytes) else None,
)
def test_malformed_headers_are_malformed_events(raw: bytes, message: str) -> None:
    """Whatever the bytes, a one-line :class:`MalformedEvent` (never a RecursionError or a
    UnicodeDecodeError escaping the reader)."""

    async def go() -> None:
        await read_event(_reader(raw))

    with pytest.raises(MalformedEvent) as info:
        asyncio.run(go())
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)
