"""The WebSocket gateway as real processes and sockets: three protocols, limits, errors.

One gateway pipeline (fast finals) serves the module's tests; each protocol's client
streams conversation1 faster than real time (the gateway's backpressure paces it) and its
finals must equal those of ``up --source`` on the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import (
    Instance,
    PipeTail,
    audio_file,
    cut_conversation,
    free_port,
    instance_scope,
    kill_group,
    last_finals,
    parse_events,
    stop_pipeline,
    wait_until,
)
from conftest import wer_of as wer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from streamasr.actors.frontdoors.client import (
    NativeClient,
    classic_client,
    stream_file,
    vosk_client,
)

pytestmark = pytest.mark.timeout(240)


def http_get(url: str, token: str = "") -> tuple[int, str]:
    """Status and body of a GET (HTTP errors included)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


@dataclass
class GatewayProc:
    """A running pipeline with the gateway enabled (its output drained from the start)."""

    inst: Instance
    port: int
    proc: subprocess.Popen[str]
    out: PipeTail = field(init=False)
    err: PipeTail = field(init=False)

    def __post_init__(self) -> None:
        self.out = PipeTail(self.proc.stdout, lines=10)
        self.err = PipeTail(self.proc.stderr)

    def stderr_tail(self) -> str:
        """What the pipeline wrote to stderr (all of it once it has exited)."""
        return self.err.text(wait_s=5.0 if self.proc.poll() is not None else 0.0)

    @property
    def url(self) -> str:
        """Base ws:// URL."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        """Base http:// URL."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the pipeline (``down``) and wait for it."""
        stop_pipeline(self.inst, self.proc)


def start_gateway(
    inst: Instance,
    gateway_toml: str = "",
    finals: str = "fast",
    supervisor_toml: str = "",
    refine_toml: str = "",
) -> GatewayProc:
    """``up -c`` with ``[gateway] enabled`` (+ ``gateway_toml``, ``supervisor_toml`` in
    ``[supervisor]`` and ``refine_toml`` in ``[refine]``); waits for ``/healthz``.

    The local source is 0.5 s of quiet noise; the pipeline keeps serving after it ends.
    """
    port = free_port()
    quiet = inst.base / "quiet.wav"
    noise = np.random.default_rng(0).normal(0, 30, 8000).astype(np.int16)
    sf.write(str(quiet), noise, 16000, subtype="PCM_16")
    inst.write_config(
        supervisor_toml + f'[source]\nkind = "file"\npath = "{quiet}"\nrealtime = false\n'
        f'[refine]\nfinals = "{finals}"\n{refine_toml}\n'
        f"[gateway]\nenabled = true\nport = {port}\n{gateway_toml}\n"
    )
    gw = GatewayProc(inst, port, inst.popen("up", "--quiet"))
    deadline = time.monotonic() + 90
    while True:
        if gw.proc.poll() is not None:
            raise AssertionError(f"pipeline exited {gw.proc.returncode}: {gw.stderr_tail()}")
        try:
            if http_get(f"{gw.http}/healthz")[0] == 200:
                return gw
        except OSError:
            pass
        if time.monotonic() > deadline:
            kill_group(gw.proc)
            raise AssertionError("gateway did not answer /healthz within 90 s")
        time.sleep(0.1)


def gateway_counters(gw: GatewayProc) -> dict[str, int]:
    """The gateway actor's counters from ``status``."""
    for a in gw.inst.status()["actors"]:
        if a["id"] == "gateway":
            return dict(a["counters"])
    raise AssertionError("no gateway actor")


def gateway_after(gw: GatewayProc, t_s: float) -> dict[str, Any]:
    """The gateway actor's status entry from a heartbeat sent after wall time ``t_s``.

    ``status`` answers after it is asked, so a heartbeat ``heartbeat_age_s`` old at the
    answer was sent after ``asked - heartbeat_age_s``: a lower bound on this machine's clock.
    """
    deadline = time.monotonic() + 10
    while True:
        asked = time.time()
        actor = next(a for a in gw.inst.status()["actors"] if a["id"] == "gateway")
        if asked - actor["heartbeat_age_s"] > t_s:
            return dict(actor)
        if time.monotonic() > deadline:
            pytest.fail(f"no gateway heartbeat after {t_s} within 10 s: {actor}")


def wait_for(
    predicate: Any, timeout_s: float, what: str, explain: Callable[[], str] | None = None
) -> None:
    """Poll until ``predicate()``; fail after ``timeout_s`` (with ``explain()`` if given)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            extra = f": {explain()}" if explain is not None else ""
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}{extra}")
        time.sleep(0.1)


def pipeline_state(gw: GatewayProc) -> str:
    """What a failed wait needs: each actor's state and restarts, the open streams, and the
    tail of the pipeline's log (the pipeline is left running)."""
    try:
        status = gw.inst.status()
    except Exception as exc:
        return f"status failed: {exc!r}"
    actors = {a["id"]: (a.get("state"), a.get("restarts")) for a in status.get("actors", [])}
    streams = [s.get("stream_id") for s in status.get("streams", [])]
    return f"actors {actors}; streams {streams}; segments {sorted(gw.inst.segments())}"


async def drain(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every JSON message until the connection closes (with any code)."""
    out: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            out.append(json.loads(await ws.recv()))
    return out


@pytest.fixture(scope="module")
def conversation() -> Path:
    """conversation1.wav (16 kHz mono int16)."""
    return audio_file("conversation1.wav")


@pytest.fixture(scope="module")
def file_finals(conversation: Path) -> list[dict[str, Any]]:
    """The finals of ``up --source conversation1.wav --fast --finals fast``."""
    with instance_scope() as inst:
        res = inst.cli(
            "up", "--source", str(conversation), "--fast", "--json", "--finals", "fast",
            timeout_s=120,
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        return [e for e in last_finals(parse_events(res.stdout)) if e["text"].strip()]


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProc]:
    """One gateway pipeline: fast finals, 3 streams, 2 status feeds, 2 s idle timeout."""
    with instance_scope() as inst:
        gw = start_gateway(inst, "max_streams = 3\nmax_status_feeds = 2\nidle_timeout_s = 2.0\n")
        try:
            yield gw
        finally:
            gw.stop()


def assert_same_finals(expected: list[dict[str, Any]], got: list[tuple[str, float, float]]) -> None:
    """Same utterances: WER <= 0.1 between the transcripts; times within 50 ms per match."""
    assert len(got) == len(expected), (got, [e["text"] for e in expected])
    assert wer([e["text"] for e in expected], [g[0] for g in got]) <= 0.1, got
    for e, (text, start_s, end_s) in zip(expected, got, strict=True):
        if text == e["text"]:
            assert abs(start_s - e["words"][0][1]) <= 0.05, (text, start_s, e)
            assert abs(end_s - e["words"][-1][2]) <= 0.05, (text, end_s, e)


@pytest.mark.extended
def test_three_protocols_at_once_match_the_file_path(
    gateway: GatewayProc, conversation: Path, file_finals: list[dict[str, Any]]
) -> None:
    baseline = gateway.inst.segments()

    async def all_three() -> tuple[Any, Any, Any]:
        return await asyncio.gather(  # type: ignore[return-value]
            vosk_client(gateway.url + "/", conversation),
            classic_client(gateway.url + "/", conversation),
            stream_file(gateway.url + "/v1/stream", conversation),
        )

    vosk, classic, native = asyncio.run(all_three())
    chunks = -(-int(sf.info(str(conversation)).frames) // 3200)
    # Vosk: one reply per audio message, results after eof; words carry the times.
    assert sum(1 for r in vosk[:chunks]) == chunks
    results = [r for r in vosk if "result" in r and r["text"]]
    assert_same_finals(
        file_finals, [(r["text"], r["result"][0]["start"], r["result"][-1]["end"]) for r in results]
    )
    assert all(set(r) <= {"partial", "result", "text"} for r in vosk)
    # Classic: one reply per audio message, then every remaining final.
    assert all(r["type"] == "transcription" for r in classic)
    assert len(classic) >= chunks
    cfinals = [r for r in classic if r["is_final"]]
    assert [r["text"] for r in cfinals] == [r["text"] for r in results] or wer(
        [e["text"] for e in file_finals], [r["text"] for r in cfinals]
    ) <= 0.1
    # Native: every event, advice, end.
    assert native[-1] == {"type": "end"}
    assert any(e["type"] == "advice" and 50 <= e["chunk_ms"] <= 200 for e in native)
    nfinals = [e for e in native if e["type"] == "final" and e["text"]]
    assert_same_finals(
        file_finals, [(e["text"], e["words"][0][1], e["words"][-1][2]) for e in nfinals]
    )
    seqs = [e["seq"] for e in native if e["type"] in ("partial", "final")]
    assert seqs == sorted(seqs)
    wait_for(lambda: gateway.inst.segments() == baseline, 20, "stream rings to be unlinked")


def test_limit_malformed_message_and_idle_leave_other_streams_alone(
    gateway: GatewayProc, tmp_path: Path
) -> None:
    short, _ = cut_conversation("conversation1", 1, tmp_path / "one.wav")
    before = gateway_counters(gateway)

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        a = await connect(gateway.url + "/v1/stream")
        await a.send('{"type": "start", "sample_rate": 16000}')
        b = await connect(gateway.url + "/v1/stream")
        await b.send('{"type": "start", "sample_rate": 16000}')
        idle = await connect(gateway.url + "/")
        await b.recv()  # advice: b's stream is open
        extra = await connect(gateway.url + "/")
        out["refused"] = json.loads(await extra.recv())
        await extra.wait_closed()
        out["refused_code"] = extra.close_code
        await a.send('{"type": "start", "oops": ')  # malformed JSON on stream a
        msgs = await drain(a)
        out["malformed"], out["malformed_code"] = msgs[-1], a.close_code
        pcm = np.asarray(sf.read(str(short), dtype="int16")[0], "<i2").tobytes()
        for i in range(0, len(pcm), 6400):
            await b.send(pcm[i : i + 6400])
        await b.send('{"type": "end"}')
        out["b"] = await drain(b)
        await idle.wait_closed()
        out["idle"] = idle.close_code, idle.close_reason
        return out

    out = asyncio.run(scenario())
    assert out["refused"] == {"type": "error", "code": 1013, "message": "stream limit reached (3)"}
    assert out["refused_code"] == 1013
    assert out["malformed"] == {"type": "error", "code": 1007, "message": "malformed JSON message"}
    assert out["malformed_code"] == 1007
    finals = [e["text"] for e in out["b"] if e["type"] == "final" and e["text"]]
    assert wer(["turn on the kitchen lights"], finals) <= 0.2, finals
    assert out["b"][-1] == {"type": "end"}
    assert out["idle"] == (1008, "idle for 2 s")
    after: dict[str, int] = {}
    wait_for(
        lambda: (
            (after.update(gateway_counters(gateway)) or True)
            and after["idle_timeouts"] > before["idle_timeouts"]
        ),
        5,
        "the heartbeat with the new counters",
    )
    assert after["protocol_errors"] - before["protocol_errors"] == 1
    assert after["refused"] - before["refused"] == 1
    assert after["connections"] - before["connections"] == 4
    assert after["close_1007"] - before.get("close_1007", 0) == 1


def test_start_values_of_unexpected_types_are_clean_protocol_errors(gateway: GatewayProc) -> None:
    """A start message with ``"format": ["s16le"]`` (a list where a string goes) or a
    400-digit rate: an error message, close code 1007, counted, and no traceback."""
    before = gateway_counters(gateway)
    starts = [
        '{"type": "start", "format": ["s16le"]}',
        '{"type": "start", "sample_rate": 1' + "0" * 400 + "}",
    ]

    async def one(start: str) -> tuple[list[dict[str, Any]], int | None]:
        ws = await connect(gateway.url + "/v1/stream")
        await ws.send(start)
        return await drain(ws), ws.close_code

    answers = [asyncio.run(one(start)) for start in starts]
    assert answers == [
        ([{"type": "error", "code": 1007, "message": "format must be a string: s16le or f32le"}],
         1007),
        ([{"type": "error", "code": 1007, "message": "sample_rate must be an integer in "
           "8000..192000 Hz"}], 1007),
    ]  # fmt: skip
    after: dict[str, int] = {}
    wait_for(
        lambda: (
            (after.update(gateway_counters(gateway)) or True)
            and after.get("close_1007", 0) - before.get("close_1007", 0) >= 2
        ),
        30,
        "the heartbeat with the new counters",
    )
    assert after["protocol_errors"] - before["protocol_errors"] == 2
    assert "Traceback" not in gateway.stderr_tail()


def test_nan_and_inf_samples_are_repaired_and_counted(gateway: GatewayProc) -> None:
    """f32le audio with NaN/Inf and samples past full scale: the gateway's conditioner
    repairs them and the gateway reports them under the feature stage's counter names, in
    status and in ``/metrics``."""
    before = gateway_counters(gateway)
    repaired = np.zeros(1600, "<f4")
    repaired[10:20], repaired[30:35], repaired[40:45] = np.nan, np.inf, -np.inf
    repaired[50:60] = 3.0  # clipped
    silenced = np.full(1600, np.nan, "<f4")  # > 5 % NaN: the block is zeroed

    async def go() -> list[dict[str, Any]]:
        url = gateway.url + "/v1/stream"
        async with await NativeClient.connect(url, sample_rate_hz=16000, fmt="f32le") as c:
            events: list[dict[str, Any]] = []
            receiver = c.receive_into(events)
            await c.send_audio(repaired.tobytes())
            await c.send_audio(silenced.tobytes())
            await c.end()
            await asyncio.wait_for(receiver, 60)
            return events

    assert asyncio.run(go())[-1] == {"type": "end"}
    after: dict[str, int] = {}
    wait_for(
        lambda: (
            (after.update(gateway_counters(gateway)) or True)
            and after["nan_inf_samples"] - before["nan_inf_samples"] >= 1620
        ),
        30,
        "the heartbeat with the new counters",
    )
    assert after["nan_inf_samples"] - before["nan_inf_samples"] == 1620
    assert after["rejected_chunks"] - before["rejected_chunks"] == 1
    assert after["clipped_samples"] - before["clipped_samples"] == 10
    line = 'streamasr_actor_events_total{actor="gateway",counter="nan_inf_samples"} '
    wait_until(
        lambda: (
            f"{line}{float(after['nan_inf_samples'])}" in http_get(gateway.http + "/metrics")[1]
        ),
        30,
        "the gateway's nan_inf_samples in /metrics",
    )


def test_http_routes(gateway: GatewayProc) -> None:
    assert http_get(gateway.http + "/healthz") == (200, "ok\n")
    up_line = 'streamasr_actor_up{actor="inference"} 1.0'
    # the gateway learns the actors from the status the supervisor publishes once a second
    wait_until(lambda: up_line in http_get(gateway.http + "/metrics")[1], 10, "actors in /metrics")
    status, body = http_get(gateway.http + "/metrics")
    assert status == 200
    assert up_line in body
    assert 'streamasr_gateway_events_total{counter="connections"}' in body
    assert "streamasr_gateway_live_streams" in body
    status, page = http_get(gateway.http + "/ui")
    assert status == 200 and "<title>streamasr" in page
    assert http_get(gateway.http + "/nope")[0] == 404

    async def one_status() -> dict[str, Any]:
        async with connect(gateway.url + "/v1/status") as ws:
            return dict(json.loads(await ws.recv()))

    pushed = asyncio.run(one_status())
    assert pushed["type"] == "status"
    assert {a["id"] for a in pushed["status"]["actors"]} >= {"inference", "gateway"}


def test_status_feed_is_same_origin_capped_and_paced(gateway: GatewayProc) -> None:
    # every count lands before what the client sees of it: a later heartbeat holds them all
    before = gateway_after(gateway, time.time())["counters"]
    own = Origin(f"http://127.0.0.1:{gateway.port}")

    async def handshake_status(path: str, origin: str) -> int:
        try:
            async with connect(gateway.url + path, origin=Origin(origin)):
                return 101
        except InvalidStatus as exc:
            return int(exc.response.status_code)

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["cross"] = [
            await handshake_status(p, "http://evil.example")
            for p in ("/v1/status", "/v1/stream", "/")
        ]
        a = await connect(gateway.url + "/v1/status", origin=own)
        b = await connect(gateway.url + "/v1/status")  # no Origin: not a browser
        out["pushed"] = [json.loads(await ws.recv())["type"] for ws in (a, b)]
        c = await connect(gateway.url + "/v1/status")  # a third feed: over max_status_feeds
        out["third"] = await drain(c), c.close_code
        await b.close()
        sent = 0
        with contextlib.suppress(ConnectionClosed):
            for _ in range(2000):
                await a.send("x")
                sent += 1
        out["flood"], out["flood_code"], out["sent"] = await drain(a), a.close_code, sent
        return out

    out = asyncio.run(scenario())
    assert out["cross"] == [403, 403, 403]
    assert out["pushed"] == ["status", "status"]
    limit = {"type": "error", "code": 1013, "message": "status feed limit reached (2)"}
    assert out["third"] == ([limit], 1013)
    replies = [m for m in out["flood"] if m["type"] == "status"]
    assert len(replies) <= 10, (len(replies), out["sent"])  # one per 0.25 s, not per request
    assert out["flood"][-1] == {
        "type": "error",
        "code": 1008,
        "message": "too many status requests",
    }
    assert out["flood_code"] == 1008
    after = gateway_after(gateway, time.time())["counters"]
    assert after["origin_refused"] - before["origin_refused"] == 3
    assert after["status_feeds"] - before["status_feeds"] == 2
    assert after["status_refused"] - before["status_refused"] == 1
    assert after["status_floods"] - before["status_floods"] == 1
    metrics = http_get(gateway.http + "/metrics")[1]
    for counter in ("origin_refused", "status_feeds", "status_refused", "status_floods"):
        assert f'streamasr_gateway_events_total{{counter="{counter}"}}' in metrics
    assert "streamasr_gateway_status_feeds_open" in metrics


def test_accurate_finals_and_token(tmp_path: Path) -> None:
    short, refs = cut_conversation("conversation1", 2, tmp_path / "two.wav")
    with instance_scope() as inst:
        gw = start_gateway(inst, 'token = "s3cret"\n', finals="accurate")
        try:
            assert http_get(gw.http + "/metrics")[0] == 401
            assert http_get(gw.http + "/metrics", token="s3cret")[0] == 200

            async def refused() -> int:
                try:
                    async with connect(gw.url + "/"):
                        return 101
                except InvalidStatus as exc:
                    return int(exc.response.status_code)

            assert asyncio.run(refused()) == 401
            replies = asyncio.run(vosk_client(gw.url + "/?token=s3cret", short))
        finally:
            gw.stop()
    results = [r["text"] for r in replies if "result" in r and r["text"]]
    assert len(results) == 2, replies
    assert wer([r.text for r in refs], results) <= 0.3, results


def test_connection_cap_refuses_idle_sockets_before_the_handshake(tmp_path: Path) -> None:
    short, refs = cut_conversation("conversation1", 1, tmp_path / "one.wav")
    with instance_scope() as inst:
        gw = start_gateway(inst, "max_streams = 2\nmax_connections = 3\n")
        try:

            def held_after(t_s: float) -> float:
                return float(gateway_after(gw, t_s)["gauges"]["open_connections"])

            t0 = time.time()  # /healthz has answered: nothing else connects from here on
            wait_for(lambda: held_after(t0) == 0.0, 20, "the /healthz sockets to be closed")
            idle = [socket.create_connection(("127.0.0.1", gw.port), 5) for _ in range(3)]
            # accepted in order: the idle three hold every slot, the fourth is refused at once
            with socket.create_connection(("127.0.0.1", gw.port), 5) as extra:
                answer = read_all(extra)
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
            assert answer.endswith(b"\r\n\r\nconnection limit reached (3)\n"), answer
            assert http_get(gw.http + "/healthz") == (503, "connection limit reached (3)\n")
            view = gateway_after(gw, time.time())
            assert view["counters"]["connection_cap_refused"] == 2
            assert view["gauges"]["open_connections"] == 3.0
            assert view["gauges"]["max_connections"] == 3.0
            t1 = time.time()
            for s in idle:
                s.close()
            wait_for(lambda: held_after(t1) == 0.0, 20, "the idle sockets' slots")
            replies = asyncio.run(vosk_client(gw.url + "/", short))
            metrics = http_get(gw.http + "/metrics")[1]
        finally:
            gw.stop()
    results = [r["text"] for r in replies if "result" in r and r["text"]]
    assert wer([r.text for r in refs], results) <= 0.2, results
    assert 'streamasr_gateway_events_total{counter="connection_cap_refused"} 2.0' in metrics
    assert "streamasr_gateway_max_connections 3.0" in metrics


def read_all(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until the peer closes it (5 s per read at most)."""
    out = b""
    while chunk := sock.recv(4096):
        out += chunk
    return out
