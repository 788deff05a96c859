"""An open the supervisor answers too late leaks nothing (issue 20, item 4).

The supervisor is stopped (SIGSTOP) while a WebSocket client opens a stream, so the
gateway's wait for the supervisor's answer times out and the client is refused. When the
supervisor resumes it reads the open, and then the gateway's end of that stream: the ring,
its ``/dev/shm`` segment, the inference decoder and the stream slot all go again, and the
next open is served. Every wait is a reply or a polled deadline; the stop lasts exactly
until the client's refusal arrives.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import soundfile as sf
from conftest import (
    Instance,
    PipeTail,
    cut_conversation,
    free_port,
    healthy,
    stop_pipeline,
    wait_until,
)
from websockets.asyncio.client import connect

from streamasr.actors.frontdoors.client import stream_file

#: Streams the pipeline serves from its own config (the quiet local file).
LOCAL_STREAMS = 1


class Pipeline:
    """``up`` with the gateway enabled and a 0.5 s quiet local file (fast first pass only)."""

    def __init__(self, inst: Instance) -> None:
        """Start it and wait (polled deadline) until the gateway answers ``/healthz``."""
        self.inst = inst
        self.port = free_port()
        quiet = inst.base / "quiet.wav"
        noise = np.random.default_rng(0).normal(0, 30, 8000).astype(np.int16)
        sf.write(str(quiet), noise, 16000, subtype="PCM_16")
        inst.write_config(
            f'[source]\nkind = "file"\npath = "{quiet}"\nrealtime = false\n'
            f'[refine]\nfinals = "fast"\n[gateway]\nenabled = true\nport = {self.port}\n'
        )
        self.proc = inst.popen("up", "--quiet")
        self.err = PipeTail(self.proc.stderr)
        self.out = PipeTail(self.proc.stdout, lines=10)
        wait_until(self._healthy, 90, "the gateway's /healthz")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"pipeline exited {self.proc.returncode}: {self.err.text(5)}")
        return healthy(self.port)

    @property
    def url(self) -> str:
        """The native protocol's endpoint."""
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    def leftovers(self) -> dict[str, Any]:
        """What run-time streams hold now: rings in status, segments, decoders of the
        inference workers (None until every worker has reported its count), restarts."""
        status = self.inst.status()
        workers = [a for a in status["actors"] if a["id"].startswith("inference")]
        counts = [a["gauges"].get("streams") for a in workers]
        return {
            "rings": sorted({r["stream_id"] for r in status["rings"]} - {"s0"}),
            "segments": [s for s in self.inst.segments() if "-ws-" in s],
            "decoders": None if None in counts else int(sum(counts)),
            "restarts": sum(a["restarts"] for a in status["actors"]),
        }


@pytest.fixture
def pipeline(instance: Instance) -> Iterator[Pipeline]:
    """A running gateway pipeline, stopped (``down``) after the test."""
    p = Pipeline(instance)
    try:
        yield p
    finally:
        stop_pipeline(instance, p.proc)


async def refused_open(url: str) -> tuple[dict[str, Any], int | None]:
    """Open a stream and wait for the gateway's answer: (last message, close code)."""
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
        await ws.wait_closed()
        return reply, ws.close_code


@pytest.mark.timeout(180)
def test_open_answered_too_late_releases_ring_segment_decoder_and_slot(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    state: dict[str, Any] = {}

    def released() -> bool:
        state.update(pipeline.leftovers())
        return state["rings"] == state["segments"] == [] and state["decoders"] == LOCAL_STREAMS

    wait_until(released, 30, "every inference worker's decoder count")
    sup = psutil.Process(pipeline.proc.pid)
    os.kill(sup.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: sup.status() == psutil.STATUS_STOPPED, 10, "the supervisor to stop")
        t0 = time.monotonic()
        reply, code = asyncio.run(refused_open(pipeline.url))
        waited_s = time.monotonic() - t0
    finally:
        os.kill(sup.pid, signal.SIGCONT)
    # the gateway gave up waiting for the supervisor (5 s), not something else
    assert reply == {
        "type": "error",
        "code": 1013,
        "message": "stream refused: no answer opening stream ws-1",
    }, reply
    assert code == 1013 and waited_s >= 5.0, (code, waited_s)
    # the supervisor read the open late, then the gateway's end: nothing of ws-1 remains
    wait_until(released, 30, "ws-1's ring, segment and decoder to go")
    assert state["restarts"] == 0, state  # the stall convicted nobody either
    # ... and the slot is free: the next open is served to its final
    wav, _ = cut_conversation("conversation1", 1, tmp_path / "one.wav")
    events = asyncio.run(stream_file(pipeline.url, wav))
    finals = [e["text"] for e in events if e["type"] == "final" and e["text"]]
    assert events[-1] == {"type": "end"} and finals, events[-3:]
    wait_until(released, 30, "ws-2's ring, segment and decoder to go")
