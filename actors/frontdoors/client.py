"""A small asyncio client for the gateway's native protocol (and, for tests, its Vosk and
classic JSON protocols).

>>> async with await NativeClient.connect("ws://127.0.0.1:2700/v1/stream") as c:
...     await c.send_audio(pcm_bytes)
...     await c.end()
...     async for event in c.events():
...         print(event)

The ``streamasr-supervisor stream`` command built on it is
:mod:`streamasr.supervisor.stream_command`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = [
    "DEFAULT_URL",
    "NativeClient",
    "classic_client",
    "pcm16",
    "read_pcm16",
    "stream_file",
    "vosk_client",
]

DEFAULT_URL = "ws://127.0.0.1:2700/v1/stream"


class NativeClient:
    """One native-protocol stream (``/v1/stream``).

    Attributes:
        chunk_ms: the latest chunk size the gateway advised (ms).
    """

    def __init__(self, ws: ClientConnection, chunk_ms: int = 100) -> None:
        """Wrap an open connection whose start message has been sent."""
        self.ws = ws
        self.chunk_ms = chunk_ms

    @classmethod
    async def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        sample_rate_hz: int = 16000,
        fmt: str = "s16le",
        channels: int = 1,
        name: str = "",
        token: str = "",
    ) -> NativeClient:
        """Connect and send the start message (``fmt``: ``s16le`` or ``f32le``)."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        ws = await connect(url, additional_headers=headers, max_size=None, compression=None)
        start = {
            "type": "start",
            "sample_rate": sample_rate_hz,
            "format": fmt,
            "channels": channels,
            "name": name,
        }
        await ws.send(json.dumps(start))
        return cls(ws)

    async def __aenter__(self) -> NativeClient:
        """Use as an async context manager (closes on exit)."""
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the connection."""
        await self.ws.close()

    async def send_audio(self, pcm: bytes) -> None:
        """Send one PCM message (whole frames in the announced format)."""
        await self.ws.send(pcm)

    async def end(self) -> None:
        """Say the audio is complete; the gateway sends the last finals, then ``end``."""
        await self.ws.send(json.dumps({"type": "end"}))

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every message until ``end`` (or the close); ``advice`` updates :attr:`chunk_ms`."""
        while True:
            try:
                raw = await self.ws.recv()
            except ConnectionClosed:
                return
            event = json.loads(raw)
            if event.get("type") == "advice":
                self.chunk_ms = int(event["chunk_ms"])
            yield event
            if event.get("type") in ("end", "error"):
                return

    def receive_into(
        self,
        events: list[dict[str, Any]],
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> asyncio.Future[None]:
        """Start a task appending every :meth:`events` message to ``events`` (and calling
        ``on_event`` on it); it is done after ``end``, ``error`` or the close."""

        async def receive() -> None:
            async for event in self.events():
                events.append(event)
                if on_event is not None:
                    on_event(event)

        return asyncio.ensure_future(receive())


def read_pcm16(path: str | Path) -> tuple[NDArray[np.int16], int]:
    """A sound file as int16 ``(n, channels)`` and its rate in Hz."""
    import soundfile as sf

    data, rate_hz = sf.read(str(path), dtype="int16", always_2d=True)
    return np.ascontiguousarray(data), int(rate_hz)


async def stream_file(
    url: str,
    path: str | Path,
    *,
    realtime: bool = False,
    token: str = "",
    name: str = "",
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Send a file over the native protocol; return every event received.

    ``realtime`` paces the chunks at the audio's duration; otherwise the gateway's
    backpressure sets the pace.
    """
    data, rate_hz = read_pcm16(path)
    client = await NativeClient.connect(
        url, sample_rate_hz=rate_hz, channels=data.shape[1], name=name, token=token
    )
    events: list[dict[str, Any]] = []
    receiver = client.receive_into(events, on_event)
    async with client:
        t0, pos = time.monotonic(), 0
        while pos < len(data) and not receiver.done():
            n = max(1, rate_hz * client.chunk_ms // 1000)
            await client.send_audio(data[pos : pos + n].tobytes())
            pos += n
            if realtime:
                await asyncio.sleep(max(0.0, t0 + pos / rate_hz - time.monotonic()))
        if not receiver.done():
            await client.end()
        await receiver
    return events


def pcm16(samples: NDArray[np.float32]) -> bytes:
    """Float samples in [-1, 1] as 16-bit little-endian PCM bytes (clipped)."""
    data: bytes = np.clip(samples * 32768.0, -32768, 32767).astype("<i2").tobytes()
    return data


def _pcm16_mono(path: str | Path) -> tuple[bytes, int]:
    data, rate_hz = read_pcm16(path)
    mono = data.mean(axis=1).astype("<i2") if data.shape[1] > 1 else data[:, 0].astype("<i2")
    return mono.tobytes(), rate_hz


async def _rest(ws: ClientConnection, replies: list[dict[str, Any]]) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            replies.append(json.loads(await ws.recv()))


async def vosk_client(url: str, path: str | Path, chunk_s: float = 0.2) -> list[dict[str, Any]]:
    """A Vosk-server client as Vosk's own ``test.py`` is written: the config message, mono
    16-bit PCM messages of ``chunk_s`` seconds with one ``recv`` after each, ``{"eof" : 1}``;
    returns every reply (those after eof included, until the server closes)."""
    pcm, rate_hz = _pcm16_mono(path)
    step = int(rate_hz * chunk_s) * 2
    replies: list[dict[str, Any]] = []
    async with connect(url, max_size=None, compression=None) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate_hz}}))
        for i in range(0, len(pcm), step):
            await ws.send(pcm[i : i + step])
            replies.append(json.loads(await ws.recv()))
        await ws.send('{"eof" : 1}')
        await _rest(ws, replies)
    return replies


async def classic_client(url: str, path: str | Path, chunk_s: float = 0.2) -> list[dict[str, Any]]:
    """A classic JSON-protocol client: hex float32 ``audio`` messages of ``chunk_s`` seconds
    with one reply each, then ``end``; returns every reply."""
    pcm, rate_hz = _pcm16_mono(path)
    samples = np.frombuffer(pcm, "<i2").astype("<f4") / np.float32(32768.0)
    step = int(rate_hz * chunk_s)
    replies: list[dict[str, Any]] = []
    async with connect(url, max_size=None, compression=None) as ws:
        for i in range(0, len(samples), step):
            msg: dict[str, Any] = {
                "type": "audio",
                "audio": samples[i : i + step].tobytes().hex(),
                "is_final": i + step >= len(samples),
            }
            if i == 0:
                msg["sample_rate"] = rate_hz
            await ws.send(json.dumps(msg))
            replies.append(json.loads(await ws.recv()))
        await ws.send('{"type": "end"}')
        await _rest(ws, replies)
    return replies
