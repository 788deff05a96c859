"""``tail | head`` and ``transcript | head``: once stdout's reader has gone the command ends
quietly (exit 141, as SIGPIPE would), with no BrokenPipeError traceback."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from streamasr.actors import messages as m
from streamasr.supervisor.printer import EXIT_BROKEN_PIPE

CLI = [sys.executable, "-m", "streamasr.supervisor.cli"]
#: Seconds a command may take to notice its reader is gone (interpreter start included).
DEADLINE_S = 30.0


def _final(i: int) -> m.Transcript:
    return m.Transcript(
        stream_id="s0",
        utterance_id=f"s0:{i}",
        seq=i,
        is_final=True,
        passno=2,
        text=f"hello world number {i}",
        start_s=float(i),
        end_s=i + 0.5,
        words=[],
        latency_s=0.1,
        stages_s={},
    )


def _closed_pipe() -> int:
    """The write end of a pipe whose reader has already gone."""
    r, w = os.pipe()
    os.close(r)
    return w


@pytest.mark.timeout(60)
def test_transcript_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(m.transcript_json(_final(i))) + "\n" for i in range(2000)))
    w = _closed_pipe()
    try:
        res = subprocess.run(
            [*CLI, "transcript", "--from-json", str(events)],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=DEADLINE_S,
            check=False,
        )
    finally:
        os.close(w)
    assert (res.returncode, res.stderr) == (EXIT_BROKEN_PIPE, "")


@pytest.mark.timeout(60)
def test_tail_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path / 'events'}"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(endpoint)
    w = _closed_pipe()
    try:
        proc = subprocess.Popen(
            [*CLI, "tail", "--endpoint", endpoint, "--instance", "ux"],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + DEADLINE_S
        for i in itertools.count():  # publish until tail has subscribed, printed and ended
            pub.send_multipart(m.pack("transcript.s0", _final(i)))
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.02)
            if proc.returncode is not None or time.monotonic() > deadline:
                break
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        os.close(w)
        ctx.destroy(linger=0)
    assert (proc.returncode, err) == (EXIT_BROKEN_PIPE, "")
