"""The gateway's connection cap and opening deadline, on a websockets server in this process:
raw TCP sockets over the cap are answered 503 at once, idle ones are aborted at the
deadline, and every slot comes back (TLS handshakes that never finish included)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from streamasr.actors.errors import ConfigError
from streamasr.actors.frontdoors.admission import Admission, connection_cap, nofile_limit

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("configured", "max_streams", "nofile", "expected"),
    [
        (0, 16, 1024, 64),  # 2 x streams + 32
        (0, 16, 256, 64),  # (256 - 64 - 64) // 2 = 64
        (0, 16, 200, 36),  # held to half the budget: (200 - 64 - 64) // 2
        (0, 1, 1 << 20, 34),
        (100, 16, 1024, 100),  # a configured cap is kept when it fits
        (896, 16, 1024, 896),
    ],
)
def test_connection_cap(configured: int, max_streams: int, nofile: int, expected: int) -> None:
    assert connection_cap(configured, max_streams, nofile) == expected


def test_connection_cap_that_does_not_fit_the_open_file_limit() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^gateway.max_connections: 897 does not fit the open-file limit "
        r"\(1024 - 64 reserved - 4 per stream = 896\); raise `ulimit -n` or lower it$",
    ):
        connection_cap(897, 16, 1024)
    with pytest.raises(
        ConfigError,
        match=r"^gateway.max_streams: 16 streams do not fit the open-file limit \(150\)",
    ):
        connection_cap(0, 16, 150)


def test_nofile_limit_is_this_process_soft_limit() -> None:
    assert nofile_limit() >= 64


@asynccontextmanager
async def gated_server(gate: Admission, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """A websockets server behind ``gate`` that says "hi" to each client; yields its port."""

    async def hello(ws: ServerConnection) -> None:
        await ws.send("hi")
        await ws.wait_closed()

    extra = {"ssl": tls, "ssl_handshake_timeout": gate.open_timeout_s} if tls else {}
    async with serve(
        hello,
        "127.0.0.1",
        0,
        create_connection=gate.connection_class(),
        open_timeout=None,
        **extra,  # type: ignore[arg-type]
    ) as server:
        yield next(iter(server.sockets)).getsockname()[1]


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Yield to the server's loop until ``predicate()``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.01)


def test_sockets_over_the_cap_get_503_and_a_client_gets_in_once_idle_ones_close() -> None:
    counters: dict[str, int] = {}
    gauges: dict[str, float] = {}
    gate = Admission(3, 60.0, counters, gauges)

    async def scenario() -> None:
        async with gated_server(gate) as port:
            idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            # accepted in order: the first three hold every slot, whatever their timing
            # (it sends nothing: a request left unread would turn the server's close into
            # a reset, which a client reading past the answer's Content-Length then sees)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = await reader.read()  # until the server closes it
            writer.close()
            assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer
            assert answer.endswith(b"\r\n\r\nconnection limit reached (3)\n")
            assert counters["connection_cap_refused"] == 1
            assert gauges == {"max_connections": 3.0, "open_connections": 3.0}
            for _, w in idle:
                w.close()
            await until(lambda: gate.held == 0, 10, "the idle sockets' slots")
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                assert await ws.recv() == "hi"
                assert gauges["open_connections"] == 1.0
            await until(lambda: gate.held == 0, 10, "the client's slot")
            assert counters == {"connection_cap_refused": 1, "handshake_timeouts": 0}

    asyncio.run(scenario())


def test_sockets_that_never_finish_the_handshake_are_aborted_and_counted() -> None:
    counters: dict[str, int] = {}
    gauges: dict[str, float] = {}
    gate = Admission(2, 0.3, counters, gauges)

    async def scenario() -> None:
        async with gated_server(gate) as port:
            silent = await asyncio.open_connection("127.0.0.1", port)
            loris = await asyncio.open_connection("127.0.0.1", port)
            loris[1].write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its headers
            assert await silent[0].read() == b""  # aborted by the server
            assert await loris[0].read() == b""
            await until(lambda: gate.held == 0, 10, "the aborted sockets' slots")
            assert counters["handshake_timeouts"] == 2
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                assert await ws.recv() == "hi"
            for _, w in (silent, loris):
                w.close()
        assert counters == {"connection_cap_refused": 0, "handshake_timeouts": 2}

    asyncio.run(scenario())


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for 127.0.0.1 (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    return cert, key


def test_a_tls_handshake_that_never_happens_gives_its_slot_back(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    client_tls.check_hostname = False
    counters: dict[str, int] = {}
    gauges: dict[str, float] = {}
    gate = Admission(1, 0.3, counters, gauges)

    async def scenario() -> None:
        async with gated_server(gate, server_tls) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)  # no TLS hello
            assert await reader.read() == b""  # asyncio's TLS deadline aborted it
            writer.close()
            # asyncio never hands the connection over: the gate's own deadline frees it
            await until(lambda: gate.held == 0, 10, "the slot of the unfinished TLS socket")
            async with connect(f"wss://127.0.0.1:{port}/", ssl=client_tls) as ws:
                assert await ws.recv() == "hi"

    asyncio.run(scenario())


def test_the_gate_over_the_http_router_closes_silent_sockets_and_frees_handed_off_slots() -> None:
    """The gateway's stack: the gate over the request-line router of the OpenAI API. A
    silent socket is dropped at the router's deadline (its methods are not shadowed by the
    gate's), and a socket handed to the HTTP side gives its slot back at once."""
    from streamasr.actors.frontdoors import http_route

    handed: list[asyncio.Protocol] = []

    class Sink(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            handed.append(self)
            transport.close()

    async def go() -> tuple[float, bytes, int]:
        counters: dict[str, int] = {"connection_cap_refused": 0, "handshake_timeouts": 0}
        gate = Admission(4, 5.0, counters, {})
        routed = http_route.routing_connection(lambda m, _p: m == "POST", Sink, 1.0)

        async def handler(ws: ServerConnection) -> None:
            await ws.wait_closed()

        conn_cls = gate.connection_class(routed)
        async with serve(
            handler, "127.0.0.1", 0, create_connection=conn_cls, open_timeout=None
        ) as srv:
            port = next(iter(srv.sockets)).getsockname()[1]
            r, _w = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.monotonic()
            silent = await asyncio.wait_for(r.read(), 10)
            waited = time.monotonic() - t0
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            w2.write(b"POST /v1/audio/transcriptions HTTP/1.1\r\n")
            await asyncio.wait_for(r2.read(), 10)  # the sink closed it
            w2.close()
            return waited, silent, gate.held

    waited, silent, still_open = asyncio.run(go())
    assert silent == b"" and 0.9 <= waited < 5.0
    assert len(handed) == 1 and still_open == 0
