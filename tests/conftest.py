"""Shared fixtures and helpers for tests that run whole pipelines as real processes.

Each pipeline test gets a :class:`Instance`: a unique instance name and a private runtime
root (``XDG_RUNTIME_DIR`` of every CLI subprocess, so ``up``, ``status``, ``tail`` and
``down`` all find the same sockets) under a short ``/tmp/sa…`` directory (ipc socket paths
must stay under ~100 characters). After the test an autouse check asserts that no process
whose command line names that instance is still alive and that no
``/dev/shm/streamasr-<instance>-*`` segment is left; whatever leaked is then removed so one
failure does not spill into the next test.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
import pytest
from wer import wer

#: Repository root (``tests/``'s parent); the shared test audio lives beside it.
REPO_ROOT = Path(__file__).resolve().parents[1]
AUDIO_DIR = REPO_ROOT.parent / "shared" / "audio"
SHM_DIR = Path("/dev/shm")
#: Seconds a process may take to go away after the command that should end it returned.
LEAK_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class RefUtterance:
    """One line of a conversation ``.tsv``: times in seconds and the spoken text."""

    start_s: float
    end_s: float
    text: str


def audio_file(name: str) -> Path:
    """Path of a shared test audio file; skips the test if the shared audio is absent."""
    path = AUDIO_DIR / name
    if not path.exists():
        pytest.skip(f"shared test audio not found: {path}")
    return path


def read_tsv(path: Path) -> list[RefUtterance]:
    """Utterances of a conversation ``.tsv`` (header line, then start_s, end_s, text)."""
    rows = path.read_text().splitlines()[1:]
    out = []
    for row in rows:
        start, end, text = row.split("\t")
        out.append(RefUtterance(float(start), float(end), text))
    return out


def cut_conversation(name: str, utterances: int, dest: Path) -> tuple[Path, list[RefUtterance]]:
    """Write the first ``utterances`` utterances of ``name``.wav (16 kHz) to ``dest``.

    The cut lies 0.6 s after the last kept utterance's end (inside the pause), so the file
    ends in background noise like the original. Returns the new file and its references.
    """
    import soundfile as sf

    refs = read_tsv(audio_file(f"{name}.tsv"))[:utterances]
    data, rate_hz = sf.read(str(audio_file(f"{name}.wav")), dtype="int16")
    end = int((refs[-1].end_s + 0.6) * rate_hz)
    sf.write(str(dest), data[:end], rate_hz, subtype="PCM_16")
    return dest, refs


def wer_of(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate (fraction) of the joined hypotheses against the joined references."""
    return float(wer(" ".join(refs), " ".join(hyps)))


def parse_events(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects ``up --json`` / ``tail --json`` printed, one per line."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def finals_by_utterance(events: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Non-provisional finals grouped by utterance id, in publication order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["is_final"] and not e["provisional"]:
            out.setdefault(e["utterance_id"], []).append(e)
    return out


def last_finals(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last non-provisional final of each utterance, ordered by start time."""
    groups = finals_by_utterance(events)
    return sorted((g[-1] for g in groups.values()), key=lambda e: float(e["start_s"]))


@dataclass(frozen=True, slots=True)
class CliResult:
    """Exit code and decoded output of one CLI run."""

    returncode: int
    stdout: str
    stderr: str


class Instance:
    """A pipeline instance private to one test: name, runtime root, config, CLI runner."""

    def __init__(self, base: Path, name: str) -> None:
        """Use ``base`` (an empty short directory) as this instance's XDG runtime dir."""
        self.base = base
        self.name = name
        self.root = base / "streamasr" / name
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(base), "PYTHONUNBUFFERED": "1"}
        self.config = base / "c.toml"
        self.write_config()

    def write_config(self, extra: str = "") -> Path:
        """(Re)write the config: this instance and runtime dir, plus TOML text ``extra``."""
        self.config.write_text(
            f'[supervisor]\ninstance = "{self.name}"\nruntime_dir = "{self.root}"\n{extra}'
        )
        return self.config

    def argv(self, command: str, *args: str) -> list[str]:
        """Command line of ``streamasr-supervisor <command> ... --instance <name>``."""
        base = [sys.executable, "-m", "streamasr.supervisor.cli", command]
        if command == "up":
            base += ["-c", str(self.config)]
        return [*base, *args, "--instance", self.name]

    def popen(
        self, command: str, *args: str, stdin: int | IO[bytes] | None = subprocess.DEVNULL
    ) -> subprocess.Popen[str]:
        """Start a CLI command in its own process group (stdout/stderr piped, text)."""
        return subprocess.Popen(
            self.argv(command, *args),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.base,
            start_new_session=True,
        )

    def cli(
        self, command: str, *args: str, timeout_s: float, stdin_bytes: bytes | None = None
    ) -> CliResult:
        """Run a CLI command to completion; kill its process group past ``timeout_s``."""
        proc = subprocess.Popen(
            self.argv(command, *args),
            stdin=subprocess.PIPE if stdin_bytes is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.base,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(stdin_bytes, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            out, err = proc.communicate()
            pytest.fail(
                f"`{command} {' '.join(args)}` ran past {timeout_s} s; stderr:\n"
                f"{err.decode(errors='replace')[-2000:]}"
            )
        return CliResult(
            proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )

    def status(self) -> dict[str, Any]:
        """``status --json`` of the running pipeline, parsed."""
        res = self.cli("status", "--json", timeout_s=30)
        assert res.returncode == 0, res.stderr
        status: dict[str, Any] = json.loads(res.stdout)
        return status

    def actor_pid(self, actor_id: str) -> int:
        """The pid ``status --json`` reports for one actor."""
        for a in self.status()["actors"]:
            if a["id"] == actor_id:
                return int(a["pid"])
        raise AssertionError(f"no actor {actor_id!r} in status")

    def segments(self) -> list[str]:
        """Shared-memory segments of this instance that exist now."""
        prefix = f"streamasr-{self.name}-"
        return sorted(p.name for p in SHM_DIR.glob(f"{prefix}*"))

    def processes(self) -> list[psutil.Process]:
        """Live (non-zombie) processes whose command line names this instance."""
        me = os.getpid()
        found = []
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                cmd = " ".join(p.info["cmdline"] or [])
                if p.pid == me or p.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if str(self.base) in cmd or f"--instance {self.name}" in cmd:
                    found.append(p)
            except psutil.Error:
                continue
        return found


class PipeTail:
    """Reads a child's text pipe in a thread from the start, keeping its last ``lines``
    lines: a pipe nobody reads blocks every process writing to it (actors included, whose
    heartbeats then stop) once 64 KiB wait in it."""

    def __init__(self, stream: IO[str] | None, lines: int = 2000) -> None:
        """Start draining ``stream`` (None: nothing to drain)."""
        self._lines: deque[str] = deque(maxlen=lines)
        self._thread: threading.Thread | None = None
        if stream is not None:
            self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
            self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.append(line)

    def text(self, wait_s: float = 0.0) -> str:
        """The lines kept so far; ``wait_s`` > 0 first waits up to that long for the end of
        the stream (all writers gone)."""
        if self._thread is not None and wait_s > 0:
            self._thread.join(timeout=wait_s)
        return "".join(self._lines)


class EventReader:
    """Collects JSON lines from a running ``up --json`` / ``tail --json`` in a thread (and
    drains its stderr)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        """Start reading ``proc.stdout`` (text mode)."""
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._seen = 0
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()
        self._stderr = PipeTail(proc.stderr)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self._queue.put(json.loads(line))
        self._queue.put(None)

    def wait_for(self, predicate: Any, timeout_s: float, what: str) -> dict[str, Any]:
        """Return the first new event for which ``predicate(event)`` is true."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                self._queue.put(None)
                pytest.fail(f"output ended (exit {self.proc.poll()}) before {what}")
            self.events.append(event)
            if predicate(event):
                return event

    def finish(self, timeout_s: float) -> int:
        """Wait for the process to exit and read the rest; return its exit code."""
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            self.proc.wait()
            pytest.fail(f"process did not exit within {timeout_s} s")
        self._thread.join(timeout=10)
        while True:
            event = self._queue.get(timeout=1)
            if event is None:
                break
            self.events.append(event)
        return code

    def stderr(self) -> str:
        """The process's stderr (its last 2000 lines; complete after :meth:`finish`)."""
        return self._stderr.text(wait_s=10.0 if self.proc.poll() is not None else 0.0)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(port: int) -> bool:
    """Whether the gateway on ``port`` answers ``/healthz`` with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return int(r.status) == 200
    except OSError:
        return False


def pid_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts as exited)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group of ``proc`` (started with ``start_new_session=True``)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def stop_pipeline(inst: Instance, proc: subprocess.Popen[Any]) -> None:
    """Stop ``inst`` with ``down`` and reap ``proc`` (its ``up``/``serve``); SIGKILL its group
    if it has not exited 30 s later."""
    inst.cli("down", "-c", str(inst.config), timeout_s=60)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.wait()


def wait_until(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    """Poll ``predicate()`` until true; fail the test with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def _check_and_clean(inst: Instance) -> list[str]:
    """Return what leaked (after a grace period) and remove it."""
    problems: list[str] = []
    deadline = time.monotonic() + LEAK_GRACE_S
    while inst.processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in inst.processes():
        try:
            problems.append(f"process {p.pid} still alive: {' '.join(p.cmdline())}")
            p.kill()
        except psutil.Error:
            continue
    for seg in inst.segments():
        problems.append(f"segment /dev/shm/{seg} left behind")
        (SHM_DIR / seg).unlink(missing_ok=True)
    shutil.rmtree(inst.base, ignore_errors=True)
    return problems


@contextmanager
def instance_scope() -> Iterator[Instance]:
    """An :class:`Instance` whose leaks are asserted (and cleaned) when the block ends."""
    base = Path(tempfile.mkdtemp(prefix="sa", dir="/tmp"))
    inst = Instance(base, f"t{uuid.uuid4().hex[:10]}")
    try:
        yield inst
    finally:
        problems = _check_and_clean(inst)
    assert not problems, "pipeline left things behind:\n" + "\n".join(problems)


_INSTANCES = pytest.StashKey[list[Instance]]()


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: no process naming its instances alive, no segment of theirs left."""
    request.node.stash[_INSTANCES] = []
    yield
    problems: list[str] = []
    for inst in request.node.stash[_INSTANCES]:
        problems += _check_and_clean(inst)
    assert not problems, "pipeline left things behind:\n" + "\n".join(problems)


@pytest.fixture
def instance(request: pytest.FixtureRequest) -> Instance:
    """A fresh pipeline instance, leak-checked after the test by ``_no_leaks``."""
    base = Path(tempfile.mkdtemp(prefix="sa", dir="/tmp"))
    inst = Instance(base, f"t{uuid.uuid4().hex[:10]}")
    request.node.stash[_INSTANCES].append(inst)
    return inst


#: The test files that take longest (seconds of test time on a 2-core box, ``--durations=0``
#: of a full run, 2026-12-08), longest first. ``--dist loadfile`` hands files to the workers
#: in collection order, so these go first and the last minutes of a run are short files
#: spread over every worker rather than one worker finishing a long file alone.
_LONG_FILES = (
    "test_whisper_refiner.py",  # 142 s
    "test_asr_pocketsphinx.py",  # 138
    "test_openai_api.py",  # 137
    "test_pipeline_faults.py",  # 117
    "test_supervision.py",  # 113
    "test_pipeline_files.py",  # 107
    "test_wyoming.py",  # 98
    "test_meeting_pipeline.py",  # 81
    "test_pipeline_formats.py",  # 80
    "test_capture_faults.py",  # 77
    "test_gateway.py",  # 69
    "test_wake_pipeline.py",  # 67
    "test_inference_workers.py",  # 67
    "test_long_form_quality.py",  # 59
    "test_two_pass.py",  # 57
    "test_pipeline_cli.py",  # 54
    "test_endpoint_policy.py",  # 42
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the long files first (longest-first scheduling); every other order is kept."""
    rank = {name: i for i, name in enumerate(_LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
