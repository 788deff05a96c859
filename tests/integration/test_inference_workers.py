"""Several inference workers (``[inference] workers``): streams dealt to separate processes,
each stream's finals as with one worker, and a worker's crash recovered on its own streams."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    EventReader,
    Instance,
    cut_conversation,
    free_port,
    healthy,
    stop_pipeline,
    wait_until,
    wer_of,
)

pytestmark = pytest.mark.slow

#: First-pass WER bound per stream: PocketSphinx measures 0.10-0.35 on these cuts ("sea shells"
#: vs "seashells" counts as two errors).
FIRST_PASS_WER = 0.4


def streams_config(tmp_path: Path, *, realtime: bool) -> tuple[str, dict[str, list[str]]]:
    """Two [[streams]] of conversation cuts, and each stream's reference texts."""
    tables, refs = [], {}
    for sid, name in (("a", "conversation1"), ("b", "conversation2")):
        path, ref = cut_conversation(name, 4, tmp_path / f"{sid}.wav")
        refs[sid] = [r.text for r in ref]
        tables.append(
            f'[[streams]]\nkind = "file"\npath = "{path}"\nstream_id = "{sid}"\n'
            f"realtime = {'true' if realtime else 'false'}\n"
        )
    return "\n".join(tables), refs


def finals_of(events: list[dict[str, Any]], sid: str) -> list[str]:
    """The texts of ``sid``'s finals in time order."""
    fin = [e for e in events if e["is_final"] and e["stream_id"] == sid]
    return [e["text"] for e in sorted(fin, key=lambda e: e["start_s"])]


def test_two_workers_each_decode_their_stream_and_survive_a_kill(
    instance: Instance, tmp_path: Path
) -> None:
    tables, refs = streams_config(tmp_path, realtime=True)
    instance.write_config('[inference]\nworkers = 2\n[refine]\nfinals = "fast"\n' + tables)
    up = EventReader(instance.popen("up", "--json"))
    up.wait_for(lambda e: not e["is_final"] and e["stream_id"] == "b", 90, "a partial of b")
    actors = {a["id"]: a for a in instance.status()["actors"]}
    assert {"inference", "inference-1"} <= set(actors)
    assert actors["inference"]["gauges"].get("streams") == 1
    assert actors["inference-1"]["gauges"].get("streams") == 1
    pid = actors["inference-1"]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: (
            next(a for a in instance.status()["actors"] if a["id"] == "inference-1")["pid"]
            not in (0, pid)
        ),
        30,
        "a replacement inference-1",
    )
    assert up.finish(timeout_s=120) == 0, up.stderr()
    for sid in ("a", "b"):
        texts = finals_of(up.events, sid)
        assert len(texts) == len(refs[sid]), (sid, texts)
        assert wer_of(refs[sid], texts) <= FIRST_PASS_WER, (sid, texts)


def test_run_time_streams_go_to_the_least_loaded_worker(instance: Instance, tmp_path: Path) -> None:
    """Two gateway clients at once: one stream per worker, each transcribed."""
    tables, refs = streams_config(tmp_path, realtime=True)
    del tables
    port = free_port()
    instance.write_config("[inference]\nworkers = 2\n")
    serve = instance.popen(
        "serve", "-c", str(instance.config), "--port", str(port), "--finals", "fast", "--quiet"
    )
    try:
        wait_until(lambda: healthy(port), 90, "the gateway's /healthz")
        url = f"ws://127.0.0.1:{port}/v1/stream"
        clients = {
            sid: subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streamasr.supervisor.cli",
                    "stream",
                    str(tmp_path / f"{sid}.wav"),
                    "--url",
                    url,
                    "--json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=instance.env,
            )
            for sid in ("a", "b")
        }
        outs = {sid: p.communicate(timeout=120) for sid, p in clients.items()}
        finals = {a["id"]: a["counters"].get("finals", 0) for a in instance.status()["actors"]}
    finally:
        stop_pipeline(instance, serve)
    for sid, (out, err) in outs.items():
        assert clients[sid].returncode == 0, err
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        texts = [
            e["text"]
            for e in events
            if e.get("type") == "final" and not e.get("provisional") and e["text"].strip()
        ]
        assert wer_of(refs[sid], texts) <= FIRST_PASS_WER, (sid, texts)
    assert finals.get("inference", 0) >= 1 and finals.get("inference-1", 0) >= 1, finals


def test_one_worker_reports_the_wait_for_its_other_stream(
    instance: Instance, tmp_path: Path
) -> None:
    """Two real-time streams on one worker whose engine needs 30 ms more per call: each
    partial's stages add up within its latency, and a chunk that arrived while the engine
    decoded the other stream says so (stage ``wait``), apart from the pipeline's queueing."""
    tables, refs = streams_config(tmp_path, realtime=True)
    instance.write_config(
        '[inference]\nworkers = 1\ndelay_ms = 30.0\n[refine]\nfinals = "fast"\n' + tables
    )
    up = EventReader(instance.popen("up", "--json"))
    assert up.finish(timeout_s=120) == 0, up.stderr()
    partials = [e for e in up.events if "is_final" in e and not e["is_final"]]
    assert {e["stream_id"] for e in partials} == {"a", "b"}
    for e in partials:
        st = e["stages_s"]
        assert set(st) == {"feature", "queue", "wait", "inference"}, st
        assert min(st.values()) >= 0.0, st
        assert st["inference"] >= 0.03, st  # the injected engine time is the engine's
        assert sum(st.values()) <= e["latency_s"] + 0.002, e
    waited = [e["stages_s"]["wait"] for e in partials]
    assert max(waited) >= 0.02, sorted(waited)[-5:]  # behind the other stream's 30 ms call
    for sid in ("a", "b"):
        assert wer_of(refs[sid], finals_of(up.events, sid)) <= FIRST_PASS_WER
