"""The assistant's text to speech and playback, with the real flite and espeak-ng programs and
a small Wyoming TTS server run in the test (it answers with real flite audio)."""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.tts import Synthesize

from streamasr.actors.assistant.playback import (
    DevicePlayer,
    FilePlayer,
    check_output,
    make_player,
    resample,
    safe_stem,
)
from streamasr.actors.assistant.tts import (
    EspeakSynthesizer,
    FliteSynthesizer,
    Speech,
    TtsConfig,
    TtsError,
    WyomingSynthesizer,
    clean_text,
    make_synthesizer,
    wav_to_speech,
)
from streamasr.actors.errors import ConfigError

pytestmark = pytest.mark.timeout(20)

LINE = "Turned on the kitchen light."


def assert_spoken(speech: Speech, low_s: float = 0.5, high_s: float = 5.0) -> None:
    """Non-silent mono int16 audio of a plausible length (seconds) for a short sentence."""
    assert speech.samples.dtype == np.int16
    assert speech.samples.ndim == 1
    assert low_s <= speech.duration_s <= high_s, speech.duration_s
    assert int(np.abs(speech.samples.astype(np.int32)).max()) > 1000


@pytest.fixture(scope="module")
def flite_line() -> Speech:
    """LINE spoken by flite's default voice (8 kHz)."""
    synth = make_synthesizer(TtsConfig(engine="flite"))
    assert synth is not None
    return synth.synthesize(LINE)


# --- flite and espeak-ng -------------------------------------------------------------------


def test_flite_default_voice(flite_line: Speech) -> None:
    assert flite_line.sample_rate_hz == 8000
    assert_spoken(flite_line)


def test_flite_other_voice() -> None:
    speech = FliteSynthesizer(voice="slt").synthesize(LINE)
    assert speech.sample_rate_hz == 16000
    assert_spoken(speech)


def test_flite_unknown_voice_is_refused_at_construction() -> None:
    with pytest.raises(TtsError, match=r"^tts.voice = 'nosuch': flite has no such voice \("):
        FliteSynthesizer(voice="nosuch")


@pytest.mark.parametrize("voice", ["", "en-us"])
def test_espeak(voice: str) -> None:
    speech = EspeakSynthesizer(voice=voice).synthesize(LINE)
    assert speech.sample_rate_hz == 22050
    assert_spoken(speech)


def test_espeak_unknown_voice_is_refused_at_construction() -> None:
    with pytest.raises(TtsError, match=r"^tts.voice = 'nosuch': espeak-ng failed \(exit 1: "):
        EspeakSynthesizer(voice="nosuch")


@pytest.mark.parametrize("engine", ["flite", "espeak-ng"])
@pytest.mark.parametrize("text", ["--help", "-v en -o /tmp/x.wav"])
def test_reply_starting_with_dash_is_spoken(engine: str, text: str) -> None:
    synth = make_synthesizer(TtsConfig(engine=engine))
    assert synth is not None
    assert_spoken(synth.synthesize(text), low_s=0.3)


def test_long_reply_is_cut_at_max_text_chars() -> None:
    short = FliteSynthesizer(max_text_chars=5).synthesize("Hello " + "and more words " * 40)
    whole = FliteSynthesizer().synthesize("Hello")
    assert abs(short.duration_s - whole.duration_s) < 0.05


def test_clean_text_cuts_at_a_word_boundary() -> None:
    assert clean_text("hello wonderful world", 12) == "hello"
    assert clean_text("hello wonderful world", 15) == "hello wonderful"
    assert clean_text("abcdefghijkl", 5) == "abcde"
    assert clean_text("a\x00b\n\tc  d", 50) == "a b c d"


def test_empty_reply_is_empty_speech() -> None:
    speech = FliteSynthesizer().synthesize(" \n ")
    assert speech.duration_s == 0.0


@pytest.mark.parametrize(("engine", "package"), [("flite", "flite"), ("espeak-ng", "espeak-ng")])
def test_missing_program(
    engine: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    message = (
        f"tts.engine = '{engine}': the {engine} program is not installed "
        f"(apt-get install {package})"
    )
    with pytest.raises(TtsError) as caught:
        make_synthesizer(TtsConfig(engine=engine))
    assert str(caught.value) == message


def test_engine_none_has_no_synthesizer() -> None:
    assert make_synthesizer(TtsConfig(engine="none")) is None


def test_wav_with_bogus_length_is_read_to_its_end(flite_line: Speech) -> None:
    pcm = flite_line.samples.astype("<i2").tobytes()
    bogus = (0x7FFFF000).to_bytes(4, "little")
    fmt = (
        (1).to_bytes(2, "little")
        + (1).to_bytes(2, "little")
        + (8000).to_bytes(4, "little")
        + (16000).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
    )
    data = b"RIFF" + bogus + b"WAVEfmt " + (16).to_bytes(4, "little") + fmt + b"data" + bogus
    speech = wav_to_speech(data + pcm + b"\x01")  # and half a sample
    np.testing.assert_array_equal(speech.samples, flite_line.samples)


# --- Wyoming -------------------------------------------------------------------------------

Answer = Callable[
    [Synthesize, Callable[[Event], Coroutine[Any, Any, None]]], Coroutine[Any, Any, None]
]


class WyomingTestServer:
    """A Wyoming TTS server on 127.0.0.1 in a thread with its own event loop; ``answer`` is
    called with each ``synthesize`` and a ``send(event)`` function."""

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self.loop = asyncio.new_event_loop()
        self.requests: list[Synthesize] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self.loop
        ).result(5)
        self.uri = f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def send(event: Event) -> None:
            await async_write_event(event, writer)

        try:
            while (event := await async_read_event(reader)) is not None:
                if Synthesize.is_type(event.type):
                    request = Synthesize.from_event(event)
                    self.requests.append(request)
                    await self._answer(request, send)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        """Stop the server and its handlers (again: nothing)."""
        if self.loop.is_closed():
            return

        async def stop() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], WyomingTestServer]]:
    servers: list[WyomingTestServer] = []

    def start(answer: Answer) -> WyomingTestServer:
        servers.append(WyomingTestServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def chunks(speech: Speech, channels: int = 1, frames: int = 1024) -> list[Event]:
    """``speech`` as Wyoming events: audio-start, audio-chunk..., audio-stop."""
    rate, samples = speech.sample_rate_hz, speech.samples.astype("<i2")
    interleaved = np.repeat(samples, channels)
    step = frames * channels
    events = [AudioStart(rate=rate, width=2, channels=channels).event()]
    for at in range(0, len(interleaved), step):
        audio = interleaved[at : at + step].tobytes()
        events.append(AudioChunk(rate=rate, width=2, channels=channels, audio=audio).event())
    return [*events, AudioStop().event()]


@pytest.mark.parametrize("channels", [1, 2])
def test_wyoming_returns_the_server_audio(
    flite_line: Speech, serve: Callable[[Answer], WyomingTestServer], channels: int
) -> None:
    async def answer(_request: Synthesize, send: Callable[[Event], Any]) -> None:
        for event in chunks(flite_line, channels):
            await send(event)

    server = serve(answer)
    synth = make_synthesizer(TtsConfig(engine="wyoming", wyoming=server.uri, voice="amy"))
    assert synth is not None
    speech = synth.synthesize(" -Turned on\nthe kitchen light. ")
    assert speech.sample_rate_hz == 8000
    np.testing.assert_array_equal(speech.samples, flite_line.samples)
    assert server.requests[0].text == "-Turned on the kitchen light."
    assert server.requests[0].voice is not None
    assert server.requests[0].voice.name == "amy"


def test_wyoming_audio_forever_is_capped(
    flite_line: Speech, serve: Callable[[Answer], WyomingTestServer]
) -> None:
    async def answer(_request: Synthesize, send: Callable[[Event], Any]) -> None:
        events = chunks(flite_line)[1:-1]
        await send(AudioStart(rate=8000, width=2, channels=1).event())
        for _ in range(100000):  # far past the cap; never audio-stop
            for event in events:
                await send(event)

    server = serve(answer)
    synth = WyomingSynthesizer(server.uri, timeout_s=10.0, max_audio_s=5.0)
    with pytest.raises(TtsError, match=r": reply longer than 5 s of audio$"):
        synth.synthesize(LINE)


def test_wyoming_huge_chunk_is_refused(serve: Callable[[Answer], WyomingTestServer]) -> None:
    async def answer(_request: Synthesize, send: Callable[[Event], Any]) -> None:
        await send(AudioChunk(rate=8000, width=2, channels=1, audio=bytes(2 << 20)).event())

    server = serve(answer)
    with pytest.raises(TtsError, match=r"event 'audio-chunk' too large$"):
        WyomingSynthesizer(server.uri).synthesize(LINE)


def test_wyoming_silent_server_times_out(serve: Callable[[Answer], WyomingTestServer]) -> None:
    async def answer(_request: Synthesize, _send: Callable[[Event], Any]) -> None:
        await asyncio.Event().wait()  # never answers

    server = serve(answer)
    synth = WyomingSynthesizer(server.uri, timeout_s=0.5)
    start = time.monotonic()
    with pytest.raises(TtsError) as caught:
        synth.synthesize(LINE)
    assert time.monotonic() - start < 0.5 + 1.0
    assert str(caught.value) == f"tts.wyoming = '{server.uri}': no complete reply within 0.5 s"


def test_wyoming_server_error_and_early_close(serve: Callable[[Answer], WyomingTestServer]) -> None:
    async def error(_request: Synthesize, send: Callable[[Event], Any]) -> None:
        await send(Event("error", {"text": "voice\nnot found"}))

    async def close(_request: Synthesize, send: Callable[[Event], Any]) -> None:
        raise ConnectionError  # the handler closes the connection

    with pytest.raises(TtsError, match=r": server error \(voice not found\)$"):
        WyomingSynthesizer(serve(error).uri).synthesize(LINE)
    with pytest.raises(TtsError, match=r": server closed the connection before audio-stop$"):
        WyomingSynthesizer(serve(close).uri).synthesize(LINE)


def test_wyoming_nobody_listening(serve: Callable[[Answer], WyomingTestServer]) -> None:
    async def nothing(_request: Synthesize, _send: Callable[[Event], Any]) -> None:
        return

    server = serve(nothing)
    uri = server.uri
    server.close()
    with pytest.raises(TtsError, match=r"^tts.wyoming = 'tcp://127.0.0.1:\d+': connection failed"):
        WyomingSynthesizer(uri).synthesize(LINE)


# --- playback ------------------------------------------------------------------------------


def test_file_player_writes_a_wav(flite_line: Speech, tmp_path: Path) -> None:
    out = tmp_path / "replies"
    player = make_player(TtsConfig(output="file", output_dir=str(out)))
    result = player.play(flite_line, "s1-u7")
    assert result.where == str(out / "s1-u7.wav")
    assert result.duration_s == pytest.approx(flite_line.duration_s)
    with wave.open(result.where, "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert wav.getnframes() / wav.getframerate() == pytest.approx(flite_line.duration_s)
    assert sorted(p.name for p in out.iterdir()) == ["s1-u7.wav"]


@pytest.mark.parametrize(
    ("name", "stem"),
    [("../x", "_x"), ("/etc/passwd", "_etc_passwd"), ("..", "speech"), ("a b:c", "a_b_c")],
)
def test_file_player_keeps_names_inside_output_dir(
    flite_line: Speech, tmp_path: Path, name: str, stem: str
) -> None:
    assert safe_stem(name) == stem
    result = FilePlayer(str(tmp_path / "out")).play(flite_line, name)
    assert Path(result.where) == tmp_path / "out" / f"{stem}.wav"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_device_player_without_an_output_device() -> None:
    sd = pytest.importorskip("sounddevice")
    try:
        outputs = [d for d in sd.query_devices() if d["max_output_channels"] > 0]
    except sd.PortAudioError:
        outputs = []
    if outputs:
        pytest.skip("this machine has an audio output device")
    with pytest.raises(TtsError, match=r"^tts.output = 'device': no audio output device \(.*\)$"):
        DevicePlayer("")
    with pytest.raises(TtsError, match=r"^tts.output = 'device': no audio output device"):
        check_output(TtsConfig())
    check_output(TtsConfig(engine="none"))  # no reply is played: nothing to check


def test_resample_keeps_the_duration(flite_line: Speech) -> None:
    out = resample(flite_line.samples, 8000, 48000)
    assert out.dtype == np.int16
    assert len(out) / 48000 == pytest.approx(flite_line.duration_s, abs=1e-3)


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (TtsConfig(engine="piper"), "tts.engine: must be one of flite, espeak-ng, wyoming, none"),
        (TtsConfig(engine="wyoming"), "tts.wyoming: required when tts.engine = 'wyoming'"),
        (
            TtsConfig(engine="wyoming", wyoming="http://host:10200"),
            "tts.wyoming: must be tcp://host:port",
        ),
        (TtsConfig(output="file"), "tts.output_dir: required when tts.output = 'file'"),
        (TtsConfig(output="speaker"), "tts.output: must be one of device, file"),
        (TtsConfig(timeout_s=0.0), "tts.timeout_s: must be > 0"),
        (TtsConfig(max_text_chars=0), "tts.max_text_chars: must be >= 1"),
    ],
)
def test_config_validate(cfg: TtsConfig, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cfg.validate()
    assert str(caught.value) == message


def test_config_defaults_are_valid() -> None:
    TtsConfig().validate()
    TtsConfig(engine="wyoming", wyoming="tcp://localhost:10200").validate()
