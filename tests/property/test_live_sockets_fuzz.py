"""Hostile peers on the live sockets of a running pipeline.

One pipeline (a real-time file, first-pass finals) runs for the whole module. A DEALER on
the supervisor's control endpoint and PUSH sockets on the doorbell endpoints (``bell-*`` in
the runtime dir) send what hypothesis makes of random bytes, truncated msgpack, valid
msgpack of wrong types, unknown kinds, odd frame counts and oversized frames. Afterwards
the pipeline must still answer, every actor must be running and never restarted, and the
malformed control messages must have been counted in ``protocol_errors``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import soundfile as sf
import zmq
from conftest import AUDIO_DIR, Instance, instance_scope, wait_until
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streamasr.actors import messages as m
from streamasr.supervisor.client import NotRunning, request
from streamasr.supervisor.processes import read_log_tail

pytestmark = pytest.mark.timeout(240)

#: Kinds a hostile client may not send: a StopRequest is a legitimate (authorised) stop.
_SAFE_KINDS = sorted(k for k in m._BY_KIND if k != m.StopRequest.KIND)


class Live:
    """The running pipeline and the hostile sockets aimed at it."""

    def __init__(self, inst: Instance, proc: Any) -> None:
        self.inst = inst
        self.proc = proc
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.dealer = self._socket(zmq.DEALER, f"ipc://{inst.root / 'control'}")
        bells = sorted(inst.root.glob("bell-*"))
        assert bells, list(inst.root.iterdir())
        self.bells = [self._socket(zmq.PUSH, f"ipc://{p}") for p in bells]
        self.baseline = inst.status()

    def _socket(self, kind: int, endpoint: str) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100000)
        sock.connect(endpoint)
        return sock

    def status(self) -> dict[str, Any]:
        """The status map, asked on the control socket."""
        reply = request(f"ipc://{self.inst.root / 'control'}", m.StatusRequest(), timeout_s=5)
        assert isinstance(reply, m.StatusReply)
        status: dict[str, Any] = reply.status
        return status


def _long_file(dest: Path) -> Path:
    """conversation1..3 repeated: ~4 minutes, longer than this module runs."""
    parts = []
    for n in (1, 2, 3):
        path = AUDIO_DIR / f"conversation{n}.wav"
        if not path.exists():
            pytest.skip(f"shared test audio not found: {path}")
        data, rate_hz = sf.read(str(path), dtype="int16")
        parts.append(data)
    sf.write(str(dest), np.concatenate(parts * 3), rate_hz, subtype="PCM_16")
    return dest


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A pipeline playing a long file in real time, and hostile sockets connected to it."""
    wav = _long_file(tmp_path_factory.mktemp("audio") / "long.wav")
    with instance_scope() as inst:
        # stderr to a file: a pipe nobody reads would fill up with the warnings the garbage
        # causes and block the supervisor's logging.
        log_path = inst.base / "up.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            inst.argv("up", "--source", str(wav), "--finals", "fast", "--quiet"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=inst.env,
            cwd=inst.base,
            start_new_session=True,
        )

        def all_running() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"up exited with {proc.returncode}: {read_log_tail(log_path)}")
            try:
                st_ = request(f"ipc://{inst.root / 'control'}", m.StatusRequest(), 0.5).status
            except NotRunning:
                return False
            return all(a["state"] == "running" for a in st_["actors"])

        wait_until(all_running, 60, "every actor to be running", interval_s=0.2)
        live = Live(inst, proc)
        try:
            yield live
        finally:
            live.ctx.destroy(linger=0)
            # Not `down`: it waits for the supervisor's pid to vanish, and ours stays a
            # zombie until this process reaps it.
            request(f"ipc://{inst.root / 'control'}", m.StopRequest("test over"), timeout_s=10)
            assert proc.wait(timeout=30) == 0, read_log_tail(log_path)
            log.close()


# ------------------------------------------------------------------- strategies
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def _wrong_message(draw: st.DrawFn) -> bytes:
    """A map with a real (or unknown) kind whose fields are random."""
    kind = draw(st.sampled_from([*_SAFE_KINDS, "nope", "", "STATUS_REQUEST"]))
    body = draw(st.dictionaries(st.text(max_size=12), _values, max_size=5))
    body["kind"] = kind
    return bytes(msgpack.packb(body, use_bin_type=True))


@st.composite
def _truncated(draw: st.DrawFn) -> bytes:
    """A valid message cut short."""
    kind = draw(st.sampled_from(_SAFE_KINDS))
    body = {"kind": kind, "actor_id": "inference", "pid": 1, "reason": "x" * 40}
    packed = bytes(msgpack.packb(body, use_bin_type=True))
    return packed[: draw(st.integers(min_value=0, max_value=len(packed) - 1))]


_bodies = st.one_of(
    st.binary(max_size=200),
    _truncated(),
    _wrong_message(),
    _values.map(lambda v: bytes(msgpack.packb(v, use_bin_type=True))),
)
_topics = st.one_of(st.text(max_size=16).map(str.encode), st.binary(max_size=16))
_multipart = st.one_of(
    st.tuples(_topics, _bodies).map(list),
    st.lists(st.one_of(_topics, _bodies), min_size=1, max_size=5),
)


# ------------------------------------------------------------------- tests
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=_multipart)
def test_control_socket_survives_garbage(live: Live, frames: list[bytes]) -> None:
    live.dealer.send_multipart(frames)


def test_oversized_frame_drops_only_that_connection(live: Live) -> None:
    sock = live._socket(zmq.DEALER, f"ipc://{live.inst.root / 'control'}")
    sock.send_multipart([b"status_request", b"\x00" * (m.MAX_MESSAGE_BYTES + 4096)])
    sock.send_multipart([b"x", b"\xc1" * (2 * m.MAX_MESSAGE_BYTES)])
    assert live.status()["phase"] == "running"


def _assert_unharmed(live: Live) -> dict[str, Any]:
    status = live.status()
    assert live.proc.poll() is None
    assert status["phase"] == "running"
    assert [a["state"] for a in status["actors"]] == ["running"] * 3, status["actors"]
    before = {a["id"]: a["pid"] for a in live.baseline["actors"]}
    assert {a["id"]: a["pid"] for a in status["actors"]} == before
    assert all(a["restarts"] == 0 for a in status["actors"]), status["actors"]
    return status


def test_pipeline_unharmed_and_errors_counted(live: Live) -> None:
    def counted() -> bool:
        return bool(live.status()["protocol_errors"] > live.baseline["protocol_errors"] + 30)

    wait_until(counted, 10, "the malformed messages to be counted")
    status = _assert_unharmed(live)
    assert status["protocol_errors"] >= 30
    # The control plane still serves ordinary clients: the CLI's status and history.
    res = live.inst.cli("status", "--json", timeout_s=30)
    assert res.returncode == 0 and json.loads(res.stdout)["instance"] == live.inst.name
    assert isinstance(
        request(f"ipc://{live.inst.root / 'control'}", m.HistoryRequest()), m.HistoryReply
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        _values.map(lambda v: bytes(msgpack.packb(v, use_bin_type=True))),
        st.tuples(_scalars, _scalars, _scalars).map(
            lambda t: bytes(msgpack.packb(list(t), use_bin_type=True))
        ),
    ),
    which=st.integers(min_value=0, max_value=7),
)
@example(body=bytes(msgpack.packb([float("inf"), 0, 0])), which=0)
@example(body=bytes(msgpack.packb([float("inf"), 0, 0])), which=1)
@example(body=bytes(msgpack.packb([2**64 - 1, 2**64 - 1, 2**64 - 1])), which=1)
def test_doorbells_survive_garbage(live: Live, body: bytes, which: int) -> None:
    live.bells[which % len(live.bells)].send(body)


def test_pipeline_unharmed_after_doorbell_garbage(live: Live) -> None:
    # The doorbells are hints: garbage is dropped by the listeners. Give the actors time to
    # read what was sent (their heartbeats then prove their loops went on), then check.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        _assert_unharmed(live)
    _assert_unharmed(live)
