"""Supervision guarantees proven with real processes ("Supervision that loses nothing").

A hung actor (SIGSTOP) is detected by its missing heartbeats, killed and replaced, while a
stopped *supervisor* convicts nobody (its own stall is not the actors' silence); a crash
before Ready is a configuration error (exit 2, no restart loop); restart intensity exceeded
stops everything in reverse order (exit 1); ``rest_for_one`` restarts the failed actor and
those after it only; an overloaded first pass loses audio only when its ring overflows, and
counts what it lost. Every wait is an event or a polled deadline.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import (
    REPO_ROOT,
    EventReader,
    Instance,
    audio_file,
    cut_conversation,
    finals_by_utterance,
    instance_scope,
    last_finals,
    parse_events,
    pid_gone,
    wait_until,
)
from wer import normalize_words, word_edits

from streamasr.supervisor.client import Subscriber

UTTERANCES = 4
#: Words an utterance may differ by from the fault-free run (chunking differs).
MAX_WORD_DIFF = 2
#: RSS growth (bytes) an actor may show under overload (allocator noise, decoder lattices).
RSS_SLACK_BYTES = 24 << 20


class Events:
    """Collects every message of a pipeline's PUB socket in a thread (lifecycle, status)."""

    def __init__(self, instance: Instance) -> None:
        """Connect (before ``up`` starts, so no lifecycle event is missed after the bind)."""
        self._sub = Subscriber(
            f"ipc://{instance.root / 'events'}", topics=("actor.", "supervisor.", "status")
        )
        self.items: list[tuple[str, Any]] = []
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._stop:
            item = self._sub.recv(timeout_s=0.1)
            if item is not None:
                with self._cond:
                    self.items.append(item)
                    self._cond.notify_all()

    def wait(self, topic: str, timeout_s: float, after: int = 0) -> int:
        """Index of the first ``topic`` event at or after index ``after``; fail on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for i in range(after, len(self.items)):
                    if self.items[i][0] == topic:
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {topic} within {timeout_s} s")
                self._cond.wait(left)

    def wait_status(self, predicate: Any, timeout_s: float, after: int = 0) -> dict[str, Any]:
        """The first published status map at or after index ``after`` for which
        ``predicate(status)`` is true; fail on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for topic, msg in self.items[after:]:
                    if topic == "status" and predicate(msg.status):
                        status: dict[str, Any] = msg.status
                        return status
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no matching status within {timeout_s} s")
                self._cond.wait(left)

    def topics(self, after: int = 0) -> list[str]:
        """Every topic received from index ``after`` on, in order (``status`` excluded)."""
        with self._cond:
            return [t for t, _ in self.items[after:] if t != "status"]

    def statuses(self) -> list[dict[str, Any]]:
        """Every published status map so far."""
        with self._cond:
            return [msg.status for t, msg in self.items if t == "status"]

    def close(self) -> None:
        """Stop the thread and close the socket."""
        self._stop = True
        self._thread.join(timeout=5)
        self._sub.close()


@pytest.fixture
def events(instance: Instance) -> Iterator[Events]:
    """An :class:`Events` collector for ``instance``."""
    ev = Events(instance)
    yield ev
    ev.close()


@pytest.fixture(scope="module")
def short_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first UTTERANCES utterances of conversation1 (~13 s)."""
    wav: Path = cut_conversation(
        "conversation1", UTTERANCES, tmp_path_factory.mktemp("audio") / "c1.wav"
    )[0]
    return wav


@pytest.fixture(scope="module")
def fault_free(short_file: Path) -> list[dict[str, Any]]:
    """First-pass finals of a fault-free ``--fast --finals fast`` run of ``short_file``."""
    with instance_scope() as inst:
        res = inst.cli(
            "up", "--source", str(short_file), "--fast", "--finals", "fast", "--json", timeout_s=60
        )
    assert res.returncode == 0, res.stderr
    finals: list[dict[str, Any]] = last_finals(parse_events(res.stdout))
    assert len(finals) == UTTERANCES, [f["text"] for f in finals]
    return finals


def assert_same_finals(events: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    """One final per utterance, none twice, texts and times as in the fault-free run."""
    groups = finals_by_utterance(events)
    doubles = {u: [e["text"] for e in g] for u, g in groups.items() if len(g) > 1}
    assert not doubles, f"utterances with more than one final: {doubles}"
    finals = last_finals(events)
    assert len(finals) == len(reference), [f["text"] for f in finals]
    differing = []
    for got, want in zip(finals, reference, strict=True):
        assert abs(got["start_s"] - want["start_s"]) <= 0.5, (got, want)
        diff = word_edits(normalize_words(want["text"]), normalize_words(got["text"]))
        if diff > MAX_WORD_DIFF:
            differing.append((want["text"], got["text"]))
    # the utterance in flight at the fault is re-decoded by a fresh decoder (its adaptive
    # feature normalisation starts over), so that one utterance may read differently
    assert len(differing) <= 1, differing


def actor(status: dict[str, Any], actor_id: str) -> dict[str, Any]:
    """The status entry of ``actor_id``."""
    return next(a for a in status["actors"] if a["id"] == actor_id)


def start_up(instance: Instance, wav: Path, *args: str) -> EventReader:
    """``up --source wav --finals fast --json ARGS`` in real time, read in a thread."""
    return EventReader(
        instance.popen("up", "--source", str(wav), "--finals", "fast", "--json", *args)
    )


def first_partial(e: dict[str, Any]) -> bool:
    """A partial (the pipeline is decoding)."""
    return not e["is_final"]


@pytest.mark.timeout(90)
def test_hung_inference_is_killed_and_replaced(
    instance: Instance, events: Events, short_file: Path, fault_free: list[dict[str, Any]]
) -> None:
    instance.write_config("heartbeat_interval_s = 0.5\nheartbeat_timeout_s = 2.0\n")
    up = start_up(instance, short_file)
    up.wait_for(first_partial, 60, "the first partial")
    pid = instance.actor_pid("inference")
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    hung = events.wait("actor.inference.hung", 10)
    detect_s = time.monotonic() - t0
    # silent since its last heartbeat for 2.0 s (that heartbeat may predate the SIGSTOP by
    # more than one interval on a loaded machine, so only the upper bound is tight)
    assert 0.0 < detect_s < 5.0, detect_s
    restarted = events.wait("actor.inference.restarted", 10, after=hung)
    events.wait("actor.inference.ready", 30, after=restarted)
    status = instance.status()
    inf = actor(status, "inference")
    assert inf["restarts"] == 1 and inf["pid"] not in (0, pid)
    assert all(actor(status, a)["restarts"] == 0 for a in ("capture", "feature"))
    assert up.finish(timeout_s=60) == 0, up.stderr()
    assert pid_gone(pid)
    assert_same_finals(up.events, fault_free)


#: Seconds the supervisor is held stopped: twice the hung timeout of its config below.
STALL_S = 4.0


def hold_stopped(pid: int, seconds: float) -> None:
    """SIGSTOP ``pid``, keep it stopped for ``seconds`` once the kernel says it is stopped
    (the stimulus is a duration, so the wait is a deadline), then SIGCONT it."""
    proc = psutil.Process(pid)
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: proc.status() == psutil.STATUS_STOPPED, 10, f"pid {pid} to stop")
        threading.Event().wait(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.timeout(90)
def test_stopped_supervisor_convicts_no_actor(
    instance: Instance, events: Events, short_file: Path, fault_free: list[dict[str, Any]]
) -> None:
    # a loaded edge box or a suspended VM stops the supervisor; the actors heartbeat on
    instance.write_config("heartbeat_interval_s = 0.5\nheartbeat_timeout_s = 2.0\n")
    up = start_up(instance, short_file)
    up.wait_for(first_partial, 60, "the first partial")
    stalled = len(events.items) - 1
    hold_stopped(up.proc.pid, STALL_S)
    # the supervisor saw its own stall (longer than the hung timeout; a load-induced short
    # one may come first) ...
    while True:
        stalled = events.wait("supervisor.stalled", 10, after=stalled + 1)
        if events.items[stalled][1].fields["stalled_s"] >= STALL_S - 0.1:
            break
    # ... and twice the hung timeout of its time after it (a conviction would come within
    # that) restart nothing
    uptime = events.wait_status(lambda s: True, 10, after=stalled)["uptime_s"]
    events.wait_status(lambda s: s["uptime_s"] >= uptime + 2 * 2.0, 30, after=stalled)
    assert all(a["restarts"] == 0 for a in instance.status()["actors"])
    assert up.finish(timeout_s=60) == 0, up.stderr()
    convicted = [t for t in events.topics() if t.endswith((".hung", ".restarted", ".gave_up"))]
    assert convicted == [], convicted
    assert_same_finals(up.events, fault_free)  # the pipeline kept producing its finals


@pytest.mark.timeout(60)
def test_crash_before_ready_is_a_configuration_error(instance: Instance, short_file: Path) -> None:
    instance.write_config('[inference.pocketsphinx]\nlm_path = "/nonexistent.lm"\n')
    t0 = time.monotonic()
    res = instance.cli("up", "--source", str(short_file), "--finals", "fast", "-v", timeout_s=30)
    elapsed_s = time.monotonic() - t0
    assert res.returncode == 2, res.stderr
    assert elapsed_s < 15, elapsed_s
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("streamasr:")]
    assert lines == [res.stderr.splitlines()[-1]], res.stderr
    assert len(lines) == 1
    assert lines[0].startswith("streamasr: actor inference exited with code 1 before Ready")
    assert "cannot load model" in lines[0], lines[0]
    assert res.stderr.count("spawned inference pid") == 1, res.stderr
    assert "restarting" not in res.stderr


@pytest.mark.timeout(90)
def test_restart_intensity_exceeded_stops_all_in_reverse_order(
    instance: Instance, events: Events, short_file: Path
) -> None:
    instance.write_config("max_restarts = 1\nperiod_s = 60.0\n")
    up = start_up(instance, short_file)
    up.wait_for(first_partial, 60, "the first partial")
    first = instance.actor_pid("inference")
    os.kill(first, signal.SIGKILL)
    ready = events.wait(
        "actor.inference.ready", 30, after=events.wait("actor.inference.restarted", 10)
    )
    second = instance.actor_pid("inference")
    assert second != first
    os.kill(second, signal.SIGKILL)
    code = up.finish(timeout_s=30)
    stderr = up.stderr()
    assert code == 1, stderr
    assert stderr.splitlines()[-1] == (
        "streamasr: restart intensity exceeded: 2 restarts within 60 s (max 1);"
        " actor inference exited with code -9"
    )
    gave_up = events.wait("actor.inference.gave_up", 5, after=ready)
    # the supervisor published them all before it exited, but our subscriber's thread may
    # still be taking them in: wait for the last one before reading the order
    events.wait("actor.capture.stopping", 10, after=gave_up)
    topics = events.topics(after=gave_up)
    stops = [t for t in topics if t.endswith(".stopping") and t.startswith("actor.")]
    assert stops == ["actor.feature.stopping", "actor.capture.stopping"], topics
    assert "actor.inference.restarted" not in topics
    assert pid_gone(second)


@pytest.mark.timeout(90)
def test_rest_for_one_restarts_feature_and_later_actors_only(
    instance: Instance, events: Events, short_file: Path, fault_free: list[dict[str, Any]]
) -> None:
    instance.write_config('strategy = "rest_for_one"\n')
    up = start_up(instance, short_file)
    up.wait_for(first_partial, 60, "the first partial")
    before = instance.status()
    os.kill(actor(before, "feature")["pid"], signal.SIGKILL)
    i = events.wait("actor.feature.restarted", 10)
    events.wait("actor.inference.ready", 30, after=i)
    events.wait("actor.feature.ready", 30, after=i)
    after = instance.status()
    assert [actor(after, a)["restarts"] for a in ("capture", "feature", "inference")] == [0, 1, 1]
    assert actor(after, "capture")["pid"] == actor(before, "capture")["pid"]
    topics = events.topics()
    assert "actor.capture.restarted" not in topics and "actor.capture.stopping" not in topics
    assert "actor.inference.stopping" in topics
    assert up.finish(timeout_s=60) == 0, up.stderr()
    assert_same_finals(up.events, fault_free)


@pytest.mark.extended
@pytest.mark.timeout(120)
def test_overload_backlog_bounded_memory_and_counted_loss(
    instance: Instance, events: Events
) -> None:
    # 1 s of delay per <= 0.5 s decoded: the first pass runs at half real time, so its
    # backlog grows by ~0.5 s per second until the 4 s ring overflows.
    instance.write_config("[audio]\nring_s = 4.0\n[inference]\ndelay_ms = 1000.0\n")
    wav = audio_file("conversation1.wav")
    up = start_up(instance, wav)
    events.wait("supervisor.ready", 60)
    code = up.finish(timeout_s=90)
    assert code == 0, up.stderr()
    statuses = [s for s in events.statuses() if s["phase"] == "running"]
    assert len(statuses) >= 10
    backlog = [actor(s, "inference")["gauges"].get("backlog_s.s0", 0.0) for s in statuses]
    assert max(backlog) >= 3.0, backlog  # the backlog grew ...
    # ... up to the ring (the gauge is what waits in it); what the writer ran past is lost
    # and counted (below)
    last = statuses[-1]
    assert [a["restarts"] for a in last["actors"]] == [0, 0, 0], up.stderr()
    assert "actor.inference.restarted" not in events.topics()
    lost = actor(last, "inference")["counters"]["frames_lost"]
    pcm = next(r for r in last["rings"] if r["role"] == "pcm")
    assert lost > 0
    assert lost <= pcm["writes"] - pcm["capacity"]
    for a in last["actors"]:
        rss = [actor(s, a["id"])["rss_bytes"] for s in statuses if actor(s, a["id"])["rss_bytes"]]
        assert max(rss) - rss[0] <= RSS_SLACK_BYTES, (a["id"], rss[0], max(rss))
    finals = last_finals(up.events)
    # each jump over lost audio finalises the utterance it interrupted
    resyncs = actor(last, "inference")["counters"]["resyncs"]
    assert 1 <= len(finals) <= 8 + resyncs


def _load_soak() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_soak", REPO_ROOT / "benchmarks" / "bench_soak.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


@pytest.mark.extended
@pytest.mark.timeout(300)
def test_soak_one_minute_with_random_kills(instance: Instance) -> None:
    """45 s of audio with a SIGKILL of feature or inference every 4.5 s or so (it was two
    minutes, one kill every 15 s, then one minute, one every 6 s: the suite's longest test,
    in a run that has to stay under 10 minutes; the same number of kills all along)."""
    soak = _load_soak()
    report = soak.run_soak(instance.base, instance.name, minutes=0.75, kill_every_s=4.5, seed=7)
    assert report.exit_code == 0, report.stderr_tail
    assert report.kills >= 5
    assert report.missing == [] and report.duplicated == []
    assert report.frames_lost == 0
    assert all(t < 10.0 for t in report.restart_s), report.restart_s
    sup = report.rss["supervisor"]
    assert {pid for _, pid, _ in sup} == {sup[0][1]}  # one supervisor process throughout
    assert sup[-1][2] - sup[0][2] <= RSS_SLACK_BYTES, (sup[0], sup[-1])
    assert {"capture", "feature", "inference"} <= set(report.rss)


@pytest.mark.timeout(90)
def test_hot_standby_takes_over_without_a_cold_start(
    instance: Instance, events: Events, short_file: Path, fault_free: list[dict[str, Any]]
) -> None:
    instance.write_config("hot_standby = true\n")
    up = start_up(instance, short_file)
    up.wait_for(first_partial, 60, "the first partial")
    # the spare must be warm (Ready as a standby) before the fault for a hot take-over
    wait_until(lambda: instance.status()["standby"].get("ready"), 30, "a warm standby")
    status = instance.status()
    pid = actor(status, "inference")["pid"]
    spare = status["standby"]["pid"]
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    restarted = events.wait("actor.inference.restarted", 10)
    events.wait("actor.inference.ready", 10, after=restarted)
    takeover_s = time.monotonic() - t0
    after = instance.status()
    inf = actor(after, "inference")
    assert inf["restarts"] == 1 and inf["pid"] == spare  # the spare took over
    assert after["standby"]["promotions"] == 1
    # the restart time is recorded and far below what the 16 s rings can bridge
    assert 0.0 <= after["restart_s"]["inference"] < 2.0 and after["bridge_warnings"] == 0
    assert takeover_s < 2.0, takeover_s  # a cold start loads the model again (~1 s or more)
    assert up.finish(timeout_s=60) == 0, up.stderr()
    assert_same_finals(up.events, fault_free)
