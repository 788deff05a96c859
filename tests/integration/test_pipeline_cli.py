"""The command line against real pipelines: ``up --detach``, ``status``, ``tail``, ``down``,
``devices``, the microphone default on a box without one, Ctrl-C and config errors."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import (
    EventReader,
    Instance,
    cut_conversation,
    finals_by_utterance,
    pid_gone,
    wait_until,
)

pytestmark = pytest.mark.slow

ACTORS = ("capture", "feature", "inference", "refine")
SOCKET_PREFIXES = ("bell-", "spec-")
SOCKET_NAMES = ("control", "events", "supervisor.pid")


def runtime_leftovers(inst: Instance) -> list[str]:
    """Sockets, specs and pid file still in the instance's runtime dir."""
    if not inst.root.is_dir():
        return []
    return [
        p.name
        for p in inst.root.iterdir()
        if p.name.startswith(SOCKET_PREFIXES) or p.name in SOCKET_NAMES
    ]


def one_line(text: str) -> str:
    """The only line of ``text``; fails if there are several or none."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


@pytest.mark.timeout(120)
def test_detach_status_tail_down(instance: Instance, tmp_path: Path) -> None:
    wav, _ = cut_conversation("conversation1", 4, tmp_path / "c1_4.wav")
    # 60 s of silence after the speech: the pipeline (real time) is still running when the
    # checks after the second final run, however loaded the box; `down` ends it early
    pcm, rate = sf.read(str(wav), dtype="int16")
    sf.write(str(wav), np.concatenate([pcm, np.zeros(60 * rate, np.int16)]), rate)
    res = instance.cli("up", "--source", str(wav), "--detach", timeout_s=90)
    assert res.returncode == 0, res.stderr
    match = re.search(r"running in the background \(pid (\d+)\)", res.stdout)
    assert match is not None, res.stdout
    sup_pid = int(match.group(1))
    actor_pids = {a["id"]: a["pid"] for a in instance.status()["actors"]}

    table = instance.cli("status", timeout_s=30)
    assert table.returncode == 0, table.stderr
    for actor in ACTORS:
        assert re.search(rf"^\s*{actor}\b.*\brunning\b", table.stdout, re.M), table.stdout
    status = json.loads(instance.cli("status", "--json", timeout_s=30).stdout)
    assert {"actors", "rings", "latency"} <= status.keys()
    assert sorted(a["id"] for a in status["actors"]) == sorted(ACTORS)
    assert all(a["state"] == "running" and a["pid"] > 0 for a in status["actors"])

    tail = EventReader(instance.popen("tail", "--json"))
    first = tail.wait_for(lambda e: e["is_final"] and not e["provisional"], 60, "a final")
    tail.wait_for(
        lambda e: (
            e["is_final"] and not e["provisional"] and e["utterance_id"] != first["utterance_id"]
        ),
        60,
        "a second final",
    )
    # where the CPU went (issue 17): each actor's time by activity, within its total
    cpu = instance.status()["cpu"]
    assert cpu["supervisor"]["total"] > 0
    assert cpu["inference"]["first_pass"] > 0 and cpu["inference"]["startup"] > 0
    refine = cpu["refine"]  # a final's decode is "early" when it ran in the endpoint's pause
    assert refine["startup"] > 0 and refine.get("finals", 0) + refine.get("early", 0) > 0, refine
    for row in cpu.values():
        assert sum(v for k, v in row.items() if k != "total") <= row["total"] + 0.01, row
    assert "CPU s" in instance.cli("status", timeout_s=30).stdout
    down = instance.cli("down", timeout_s=60)
    assert down.returncode == 0, down.stderr
    assert pid_gone(sup_pid)
    assert tail.finish(timeout_s=15) == 0, tail.stderr()
    assert len(finals_by_utterance(tail.events)) >= 2
    assert all(pid_gone(p) for p in actor_pids.values())
    assert instance.segments() == []
    assert runtime_leftovers(instance) == []


@pytest.mark.timeout(60)
def test_devices(instance: Instance) -> None:
    res = instance.cli("devices", timeout_s=30)
    if res.returncode == 0:
        assert res.stdout.strip(), "devices listed nothing but exited 0"
    else:
        line = one_line(res.stdout + res.stderr)
        assert "no input devices" in line and "--source" in line


@pytest.mark.timeout(60)
def test_microphone_without_input_device_fails_fast(instance: Instance) -> None:
    if instance.cli("devices", timeout_s=30).returncode == 0:
        pytest.skip("this machine has an audio input device")
    t0 = time.monotonic()
    res = instance.cli("up", timeout_s=45)
    elapsed_s = time.monotonic() - t0
    assert res.returncode != 0
    assert "--source" in one_line(res.stderr)
    assert elapsed_s < 20, f"took {elapsed_s:.1f} s to report a missing microphone"
    assert instance.segments() == []
    assert runtime_leftovers(instance) == []


@pytest.mark.timeout(90)
def test_ctrl_c_stops_a_foreground_pipeline(instance: Instance, tmp_path: Path) -> None:
    wav, _ = cut_conversation("conversation1", 3, tmp_path / "c1_3.wav")
    up = EventReader(instance.popen("up", "--source", str(wav), "--json"))
    up.wait_for(lambda e: not e["is_final"], 60, "the first partial")
    os.killpg(up.proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    t0 = time.monotonic()
    code = up.finish(timeout_s=10)
    assert code in (0, 130), up.stderr()
    assert time.monotonic() - t0 < 10
    wait_until(lambda: not instance.processes(), 5, "the actors to exit")
    assert instance.segments() == []
    assert runtime_leftovers(instance) == []


@pytest.mark.timeout(60)
def test_unknown_config_key_is_a_one_line_error(instance: Instance) -> None:
    instance.write_config("bogus_key = 1\n")
    res = instance.cli("up", "--source", "sample", timeout_s=30)
    assert res.returncode == 1
    assert one_line(res.stderr) == "streamasr: supervisor.bogus_key: unknown key"
    assert res.stdout == ""
