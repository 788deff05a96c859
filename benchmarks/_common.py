"""Helpers shared by the pipeline benchmarks: test audio, machine facts, pipeline runs.

A :class:`PipelineRun` starts ``streamasr-supervisor up`` as a real subprocess on a private
instance (its own runtime directory under ``/tmp/sab…`` and its own ``/dev/shm`` names),
optionally with an external :class:`~streamasr.supervisor.client.Subscriber` in a separate
process (so the benchmark's own threads never delay its receipt clock) and optionally feeding
raw PCM to ``up --source -`` at real time from this process, recording the wall clock
(``time.time_ns()``) at which each chunk's last sample was handed to the pipeline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import psutil

#: The shared test audio (the repository root's parent holds ``shared/``).
AUDIO_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
CONVERSATIONS = ("conversation1", "conversation2", "conversation3")
RATE_HZ = 16000
CHUNK_MS = 100
CHUNK = RATE_HZ * CHUNK_MS // 1000
CLI = (sys.executable, "-m", "streamasr.supervisor.cli")


@dataclass(frozen=True, slots=True)
class RefUtterance:
    """One reference utterance (times in seconds of the stream it belongs to)."""

    start_s: float
    end_s: float
    text: str


def refs(name: str, offset_s: float = 0.0) -> list[RefUtterance]:
    """Rows of ``<name>.tsv`` with ``offset_s`` seconds added to each time."""
    rows = (AUDIO_DIR / f"{name}.tsv").read_text().splitlines()[1:]
    out = []
    for row in rows:
        start, end, text = row.split("\t")
        out.append(RefUtterance(float(start) + offset_s, float(end) + offset_s, text))
    return out


def load_pcm(name: str) -> npt.NDArray[np.int16]:
    """Mono int16 PCM of ``<name>.wav`` (16 kHz)."""
    import soundfile as sf

    data, rate = sf.read(str(AUDIO_DIR / f"{name}.wav"), dtype="int16")
    if rate != RATE_HZ or data.ndim != 1:
        raise ValueError(f"{name}.wav: expected 16 kHz mono, got {rate} Hz {data.shape}")
    pcm: npt.NDArray[np.int16] = data
    return pcm


def concat(names: Sequence[str]) -> tuple[npt.NDArray[np.int16], list[RefUtterance]]:
    """The conversations ``names`` joined end to end, with their references re-timed."""
    parts: list[npt.NDArray[np.int16]] = []
    rows: list[RefUtterance] = []
    offset = 0
    for name in names:
        pcm = load_pcm(name)
        rows += refs(name, offset / RATE_HZ)
        parts.append(pcm)
        offset += len(pcm)
    return np.concatenate(parts), rows


def cut(name: str, seconds: float) -> tuple[npt.NDArray[np.int16], list[RefUtterance]]:
    """The utterances of ``name`` that end within ``seconds`` (at least one), cut 0.6 s after
    the last kept one, as in the pipeline tests."""
    rows = refs(name)
    kept = [r for r in rows if r.end_s + 0.6 <= seconds] or rows[:1]
    pcm = load_pcm(name)
    return pcm[: int((kept[-1].end_s + 0.6) * RATE_HZ)], kept


def write_wav(path: Path, pcm: npt.NDArray[np.int16]) -> Path:
    """Write 16 kHz mono int16 PCM to ``path``."""
    import soundfile as sf

    sf.write(str(path), pcm, RATE_HZ, subtype="PCM_16")
    return path


def pct(values: Sequence[float], q: float) -> float:
    """Percentile ``q`` (0..100) of ``values``; nan when empty."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo where available)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1/5/15-minute load averages, formatted."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def children_cpu_s() -> float:
    """User + system CPU seconds of every child (and descendant) waited for so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def losses(status: dict[str, Any]) -> dict[str, int]:
    """Loss counters of a status map: ring drops/overruns, inference frames lost, gaps."""
    readers = [rd for ring in status.get("rings", []) for rd in ring.get("readers", [])]
    lost = sum(int((a.get("counters") or {}).get("frames_lost", 0)) for a in status["actors"])
    resyncs = sum(int((a.get("counters") or {}).get("resyncs", 0)) for a in status["actors"])
    return {
        "dropped_frames": sum(int(rd.get("dropped_frames", 0)) for rd in readers),
        "overruns": sum(int(rd.get("overruns", 0)) for rd in readers),
        "frames_lost": lost + resyncs,
        "gaps": sum(len(g) for g in (status.get("gaps") or {}).values()),
    }


def max_losses(statuses: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Per-counter maximum over a sequence of status maps (counters only grow)."""
    out = {"dropped_frames": 0, "overruns": 0, "frames_lost": 0, "gaps": 0}
    for st in statuses:
        for key, value in losses(st).items():
            out[key] = max(out[key], value)
    return out


def _subscribe(endpoint: str, out_path: str, ready: MpEvent, stop: MpEvent) -> None:
    """Subscriber process: record ``(receipt_ns, topic, event)`` until ``stop`` is set."""
    from streamasr.supervisor.client import Subscriber

    rows: list[list[Any]] = []
    with Subscriber(endpoint, topics=("transcript.", "status", "supervisor.")) as sub:
        while not stop.is_set():
            item = sub.recv(timeout_s=0.1)
            now = time.time_ns()
            if item is None:
                continue
            topic, msg = item
            if topic == "supervisor.ready":
                ready.set()
            if topic == "status":
                rows.append([now, topic, msg.status])
            elif topic.startswith("transcript."):
                rows.append([now, topic, dataclasses.asdict(msg)])
    Path(out_path).write_text(json.dumps(rows))


@dataclass(slots=True)
class RunResult:
    """What one pipeline run produced.

    Attributes:
        returncode: exit status of ``up``.
        wall_s: seconds from start to exit.
        cpu_s: user + system CPU seconds of ``up`` and every process it waited for.
        events: ``(receipt_ns, transcript dict)`` at the external subscriber.
        statuses: status maps received on topic ``status`` (about one per second).
        feed_ns: wall clock (ns) at which chunk ``k`` was handed to ``up`` (stdin runs).
        stderr: the tail of ``up``'s stderr.
        cpu_by_process: last sampled user + system CPU seconds per process (``supervisor``
            or the actor id), when sampling was asked for; slightly low (sampled).
    """

    returncode: int
    wall_s: float
    cpu_s: float
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    feed_ns: list[int] = field(default_factory=list)
    stderr: str = ""
    cpu_by_process: dict[str, float] = field(default_factory=dict)


class ProcSampler:
    """Samples the CPU times of a process tree every ``interval_s`` in a thread."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        """Start sampling ``pid`` and its descendants."""
        self.cpu: dict[int, tuple[str, float]] = {}
        self._root = pid
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            root = psutil.Process(self._root)
        except psutil.Error:
            return
        while not self._stop.wait(self._interval_s):
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for p in procs:
                try:
                    t = p.cpu_times()
                    name = self.cpu.get(p.pid, ("", 0.0))[0] or _proc_name(p, self._root)
                    self.cpu[p.pid] = (name, t.user + t.system)
                except psutil.Error:
                    continue

    def stop(self) -> dict[str, float]:
        """Stop; CPU seconds per process name (restarted actors summed)."""
        self._stop.set()
        self._thread.join(timeout=5)
        out: dict[str, float] = {}
        for name, cpu in self.cpu.values():
            out[name] = out.get(name, 0.0) + cpu
        return out


def _proc_name(p: psutil.Process, root: int) -> str:
    """``supervisor`` for the root, the actor id for an actor (from its spec file name)."""
    if p.pid == root:
        return "supervisor"
    for arg in p.cmdline():
        if Path(arg).name.startswith("spec-"):
            return Path(arg).stem.removeprefix("spec-")
    return str(p.name())


class PipelineRun:
    """One ``up`` on a private instance; use :meth:`run`."""

    def __init__(self, config_extra: str = "") -> None:
        """Create the instance directory and config (``config_extra``: more TOML)."""
        self.base = Path(tempfile.mkdtemp(prefix="sab", dir="/tmp"))
        self.name = f"bench{uuid.uuid4().hex[:8]}"
        self.root = self.base / "streamasr" / self.name
        self.config = self.base / "c.toml"
        self.config.write_text(
            f'[supervisor]\ninstance = "{self.name}"\nruntime_dir = "{self.root}"\n{config_extra}'
        )
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.base), "PYTHONUNBUFFERED": "1"}

    def run(
        self,
        args: Sequence[str],
        *,
        subscribe: bool = False,
        sample_cpu: bool = False,
        feed: npt.NDArray[np.int16] | None = None,
        timeout_s: float = 600.0,
        json_stdout: bool = False,
    ) -> RunResult:
        """Run ``up -c CONFIG ARGS --quiet`` to its exit.

        ``feed``: PCM written to its stdin one 100 ms chunk per 100 ms of wall time once the
        pipeline is ready (then stdin is closed, which ends the stream).
        ``json_stdout``: run with ``--json`` instead of ``--quiet`` and take the events from its
        standard output, as a user reads them (every event, however early; receipt stamped as
        each line arrives) instead of from a subscriber.
        """
        ctx = mp.get_context("fork")
        ready, stop = ctx.Event(), ctx.Event()
        out_path = self.base / "events.json"
        sub = None
        if subscribe or feed is not None:
            endpoint = f"ipc://{self.root / 'events'}"
            sub = ctx.Process(target=_subscribe, args=(endpoint, str(out_path), ready, stop))
            sub.start()
        argv = [*CLI, "up", "-c", str(self.config), *args, "--json" if json_stdout else "--quiet"]
        err_path = self.base / "stderr.txt"
        cpu0, t0 = children_cpu_s(), time.monotonic()
        with err_path.open("wb") as err_file:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if feed is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE if json_stdout else subprocess.DEVNULL,
                stderr=err_file,
                env=self.env,
                cwd=self.base,
                start_new_session=True,
            )
        sampler = ProcSampler(proc.pid) if sample_cpu else None
        lines: list[tuple[int, bytes]] = []
        reader = None
        if json_stdout:
            reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
            reader.start()
        feed_ns: list[int] = []
        try:
            if feed is not None:
                assert proc.stdin is not None
                feed_ns = _feed(proc, proc.stdin, feed, ready, t0 + timeout_s)
            proc.wait(timeout=max(1.0, t0 + timeout_s - time.monotonic()))
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            wall, cpu = time.monotonic() - t0, children_cpu_s() - cpu0
            by_process = sampler.stop() if sampler is not None else {}
            if reader is not None:
                reader.join(timeout=30)
            if sub is not None:
                stop.set()
                sub.join(timeout=30)
            err = err_path.read_text(errors="replace")[-3000:] if err_path.exists() else ""
            rows = json.loads(out_path.read_text()) if out_path.exists() else []
            self._clean()
        res = RunResult(
            proc.returncode, wall, cpu, feed_ns=feed_ns, stderr=err, cpu_by_process=by_process
        )
        for now, topic, body in rows:
            if topic == "status":
                res.statuses.append(body)
            else:
                res.events.append((int(now), body))
        for now, line in lines:
            with contextlib.suppress(ValueError):
                res.events.append((now, json.loads(line)))
        return res

    def _clean(self) -> None:
        """Remove this instance's leftovers (only its own segments and directory)."""
        for seg in Path("/dev/shm").glob(f"streamasr-{self.name}-*"):
            with contextlib.suppress(OSError):
                seg.unlink()
        subprocess.run(["rm", "-rf", str(self.base)], check=False)


def _read_lines(stream: IO[bytes] | None, out: list[tuple[int, bytes]]) -> None:
    """Append ``(receipt_ns, line)`` for each line of ``stream`` until it closes."""
    if stream is None:
        return
    for line in stream:
        out.append((time.time_ns(), line))


def _feed(
    proc: subprocess.Popen[bytes],
    stdin: IO[bytes],
    pcm: npt.NDArray[np.int16],
    ready: MpEvent,
    deadline: float,
) -> list[int]:
    """Wait for ``supervisor.ready``, then write ``pcm`` chunk by chunk at real time."""
    while not ready.wait(0.1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"pipeline not ready (exit {proc.poll()})")
    feed_ns: list[int] = []
    t0 = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), CHUNK)):
        delay = t0 + (k + 1) * CHUNK_MS / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        feed_ns.append(time.time_ns())
        stdin.write(pcm[i : i + CHUNK].tobytes())
        stdin.flush()
    stdin.close()
    return feed_ns
