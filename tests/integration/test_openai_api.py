"""The OpenAI-compatible API on the gateway's port: real processes and sockets, the official
``openai`` package as the client.

One pipeline (no local source, the gateway with a token, accurate finals) serves the
module. A clip of conversation1 (its first two utterances) is transcribed in every
``response_format`` and as a server-sent event stream, all six at once: each must carry the
words ``up --source CLIP --fast`` gives (the same normalised words) and be close to the
``.tsv`` reference; then the refusals (token, empty and non-audio files, oversize, a
stalled body, a silent connection), a client that goes away mid-transcription, and the
WebSocket doors that share the port. Heartbeats get a 60 s timeout: on a loaded 2-core box
a thorough Whisper batch can hold the refine actor's loop past the default 5 s.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import soundfile as sf
from conftest import (
    Instance,
    PipeTail,
    RefUtterance,
    cut_conversation,
    free_port,
    healthy,
    instance_scope,
    kill_group,
    last_finals,
    parse_events,
    stop_pipeline,
    wait_until,
)
from conftest import wer_of as wer
from websockets.asyncio.client import connect
from wer import normalize_words

pytestmark = pytest.mark.timeout(420)

TOKEN = "s3cret"
MODEL = "whisper-base"
#: ``[openai] max_upload_bytes`` of the module's pipeline (the clip is ~0.2 MB).
MAX_UPLOAD = 1_000_000
#: ``[gateway] idle_timeout_s`` (a stalled body is refused after it; open_timeout 5 s).
IDLE_S = 5.0
CONFIG = f"""heartbeat_timeout_s = 60.0
[source]
kind = "none"
[gateway]
enabled = true
port = {{port}}
token = "{TOKEN}"
idle_timeout_s = {IDLE_S}
[openai]
max_upload_bytes = {MAX_UPLOAD}
"""


@dataclass
class Api:
    """The module's pipeline: the gateway (with the API) on ``port``."""

    inst: Instance
    port: int
    proc: subprocess.Popen[str]
    err: PipeTail = field(init=False)

    def __post_init__(self) -> None:
        PipeTail(self.proc.stdout, lines=10)
        self.err = PipeTail(self.proc.stderr)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, token: str = TOKEN) -> openai.OpenAI:
        """An official client (no retries: each refusal is seen once)."""
        return openai.OpenAI(base_url=self.base_url, api_key=token, max_retries=0, timeout=300)

    def counters(self) -> dict[str, int]:
        """The gateway actor's counters from ``status``."""
        for a in self.inst.status()["actors"]:
            if a["id"] == "gateway":
                return dict(a["counters"])
        raise AssertionError("no gateway actor")

    def wait_counters(self, want: dict[str, int], before: dict[str, int]) -> dict[str, int]:
        """Wait (heartbeats carry counters) until each ``want`` key grew by its value."""
        now: dict[str, int] = {}

        def grown() -> bool:
            now.update(self.counters())
            return all(now.get(k, 0) - before.get(k, 0) >= n for k, n in want.items())

        wait_until(grown, 10, f"gateway counters {want}")
        return now


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RefUtterance]]:
    """conversation1's first two utterances (16 kHz mono WAV) and their references."""
    return cut_conversation("conversation1", 2, tmp_path_factory.mktemp("oai") / "clip.wav")


@pytest.fixture(scope="module")
def file_words(clip: tuple[Path, list[RefUtterance]]) -> list[str]:
    """The normalised words of ``up --source CLIP --fast --json`` (accurate finals)."""
    with instance_scope() as inst:
        inst.write_config("heartbeat_timeout_s = 60.0\n")
        res = inst.cli("up", "--source", str(clip[0]), "--fast", "--json", timeout_s=300)
        assert res.returncode == 0, res.stderr
    finals = last_finals(parse_events(res.stdout))
    assert {e["pass"] for e in finals} == {2}, finals
    return normalize_words(" ".join(e["text"] for e in finals))


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    """The pipeline, once ``/healthz`` answers."""
    with instance_scope() as inst:
        port = free_port()
        inst.write_config(CONFIG.format(port=port))
        server = Api(inst, port, inst.popen("up", "--quiet"))
        deadline = time.monotonic() + 120
        while not healthy(port):
            if server.proc.poll() is not None or time.monotonic() > deadline:
                kill_group(server.proc)
                raise AssertionError(f"the gateway did not come up: {server.err.text(5.0)}")
            time.sleep(0.1)
        try:
            yield server
        finally:
            stop_pipeline(inst, server.proc)


def http(
    api: Api, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers of one plain HTTP request (errors included)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{api.port}{path}", data=body or None, method=method
    )
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.status), r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(), dict(exc.headers)


def _wav_bytes(seconds: float) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * 16000), np.int16), 16000, format="WAV")
    return buf.getvalue()


def _transcribe(client: openai.OpenAI, path: Path, how: str) -> tuple[str, Any]:
    """(text, whole result) of one request: a ``response_format``, ``words`` (verbose_json
    with word timestamps) or ``stream``."""
    with path.open("rb") as f:
        if how == "stream":
            events = list(client.audio.transcriptions.create(model=MODEL, file=f, stream=True))
            return events[-1].text, events
        if how == "words":
            r = client.audio.transcriptions.create(
                model=MODEL, file=f, response_format="verbose_json",
                timestamp_granularities=["word"],
            )  # fmt: skip
            return r.text, r
        r = client.audio.transcriptions.create(model=MODEL, file=f, response_format=how)  # type: ignore[call-overload]
    return (r if isinstance(r, str) else r.text), r


def _cue_text(subtitles: str) -> str:
    """The text lines of SRT / WebVTT cues."""
    lines = [ln for ln in subtitles.splitlines() if ln and ln != "WEBVTT"]
    return " ".join(ln for ln in lines if "-->" not in ln and not ln.isdigit())


def test_every_format_has_the_words_of_up_fast(
    api: Api, clip: tuple[Path, list[RefUtterance]], file_words: list[str]
) -> None:
    path, refs = clip
    before = api.counters()
    client = api.client()
    assert [m.id for m in client.models.list()] == [MODEL]
    assert client.models.retrieve("whisper-1").id == "whisper-1"
    hows = ("json", "text", "srt", "vtt", "words", "stream")
    with ThreadPoolExecutor(len(hows)) as pool:  # six uploads at once: six streams
        done = pool.map(lambda h: _transcribe(client, path, h), hows)
        results = dict(zip(hows, done, strict=True))
    texts = {h: r[0] for h, r in results.items()}
    texts["srt"] = _cue_text(texts["srt"])
    texts["vtt"] = _cue_text(texts["vtt"])
    for how, text in texts.items():
        assert normalize_words(text) == file_words, (how, text, file_words)
    assert wer([r.text for r in refs], [texts["json"]]) <= 0.1, texts["json"]
    # the formats' own shapes
    assert results["json"][1].usage.seconds == pytest.approx(sf.info(str(path)).duration, abs=1)
    assert results["text"][1].endswith("\n")
    srt = results["srt"][1]
    assert srt.startswith("1\n00:00:00,") and f"\n{len(refs)}\n00:00:" in srt
    assert results["vtt"][1].startswith("WEBVTT\n\n00:00:")
    verbose = results["words"][1]
    assert verbose.segments is None and verbose.language == "english"
    words = verbose.words
    assert [w.word for w in words] == texts["json"].split()
    assert all(w.start <= w.end for w in words)
    assert all(a.end <= b.start + 1e-3 for a, b in itertools.pairwise(words))
    assert abs(words[0].start - refs[0].start_s) < 0.5
    assert abs(words[-1].end - refs[-1].end_s) < 0.5
    events = results["stream"][1]
    assert [e.type for e in events] == ["transcript.text.delta"] * len(refs) + [
        "transcript.text.done"
    ]
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    after = api.wait_counters({"api_transcriptions": 6, "streams_completed": 6}, before)
    assert after["frames_in"] - before.get("frames_in", 0) == 6 * sf.info(str(path)).frames


def test_refusals_are_openai_errors_and_counted(api: Api) -> None:
    before = api.counters()
    with pytest.raises(openai.AuthenticationError) as auth:
        api.client("wrong").models.list()
    assert auth.value.body == {
        "message": "missing or wrong API key (Authorization: Bearer <the gateway's token>)",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
    status, body, headers = http(api, "GET", "/v1/models")  # no token at all
    assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
    assert headers["Connection"] == "close"
    client = api.client()
    with pytest.raises(openai.AuthenticationError):
        api.client("wrong").audio.transcriptions.create(model=MODEL, file=("a.wav", _wav_bytes(1)))
    with pytest.raises(openai.BadRequestError, match=r"the file is empty \(0 bytes\)") as empty:
        client.audio.transcriptions.create(model=MODEL, file=("a.wav", b""))
    assert empty.value.body["param"] == "file" and empty.value.code == "invalid_file"
    with pytest.raises(openai.BadRequestError, match="invalid file format: not audio"):
        client.audio.transcriptions.create(model=MODEL, file=("a.wav", b"<html>no audio</html>"))
    with pytest.raises(openai.BadRequestError, match="model 'gpt-4o-transcribe' does not exist"):
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("a.wav", b"x"))
    # over max_upload_bytes: read up to the limit and refused, or refused by Content-Length
    for seconds in (40.0, 80.0):  # 1.28 MB (under the form slack), 2.56 MB (over it)
        with pytest.raises(openai.APIStatusError, match=r"over the|larger than") as big:
            client.audio.transcriptions.create(model=MODEL, file=("a.wav", _wav_bytes(seconds)))
        assert big.value.status_code == 413 and big.value.code == "file_too_large"
    status, body, _ = http(api, "POST", "/", b"x", {"Content-Type": "text/plain"})
    assert status == 404 and json.loads(body)["error"]["message"] == "no route POST /"
    api.wait_counters(
        {
            "api_auth_failures": 3,
            "api_bad_audio": 2,
            "api_bad_requests": 1,
            "api_oversize": 2,
            "api_status_400": 3,
            "api_status_401": 3,
            "api_status_413": 2,
            "api_not_found": 1,
        },
        before,
    )


def _raw(api: Api) -> socket.socket:
    return socket.create_connection(("127.0.0.1", api.port), timeout=30)


def _read_all(sock: socket.socket, until: Callable[[bytes], bool]) -> bytes:
    data = b""
    while not until(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_stalled_body_and_a_silent_connection_are_bounded(api: Api) -> None:
    before = api.counters()
    with _raw(api) as stalled, _raw(api) as silent:
        t0 = time.monotonic()
        head = (
            "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: 5000\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-base\r\n'
        )
        stalled.sendall(head.encode())
        reply = _read_all(stalled, lambda d: b"\r\n\r\n" in d and d.endswith(b"}}"))
        assert reply.startswith(b"HTTP/1.1 408 "), reply
        assert b'"message": "the request body stalled for 5 s"' in reply
        assert IDLE_S - 0.5 <= time.monotonic() - t0 < 3 * IDLE_S
        assert _read_all(silent, lambda d: False) == b""  # closed by the open timeout
        assert time.monotonic() - t0 < 3 * IDLE_S
    api.wait_counters({"api_idle_timeouts": 1, "api_status_408": 1}, before)


def test_a_client_that_goes_away_ends_its_stream(
    api: Api, clip: tuple[Path, list[RefUtterance]]
) -> None:
    """The stream is ended at what was written, drained by the pipeline, and its ring
    unlinked; the gateway counts the abort."""
    baseline = api.inst.segments()
    before = api.counters()
    boundary = "streamasrtest"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (("model", MODEL), ("stream", "true"))
    ]
    audio = clip[0].read_bytes()
    body = (
        b"".join(parts)
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + audio
        + f"\r\n--{boundary}--\r\n".encode()
    )
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    )
    with _raw(api) as sock:
        sock.sendall(head.encode() + body)
        got = _read_all(sock, lambda d: b"transcript.text.delta" in d)
        assert got.startswith(b"HTTP/1.1 200 ") and b"text/event-stream" in got, got
    api.wait_counters({"aborted": 1, "streams_opened": 1}, before)
    wait_until(lambda: api.inst.segments() == baseline, 120, "the stream's ring to be unlinked")


def test_the_websocket_doors_still_answer_on_the_same_port(api: Api) -> None:
    assert http(api, "GET", "/healthz")[:2] == (200, "ok\n")
    assert http(api, "GET", "/metrics")[0] == 401
    status, text, _ = http(api, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and 'counter="api_requests"' in text

    async def native_start() -> dict[str, Any]:
        async with connect(f"ws://127.0.0.1:{api.port}/v1/stream?token={TOKEN}") as ws:
            await ws.send('{"type": "start", "sample_rate": 16000}')
            return dict(json.loads(await ws.recv()))

    assert asyncio.run(native_start())["type"] == "advice"
