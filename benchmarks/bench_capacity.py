"""Capacity: N real-time native-protocol clients on one ``serve`` pipeline (issue 17).

Usage::

    python benchmarks/bench_capacity.py                          # N = 1,2,4,6,8, accurate finals
    python benchmarks/bench_capacity.py --finals fast            # N = 1,4,8,12,16, first pass only
    python benchmarks/bench_capacity.py --partials off --streams 1    # issue 17's CPU line
    python benchmarks/bench_capacity.py --smoke --streams 1,2    # ~15 s of audio: checks the script
    python benchmarks/bench_capacity.py --smoke --finals fast --streams 2

A full run takes about two minutes of real time per N (91 s of audio each); ``--smoke``
(``--seconds 15``) trims the audio so that one N takes well under 40 s.

For each N a fresh ``streamasr-supervisor serve`` (``--finals accurate`` by default) is started
on a private instance and runtime directory (:class:`bench_gateway.GatewayServer`), and N
clients of the gateway's native protocol (``/v1/stream``) run at once in one asyncio loop in
this process. Each is :func:`bench_endpoint._client`, the client issue 17's figures were
measured with: 100 ms messages of 16 kHz s16le paced to absolute deadlines, every event
stamped (``time.time_ns()``) on arrival. Each client sends the shared conversations 1+2+3,
each followed by 3 s of digital silence (:func:`bench_endpoint._stream`, 91 s), *rotated at a
pause*: client ``k`` starts at the pause nearest ``k * --rotate-s`` seconds (3 s; a pause no
other client starts at) and wraps round before the closing 3 s of silence, so the utterances
of the N streams do not end at the same moment while every client still sends the same 24
sentences and ends with the silence.

Per N:

* **end of speech -> final**: for each reference sentence, the arrival of the first
  non-provisional final that overlaps it by > 0.15 s (:func:`bench_endpoint._first_arrival`:
  Whisper's accurate final, a fallback, or with ``--finals fast`` the first-pass final)
  minus the wall clock at which the message holding the sentence's ``.tsv`` end was sent.
  p50/p95/p99 over every sentence of every client, and the p95 without the sentences of
  *merged* finals (a final overlapping two sentences: the endpoint issue owns those; the
  first sentence of a merge waits for the second).
* **first partial**: arrival of the first non-empty partial that overlaps the sentence minus
  the send time of the message holding its ``.tsv`` start; p50.
* **WER** of the last non-provisional final of each utterance, per client against the
  rotated reference (``_quality_metrics.counts``, i.e. ``wer.py``), summed over the clients;
  its ratio to the N=1 row.
* **fallbacks** (accurate finals only), as ``bench_two_pass.py`` counts them: the larger of
  the refine actor's ``fallbacks`` counter and the utterances whose last non-provisional
  final is a first-pass one (``pass`` 1), less those the refine actor kept on purpose
  (``first_pass_kept``: Whisper wrote nothing where the speech gate heard speech).
* **frames lost**: ring readers' ``dropped_frames`` and ``overruns`` (the largest value per
  ring over the status maps the pipeline publishes every second on its event socket: a
  gateway stream's rings vanish when it ends) and the inference actors' ``frames_lost`` +
  ``resyncs`` and the event ``gaps`` from ``streamasr-supervisor status --json`` of the
  instance once every client has its ``end``.
* **CPU**: user + system CPU seconds of the supervisor and every actor (psutil, the process
  tree of ``serve`` sampled every 0.5 s so a restarted actor's seconds are kept) from just
  before the clients connect until every client has its ``end``, divided by the audio
  seconds of one stream: % of one core (100 % = one core busy for the whole run), and that
  divided by N.
* the box's load average before the pipeline starts.

Prints a line per N as it finishes, then a markdown table and the acceptance lines of issue
17 that the run can answer (met / NOT met). With ``--smoke`` the figures only check the
script: the trimmed audio is too short to compare with the full run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import _quality_metrics as qm
import numpy as np
import numpy.typing as npt
import psutil
from _common import CLI, RATE_HZ, ProcSampler, RefUtterance, cpu_model, load_average, losses, pct
from bench_endpoint import TAIL_S, _client, _first_arrival, _stream
from bench_gateway import GatewayServer, chunk_index
from wer import WerCounts

from streamasr.supervisor.client import Subscriber

Event = dict[str, Any]
Got = list[tuple[int, Event]]
#: Overlap (s) that makes a final belong to a sentence (``bench_endpoint``'s rule).
TOUCH_S = 0.15
#: Issue 17's acceptance figures.
P95_GOAL_S = 1.0
WER_RATIO_GOAL = 1.1
CPU_GOAL_PCT = 30.0
FAST_STREAMS_GOAL = 12
DEFAULT_STREAMS = {"accurate": "1,2,4,6,8", "fast": "1,4,8,12,16"}
SMOKE_S = 15.0


# --- audio -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientAudio:
    """What one client sends: PCM, its reference sentences (stream seconds), its rotation."""

    pcm: npt.NDArray[np.int16]
    units: list[RefUtterance]
    offset_s: float


def trimmed(seconds: float | None) -> tuple[npt.NDArray[np.int16], list[RefUtterance]]:
    """Conversations 1+2+3 with their silences; with ``seconds``, only the sentences that
    end within it, cut 0.6 s after the last one and followed by the 3 s of silence."""
    pcm, units = _stream()
    if seconds is None:
        return pcm, units
    kept = [u for u in units if u.end_s <= seconds] or units[:1]
    head = pcm[: int((kept[-1].end_s + 0.6) * RATE_HZ)]
    return np.concatenate([head, np.zeros(int(TAIL_S * RATE_HZ), np.int16)]), kept


def pause_points(units: list[RefUtterance]) -> list[float]:
    """Where a stream may be rotated: its start, and the middle of every pause."""
    return [0.0] + [(a.end_s + b.start_s) / 2 for a, b in itertools.pairwise(units)]


def rotations(n: int, points: list[float], step_s: float, total_s: float) -> list[float]:
    """Start points of ``n`` clients: client ``k`` the pause nearest ``k * step_s`` (modulo
    the stream) that no earlier client took (any pause once every one is taken)."""
    out: list[float] = []
    for k in range(n):
        target = (k * step_s) % total_s
        free = [p for p in points if p not in out] or points
        out.append(min(free, key=lambda p: min(abs(p - target), total_s - abs(p - target))))
    return out


def rotate(pcm: npt.NDArray[np.int16], units: list[RefUtterance], offset_s: float) -> ClientAudio:
    """The stream started at ``offset_s`` (a pause) and wrapped round, references re-timed.
    Its closing :data:`TAIL_S` of silence stays at the end, so every client's last sentence
    is followed by it (the end of the last conversation then meets the start of the first:
    a pause of about 1.4 s)."""
    body = len(pcm) - int(TAIL_S * RATE_HZ)
    cut = round(offset_s * RATE_HZ)
    shift, total = cut / RATE_HZ, body / RATE_HZ
    moved = []
    for u in units:
        d = -shift + (total if u.start_s < shift else 0.0)
        moved.append(RefUtterance(u.start_s + d, u.end_s + d, u.text))
    out = np.concatenate([pcm[cut:body], pcm[:cut], pcm[body:]])
    return ClientAudio(out, sorted(moved, key=lambda u: u.start_s), shift)


# --- what the pipeline says about itself ----------------------------------------------------


class StatusLog:
    """The status maps the pipeline publishes every second (topic ``status``), collected by a
    thread of this process: watching costs the pipeline nothing."""

    def __init__(self, endpoint: str) -> None:
        """Subscribe to ``endpoint`` (the instance's event socket)."""
        self.maps: list[dict[str, Any]] = []
        self._endpoint = endpoint
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        with Subscriber(self._endpoint, topics=("status",)) as sub:
            while not self._stop.is_set():
                item = sub.recv(timeout_s=0.2)
                if item is not None and item[0] == "status":
                    self.maps.append(item[1].status)

    def stop(self) -> list[dict[str, Any]]:
        """Stop; every map received."""
        self._stop.set()
        self._thread.join(timeout=5)
        return self.maps


def wait_running(srv: GatewayServer, timeout_s: float = 120.0) -> None:
    """Wait until the supervisor runs and every actor is Ready (``/healthz`` answers sooner)."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = srv.status()
        if st["phase"] == "running" and all(a["state"] == "running" for a in st["actors"]):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"actors not ready in {timeout_s:.0f} s: {st['actors']}")
        time.sleep(0.2)


def status_json(srv: GatewayServer) -> dict[str, Any]:
    """``streamasr-supervisor status --json`` of the instance."""
    res = subprocess.run(
        [*CLI, "status", "--json", "-c", str(srv.config)],
        env=srv.env,
        cwd=srv.base,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    st: dict[str, Any] = json.loads(res.stdout)
    return st


def ring_losses(maps: list[dict[str, Any]]) -> tuple[int, int]:
    """(dropped frames, overruns) over every ring reader seen: its largest value in any map."""
    worst: dict[tuple[str, str], tuple[int, int]] = {}
    for st in maps:
        for ring in st.get("rings", []):
            for rd in ring.get("readers", []):
                key = (str(ring["name"]), str(rd["reader"]))
                d, o = worst.get(key, (0, 0))
                worst[key] = (max(d, int(rd["dropped_frames"])), max(o, int(rd["overruns"])))
    return sum(d for d, _ in worst.values()), sum(o for _, o in worst.values())


def refine_counter(st: dict[str, Any], key: str) -> int:
    """The refine actor's counter ``key`` in status ``st`` (0 without one)."""
    return sum(
        int((a.get("counters") or {}).get(key, 0)) for a in st["actors"] if a["id"] == "refine"
    )


# --- one N -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """The figures of one N (seconds unless named otherwise)."""

    n: int
    load: str
    final_s: list[float] = field(default_factory=list)
    final_clean_s: list[float] = field(default_factory=list)
    partial_s: list[float] = field(default_factory=list)
    wer: WerCounts = field(default_factory=WerCounts)
    fallbacks: int = 0
    kept: int = 0
    merged: int = 0
    missing: int = 0
    dropped: int = 0
    overruns: int = 0
    inference_lost: int = 0
    gaps: int = 0
    restarts: int = 0
    cpu_s: float = 0.0
    cpu_by: dict[str, float] = field(default_factory=dict)
    audio_s: float = 0.0

    @property
    def lost(self) -> int:
        """Every loss count together."""
        return self.dropped + self.overruns + self.inference_lost + self.gaps

    @property
    def cpu_pct(self) -> float:
        """The pipeline's CPU over the run, % of one core."""
        return 100 * self.cpu_s / self.audio_s if self.audio_s else float("nan")


def _touches(e: Event, u: RefUtterance) -> bool:
    return min(float(e["end_s"]), u.end_s) - max(float(e["start_s"]), u.start_s) >= TOUCH_S


def _first_partial(got: Got, u: RefUtterance) -> int | None:
    """Arrival (ns) of the first non-empty partial that overlaps sentence ``u``."""
    for now, e in got:
        if e.get("type") != "partial" or not str(e.get("text", "")).strip():
            continue
        if float(e["end_s"]) > u.start_s and float(e["start_s"]) < u.end_s:
            return now
    return None


def score_client(row: Row, audio: ClientAudio, sent: list[int], got: Got, accurate: bool) -> None:
    """Add one client's latencies, WER, merges and shed finals to ``row``."""
    finals = qm.last_finals(
        [{**e, "is_final": True} for _, e in got if e.get("type") == "final"], accurate=True
    )
    spoken = [f for f in finals if f["text"].strip()]
    merges = [f for f in spoken if sum(_touches(f, u) for u in audio.units) >= 2]
    row.merged += len(merges)
    if accurate:
        row.fallbacks += sum(1 for f in finals if int(f["pass"]) == 1)
    ref = " ".join(u.text for u in audio.units)
    row.wer += qm.counts(ref, " ".join(f["text"] for f in finals))
    for u in audio.units:
        t = _first_arrival(got, u, True)
        if t is None:
            row.missing += 1
        else:
            late = (t - sent[min(len(sent) - 1, chunk_index(u.end_s))]) / 1e9
            row.final_s.append(late)
            if not any(_touches(f, u) for f in merges):
                row.final_clean_s.append(late)
        p = _first_partial(got, u)
        if p is not None:
            row.partial_s.append((p - sent[min(len(sent) - 1, chunk_index(u.start_s))]) / 1e9)


async def _clients(url: str, audios: list[ClientAudio]) -> list[tuple[list[int], Got]]:
    """Every client at once: (send wall clock per message, (arrival ns, event))."""
    return list(await asyncio.gather(*(_client(url, a.pcm) for a in audios)))


def _cpu_delta(sampler: ProcSampler, before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per process name since ``before`` (processes that started since: all)."""
    out: dict[str, float] = {}
    for pid, (name, cpu) in list(sampler.cpu.items()):
        out[name] = out.get(name, 0.0) + cpu - before.get(pid, (name, 0.0))[1]
    return out


def _first_sample(sampler: ProcSampler, timeout_s: float = 5.0) -> dict[int, tuple[str, float]]:
    deadline = time.monotonic() + timeout_s
    while not sampler.cpu and time.monotonic() < deadline:
        time.sleep(0.05)
    return dict(list(sampler.cpu.items()))


@dataclass(frozen=True, slots=True)
class Settings:
    """Command-line choices that every N shares."""

    finals: str
    extra_toml: str
    pcm: npt.NDArray[np.int16]
    units: list[RefUtterance]
    rotate_s: float
    save: Path | None


def run_n(n: int, cfg: Settings) -> Row:
    """Start ``serve``, run ``n`` clients, measure, stop it (also on errors and Ctrl-C)."""
    row = Row(n, load_average(), audio_s=len(cfg.pcm) / RATE_HZ)
    points = pause_points(cfg.units)
    audios = [
        rotate(cfg.pcm, cfg.units, off)
        for off in rotations(n, points, cfg.rotate_s, row.audio_s - TAIL_S)
    ]
    with tempfile.TemporaryDirectory(prefix="bcap", dir="/tmp") as tmp:
        srv = GatewayServer(Path(tmp), finals=cfg.finals, extra_toml=cfg.extra_toml)
        try:
            srv.__enter__()
            wait_running(srv)
            log = StatusLog(f"ipc://{srv.root / 'events'}")
            assert srv.proc is not None
            sampler = ProcSampler(srv.proc.pid, interval_s=0.5)
            before = _first_sample(sampler)
            try:
                results = asyncio.run(_clients(srv.url, audios))
                time.sleep(0.6)  # one more sample after the last end
            finally:
                sampler.stop()
                maps = log.stop()
            row.cpu_by = _cpu_delta(sampler, before)
            final = status_json(srv)
        finally:
            tree = _tree(srv)
            left = _down(srv)
            srv.__exit__(None, None, None)  # kills what lingers, removes what is left
            _check_clean(tree, left)
    _measure(row, cfg, audios, results, [*maps, final])
    if cfg.save is not None:
        _save(cfg.save / f"capacity-{cfg.finals}-N{n}.json", audios, results)
    return row


def _measure(
    row: Row,
    cfg: Settings,
    audios: list[ClientAudio],
    results: list[tuple[list[int], Got]],
    maps: list[dict[str, Any]],
) -> None:
    """Fill ``row`` from the clients' records and the status maps (the last: at the end)."""
    for audio, (sent, got) in zip(audios, results, strict=True):
        score_client(row, audio, sent, got, cfg.finals == "accurate")
    final = maps[-1]
    row.dropped, row.overruns = ring_losses(maps)
    lo = losses(final)
    row.inference_lost, row.gaps = lo["frames_lost"], lo["gaps"]
    row.restarts = sum(int(a.get("restarts", 0)) for a in final["actors"])
    if cfg.finals == "accurate":  # a first-pass final the refine actor kept is no fallback
        row.kept = refine_counter(final, "first_pass_kept")
        row.fallbacks = max(row.fallbacks - row.kept, refine_counter(final, "fallbacks"))
    row.cpu_s = sum(row.cpu_by.values())


def _tree(srv: GatewayServer) -> list[psutil.Process]:
    """The pipeline's processes now (``serve`` and its descendants)."""
    if srv.proc is None:
        return []
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(srv.proc.pid)
        return [root, *root.children(recursive=True)]
    return []


def _down(srv: GatewayServer) -> list[str]:
    """``down`` and wait for ``serve`` to exit; the instance's segments still in /dev/shm
    (none: the supervisor unlinks every segment it made)."""
    if srv.proc is not None and srv.proc.poll() is None:
        argv = [*CLI, "down", "-c", str(srv.config)]
        subprocess.run(argv, env=srv.env, capture_output=True, timeout=60, check=False)
        try:
            srv.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("  WARNING: serve did not exit 30 s after down; killed", flush=True)
    return sorted(p.name for p in Path("/dev/shm").glob(f"streamasr-{srv.name}-*"))


def _check_clean(tree: list[psutil.Process], left: list[str]) -> None:
    """Say (and end) any process of the pipeline still alive after it stopped (psutil checks
    that a pid was not reused); say any of its segments the supervisor left."""
    for p in tree:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                print(f"  WARNING: pipeline process {p.pid} outlived it; killed", flush=True)
                p.kill()
    if left:
        print(f"  WARNING: the pipeline left segments (removed): {left}", flush=True)


def _save(path: Path, audios: list[ClientAudio], results: list[tuple[list[int], Got]]) -> None:
    """The raw records of one N, for a second look."""
    rows = [
        {"offset_s": a.offset_s, "units": [[u.start_s, u.end_s, u.text] for u in a.units],
         "sent_ns": sent, "events": got}
        for a, (sent, got) in zip(audios, results, strict=True)
    ]  # fmt: skip
    path.write_text(json.dumps(rows))


# --- report ----------------------------------------------------------------------------------


def _three(xs: list[float]) -> str:
    return " / ".join(f"{pct(xs, q):.2f}" for q in (50, 95, 99)) if xs else "-"


def _ratio(row: Row, base: Row | None) -> float:
    if base is None:
        return float("nan")
    if base.wer.wer == 0:
        return 1.0 if row.wer.wer == 0 else float("inf")
    return row.wer.wer / base.wer.wer


def _ratio_text(row: Row, base: Row | None) -> str:
    return f"{_ratio(row, base):.2f}x" if base is not None else "-"


def print_row(r: Row, accurate: bool) -> None:
    """One line per N as it finishes."""
    cpu = ", ".join(f"{k} {100 * v / r.audio_s:.0f}" for k, v in sorted(r.cpu_by.items()))
    kind = "accurate" if accurate else "first-pass"
    shed = (
        f"fallbacks {r.fallbacks} (first-pass text kept on purpose {r.kept}), " if accurate else ""
    )
    print(
        f"  N={r.n:2d}: end of speech -> {kind} final p50/p95/p99 {_three(r.final_s)} s "
        f"(p95 without merges {pct(r.final_clean_s, 95):.2f} s), first partial p50 "
        f"{pct(r.partial_s, 50):.2f} s, WER {100 * r.wer.wer:.1f}% "
        f"({r.wer.edits}/{r.wer.ref_words}), {shed}merged {r.merged}, "
        f"missing {r.missing}, lost {r.dropped}/{r.overruns}/{r.inference_lost} gaps {r.gaps}, "
        f"restarts {r.restarts}, CPU {r.cpu_pct:.0f}% of a core ({cpu}), load at start {r.load}",
        flush=True,
    )


def print_table(rows: list[Row], accurate: bool) -> None:
    """The markdown table."""
    base = next((r for r in rows if r.n == 1), None)
    kind = "accurate" if accurate else "first-pass"
    print(
        f"\n| streams | load at start | end of speech -> {kind} final p50 / p95 / p99 (s) "
        "| p95 without merges (s) | first partial after speech start p50 (s) "
        f"| {kind}-final WER | vs N=1 | fallbacks | merged / missing "
        "| frames lost (ring dropped / overruns / inference) | CPU % of one core (per stream) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fb = str(r.fallbacks) if accurate else "-"
        lost = f"{r.dropped} / {r.overruns} / {r.inference_lost}" + (
            f" ({r.gaps} event gaps)" if r.gaps else ""
        )
        print(
            f"| {r.n} | {r.load} | {_three(r.final_s)} | {pct(r.final_clean_s, 95):.2f} "
            f"| {pct(r.partial_s, 50):.2f} | {100 * r.wer.wer:.1f}% | {_ratio_text(r, base)} "
            f"| {fb} | {r.merged} / {r.missing} | {lost} "
            f"| {r.cpu_pct:.0f}% ({r.cpu_pct / r.n:.0f}%) |"
        )


def _line(ok: bool, text: str) -> str:
    return f"- {'met' if ok else 'NOT met'}: {text}"


def _accurate_lines(by_n: dict[int, Row], partials: str) -> list[str]:
    """The accurate-finals lines: 4 streams against N=1, and the 1-stream CPU."""
    out: list[str] = []
    if 4 in by_n:
        r, base = by_n[4], by_n.get(1)
        p95 = pct(r.final_clean_s, 95)
        text = f"4 streams: end of speech -> accurate final p95 {p95:.2f} s <= {P95_GOAL_S} s"
        out.append(_line(p95 <= P95_GOAL_S, f"{text} ({r.merged} merges excluded)"))
        if base is None:
            out.append(f"- cannot tell: 4 streams WER <= {WER_RATIO_GOAL}x N=1 (no N=1 run)")
        else:
            ratio = _ratio(r, base)
            text = f"4 streams: WER {100 * r.wer.wer:.1f}% = {ratio:.2f}x N=1's"
            text += f" {100 * base.wer.wer:.1f}% (<= {WER_RATIO_GOAL}x)"
            out.append(_line(ratio <= WER_RATIO_GOAL, text))
        out.append(_line(r.fallbacks == 0, f"4 streams: {r.fallbacks} fallbacks (goal 0)"))
        out.append(_line(r.lost == 0, f"4 streams: {r.lost} frames lost (goal 0)"))
    if 1 in by_n:
        cpu = by_n[1].cpu_pct
        text = f"1 stream, Whisper partials {partials}: CPU {cpu:.0f}% of a core"
        if partials == "off":
            out.append(_line(cpu <= CPU_GOAL_PCT, f"{text} <= {CPU_GOAL_PCT:.0f}%"))
        else:
            out.append(f"- ({text}; the goal of {CPU_GOAL_PCT:.0f}% is for --partials off)")
    return out


def _fast_lines(rows: list[Row]) -> list[str]:
    """The ``--finals fast`` line: how many streams keep the first-pass final p95."""
    best = max((r.n for r in rows if pct(r.final_s, 95) <= P95_GOAL_S), default=0)
    goal = f">= {FAST_STREAMS_GOAL} real-time streams with first-pass final p95 <= {P95_GOAL_S} s"
    if max((r.n for r in rows), default=0) < FAST_STREAMS_GOAL:
        return [f"- cannot tell: --finals fast {goal} (no N >= {FAST_STREAMS_GOAL} run)"]
    return [_line(best >= FAST_STREAMS_GOAL, f"--finals fast: {goal}: {best}")]


def acceptance(rows: list[Row], accurate: bool, partials: str) -> list[str]:
    """Issue 17's acceptance lines that these rows answer."""
    if accurate:
        return _accurate_lines({r.n: r for r in rows}, partials)
    return _fast_lines(rows)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the run as Ctrl-C does (the pipeline is stopped on the way out)."""
    raise KeyboardInterrupt


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--finals", choices=("accurate", "fast"), default="accurate")
    ap.add_argument("--streams", help="comma-separated N (default 1,2,4,6,8; fast 1,4,8,12,16)")
    ap.add_argument(
        "--partials", choices=("auto", "off"), help="[refine] partials (default: config)"
    )
    ap.add_argument("--rotate-s", type=float, default=3.0, help="client k starts near k x this")
    ap.add_argument("--seconds", type=float, help="only the sentences of the first S seconds")
    ap.add_argument(
        "--smoke", action="store_true", help=f"--seconds {SMOKE_S:.0f}: checks the script"
    )
    ap.add_argument("--save", type=Path, help="directory for the raw records of each N (JSON)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    seconds = SMOKE_S if args.smoke and args.seconds is None else args.seconds
    counts = [int(c) for c in (args.streams or DEFAULT_STREAMS[args.finals]).split(",") if c]
    extra = f'[refine]\npartials = "{args.partials}"\n' if args.partials else ""
    pcm, units = trimmed(seconds)
    cfg = Settings(args.finals, extra, pcm, units, args.rotate_s, args.save)
    accurate = args.finals == "accurate"
    print(f"# capacity on {cpu_model()}, {os.cpu_count()} cores; load average {load_average()}")
    what = f"each client {len(pcm) / RATE_HZ:.1f} s, {len(units)} sentences"
    print(
        f"serve --finals {args.finals}, Whisper partials {args.partials or 'auto (config)'}; "
        f"{what}, rotated at pauses ~{args.rotate_s:g} s apart; N = {counts}"
        + (" (SMOKE: trimmed audio, the figures only check the script)" if seconds else ""),
        flush=True,
    )
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    interrupted = False
    try:
        for n in counts:
            rows.append(run_n(n, cfg))
            print_row(rows[-1], accurate)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: the pipeline was stopped; the rows so far:", flush=True)
    print(f"\nload average at end: {load_average()}")
    print_table(rows, accurate)
    lines = acceptance(rows, accurate, args.partials or "auto")
    if lines:
        print("\nIssue 17 acceptance" + (" (smoke: not the real figures)" if seconds else "") + ":")
        print("\n".join(lines))
    if interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
