"""The Wyoming server as real processes and sockets, driven by the ``wyoming`` package's client.

One pipeline (no local source, accurate finals, ``[wyoming] max_streams = 3``, and the
WebSocket gateway beside it) serves most of the module's tests; the idle-timeout test has
its own (fast finals, ``idle_timeout_s = 1``). Clients stream the shared conversations
faster than real time (the server's backpressure paces them); transcripts are scored
against the ``.tsv`` references.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import (
    Instance,
    PipeTail,
    audio_file,
    free_port,
    instance_scope,
    read_tsv,
    stop_pipeline,
)
from conftest import wer_of as wer
from numpy.typing import NDArray
from synth import needs_flite, say, silence
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.wake import Detect, Detection

from streamasr.actors.errors import AudioFormatError
from streamasr.actors.frontdoors.client import NativeClient
from streamasr.actors.frontdoors.wyoming_audio import pcm_to_float

pytestmark = pytest.mark.timeout(240)

#: The issue's bound on the transcript's word error rate with accurate finals.
WER_BOUND = 0.15
READ_TIMEOUT_S = 60.0


@dataclass
class Server:
    """A running pipeline serving Wyoming on ``port`` (and the gateway on ``gateway_port``)."""

    inst: Instance
    port: int
    proc: subprocess.Popen[str]
    gateway_port: int = 0
    err: PipeTail = field(init=False)

    def __post_init__(self) -> None:
        PipeTail(self.proc.stdout, lines=10)  # drained throughout, like stderr
        self.err = PipeTail(self.proc.stderr)

    def client(self) -> AsyncTcpClient:
        """A new (unconnected) client with a read timeout."""
        return AsyncTcpClient("127.0.0.1", self.port, connect_timeout=5, read_timeout=60)

    def counters(self) -> dict[str, int]:
        """The wyoming actor's heartbeat counters."""
        for a in self.inst.status()["actors"]:
            if a["id"] == "wyoming":
                return dict(a["counters"])
        raise AssertionError("no wyoming actor in status")

    def counters_reaching(self, least: dict[str, int], timeout_s: float = 30) -> dict[str, int]:
        """The wyoming actor's counters once each of ``least`` has reached its value (they
        arrive with its heartbeats, a little after the event they count)."""
        deadline = time.monotonic() + timeout_s
        while True:
            counters = self.counters()
            if all(counters.get(k, 0) >= v for k, v in least.items()):
                return counters
            if time.monotonic() > deadline:
                pytest.fail(f"counters {counters} did not reach {least} in {timeout_s} s")
            time.sleep(0.1)


@dataclass
class Result:
    """What a transcription returned: event types in order, chunk texts, final text, and
    when things happened (``time.monotonic()`` seconds).

    Attributes:
        chunk_at_s: arrival time of each chunk in ``chunks``.
        first_audio_s, stop_s: when the client sent its first ``audio-chunk`` and its
            ``audio-stop`` (filled by the sender, which runs beside the receiver).
    """

    types: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)
    text: str = ""
    chunk_at_s: list[float] = field(default_factory=list)
    first_audio_s: float = 0.0
    stop_s: float = 0.0


def clip(name: str, first: int, count: int) -> tuple[NDArray[np.int16], list[str]]:
    """Utterances ``first .. first+count-1`` of conversation ``name`` (16 kHz) and their texts."""
    refs = read_tsv(audio_file(f"{name}.tsv"))[first : first + count]
    data, rate = sf.read(str(audio_file(f"{name}.wav")), dtype="int16")
    a = int(max(0.0, refs[0].start_s - 0.4) * rate)
    b = int((refs[-1].end_s + 0.6) * rate)
    return np.asarray(data[a:b]), [r.text for r in refs]


async def _send(
    client: AsyncTcpClient,
    pcm: NDArray[Any],
    rate: int,
    width: int = 2,
    chunk_ms: int = 100,
    *,
    realtime: bool = False,
    res: Result | None = None,
) -> None:
    """Send ``pcm`` as ``transcribe``, ``audio-start``, ``chunk_ms`` chunks, ``audio-stop``.

    ``realtime``: chunk ``k`` is sent ``k * chunk_ms`` after the first (a deadline schedule,
    so a late wake-up does not slow the stream down), as a microphone would; otherwise as
    fast as the server's backpressure lets it. ``res`` gets the send times.
    """
    loop = asyncio.get_running_loop()
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    await client.write_event(Transcribe(language="en-US").event())  # served as "en"
    await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
    step = rate * chunk_ms // 1000
    t0 = loop.time()
    for k, i in enumerate(range(0, len(pcm), step)):
        if realtime:
            await asyncio.sleep(max(0.0, t0 + k * chunk_ms / 1000 - loop.time()))
        if res is not None and k == 0:
            res.first_audio_s = time.monotonic()
        audio = pcm[i : i + step].tobytes()
        await client.write_event(AudioChunk(rate, width, channels, audio).event())
    if res is not None:
        res.stop_s = time.monotonic()
    await client.write_event(AudioStop().event())


async def _receive(client: AsyncTcpClient, res: Result) -> Result:
    while True:
        event = await client.read_event()
        assert event is not None, f"connection closed after {res.types}"
        res.types.append(event.type)
        if TranscriptChunk.is_type(event.type):
            res.chunks.append(TranscriptChunk.from_event(event).text)
            res.chunk_at_s.append(time.monotonic())
        elif Transcript.is_type(event.type):
            res.text = Transcript.from_event(event).text
        elif Error.is_type(event.type):
            raise AssertionError(f"server error: {event.data}")
        if event.type == "transcript-stop":
            return res


async def transcribe(
    server: Server,
    pcm: NDArray[Any],
    rate: int,
    client: AsyncTcpClient | None = None,
    *,
    realtime: bool = False,
) -> Result:
    """Stream ``pcm`` (int16, frames or frames x channels) and read the transcript events
    (``realtime``: paced at real time, see :func:`_send`)."""
    if client is not None:
        res = Result()
        sender = asyncio.create_task(_send(client, pcm, rate, realtime=realtime, res=res))
        await _receive(client, res)
        await sender
        return res
    async with server.client() as c:
        return await transcribe(server, pcm, rate, c, realtime=realtime)


def assert_well_formed(res: Result) -> None:
    """Start, chunks, transcript, stop; the chunks join into the transcript's text except
    where a final rewrote a committed word already sent (rare: at most one word in ten)."""
    assert res.types[0] == "transcript-start"
    assert res.types[-2:] == ["transcript", "transcript-stop"]
    assert set(res.types[1:-2]) <= {"transcript-chunk"}
    assert wer([res.text], ["".join(res.chunks).strip()]) <= 0.1, (res.chunks, res.text)
    # whole words: each chunk after the first starts with one space and has a word
    assert all(c.startswith(" ") and c[1:].strip() == c[1:] and c[1:] for c in res.chunks[1:])


async def expect_error(client: AsyncTcpClient, code: str) -> str:
    """Read until an ``error`` event (skipping transcript-start); return its text."""
    while True:
        event = await client.read_event()
        assert event is not None, "closed without an error event"
        if Error.is_type(event.type):
            err = Error.from_event(event)
            assert err.code == code, err
            return err.text


@contextlib.contextmanager
def _serving(extra: str, gateway: bool = False) -> Iterator[Server]:
    """A pipeline with no local source serving Wyoming (plus the config text ``extra``)."""
    with instance_scope() as inst:
        port, gateway_port = free_port(), free_port() if gateway else 0
        inst.write_config(
            f'[source]\nkind = "none"\n[wyoming]\nenabled = true\nport = {port}\n{extra}'
            + (f"[gateway]\nenabled = true\nport = {gateway_port}\nmax_streams = 2\n" * gateway)
        )
        srv = Server(inst, port, inst.popen("up", "--quiet"), gateway_port)
        try:
            asyncio.run(_wait_ready(srv))
            yield srv
        finally:
            stop_pipeline(inst, srv.proc)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One pipeline: no local source, accurate finals, Wyoming with 3 streams, the gateway
    with 2.

    The refine budget is 60 s: these tests send faster than real time, several connections
    at once, and check words and isolation, not load shedding (a final past the default 5 s
    budget falls back to the first pass by design; that has its own tests). Under a loaded
    suite two such connections took up to 4.4 s from endpoint to accurate final."""
    with _serving("max_streams = 3\n[refine]\nbudget_s = 60.0\n", gateway=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def idle_server() -> Iterator[Server]:
    """A pipeline whose Wyoming server closes connections idle for 1 s (fast finals)."""
    with _serving('idle_timeout_s = 1\n[refine]\nfinals = "fast"\n') as srv:
        yield srv


async def _wait_ready(srv: Server) -> None:
    deadline = time.monotonic() + 120
    while True:
        if srv.proc.poll() is not None:
            err = srv.err.text(wait_s=5.0)
            raise AssertionError(f"pipeline exited {srv.proc.returncode}: {err[-2000:]}")
        try:
            async with srv.client() as c:
                await c.write_event(Describe().event())
                if await c.read_event() is not None:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the Wyoming server did not answer within 120 s")
        await asyncio.sleep(0.2)


def wait_no_streams(srv: Server) -> None:
    """Every run-time stream closed: no stream ring left in /dev/shm (no local source)."""
    deadline = time.monotonic() + 30
    while srv.inst.segments():
        if time.monotonic() > deadline:
            pytest.fail(f"stream rings left behind: {srv.inst.segments()}")
        time.sleep(0.1)


# ------------------------------------------------------------------------------ pure
def test_pcm_conversion_of_every_width() -> None:
    assert pcm_to_float(np.array([-32768, 16384], "<i2").tobytes(), 2, 1).tolist() == [
        [-1.0],
        [0.5],
    ]
    assert pcm_to_float(bytes([0, 128, 192, 64]), 1, 2).tolist() == [[-1.0, 0.0], [0.5, -0.5]]
    three = bytes([0x00, 0x00, 0x80, 0x00, 0x00, 0x40])  # -2**23, 2**22 little-endian
    assert pcm_to_float(three, 3, 1).tolist() == [[-1.0], [0.5]]
    assert pcm_to_float(np.array([1 << 30], "<i4").tobytes(), 4, 1).tolist() == [[0.5]]
    with pytest.raises(AudioFormatError, match=r"^5 bytes is not a whole number of frames$"):
        pcm_to_float(b"\0" * 5, 2, 1)
    with pytest.raises(AudioFormatError, match=r"^unsupported sample width 5 bytes / 1 channels$"):
        pcm_to_float(b"\0" * 10, 5, 1)


# ------------------------------------------------------------------------------ live
def test_describe_lists_the_asr_and_wake_services(server: Server) -> None:
    async def go() -> Info:
        async with server.client() as c:
            await c.write_event(Describe().event())
            event = await c.read_event()
            assert event is not None and Info.is_type(event.type)
            return Info.from_event(event)

    info = asyncio.run(go())
    (asr,) = info.asr
    assert asr.supports_transcript_streaming
    assert [(md.name, md.languages) for md in asr.models] == [
        ("pocketsphinx", ["en"]),
        ("whisper-base", ["en"]),
    ]
    assert all(md.installed for md in asr.models)  # accurate finals: Whisper is loaded
    (wake,) = info.wake  # the default engine, named as wyoming-microwakeword names it
    assert wake.name == "microWakeWord"
    assert [(md.name, md.phrase, md.languages) for md in wake.models] == [
        ("okay_nabu", "Okay Nabu", ["en"])
    ]


async def detect(server: Server, pcm: NDArray[Any], names: list[str] | None = None) -> list[Event]:
    """A ``detect`` session over ``pcm`` (16 kHz int16); the events until ``not-detected``
    or until the server answers ``audio-stop`` (it closes nothing: a second session follows)."""
    async with server.client() as c:
        await c.write_event(Detect(names=names).event())
        await c.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for i in range(0, len(pcm), 1600):
            await c.write_event(AudioChunk(16000, 2, 1, pcm[i : i + 1600].tobytes()).event())
        await c.write_event(AudioStop().event())
        events: list[Event] = []
        while True:
            event = await c.read_event()
            assert event is not None
            events.append(event)
            if event.type == "not-detected":
                return events
            if event.type == "detection":  # the answer to audio-stop is nothing more: ping
                await c.write_event(Ping(text="done").event())
            if event.type == "pong":
                return events
            if Error.is_type(event.type):
                raise AssertionError(f"server error: {event.data}")


@needs_flite
def test_detect_finds_the_wake_phrase_and_reports_its_absence(server: Server) -> None:
    phrase = say("okay nabu", "kal16")
    speech = clip("conversation2", 0, 2)[0].astype(np.float32) / 32768
    with_phrase = np.concatenate([silence(1.0), phrase, silence(1.0)])
    pcm = (np.concatenate([speech, with_phrase]) * 32767).astype(np.int16)
    events = asyncio.run(detect(server, pcm))
    detections = [Detection.from_event(e) for e in events if Detection.is_type(e.type)]
    assert len(detections) == 1, [e.type for e in events]
    assert detections[0].name == "okay_nabu"
    end_ms = (len(speech) + 16000 + len(phrase)) / 16
    assert detections[0].timestamp is not None
    assert abs(detections[0].timestamp - end_ms) < 350, (detections[0].timestamp, end_ms)
    # a conversation without the phrase: not-detected, and no transcript events either
    quiet = asyncio.run(detect(server, (speech * 32767).astype(np.int16)))
    assert [e.type for e in quiet] == ["not-detected"]
    # names the server does not serve: among served ones they are dropped; alone, a clear
    # error at once instead of a session that could never fire
    mixed = asyncio.run(detect(server, pcm, names=["hey_jarvis", "okay_nabu"]))
    assert [e.type for e in mixed if e.type == "detection"] == ["detection"]

    async def unknown() -> str:
        async with server.client() as c:
            await c.write_event(Detect(names=["hey_jarvis"]).event())
            return await expect_error(c, "bad-request")

    text = asyncio.run(unknown())
    assert "hey_jarvis" in text and "okay_nabu" in text and "\n" not in text, text
    wait_no_streams(server)


@needs_flite
def test_a_second_wake_phrase_in_one_session_gets_a_second_detection(server: Server) -> None:
    """One ``detect`` session (names as Home Assistant sends them, or as it shows them), the
    phrase said twice 4 s apart: two ``detection`` events, in order, then nothing else."""
    phrase = say("okay nabu", "rms")
    gap = silence(4.0)
    pcm = (np.concatenate([silence(1.0), phrase, gap, phrase, silence(1.0)]) * 32767).astype(
        np.int16
    )
    for names in (["okay_nabu"], ["Okay Nabu"]):
        events = asyncio.run(detect(server, pcm, names=names))
        detections = [Detection.from_event(e) for e in events if Detection.is_type(e.type)]
        assert [d.name for d in detections] == ["okay_nabu", "okay_nabu"], events
        first, second = (d.timestamp or 0 for d in detections)
        assert abs(second - first - (len(phrase) + len(gap)) / 16) < 350, (first, second)
    wait_no_streams(server)


def test_whole_conversation_transcript_with_accurate_finals(server: Server) -> None:
    data, rate = sf.read(str(audio_file("conversation1.wav")), dtype="int16")
    refs = [r.text for r in read_tsv(audio_file("conversation1.tsv"))]
    res = asyncio.run(transcribe(server, np.asarray(data), rate))
    assert_well_formed(res)
    assert len(res.chunks) >= 2  # words as they were committed and finals, not one at the end
    assert wer(refs, [res.text]) <= WER_BOUND, res.text
    assert any(c.isupper() for c in res.text), "expected Whisper's (pass 2) cased text"
    wait_no_streams(server)


def test_chunks_stream_while_a_real_time_client_is_still_sending(server: Server) -> None:
    """Issue 15: a client paced at real time (100 ms chunks every 100 ms) gets transcript
    chunks while it is still sending, not only after ``audio-stop``.

    Five commands (about 16 s of audio, the first one's speech over 2.1 s in): the first chunk
    (the first utterance's committed words, or its final) must arrive before the client
    stops. The delay from the first audio to the first chunk is printed, not bounded: on a
    loaded 2-core machine it was 2.8 to 7.9 s (a new stream's first pass started seconds
    behind), which a bound tight enough to mean anything would not survive."""
    pcm, refs = clip("conversation1", 0, 5)
    res = asyncio.run(transcribe(server, pcm, 16000, realtime=True))
    assert_well_formed(res)
    assert wer(refs, [res.text]) <= WER_BOUND, res.text
    first_s = res.chunk_at_s[0] - res.first_audio_s
    early = sum(at < res.stop_s for at in res.chunk_at_s)
    print(
        f"\nwyoming real time: first chunk {first_s:.2f} s after the first audio; "
        f"{early} of {len(res.chunks)} chunks before audio-stop "
        f"({res.stop_s - res.first_audio_s:.1f} s of audio): {res.chunks}"
    )
    assert res.chunk_at_s[0] < res.stop_s, (first_s, res.chunks)
    wait_no_streams(server)


def test_connections_in_sequence_at_several_rates(server: Server) -> None:
    pcm1, refs1 = clip("conversation1", 0, 2)
    pcm2, refs2 = clip("conversation3", 2, 2)
    stereo48, rate48 = sf.read(str(audio_file("conversation1_48k_stereo.wav")), dtype="int16")
    refs3 = [r.text for r in read_tsv(audio_file("conversation1.tsv"))[4:6]]
    a, b = int(13.0 * rate48), int(19.8 * rate48)

    async def go() -> list[Result]:
        out = [await transcribe(server, pcm1, 16000)]
        async with server.client() as c:  # two transcriptions on one connection
            out.append(await transcribe(server, pcm2, 16000, c))
            out.append(await transcribe(server, np.asarray(stereo48[a:b]), rate48, c))
        return out

    results = asyncio.run(go())
    for res, refs in zip(results, (refs1, refs2, refs3), strict=True):
        assert_well_formed(res)
        assert wer(refs, [res.text]) <= WER_BOUND, (refs, res.text)
    wait_no_streams(server)


def test_two_concurrent_connections_keep_their_own_words(server: Server) -> None:
    pcm1, refs1 = clip("conversation1", 0, 3)
    pcm3, refs3 = clip("conversation3", 0, 3)

    async def go() -> tuple[Result, Result]:
        r1, r3 = await asyncio.gather(
            transcribe(server, pcm1, 16000), transcribe(server, pcm3, 16000)
        )
        return r1, r3

    r1, r3 = asyncio.run(go())
    assert wer(refs1, [r1.text]) <= WER_BOUND, r1.text
    assert wer(refs3, [r3.text]) <= WER_BOUND, r3.text
    wait_no_streams(server)


async def _bad_client(server: Server, events: list[Event], code: str) -> str:
    async with server.client() as c:
        for e in events:
            await c.write_event(e)
        text = await expect_error(c, code)
        assert await c.read_event() is None  # the server closed this connection
        return text


async def _garbage_client(server: Server, line: bytes) -> str:
    """Send raw bytes; the ``error`` answer's text (code ``bad-request``), then the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, limit=2**20)
    writer.write(line)
    await writer.drain()
    event = await asyncio.wait_for(async_read_event(reader), READ_TIMEOUT_S)
    assert event is not None and Error.is_type(event.type), event
    error = Error.from_event(event)
    assert error.code == "bad-request", error
    assert await asyncio.wait_for(reader.read(), READ_TIMEOUT_S) == b""  # closed
    writer.close()
    return error.text or ""


#: Header lines that are not Wyoming events: each is answered ``error`` and closed.
GARBAGE = [
    b"this is not json\n",
    b'{"data": {}}\n',  # no type
    b"[1, 2]\n",
    b'"x"\n',
    b"42\n",
    b"[" * 60000 + b"\n",  # deep enough to exhaust the JSON parser's recursion
]


def test_malformed_events_close_only_their_own_connection(server: Server) -> None:
    pcm, refs = clip("conversation1", 2, 2)
    chunk = AudioChunk(16000, 2, 1, b"\0\0" * 160).event()
    start = AudioStart(16000, 2, 1).event()

    async def go() -> tuple[Result, list[str]]:
        good = asyncio.create_task(transcribe(server, pcm, 16000))
        texts = [
            await _bad_client(server, [chunk], "bad-request"),
            await _bad_client(server, [AudioStart(16000, 7, 1).event()], "bad-request"),
            await _bad_client(server, [Event("audio-start", {"rate": 16000})], "bad-request"),
            await _bad_client(
                server, [start, AudioChunk(8000, 2, 1, b"\0\0").event()], "bad-request"
            ),
            await _bad_client(server, [start, start], "bad-request"),
            await _bad_client(server, [Transcribe(language="de").event()], "bad-request"),
        ]
        for line in GARBAGE:
            texts.append(await _garbage_client(server, line))
        return await good, texts

    before = server.counters()["malformed_events"]
    res, texts = asyncio.run(go())
    assert texts == [
        "audio-chunk before audio-start",
        "audio-start width 7 bytes (1, 2, 3 or 4)",
        "missing field 'width'",
        "audio-chunk format 8000 Hz/2 B/1 ch differs from audio-start's 16000 Hz/2 B/1 ch",
        "audio-start while audio is already streaming",
        "language 'de' is not served here; served: en",
        "the event header is not valid JSON",
        "the event header has no string 'type'",
        "the event header must be a JSON object, got list",
        "the event header must be a JSON object, got str",
        "the event header must be a JSON object, got int",
        "the event header is not valid JSON",
    ]
    assert_well_formed(res)
    assert wer(refs, [res.text]) <= WER_BOUND, res.text
    wait_no_streams(server)
    counters = server.counters_reaching(
        {"client_errors": 6 + len(GARBAGE), "malformed_events": before + len(GARBAGE)}
    )
    assert counters["malformed_events"] == before + len(GARBAGE)


def _wyoming_rss(server: Server) -> int:
    for a in server.inst.status()["actors"]:
        if a["id"] == "wyoming":
            return int(a["rss_bytes"])
    raise AssertionError("no wyoming actor in status")


def test_a_declared_ten_gigabyte_payload_is_refused_unread(server: Server) -> None:
    """A header declaring payload_length 1e10: the server answers ``error`` (too-large) before
    a byte of it arrives and closes; 32 MiB sent after that are neither read nor held."""
    before_rss = _wyoming_rss(server)
    before = server.counters().get("oversized_events", 0)

    async def go() -> tuple[bytes, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        header = {"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}}
        writer.write(json.dumps({**header, "payload_length": 10**10}).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)  # before any payload byte
        answer = line + await reader.readexactly(int(json.loads(line).get("data_length", 0)))
        sent = 0
        with contextlib.suppress(OSError, asyncio.TimeoutError):  # closed: writes fail
            for _ in range(32):
                writer.write(b"\0" * 2**20)
                await asyncio.wait_for(writer.drain(), 10)
                sent += 2**20
        writer.close()
        return answer, sent

    answer, sent = asyncio.run(go())
    assert b'"too-large"' in answer and b"payload_length" in answer, answer[:300]
    assert sent < 32 * 2**20  # the server stopped reading: our writes backed up and failed
    assert server.counters_reaching({"oversized_events": before + 1})["oversized_events"] == (
        before + 1
    )
    assert _wyoming_rss(server) - before_rss < 10 * 2**20


async def _gateway_stream(server: Server, pcm: bytes) -> list[dict[str, Any]]:
    """One native-protocol stream through the gateway: ``pcm`` (16 kHz s16le), end; every
    event until ``end`` (or ``error``)."""
    url = f"ws://127.0.0.1:{server.gateway_port}/v1/stream"
    async with await NativeClient.connect(url, sample_rate_hz=16000) as client:
        events: list[dict[str, Any]] = []
        receiver = client.receive_into(events)
        await client.send_audio(pcm)
        await client.end()
        await asyncio.wait_for(receiver, READ_TIMEOUT_S)
        return events


def test_stream_limit_and_abandoned_streams(server: Server) -> None:
    """Wyoming holds at most its own ``max_streams``: the fourth client is refused (error
    ``busy``, closed, counted) while the gateway still opens a stream of its own."""
    start = AudioStart(16000, 2, 1).event()
    noise = np.random.default_rng(1).normal(0, 30, 4000).astype(np.int16).tobytes()
    refused_before = server.counters()["refused"]

    async def go() -> tuple[str, list[dict[str, Any]]]:
        async with server.client() as c1, server.client() as c2, server.client() as c3:
            for c in (c1, c2, c3):
                await c.write_event(start)
                await c.write_event(AudioChunk(16000, 2, 1, noise).event())
                event = await c.read_event()
                assert event is not None and event.type == "transcript-start"
            text = await _bad_client(server, [start], "busy")
            events = await _gateway_stream(server, noise)
        return text, events  # c1..c3 leave without audio-stop

    text, events = asyncio.run(go())
    assert text == "stream limit reached (3)"
    assert [e["type"] for e in events][-1:] == ["end"], events
    wait_no_streams(server)
    counters = server.counters_reaching({"abandoned_streams": 3, "refused": refused_before + 1})
    assert counters["refused"] == refused_before + 1


def test_a_silent_connection_is_closed_and_its_stream_released(idle_server: Server) -> None:
    """``idle_timeout_s = 1``: a client that never sends, and one that starts a stream and
    then sends nothing, are each answered ``error`` (timeout) and closed; the stream ends."""
    start = AudioStart(16000, 2, 1).event()
    chunk = AudioChunk(16000, 2, 1, b"\0\0" * 1600).event()

    async def go() -> tuple[str, str]:
        async with idle_server.client() as quiet, idle_server.client() as stalled:
            await stalled.write_event(start)
            await stalled.write_event(chunk)
            first = await asyncio.wait_for(stalled.read_event(), READ_TIMEOUT_S)
            assert first is not None and first.type == "transcript-start"
            texts = []
            for c in (quiet, stalled):
                texts.append(await asyncio.wait_for(expect_error(c, "timeout"), READ_TIMEOUT_S))
                assert await asyncio.wait_for(c.read_event(), READ_TIMEOUT_S) is None  # closed
            return texts[0], texts[1]

    assert asyncio.run(go()) == ("idle for 1 s", "idle for 1 s")
    wait_no_streams(idle_server)
    counters = idle_server.counters_reaching({"idle_timeouts": 2, "abandoned_streams": 1})
    assert (counters["idle_timeouts"], counters["abandoned_streams"]) == (2, 1)


def test_streams_leave_nothing_in_the_runtime_directory(server: Server) -> None:
    """Each run-time stream's doorbell is a socket file in the runtime directory; opening
    and closing streams must not make the directory grow (424 stale files were found after
    a long run)."""
    wait_no_streams(server)
    baseline = sorted(p.name for p in server.inst.root.iterdir())
    noise = np.random.default_rng(2).normal(0, 30, 8000).astype(np.int16)

    async def go() -> list[Result]:
        out = [await transcribe(server, noise, 16000) for _ in range(2)]
        async with server.client() as c:  # two more on one connection
            out += [await transcribe(server, noise, 16000, c) for _ in range(2)]
        return out

    assert all(r.types[-1] == "transcript-stop" for r in asyncio.run(go()))
    wait_no_streams(server)
    now: list[str] = []
    deadline = time.monotonic() + 30
    while (now := sorted(p.name for p in server.inst.root.iterdir())) != baseline:
        if time.monotonic() > deadline:
            pytest.fail(f"the runtime directory grew: {sorted(set(now) - set(baseline))}")
        time.sleep(0.1)
