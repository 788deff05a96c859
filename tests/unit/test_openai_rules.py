"""The OpenAI-compatible API's pure parts: form validation, response formats, routing of
request lines, model ids and the error shape (the pipeline end to end is in
tests/integration/test_openai_api.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from streamasr.actors import messages as m
from streamasr.actors.frontdoors import openai_formats as fmt
from streamasr.actors.frontdoors.http_route import request_target
from streamasr.actors.frontdoors.openai_api import model_ids, wants_http
from streamasr.actors.frontdoors.openai_errors import ApiError
from streamasr.actors.frontdoors.openai_form import Upload, parse_form
from streamasr.actors.frontdoors.openai_transcribe import open_audio
from streamasr.actors.settings import RefineConfig

MODELS = ("whisper-base", "whisper-1")
FILE = Upload(b"RIFF", "a.wav")


def _form(**fields: Any) -> dict[str, list[str]]:
    base: dict[str, Any] = {"model": "whisper-base", **fields}
    return {k: v if isinstance(v, list) else [v] for k, v in base.items()}


def test_defaults_of_a_minimal_form() -> None:
    req = parse_form(_form(), FILE, MODELS)
    assert (req.model, req.response_format, req.stream, req.language) == (
        "whisper-base",
        "json",
        False,
        "",
    )
    assert req.granularities == frozenset({"segment"})


def test_every_field_the_openai_client_sends() -> None:
    form = _form(
        language="en",
        prompt="kitchen",
        response_format="verbose_json",
        temperature="0.0",
        stream="true",
        **{"timestamp_granularities[]": ["word", "segment"], "include[]": "logprobs"},
    )
    req = parse_form(form, FILE, MODELS)
    assert req.granularities == frozenset({"word", "segment"})
    assert (req.language, req.prompt, req.stream) == ("en", "kitchen", True)
    assert parse_form(_form(model="whisper-1"), FILE, MODELS).model == "whisper-1"


@pytest.mark.parametrize(
    ("form", "upload", "message", "param"),
    [
        (_form(), None, "'file' is required (an audio file)", "file"),
        ({}, FILE, "'model' is required", "model"),
        (
            _form(model="gpt-4o-transcribe"),
            FILE,
            "model 'gpt-4o-transcribe' does not exist (use one of: whisper-base, whisper-1)",
            "model",
        ),
        (
            _form(language="fr"),
            FILE,
            "language 'fr' is not supported (this server transcribes: en)",
            "language",
        ),
        (
            _form(response_format="xml"),
            FILE,
            "response_format 'xml' is not one of json, text, srt, vtt, verbose_json",
            "response_format",
        ),
        (
            _form(**{"timestamp_granularities[]": "word"}),
            FILE,
            "response_format must be set verbose_json to use timestamp granularities",
            "timestamp_granularities",
        ),
        (
            _form(response_format="verbose_json", **{"timestamp_granularities[]": "token"}),
            FILE,
            "timestamp_granularities: 'token' is not word or segment",
            "timestamp_granularities",
        ),
        (_form(stream="maybe"), FILE, "'stream' must be true or false", "stream"),
        (_form(temperature="hot"), FILE, "temperature must be a number in 0..1", "temperature"),
        (_form(temperature="nan"), FILE, "temperature must be a number in 0..1", "temperature"),
        (_form(model=["whisper-base", "whisper-1"]), FILE, "'model' given 2 times", "model"),
    ],
)
def test_bad_fields_are_400_naming_the_field(
    form: dict[str, list[str]], upload: Upload | None, message: str, param: str
) -> None:
    with pytest.raises(ApiError) as err:
        parse_form(form, upload, MODELS)
    assert (err.value.status, err.value.message, err.value.param) == (400, message, param)


def test_the_error_shape_is_openais() -> None:
    body = json.loads(ApiError(400, "bad", param="file", code="invalid_file").json())
    assert body == {
        "error": {
            "message": "bad",
            "type": "invalid_request_error",
            "param": "file",
            "code": "invalid_file",
        }
    }
    assert ApiError(503, "down").body()["error"]["type"] == "server_error"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty (0 bytes)"),
        (b"not audio at all " * 20, "invalid file format: not audio this server decodes"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "invalid file format"),
    ],
)
def test_what_is_not_audio_is_400(data: bytes, message: str) -> None:
    with pytest.raises(ApiError, match=re.escape(message)) as err:
        open_audio(data, 60.0)
    assert (err.value.status, err.value.param, err.value.counter) == (400, "file", "bad_audio")


def _wav(seconds: float, rate_hz: int = 16000, channels: int = 1) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(seconds * rate_hz), channels), np.int16), rate_hz, format="WAV")
    return buf.getvalue()


def test_audio_bounds() -> None:
    with pytest.raises(ApiError, match=r"audio file is too short \(minimum 0.1 s\)"):
        open_audio(_wav(0.05), 60.0)
    with pytest.raises(ApiError, match="audio is longer than 2 s"):
        open_audio(_wav(3.0), 2.0)
    with pytest.raises(ApiError, match=r"sample rate 4000 Hz is outside 8000\.\.192000"):
        open_audio(_wav(1.0, rate_hz=4000), 60.0)
    with pytest.raises(ApiError, match="9 channels"):
        open_audio(_wav(1.0, channels=9), 60.0)
    audio = open_audio(_wav(1.0, rate_hz=48000, channels=2), 60.0)
    assert (audio.samplerate, audio.channels, audio.frames) == (48000, 2, 48000)
    audio.close()


def _final(uid: str, text: str, words: list[list[Any]], start: float = 0.0) -> m.Transcript:
    return m.Transcript("oai-1", uid, 3, True, 2, text, start, start + 3.0, words, 0.1, {})


SEGMENTS = [
    fmt.Segment.of(
        _final(
            "a",
            "Turn on the lights.",
            [
                [" Turn", 0.5, 0.8, 0.9],
                [" on", 0.8, 1.0, 0.8],
                [" the", 1.0, 1.1, 0.9],
                [" lights.", 1.1, 1.6, 0.7],
            ],
        )
    ),
    fmt.Segment.of(_final("b", "Stop.", [], start=3661.25)),
]


def test_segments_take_their_times_from_the_words() -> None:
    assert SEGMENTS[0] == fmt.Segment(
        "Turn on the lights.",
        0.5,
        1.6,
        (("Turn", 0.5, 0.8, 0.9), ("on", 0.8, 1.0, 0.8), ("the", 1.0, 1.1, 0.9),
         ("lights.", 1.1, 1.6, 0.7)),
    )  # fmt: skip
    assert (SEGMENTS[1].start_s, SEGMENTS[1].end_s) == (3661.25, 3664.25)  # no words: the bounds


def test_text_json_srt_vtt() -> None:
    none = frozenset({"segment"})
    assert fmt.render("text", SEGMENTS, 3665.0, none) == (
        "Turn on the lights. Stop.\n",
        "text/plain; charset=utf-8",
    )
    body, ctype = fmt.render("json", SEGMENTS, 3664.2, none)
    assert ctype == "application/json"
    assert json.loads(body) == {
        "text": "Turn on the lights. Stop.",
        "usage": {"type": "duration", "seconds": 3665},
    }
    assert fmt.render("srt", SEGMENTS, 3665.0, none)[0] == (
        "1\n00:00:00,500 --> 00:00:01,600\nTurn on the lights.\n\n"
        "2\n01:01:01,250 --> 01:01:04,250\nStop.\n\n"
    )
    assert fmt.render("vtt", SEGMENTS, 3665.0, none)[0] == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.600\nTurn on the lights.\n\n"
        "01:01:01.250 --> 01:01:04.250\nStop.\n\n"
    )
    assert fmt.render("srt", [], 1.0, none)[0] == ""
    assert fmt.render("vtt", [], 1.0, none)[0] == "WEBVTT\n\n"


def test_verbose_json_by_granularity() -> None:
    words = json.loads(fmt.render("verbose_json", SEGMENTS, 5.0, frozenset({"word"}))[0])
    assert "segments" not in words
    assert words["words"][0] == {"word": "Turn", "start": 0.5, "end": 0.8}
    assert [w["word"] for w in words["words"]] == ["Turn", "on", "the", "lights."]
    assert (words["task"], words["language"], words["duration"]) == ("transcribe", "english", 5.0)
    both = json.loads(fmt.render("verbose_json", SEGMENTS, 5.0, frozenset({"word", "segment"}))[0])
    seg = both["segments"][0]
    assert (seg["id"], seg["start"], seg["end"], seg["text"]) == (
        0,
        0.5,
        1.6,
        "Turn on the lights.",
    )
    assert seg["avg_logprob"] < 0.0 and seg["compression_ratio"] > 0.0
    assert set(seg) >= {"seek", "tokens", "temperature", "no_speech_prob"}
    assert len(both["words"]) == 4


def test_stream_events_concatenate_to_the_done_text() -> None:
    deltas = [fmt.delta_event(s, first=i == 0) for i, s in enumerate(SEGMENTS)]
    done = fmt.done_event(SEGMENTS)
    assert "".join(d["delta"] for d in deltas) == done["text"] == "Turn on the lights. Stop."
    assert fmt.sse(done) == (
        b'data: {"type": "transcript.text.done", "text": "Turn on the lights. Stop."}\n\n'
    )


@pytest.mark.parametrize(
    ("line", "target", "http"),
    [
        (b"POST /v1/audio/transcriptions HTTP/1.1\r\n", ("POST", "/v1/audio/transcriptions"), True),
        (b"GET /v1/models?x=1 HTTP/1.1\r\n", ("GET", "/v1/models"), True),
        (b"GET /v1/models/whisper-1 HTTP/1.1\r\n", ("GET", "/v1/models/whisper-1"), True),
        (b"GET /v1/audio HTTP/1.1\r\n", ("GET", "/v1/audio"), True),
        (b"OPTIONS / HTTP/1.1\r\n", ("OPTIONS", "/"), True),
        (b"POST / HTTP/1.1\r\n", ("POST", "/"), True),
        (b"GET / HTTP/1.1\r\n", ("GET", "/"), False),  # Vosk / classic
        (b"GET /v1/stream?token=x HTTP/1.1\r\n", ("GET", "/v1/stream"), False),
        (b"GET /v1/status HTTP/1.1\r\n", ("GET", "/v1/status"), False),
        (b"GET /v1/modelsx HTTP/1.1\r\n", ("GET", "/v1/modelsx"), False),
        (b"GET /metrics HTTP/1.1\r\n", ("GET", "/metrics"), False),
        (b"\x16\x03\x01 garbage\r\n", ("", ""), False),  # websockets answers and closes
        (b"GET /\r\n", ("", ""), False),
    ],
)
def test_request_lines_route_to_http_or_websockets(
    line: bytes, target: tuple[str, str], http: bool
) -> None:
    assert request_target(line) == target
    assert (bool(target[0]) and wants_http(*target)) is http


def test_model_ids_follow_the_refine_section() -> None:
    assert model_ids(RefineConfig()) == ("whisper-base", "whisper-1")
    assert model_ids(RefineConfig(model="/models/whisper-small-ct2")) == (
        "whisper-small-ct2",
        "whisper-1",
    )
    assert model_ids(RefineConfig(model="large v3")) == ("whisper-large-v3", "whisper-1")
    assert model_ids(RefineConfig(finals="fast")) == ("pocketsphinx-en-us",)
