"""Endpoints side by side: fixed 600 ms, fixed 300 ms and the adaptive policy, in one run.

Usage::

    python benchmarks/bench_endpoint.py                 # both sections (about 8 minutes)
    python benchmarks/bench_endpoint.py --no-live       # cut-offs and merges only
    python benchmarks/bench_endpoint.py --policies adaptive,fixed600

1. **Cut-offs and merges** (``up --fast --json``; the policy's results do not depend on the
   pace): the paused-sentence set (:mod:`endpoint_sets`: 12 commands read with 300–900 ms
   pauses inside, 2.5 s apart) and the shared conversations 1–3. A *false cut-off* is a
   reference sentence whose words went to two or more accurate finals; a *merge* is an
   accurate final that overlaps two or more sentences. WER of the accurate finals.
2. **Latency at real time**, as a user of the gateway sees it: ``serve`` (accurate finals)
   on a private instance and one native-protocol client sending conversations 1+2+3, each
   followed by 3 s of digital silence, in 100 ms messages paced to absolute deadlines and
   stamping every event on arrival. *End of speech* of a sentence is the wall clock at which
   the message holding its ``.tsv`` end was sent; the figures are arrival of the sentence's
   first-pass final and of its accurate final minus that, p50/p95/p99 over the 24
   sentences; CPU seconds of the inference and refine actors per audio second, from status.

Prints a markdown table per section; ratios against ``fixed 600 ms`` (today's rule).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _quality_metrics as qm
import endpoint_sets
import numpy as np
import numpy.typing as npt
import psutil
from _common import CHUNK, RATE_HZ, PipelineRun, RefUtterance, load_pcm, pct, refs
from bench_gateway import GatewayServer

from streamasr.actors.frontdoors.client import NativeClient

CONVERSATIONS = ("conversation1", "conversation2", "conversation3")
AUDIO_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
#: Policy name -> extra TOML.
POLICIES = {
    "fixed600": "",
    "fixed300": (
        '[endpoint]\npolicy = "fixed"\n[inference.pocketsphinx]\nendpoint_silence_ms = 300\n'
    ),
    "adaptive": '[endpoint]\npolicy = "adaptive"\n',
}
#: ``--policies`` may also name variants of the adaptive policy as ``key=value`` pairs joined
#: by ``+`` (``complete_probability=0.8+min_silence_ms=300``): ``[endpoint]`` keys.
TAIL_S = 3.0  # digital silence after each conversation (a muted microphone sends zeros)


@dataclass(slots=True)
class Cuts:
    """Section 1 figures of one policy."""

    sentences: int = 0
    cut: int = 0
    merged: int = 0
    errors: int = 0
    words: int = 0


def policy_toml(name: str) -> str:
    """The extra TOML of policy ``name`` (see :data:`POLICIES` and ``--policies``)."""
    if name in POLICIES:
        return POLICIES[name]
    pairs = [kv.split("=", 1) for kv in name.split("+")]
    return '[endpoint]\npolicy = "adaptive"\n' + "".join(f"{k} = {v}\n" for k, v in pairs)


def _spans(finals: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(float(f["start_s"]), float(f["end_s"])) for f in finals if f["text"].strip()]


def cut_and_merged(finals: list[dict[str, Any]], units: list[RefUtterance]) -> tuple[int, int]:
    """(sentences split over finals, finals spanning sentences): a final belongs to every
    sentence it overlaps by at least 0.15 s."""
    spans = _spans(finals)
    touch = [
        [k for k, u in enumerate(units) if min(s1, u.end_s) - max(s0, u.start_s) >= 0.15]
        for s0, s1 in spans
    ]
    merged = sum(1 for t in touch if len(t) >= 2)
    cut = sum(1 for k in range(len(units)) if sum(1 for t in touch if k in t) >= 2)
    return cut, merged


def section_cuts(policies: list[str], cache: Path) -> dict[str, Cuts]:
    """Section 1: every policy over the paused set and the conversations."""
    item = endpoint_sets.paused_sentences(cache)[0]
    files: list[tuple[Path, list[RefUtterance]]] = [
        (item.path, [RefUtterance(s.start_s, s.end_s, s.text) for s in item.segments]),
        *((AUDIO_DIR / f"{c}.wav", refs(c)) for c in CONVERSATIONS),
    ]
    out: dict[str, Cuts] = {}
    for name in policies:
        c = out[name] = Cuts()
        for path, units in files:
            res = PipelineRun(policy_toml(name)).run(
                ["--source", str(path), "--fast"], json_stdout=True, timeout_s=900
            )
            finals = qm.last_finals([e for _, e in res.events if "is_final" in e], True)
            cut, merged = cut_and_merged(finals, units)
            wer = qm.counts(" ".join(u.text for u in units), " ".join(f["text"] for f in finals))
            c.sentences += len(units)
            c.cut += cut
            c.merged += merged
            c.errors += wer.edits
            c.words += wer.ref_words
            print(f"  {name:9s} {path.stem:16s} cut {cut} merged {merged} "
                  f"WER {wer.edits}/{wer.ref_words}", flush=True)  # fmt: skip
    return out


@dataclass(slots=True)
class Live:
    """Section 2 figures of one policy: seconds from end of speech to each final."""

    first: list[float]
    accurate: list[float]
    cpu_per_audio_s: float
    missing: int


def _stream() -> tuple[npt.NDArray[np.int16], list[RefUtterance]]:
    """Conversations 1+2+3, each followed by :data:`TAIL_S` of digital silence."""
    parts, rows, offset = [], [], 0
    for name in CONVERSATIONS:
        pcm = np.concatenate([load_pcm(name), np.zeros(int(TAIL_S * RATE_HZ), np.int16)])
        rows += refs(name, offset / RATE_HZ)
        parts.append(pcm)
        offset += len(pcm)
    return np.concatenate(parts), rows


def _actor_cpu(status: dict[str, Any]) -> float:
    """User + system CPU seconds so far of the inference and refine actors."""
    total = 0.0
    for a in status.get("actors", []):
        if a["id"].startswith(("inference", "refine")) and a.get("pid"):
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(int(a["pid"])).cpu_times()
                total += t.user + t.system
    return total


async def _client(url: str, pcm: npt.NDArray[np.int16]) -> tuple[list[int], list[Any]]:
    """Send ``pcm`` at real time; (send wall clock per message, (arrival ns, event))."""
    client = await NativeClient.connect(url, sample_rate_hz=RATE_HZ, name="bench-endpoint")
    got: list[tuple[int, dict[str, Any]]] = []
    opened = asyncio.Event()

    async def receive() -> None:
        async for event in client.events():
            got.append((time.time_ns(), event))
            opened.set()

    receiver = asyncio.ensure_future(receive())
    sent: list[int] = []
    async with client:
        await asyncio.wait_for(opened.wait(), 30)
        t0 = time.monotonic() + 0.5
        for k, i in enumerate(range(0, len(pcm), CHUNK)):
            await asyncio.sleep(max(0.0, t0 + (k + 1) * CHUNK / RATE_HZ - time.monotonic()))
            await client.send_audio(pcm[i : i + CHUNK].tobytes())
            sent.append(time.time_ns())
        await client.end()
        await asyncio.wait_for(receiver, 120)
    return sent, got


def _first_arrival(
    got: list[tuple[int, dict[str, Any]]], unit: RefUtterance, accurate: bool
) -> int | None:
    """Arrival (ns) of the first final of the wanted kind that overlaps ``unit``."""
    for now, e in got:
        if e.get("type") != "final" or not str(e.get("text", "")).strip():
            continue
        if accurate == bool(e.get("provisional")):
            continue
        if not accurate and int(e.get("pass", 1)) != 1:
            continue
        if min(float(e["end_s"]), unit.end_s) - max(float(e["start_s"]), unit.start_s) > 0.15:
            return now
    return None


def section_live(policies: list[str]) -> dict[str, Live]:
    """Section 2: one real-time gateway client per policy."""
    pcm, units = _stream()
    out: dict[str, Live] = {}
    for name in policies:
        with (
            tempfile.TemporaryDirectory(prefix="bep", dir="/tmp") as tmp,
            GatewayServer(Path(tmp), finals="accurate", extra_toml=policy_toml(name)) as srv,
        ):
            cpu0 = _actor_cpu(srv.status())
            sent, got = asyncio.run(_client(srv.url, pcm))
            cpu = _actor_cpu(srv.status()) - cpu0
        first, acc, missing = [], [], 0
        for u in units:
            k = min(len(sent) - 1, int(np.ceil(u.end_s * RATE_HZ / CHUNK)) - 1)
            for want, bucket in ((False, first), (True, acc)):
                t = _first_arrival(got, u, want)
                if t is None:
                    missing += 1
                else:
                    bucket.append((t - sent[k]) / 1e9)
        out[name] = Live(first, acc, cpu / (len(pcm) / RATE_HZ), missing)
        print(f"  {name:9s} accurate p50 {pct(acc, 50):.2f} s p95 {pct(acc, 95):.2f} s "
              f"first-pass p50 {pct(first, 50):.2f} s missing {missing}", flush=True)  # fmt: skip
    return out


def _three(xs: list[float]) -> str:
    return " / ".join(f"{pct(xs, q):.2f}" for q in (50, 95, 99)) if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma-separated")
    ap.add_argument("--no-cuts", action="store_true", help="skip section 1")
    ap.add_argument("--no-live", action="store_true", help="skip section 2")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/streamasr-speech"))
    args = ap.parse_args()
    policies = [p for p in args.policies.split(",") if p]
    if not args.no_cuts:
        print("## 1. Cut-offs and merges (up --fast; paused set + conversations 1-3)\n")
        cuts = section_cuts(policies, args.cache)
        print("\n| policy | sentences | false cut-offs | merged | accurate-final WER |")
        print("|---|---|---|---|---|")
        for name, c in cuts.items():
            wer = 100 * c.errors / max(1, c.words)
            print(f"| {name} | {c.sentences} | {c.cut} | {c.merged} | {wer:.1f}% |")
    if not args.no_live:
        print("\n## 2. End of speech -> final at real time (gateway, conversations 1+2+3)\n")
        live = section_live(policies)
        base = live.get("fixed600")
        print("\n| policy | accurate final p50 / p95 / p99 s | first-pass final p50 / p95 / "
              "p99 s | missing | CPU s per audio s | CPU vs fixed600 |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for name, r in live.items():
            ratio = r.cpu_per_audio_s / base.cpu_per_audio_s if base else float("nan")
            print(f"| {name} | {_three(r.accurate)} | {_three(r.first)} | {r.missing} | "
                  f"{r.cpu_per_audio_s:.3f} | {ratio:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
