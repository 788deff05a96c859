"""The ``stream`` command: send a file or this box's microphone to a gateway and print what
comes back.

``streamasr-supervisor stream FILE|--mic [--url URL] [--token T] [--realtime] [--json]``
sends a WAV/FLAC file (any rate and channel count; 16-bit PCM on the wire) or the microphone
(``--device NAME|INDEX``, ``--seconds N``; see :func:`stream_mic`) and prints the finals (or
every event as a JSON line); it follows the gateway's ``advice`` on chunk size. The protocol
client is :class:`streamasr.actors.frontdoors.client.NativeClient`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import queue
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr
from numpy.typing import NDArray
from websockets.exceptions import ConnectionClosed, InvalidStatus

from streamasr.actors.capture.formats import FILE_MIC_PREFIX
from streamasr.actors.capture.mic import NO_DEVICE_MSG, MicSource
from streamasr.actors.capture.sources import check_audio_file, probe_source
from streamasr.actors.capture.testing_sources import FileMic
from streamasr.actors.errors import DeviceError
from streamasr.actors.frontdoors.client import DEFAULT_URL, NativeClient, pcm16, stream_file
from streamasr.supervisor.printer import stdout_gone

__all__ = ["MicCapture", "MicOptions", "stream_main", "stream_mic"]

#: Rate of the audio ``stream --mic`` sends (Hz); the microphone is resampled to it.
MIC_STREAM_RATE_HZ = 16000


#: How often the ``--mic`` sender looks for captured audio (s).
MIC_POLL_S = 0.02


EXIT_DEVICE = 2


@dataclass(frozen=True, slots=True)
class MicOptions:
    """What ``stream --mic`` captures and how it announces itself.

    Attributes:
        device: PortAudio input device name (substring) or index as text; ``None`` = the
            default input. ``"file-mic:<wav>"`` plays a file instead (test facility).
        seconds: stop after this much captured audio (s); ``None`` = until stopped.
        sample_rate_hz: rate sent to the gateway (Hz); the device's rate is resampled to it.
        token: gateway token.
        name: stream display name.
    """

    device: str | None = None
    seconds: float | None = None
    sample_rate_hz: int = MIC_STREAM_RATE_HZ
    token: str = ""
    name: str = ""


def _device_arg(device: str | None) -> str | int | None:
    """A ``--device`` value as PortAudio takes it: an index if all digits, else a name."""
    if device is None or not device.strip().isdigit():
        return device
    return int(device)


class MicCapture:
    """The first channel of an input device, captured as int16 at the device's default rate,
    as mono float32 blocks resampled (soxr) to ``out_rate_hz``; PortAudio's thread queues,
    asyncio takes.

    The callback copies each block (one small allocation per callback, acceptable in a
    client; the capture actor writes into a ring instead). ``limit_s`` caps the audio taken.
    """

    def __init__(self, device: str | None, out_rate_hz: int, limit_s: float | None) -> None:
        """Probe ``device``; raises :class:`DeviceError` if it is missing or unusable."""
        dev = _device_arg(device)
        fmt = probe_source("mic", device=dev, raw_channels=1)
        self.in_rate_hz = fmt.sample_rate_hz
        self._left = None if limit_s is None else max(0, round(limit_s * self.in_rate_hz))
        self._blocks: queue.SimpleQueue[NDArray[np.float32]] = queue.SimpleQueue()
        self._soxr: Any = None
        if self.in_rate_hz != out_rate_hz:
            self._soxr = soxr.ResampleStream(self.in_rate_hz, out_rate_hz, 1, dtype="float32")
        self._file_mic: FileMic | None = None
        self._src: FileMic | MicSource
        if isinstance(dev, str) and dev.startswith(FILE_MIC_PREFIX):
            self._file_mic = FileMic(self._sink, fmt, dev[len(FILE_MIC_PREFIX) :])
            self._src = self._file_mic
        else:
            self._src = MicSource(self._sink, fmt, device=dev, dtype="int16")

    def _sink(self, indata: NDArray[Any], frames: int, _status: Any) -> None:
        block = indata[:frames, 0]
        if block.dtype == np.int16:
            self._blocks.put(block.astype(np.float32) * np.float32(1.0 / 32768.0))
        else:
            self._blocks.put(block.astype(np.float32))

    def start(self) -> None:
        """Start capturing (raises :class:`DeviceError` if the device will not open)."""
        self._src.start()

    def close(self) -> None:
        """Stop capturing (idempotent)."""
        self._src.close()

    @property
    def done(self) -> bool:
        """True once the limit is reached or a file-mic's file has ended and been taken."""
        if self._left == 0:
            return True
        return self._file_mic is not None and self._file_mic.ended and self._blocks.empty()

    def take(self, last: bool = False) -> NDArray[np.float32]:
        """Audio captured since the previous call, resampled; ``last`` flushes the resampler.

        Raises:
            DeviceError: the stream failed (device gone, file-mic fault).
        """
        self._src.raise_if_failed()
        parts = [np.zeros(0, np.float32)]
        while not self._blocks.empty():
            parts.append(self._blocks.get_nowait())
        block = np.concatenate(parts)
        if self._left is not None:
            block = block[: self._left]
            self._left -= len(block)
        if self._soxr is None:
            return block
        out: NDArray[np.float32] = self._soxr.resample_chunk(block, last=last)
        return out


async def _send_mic(
    client: NativeClient,
    capture: MicCapture,
    stop: asyncio.Event,
    receiver: asyncio.Future[None],
    rate_hz: int,
) -> None:
    """Send captured audio (at ``rate_hz``) in chunks of the advised size until stopped,
    done or the gateway closes; then what is left."""
    pending = np.zeros(0, np.float32)
    while not (stop.is_set() or capture.done or receiver.done()):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), MIC_POLL_S)
        pending = np.concatenate([pending, capture.take()])
        n = max(1, rate_hz * client.chunk_ms // 1000)
        while len(pending) >= n and not receiver.done():
            await client.send_audio(pcm16(pending[:n]))
            pending = pending[n:]
    pending = np.concatenate([pending, capture.take(last=True)])
    if len(pending) and not receiver.done():
        await client.send_audio(pcm16(pending))


async def stream_mic(
    url: str,
    opts: MicOptions,
    *,
    stop: asyncio.Event | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Stream the microphone over the native protocol (16-bit mono at
    ``opts.sample_rate_hz``) until ``stop`` is set, ``opts.seconds`` of audio were sent or
    the gateway ends the stream; then send ``end`` and wait for the last finals. Returns
    every event received.

    Raises:
        DeviceError: the device is missing, will not open, or fails mid-stream (checked
            before connecting where possible).
    """
    stop = asyncio.Event() if stop is None else stop
    capture = MicCapture(opts.device, opts.sample_rate_hz, opts.seconds)
    client = await NativeClient.connect(
        url, sample_rate_hz=opts.sample_rate_hz, name=opts.name, token=opts.token
    )
    events: list[dict[str, Any]] = []
    receiver = client.receive_into(events, on_event)
    async with client:
        try:
            capture.start()
            await _send_mic(client, capture, stop, receiver, opts.sample_rate_hz)
        except BaseException:
            receiver.cancel()
            raise
        finally:
            capture.close()
        if not receiver.done():
            await client.end()
        await receiver
    return events


class _StdoutGone(Exception):
    """stdout's reader has gone (``stream ... | head``); not an :class:`OSError`, so that it
    is not mistaken for the gateway connection failing."""


def _print_event(json_mode: bool) -> Callable[[dict[str, Any]], None]:
    def show(event: dict[str, Any]) -> None:
        try:
            _show(event)
        except BrokenPipeError:
            raise _StdoutGone from None

    def _show(event: dict[str, Any]) -> None:
        if json_mode:
            sys.stdout.write(json.dumps(event) + "\n")
        elif event.get("type") == "final" and not event.get("provisional"):
            if event["text"]:
                sys.stdout.write(
                    f"[{event['start_s']:7.2f} - {event['end_s']:7.2f}] {event['text']}\n"
                )
        elif event.get("type") == "error":
            sys.stderr.write(f"streamasr: gateway error {event['code']}: {event['message']}\n")
        sys.stdout.flush()

    return show


#: ``stream --help``: what the command does, then (after the options) examples.
DESCRIPTION = """\
Send a WAV/FLAC file (any rate and channels; 16-bit PCM on the wire) or this
box's microphone to a streamasr gateway and print the finals it sends back
(every event with --json). The chunk size follows the gateway's advice."""
EPILOG = """examples:
  streamasr-supervisor serve                       # in another shell: the gateway
  streamasr-supervisor stream talk.wav
  streamasr-supervisor stream talk.wav --realtime --name alice --json
  streamasr-supervisor stream --mic --seconds 10 --url ws://HOST:2700/v1/stream

exit status: 0 the gateway ended the stream, 1 a file or connection error,
2 a usage or input-device error, 130 interrupted twice."""


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="streamasr-supervisor stream",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", nargs="?", help="WAV/FLAC file (any rate/channels)")
    p.add_argument("--mic", action="store_true", help="stream the microphone instead of FILE")
    p.add_argument("--device", help="--mic: input device name or index (default: default input)")
    p.add_argument("--seconds", type=float, help="--mic: stop after N seconds of audio")
    p.add_argument("--url", default=DEFAULT_URL, help=f"native endpoint (default {DEFAULT_URL})")
    p.add_argument("--token", default="", help="gateway token")
    p.add_argument("--name", default="", help="stream display name")
    p.add_argument("--realtime", action="store_true", help="pace the file at real time")
    p.add_argument("--json", action="store_true", help="print every event as a JSON line")
    args = p.parse_args(argv)
    if args.mic == (args.file is not None):
        p.error("give either FILE or --mic")
    if not args.mic and (args.device is not None or args.seconds is not None):
        p.error("--device and --seconds go with --mic")
    if args.seconds is not None and not args.seconds > 0:
        p.error(f"--seconds must be > 0, got {args.seconds}")
    return args


async def _mic_until_interrupted(args: argparse.Namespace) -> list[dict[str, Any]]:
    """:func:`stream_mic` where the first SIGINT/SIGTERM finishes the stream cleanly (end,
    last finals) and a second one cancels it."""
    loop, stop = asyncio.get_running_loop(), asyncio.Event()
    task = asyncio.current_task()

    def interrupt() -> None:
        if stop.is_set() and task is not None:
            task.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    opts = MicOptions(args.device, args.seconds, token=args.token, name=args.name)
    try:
        return await stream_mic(args.url, opts, stop=stop, on_event=_print_event(args.json))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def stream_main(argv: list[str] | None = None) -> int:
    """``streamasr-supervisor stream``: send a file or the microphone to a gateway, print its
    transcripts. Exit 0 when the gateway ended the stream, 1 on a connection or file error,
    2 on a usage or input-device error, 130 when interrupted twice."""
    args = _parse(argv)
    if not args.mic:
        try:
            check_audio_file(args.file)
        except DeviceError as exc:
            sys.stderr.write(f"streamasr: {exc}\n")
            return 1
    try:
        if args.mic:
            events = asyncio.run(_mic_until_interrupted(args))
        else:
            events = asyncio.run(
                stream_file(
                    args.url,
                    args.file,
                    realtime=args.realtime,
                    token=args.token,
                    name=args.name,
                    on_event=_print_event(args.json),
                )
            )
    except _StdoutGone:
        return stdout_gone()
    except DeviceError as exc:
        sys.stderr.write(f"streamasr: {_device_message(args.device, exc)}\n")
        return EXIT_DEVICE
    except (OSError, InvalidStatus, ConnectionClosed) as exc:
        sys.stderr.write(f"streamasr: cannot stream to {args.url}: {exc}\n")
        return 1
    except RuntimeError as exc:  # soundfile errors
        sys.stderr.write(f"streamasr: {exc}\n")
        return 1
    except (asyncio.CancelledError, KeyboardInterrupt):
        return 130
    return 0 if events and events[-1].get("type") == "end" else 1


def _device_message(device: str | None, exc: DeviceError) -> str:
    """One line naming the device, whatever PortAudio's message says."""
    text = " ".join(str(exc).split())
    if str(exc) == NO_DEVICE_MSG:  # its hint is for `up`; here a FILE is the alternative
        text = "no input device found (PortAudio sees none); stream a FILE instead"
    name = "the default input device" if device is None else f"input device {device!r}"
    return text if device is not None and repr(device) in text else f"{name}: {text}"


if __name__ == "__main__":
    sys.exit(stream_main())
