"""Pipeline performance in one run: CPU overhead, emission latency, end of speech -> final,
real-time stream capacity and torch batching, each against its baseline, side by side.

Usage::

    python benchmarks/bench_pipeline.py            # about 15 minutes
    python benchmarks/bench_pipeline.py --quick    # about 2 minutes

What each section measures (wall clocks are ``time.time_ns()`` on this one machine):

1. **CPU overhead.** User + system CPU of ``up --source FILE --fast --finals fast --quiet``
   and every process it waited for (``getrusage(RUSAGE_CHILDREN)`` around the run) against
   PocketSphinx decoding the same PCM in 100 ms chunks in this process
   (``time.process_time()``, model load excluded). The fixed start-up cost is a run on 1 s of
   audio; the marginal ratio is ``(pipeline - start-up) / plain``, the total one
   ``pipeline / (plain + plain start-up)`` (a fresh interpreter importing, loading and warming
   the model).
2. **Emission latency.** The benchmark writes raw PCM to ``up --source - --fast`` one 100 ms
   chunk every 100 ms (real time) and stamps ``W_k``, the wall clock at which chunk ``k``'s
   last sample was handed over; an external Subscriber in its own process stamps each
   partial's receipt ``R``. The partial's chunk is the ``k`` that makes
   ``R - W_k - latency_s`` smallest and non-negative (``latency_s`` = inference send time
   minus the capture stamp of the newest chunk covered). Total = ``R - W_k``; pipeline
   overhead = total - the backend's compute: ``stages_s["inference"]`` (its call for this
   chunk) and ``stages_s["wait"]`` (the chunk arrived while the backend was still busy with
   earlier work, e.g. finalising the previous utterance, which a plain loop would wait for
   too; also printed counted as overhead); the remainder is split into feature, queue
   (inference wake-up and read) and hop (capture's read from the pipe plus supervisor relay
   plus subscriber decode = ``total - latency_s``).
3. **End of speech -> final.** Same real-time feed; the last speech sample's capture time is
   ``W_k - (end of chunk k - sample) / rate`` for the ``.tsv`` end (reference) and for the
   decoder's own speech end (final ``end_s`` minus the 60 ms hangover); compared with the
   final's receipt. Pass 1 (``--finals fast``) and pass 2 (``--finals accurate``, the default,
   whose first pass skips PocketSphinx's ``fwdflat`` search) runs.
4. **Real-time capacity.** N ``[[streams]]`` (real-time file cuts) in one pipeline: p95 of the
   partials' ``latency_s`` (capture -> emission by inference) and the status counters for
   loss; against N plain decoder processes paced at real time (per chunk: decode finish minus
   the chunk's due time). The pipeline runs with one inference worker and with the default
   (``workers = "auto"``: one per core, at most N). Each N runs twice, interleaved, and the
   latencies of both runs are pooled (this shared box drifts by tens of ms between runs).
5. **Torch batching.** A random-weight TorchScript LSTM CTC model (80 log-mels in): audio
   seconds per CPU second decoding N streams one at a time vs ``decode_batch`` over N.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    AUDIO_DIR,
    CHUNK,
    CHUNK_MS,
    CLI,
    CONVERSATIONS,
    RATE_HZ,
    PipelineRun,
    RefUtterance,
    RunResult,
    children_cpu_s,
    concat,
    cpu_model,
    cut,
    load_average,
    load_pcm,
    max_losses,
    pct,
    write_wav,
)

STDIN_ARGS = ("--source", "-", "--rate", str(RATE_HZ), "--format", "s16le", "--channels", "1")
HANGOVER_S = 0.06  # [inference.pocketsphinx] end_hangover_ms default
ENDPOINT_S = 0.6  # [inference.pocketsphinx] endpoint_silence_ms default


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the final table (values already formatted)."""

    section: str
    metric: str
    measured: str
    baseline: str
    ratio: str
    target: str
    met: str


ROWS: list[Row] = []


def row(
    section: str,
    metric: str,
    measured: str,
    baseline: str = "",
    ratio: str = "",
    target: str = "",
    met: bool | None = None,
) -> None:
    """Record a table row (``met`` None = no target)."""
    ok = "" if met is None else ("yes" if met else "**no**")
    ROWS.append(Row(section, metric, measured, baseline, ratio, target, ok))


def ms(x: float) -> str:
    """Seconds as milliseconds text."""
    return f"{1000 * x:.1f} ms"


def pcts(xs: Sequence[float]) -> str:
    """p50/p95/p99 in milliseconds."""
    return "/".join(f"{1000 * pct(xs, q):.1f}" for q in (50, 95, 99)) + " ms"


# --- plain single-process decoding ---------------------------------------------------------


@dataclass(slots=True)
class LoopLog:
    """What a plain decoding loop emitted (latencies: finish time minus the chunk's due time).

    Attributes:
        partial_s: one latency per partial the inference actor would send (text changed).
        finals: ``(final, chunk index, latency)`` per non-empty final.
    """

    partial_s: list[float] = field(default_factory=list)
    finals: list[tuple[Any, int, float]] = field(default_factory=list)


def decode_loop(
    stream: Any, pcm: npt.NDArray[np.int16], due: Callable[[int], float] | None = None
) -> LoopLog:
    """Decode ``pcm`` in 100 ms chunks exactly as the inference actor drives a stream.

    ``due(k)``: monotonic time at which chunk ``k``'s last sample arrives; the loop sleeps
    until then (real-time pacing). Without it chunk ``k`` is due when the loop reaches it.
    """
    log, last = LoopLog(), ""
    k = 0
    for k, i in enumerate(range(0, len(pcm), CHUNK)):
        t_due = time.monotonic() if due is None else due(k)
        time.sleep(max(0.0, t_due - time.monotonic()))
        stream.accept(pcm[i : i + CHUNK])
        while True:
            if stream.is_endpoint():
                last = _final(stream, log, k, t_due)
            elif stream.is_ready():
                stream.step()
            else:
                break
        res = stream.result()
        if res is not None and res.text != last:
            last = res.text
            log.partial_s.append(time.monotonic() - t_due)
    _final(stream, log, k, time.monotonic())
    return log


def _final(stream: Any, log: LoopLog, k: int, t_due: float) -> str:
    res = stream.finalize()
    if res is not None and res.text:
        log.finals.append((res, k, time.monotonic() - t_due))
    return ""


def plain_cpu_s(pcm: npt.NDArray[np.int16]) -> float:
    """CPU seconds of PocketSphinx decoding ``pcm`` in this process (model load excluded)."""
    from streamasr.actors.asr.registry import create_recognizer

    rec = create_recognizer("pocketsphinx", {})
    rec.warm_up()
    stream = rec.create_stream()
    t0 = time.process_time()
    decode_loop(stream, pcm)
    cpu = time.process_time() - t0
    getattr(stream, "close", lambda: None)()
    return cpu


def plain_startup_cpu_s() -> float:
    """CPU seconds of a fresh interpreter that imports the backend and loads + warms it."""
    import subprocess

    code = (
        "from streamasr.actors.asr.registry import create_recognizer\n"
        "create_recognizer('pocketsphinx', {}).warm_up()\n"
    )
    c0 = children_cpu_s()
    subprocess.run([sys.executable, "-c", code], check=True)
    return children_cpu_s() - c0


# --- 1. CPU overhead -----------------------------------------------------------------------


def section_cpu(quick: bool, tmp: Path) -> None:
    """Pipeline CPU vs the plain loop, on a 30 s file and a longer one; start-up separately."""
    print("\n## 1. CPU overhead (--fast --finals fast)", flush=True)
    inputs = {"tiny": load_pcm("conversation1")[:RATE_HZ], "30s": load_pcm("conversation1")}
    if not quick:
        inputs["long"] = concat(CONVERSATIONS)[0]
    repeats = {"tiny": 1 if quick else 3, "30s": 1 if quick else 2, "long": 1}
    pipe: dict[str, float] = {}
    for label, pcm in inputs.items():
        wav = write_wav(tmp / f"cpu_{label}.wav", pcm)
        runs = []
        for _ in range(repeats[label]):
            res = PipelineRun().run(
                ["--source", str(wav), "--fast", "--finals", "fast"], sample_cpu=True
            )
            check(res, f"cpu {label}")
            runs.append(res.cpu_s)
            print(
                "    by process (sampled): "
                + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(res.cpu_by_process.items())),
                flush=True,
            )
        pipe[label] = statistics.median(runs)
        print(
            f"  pipeline {label:5s} ({len(pcm) / RATE_HZ:5.1f} s audio): CPU "
            f"{' '.join(f'{c:.2f}' for c in runs)} s, median {pipe[label]:.2f} s",
            flush=True,
        )
    startup = pipe["tiny"]
    plain_start = statistics.median(plain_startup_cpu_s() for _ in range(1 if quick else 3))
    print(
        f"  start-up + shutdown (1 s input): pipeline {startup:.2f} s CPU, "
        f"plain process (import + load + warm-up) {plain_start:.2f} s CPU"
    )
    row(
        "1 CPU",
        "start-up CPU (1 s input)",
        f"{startup:.2f} s",
        f"{plain_start:.2f} s",
        f"{startup / plain_start:.2f}x",
    )
    for label in [k for k in inputs if k != "tiny"]:
        plain = statistics.median(plain_cpu_s(inputs[label]) for _ in range(repeats[label]))
        whole = plain + plain_start  # a plain process also starts and loads its model
        ratio, marginal = pipe[label] / whole, (pipe[label] - startup) / plain
        audio_s = len(inputs[label]) / RATE_HZ
        print(
            f"  {label}: plain loop {plain:.2f} s CPU (+ {plain_start:.2f} s its start-up); "
            f"ratio {ratio:.2f}x total, {marginal:.2f}x without start-up"
        )
        row(
            "1 CPU",
            f"CPU, {audio_s:.0f} s audio (total, both with start-up)",
            f"{pipe[label]:.2f} s",
            f"{whole:.2f} s",
            f"{ratio:.2f}x",
            "<= 1.10x",
            ratio <= 1.10,
        )
        row(
            "1 CPU",
            f"CPU, {audio_s:.0f} s audio (minus start-up)",
            f"{pipe[label] - startup:.2f} s",
            f"{plain:.2f} s",
            f"{marginal:.2f}x",
            "<= 1.10x",
            marginal <= 1.10,
        )


def check(res: RunResult, what: str) -> None:
    """Fail loudly when a pipeline run did not exit cleanly."""
    if res.returncode != 0:
        raise RuntimeError(f"{what}: up exited {res.returncode}:\n{res.stderr}")


# --- 2 + 3. real-time latency ----------------------------------------------------------------


def chunk_of(res: RunResult, receipt_ns: int, latency_s: float) -> int | None:
    """Index of the fed chunk whose capture stamp an event carries (see the module doc)."""
    slack = np.asarray(res.feed_ns, dtype=np.int64) - (receipt_ns - int(latency_s * 1e9))
    ok = np.nonzero(slack <= 200_000)[0]  # W_k <= send time (+0.2 ms float slack)
    return int(ok[-1]) if ok.size else None


def sample_time_ns(res: RunResult, t_s: float) -> int:
    """Real-time capture wall clock of the sample at stream second ``t_s``."""
    n = max(1, int(np.ceil(t_s * RATE_HZ)))
    k = min((n - 1) // CHUNK, len(res.feed_ns) - 1)
    return res.feed_ns[k] - int(((k + 1) * CHUNK - n) / RATE_HZ * 1e9)


#: Per-partial figures of section 2 (see :func:`emission`).
EMISSION_KEYS = (
    "total",
    "compute",
    "wait",
    "overhead",
    "overhead_incl_wait",
    "feature",
    "queue",
    "hop",
)


def emission(res: RunResult) -> dict[str, list[float]]:
    """Per partial: total, compute, overhead and its parts (seconds)."""
    out: dict[str, list[float]] = {k: [] for k in EMISSION_KEYS}
    for receipt, e in res.events:
        if e["is_final"] or "feature" not in e["stages_s"]:
            continue
        k = chunk_of(res, receipt, e["latency_s"])
        if k is None:
            continue
        total = (receipt - res.feed_ns[k]) / 1e9
        st = e["stages_s"]
        out["total"].append(total)
        engine = st["inference"] + st.get("wait", 0.0)
        out["compute"].append(st["inference"])
        out["wait"].append(st.get("wait", 0.0))
        out["overhead"].append(total - engine)
        out["overhead_incl_wait"].append(total - st["inference"])
        out["feature"].append(st["feature"])
        out["queue"].append(st["queue"])
        out["hop"].append(total - e["latency_s"])
    return out


def finals_delay(
    res: RunResult, ref: Sequence[RefUtterance], passno: int, own_end: bool
) -> list[float]:
    """Seconds from each utterance's last speech sample to its final's receipt."""
    finals = [(r, e) for r, e in res.events if e["is_final"] and e["passno"] == passno]
    out = []
    for u in ref:
        hits = [(r, e) for r, e in finals if e["start_s"] < u.end_s and e["end_s"] > u.start_s]
        if not hits:
            continue
        receipt, e = max(hits, key=lambda h: h[1]["end_s"])
        end_s = e["end_s"] - HANGOVER_S if own_end else u.end_s
        out.append((receipt - sample_time_ns(res, end_s)) / 1e9)
    return out


def plain_end_to_final(
    pcm: npt.NDArray[np.int16], ref: Sequence[RefUtterance]
) -> tuple[list[float], list[float]]:
    """End of speech -> final of the plain loop, from the .tsv end and from its own speech end.

    Real time without the wait: chunk ``k`` completes at ``(k + 1) * 100 ms`` of stream time,
    its final is ready after the measured compute of that chunk (step + finalize).
    """
    from streamasr.actors.asr.registry import create_recognizer

    rec = create_recognizer("pocketsphinx", {})
    rec.warm_up()
    log = decode_loop(rec.create_stream(), pcm)
    by_ref, by_own = [], []
    for u in ref:
        hits = [
            (r, k, lat)
            for r, k, lat in log.finals
            if r.start_frame / RATE_HZ < u.end_s and r.end_frame / RATE_HZ > u.start_s
        ]
        if hits:
            r, k, lat = max(hits, key=lambda h: h[0].end_frame)
            ready_s = (k + 1) * CHUNK / RATE_HZ + lat
            by_ref.append(ready_s - u.end_s)
            by_own.append(ready_s - (r.end_frame / RATE_HZ - HANGOVER_S))
    return by_ref, by_own


def section_latency(quick: bool) -> None:
    """Sections 2 and 3 from one real-time --finals fast run and one accurate run."""
    pcm, ref = cut("conversation1", 12.0) if quick else concat(CONVERSATIONS[:2])
    print(
        f"\n## 2-3. real-time feed on stdin, {len(pcm) / RATE_HZ:.1f} s, {len(ref)} utterances",
        flush=True,
    )
    fast = PipelineRun().run([*STDIN_ARGS, "--fast", "--finals", "fast"], feed=pcm)
    check(fast, "latency fast")
    em = emission(fast)
    print(f"  partials: {len(em['total'])} matched to their chunk")
    for key in EMISSION_KEYS:
        print(f"    {key:18s} p50/p95/p99 {pcts(em[key])}")
    p99 = pct(em["overhead"], 99)
    row("2 emission", "chunk captured -> partial at subscriber p50/p95/p99", pcts(em["total"]))
    row("2 emission", "backend compute in it p50/p95/p99", pcts(em["compute"]))
    row(
        "2 emission",
        "waiting for the backend's earlier work (a finalisation) p50/p95/p99",
        pcts(em["wait"]),
    )
    row(
        "2 emission",
        "overhead counting that wait as pipeline p50/p95/p99",
        pcts(em["overhead_incl_wait"]),
    )
    row(
        "2 emission",
        "pipeline overhead p50/p95/p99",
        pcts(em["overhead"]),
        target="p99 <= 2 ms",
        met=p99 <= 0.002,
    )
    acc = PipelineRun().run([*STDIN_ARGS, "--fast", "--finals", "accurate"], feed=pcm)
    check(acc, "latency accurate")
    budget = ENDPOINT_S + 0.150
    print(f"\n## 3. end of speech -> final (endpoint {ENDPOINT_S * 1000:.0f} ms + 150 ms)")
    base_ref, base_own = plain_end_to_final(pcm, ref)
    print(
        f"  {'plain loop (same PCM, 100 ms chunks)':34s} n={len(base_ref):2d}  from .tsv end "
        f"p50/p95 {ms(pct(base_ref, 50))}/{ms(pct(base_ref, 95))}  from decoder's speech "
        f"end p50/p95 {ms(pct(base_own, 50))}/{ms(pct(base_own, 95))}"
    )
    for label, res, passno in (
        ("pass 1, --finals fast", fast, 1),
        ("pass 1 provisional, accurate run", acc, 1),
        ("pass 2, --finals accurate", acc, 2),
    ):
        ref_d = finals_delay(res, ref, passno, own_end=False)
        own_d = finals_delay(res, ref, passno, own_end=True) if passno == 1 else []
        after = [e["latency_s"] for _, e in res.events if e["is_final"] and e["passno"] == passno]
        print(
            f"  {label:34s} n={len(ref_d):2d}  from .tsv end p50/p95 "
            f"{ms(pct(ref_d, 50))}/{ms(pct(ref_d, 95))}"
            + (
                f"  from decoder's speech end p50/p95 {ms(pct(own_d, 50))}/{ms(pct(own_d, 95))}"
                if own_d
                else ""
            )
            + f"; final's latency_s (endpoint chunk captured -> sent) p50/p95 "
            f"{ms(pct(after, 50))}/{ms(pct(after, 95))}",
            flush=True,
        )
        both = passno == 1
        row(
            "3 end->final",
            f"{label}, from .tsv end p50/p95 (n={len(ref_d)})",
            f"{ms(pct(ref_d, 50))}/{ms(pct(ref_d, 95))}",
            f"{ms(pct(base_ref, 50))}/{ms(pct(base_ref, 95))}" if both else "",
            f"{pct(ref_d, 95) / pct(base_ref, 95):.2f}x" if both else "",
            f"p95 <= {ms(budget)}",
            pct(ref_d, 95) <= budget if both else None,
        )
        if own_d:
            row(
                "3 end->final",
                f"{label}, from decoder's speech end p50/p95",
                f"{ms(pct(own_d, 50))}/{ms(pct(own_d, 95))}",
                f"{ms(pct(base_own, 50))}/{ms(pct(base_own, 95))}",
                f"{pct(own_d, 95) / pct(base_own, 95):.2f}x",
                f"p95 <= {ms(budget)}",
                pct(own_d, 95) <= budget,
            )


# --- 4. real-time capacity -----------------------------------------------------------------


def _paced_worker(pcm: npt.NDArray[np.int16], barrier: Any, out: Any) -> None:
    """One plain decoder process paced at real time; puts its partial latencies."""
    from streamasr.actors.asr.registry import create_recognizer

    rec = create_recognizer("pocketsphinx", {})
    rec.warm_up()
    stream = rec.create_stream()
    barrier.wait()
    t0 = time.monotonic() + 0.05
    log = decode_loop(stream, pcm, lambda k: t0 + (k + 1) * CHUNK_MS / 1000)
    out.put(log.partial_s)


def baseline_capacity(pcms: Sequence[npt.NDArray[np.int16]]) -> list[float]:
    """Per-chunk decode latencies (s) of len(pcms) real-time plain decoder processes."""
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(len(pcms)), ctx.Queue()
    procs = [ctx.Process(target=_paced_worker, args=(p, barrier, out)) for p in pcms]
    for p in procs:
        p.start()
    lat: list[float] = []
    for _ in procs:
        lat += out.get(timeout=300)
    for p in procs:
        p.join(timeout=30)
    return lat


def pipeline_capacity(
    n: int, wavs: Sequence[Path], workers: int | str = "auto"
) -> tuple[list[float], dict[str, int], str]:
    """Partial latencies, loss counters and exit note of ``n`` real-time streams decoded by
    ``workers`` inference processes (``"auto"``: the default, one per core up to ``n``)."""
    tables = "".join(
        f'[[streams]]\nkind = "file"\npath = "{wavs[i % len(wavs)]}"\nstream_id = "s{i}"\n'
        "realtime = true\n\n"
        for i in range(n)
    )
    count = f'"{workers}"' if isinstance(workers, str) else str(min(workers, n))
    res = PipelineRun(f'[inference]\nworkers = {count}\n[refine]\nfinals = "fast"\n\n{tables}').run(
        ["--finals", "fast"], subscribe=True
    )
    lat = [e["latency_s"] for _, e in res.events if not e["is_final"]]
    lost = max_losses(res.statuses)
    if "fell" in res.stderr or "behind" in res.stderr:
        lost["frames_lost"] = max(lost["frames_lost"], 1)
    note = "" if res.returncode == 0 else f"exit {res.returncode}"
    return lat, lost, note


#: Pipeline variants of section 4: one inference worker, and the default.
VARIANTS: tuple[tuple[str, int | str], ...] = (("1 worker", 1), ("default workers", "auto"))


def section_capacity(quick: bool, tmp: Path) -> None:
    """Largest N real-time streams with p95 emission < chunk and no loss, vs N processes;
    the pipeline with one inference worker and with the default (one per core)."""
    seconds = 8.0 if quick else 15.0
    cuts = [cut(name, seconds)[0] for name in CONVERSATIONS]
    wavs = [write_wav(tmp / f"cap_{i}.wav", c) for i, c in enumerate(cuts)]
    limit = CHUNK_MS / 1000
    cores = len(os.sched_getaffinity(0))
    print(
        f"\n## 4. real-time streams (cuts of {seconds:.0f} s, p95 < {CHUNK_MS} ms, no loss; "
        f"default workers = min({cores} cores, N))",
        flush=True,
    )
    names = [name for name, _ in VARIANTS]
    best = dict.fromkeys([*names, "plain"], 0)
    ok_so_far = dict.fromkeys([*names, "plain"], True)
    repeats = 1 if quick else 2
    for n in (1, 2, 4) if quick else (1, 2, 3, 4, 6, 8):
        base: list[float] = []
        runs: dict[str, tuple[list[float], dict[str, int], str]] = {}
        for _ in range(repeats):  # interleaved, latencies pooled: drift hits all alike
            base += baseline_capacity([cuts[i % 3] for i in range(n)])
            for name, workers in VARIANTS:
                lat, lost, note = pipeline_capacity(n, wavs, workers)
                prev = runs.get(name, ([], {}, ""))
                runs[name] = (
                    prev[0] + lat,
                    {k: max(v, prev[1].get(k, 0)) for k, v in lost.items()},
                    prev[2] or note,
                )
        ok_base = pct(base, 95) < limit
        ok_so_far["plain"] = ok_so_far["plain"] and ok_base
        best["plain"] = n if ok_so_far["plain"] else best["plain"]
        for name, _ in VARIANTS:
            lat, lost, note = runs[name]
            ok = bool(lat) and pct(lat, 95) < limit and not any(lost.values()) and not note
            ok_so_far[name] = ok_so_far[name] and ok
            best[name] = n if ok_so_far[name] else best[name]
            print(
                f"  N={n:2d} pipeline ({name}) p95 {ms(pct(lat, 95))} "
                f"p99 {ms(pct(lat, 99))} ({len(lat)} partials) losses {lost} {note} -> "
                f"{'ok' if ok else 'FAIL'} | {n} plain processes p95 {ms(pct(base, 95))} -> "
                f"{'ok' if ok_base else 'FAIL'}  [load {load_average()}]",
                flush=True,
            )
            row(
                "4 streams",
                f"N={n}, {name}: p95 emission (pipeline vs N processes)",
                ms(pct(lat, 95)),
                ms(pct(base, 95)),
                f"{pct(lat, 95) / pct(base, 95):.2f}x",
                f"< {CHUNK_MS} ms, no loss",
                ok,
            )
        if not any(ok_so_far.values()):
            break
    for name in names:
        row(
            "4 streams",
            f"largest real-time N, {name} (pipeline vs N processes)",
            str(best[name]),
            str(best["plain"]),
        )


# --- 5. torch batching ---------------------------------------------------------------------


def build_model(path: Path, n_mels: int, hidden: int, vocab: int) -> int:
    """Script a random 2-layer LSTM CTC model to ``path``; returns its parameter count."""
    import torch
    from torch import nn

    class LstmCtc(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = hidden
            self.lstm = nn.LSTM(n_mels, hidden, num_layers=2, batch_first=True)
            self.out = nn.Linear(hidden, vocab)

        def forward(
            self, feats: torch.Tensor, state: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor]:
            h, c = state[:2].contiguous(), state[2:].contiguous()
            y, (h2, c2) = self.lstm(feats, (h, c))
            return torch.log_softmax(self.out(y), dim=-1), torch.cat([h2, c2], dim=0)

        @torch.jit.export
        def initial_state(self, batch: int) -> torch.Tensor:
            return torch.zeros(4, batch, self.hidden)

    torch.manual_seed(0)
    model = LstmCtc().eval()
    torch.jit.save(torch.jit.script(model), str(path))
    return sum(p.numel() for p in model.parameters())


def torch_decode(
    rec: Any, feats: Sequence[npt.NDArray[np.float32]], batched: bool
) -> tuple[float, float, list[str]]:
    """(CPU s, wall s, finals) of decoding every stream's features chunk by chunk."""
    streams = [rec.create_stream() for _ in feats]
    texts: list[str] = []
    step = rec.options.chunk_frames
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(0, feats[0].shape[0], step):
        chunks = [f[i : i + step] for f in feats]
        if batched:
            rec.decode_batch(streams, chunks)
        else:
            for s, c in zip(streams, chunks, strict=True):
                s.accept(c)
        for s in streams:
            while True:
                if s.is_endpoint():
                    res = s.finalize()
                    texts += [res.text] if res is not None else []
                elif s.is_ready():
                    s.step()
                else:
                    break
    return time.process_time() - c0, time.perf_counter() - w0, texts


def section_torch(quick: bool, tmp: Path) -> None:
    """Throughput of the torch backend at batch 1 vs decode_batch over N streams."""
    import torch

    from streamasr.actors.asr.torch_backend import TorchCtcOptions, TorchCtcRecognizer

    tokens = ("<blk>", "|", *"abcdefghijklmnopqrstuvwxyz'")
    params = build_model(tmp / "lstm.pt", 80, 320, len(tokens))
    rec = TorchCtcRecognizer(
        TorchCtcOptions(
            model_path=str(tmp / "lstm.pt"),
            tokens=tokens,
            chunk_frames=10,
            state_batch_dim=1,
            num_threads=1,
        )
    )
    rec.warm_up()
    seconds = 10 if quick else 20
    print(
        f"\n## 5. torch batching: 2-layer LSTM, {params / 1e6:.2f} M parameters, "
        f"{torch.get_num_threads()} thread, 100 ms chunks, {seconds} s per stream",
        flush=True,
    )
    rng = np.random.default_rng(0)
    for n in (4, 8) if quick else (4, 8, 16):
        feats = [rng.standard_normal((seconds * 100, 80)).astype(np.float32) for _ in range(n)]
        for batched in (False, True):  # warm both paths (allocator, JIT profiling runs)
            torch_decode(rec, [f[:200] for f in feats], batched)
        c1, w1, t1 = torch_decode(rec, feats, batched=False)
        cb, wb, tb = torch_decode(rec, feats, batched=True)
        audio = n * seconds
        print(
            f"  N={n:2d}: batch 1 {audio / c1:6.1f} audio s/CPU s ({audio / w1:6.1f}/wall s); "
            f"batched {audio / cb:6.1f} audio s/CPU s ({audio / wb:6.1f}/wall s); gain "
            f"{c1 / cb:.2f}x; same finals: {t1 == tb}",
            flush=True,
        )
        row(
            "5 torch",
            f"N={n}: audio s per CPU s (batched vs batch 1)",
            f"{audio / cb:.1f}",
            f"{audio / c1:.1f}",
            f"{c1 / cb:.2f}x",
        )


# --- main ----------------------------------------------------------------------------------


def print_table() -> None:
    """The markdown table of every recorded row."""
    print("\n| section | metric | measured | baseline | ratio | target | met |")
    print("|---|---|---|---|---|---|---|")
    for r in ROWS:
        print(
            f"| {r.section} | {r.metric} | {r.measured} | {r.baseline} | {r.ratio} | "
            f"{r.target} | {r.met} |"
        )


def main(argv: list[str] | None = None) -> int:
    """Run every section; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter inputs (about 2 minutes)")
    ap.add_argument("--sections", default="1,2,4,5", help="which sections (2 includes 3)")
    args = ap.parse_args(argv)
    if not AUDIO_DIR.is_dir():
        print(f"shared audio not found at {AUDIO_DIR}", file=sys.stderr)
        return 2
    wanted = set(args.sections.split(","))
    t0 = time.monotonic()
    print(
        f"# bench_pipeline {'--quick ' if args.quick else ''}| {cpu_model()}, "
        f"{mp.cpu_count()} cores | python {sys.version.split()[0]} | {' '.join(CLI[1:])}\n"
        f"load average at start: {load_average()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sabp", dir="/tmp") as tmp:
        if "1" in wanted:
            section_cpu(args.quick, Path(tmp))
        if "2" in wanted or "3" in wanted:
            section_latency(args.quick)
        if "4" in wanted:
            section_capacity(args.quick, Path(tmp))
        if "5" in wanted:
            section_torch(args.quick, Path(tmp))
    print(f"\nload average at end: {load_average()}; total {time.monotonic() - t0:.0f} s")
    print_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
