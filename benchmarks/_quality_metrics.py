"""Pure figures of ``bench_quality.py``: word normalisation, finals per reference unit, WER
counts, and the partial-stability measures of one utterance's partials against its final.

Text comparison goes through :func:`wer.normalize_words` (``benchmarks/wer.py``) (lowercase,
punctuation dropped, digits as number words, British spellings as American), plus one rule
of its own: ``and`` between ``hundred``/``thousand``/``million`` and a number word is
dropped, so "three hundred and twelve", "three hundred twelve" and "312" compare equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from wer import WerCounts, normalize_words, number_to_words, word_edits

Event = dict[str, Any]

#: Number words (zero..ninety-nine and the scales), from the WER normaliser's own spelling.
_NUMBER_WORDS = frozenset(
    {w for n in range(100) for w in number_to_words(n)} | {"hundred", "thousand", "million"}
)
_SCALES = frozenset({"hundred", "thousand", "million"})


def words(text: str) -> list[str]:
    """Normalised words of ``text`` (see the module docstring)."""
    ws = normalize_words(text)
    return [
        w
        for i, w in enumerate(ws)
        if not (
            w == "and"
            and 0 < i < len(ws) - 1
            and ws[i - 1] in _SCALES
            and ws[i + 1] in _NUMBER_WORDS
        )
    ]


def counts(ref: str, hyp: str) -> WerCounts:
    """Word edits of ``hyp`` against ``ref`` after :func:`words` (the project's
    :class:`~wer.WerCounts`, summable)."""
    r = words(ref)
    return WerCounts(word_edits(r, words(hyp)), len(r))


@dataclass(frozen=True, slots=True)
class Unit:
    """A span of a benchmark stream with its reference: a file, or one utterance of a
    multi-utterance file (``file`` names the file it belongs to). Times in stream seconds."""

    set_name: str
    file: str
    name: str
    start_s: float
    end_s: float
    text: str


def last_finals(events: Iterable[Event], accurate: bool) -> list[Event]:
    """The last final of each utterance, by start time: ``accurate``: non-provisional finals
    (the pipeline's answer, whichever pass made it); else first-pass (pass 1) finals,
    provisional or not."""
    last: dict[str, Event] = {}
    for e in events:
        if not e["is_final"]:
            continue
        if (not e["provisional"]) if accurate else e["pass"] == 1:
            last[e["utterance_id"]] = e
    return sorted(last.values(), key=lambda e: float(e["start_s"]))


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def assign(spans: Sequence[tuple[float, float]], units: Sequence[Unit]) -> list[list[int]]:
    """For each unit, the indices of the ``(start_s, end_s)`` spans that overlap it most (a
    span overlapping none goes to the unit nearest its middle)."""
    out: list[list[int]] = [[] for _ in units]
    if not units:
        return out
    for i, (s0, s1) in enumerate(spans):
        best = max(
            range(len(units)), key=lambda k: _overlap(s0, s1, units[k].start_s, units[k].end_s)
        )
        if _overlap(s0, s1, units[best].start_s, units[best].end_s) <= 0:
            mid = (s0 + s1) / 2
            best = min(
                range(len(units)),
                key=lambda k: abs(mid - (units[k].start_s + units[k].end_s) / 2),
            )
        out[best].append(i)
    return out


def texts_per_unit(finals: Sequence[Event], units: Sequence[Unit]) -> list[str]:
    """The finals' texts joined per unit (see :func:`assign`)."""
    groups = assign([(float(e["start_s"]), float(e["end_s"])) for e in finals], units)
    return [" ".join(finals[i]["text"] for i in g).strip() for g in groups]


def empty_accurate(events: Sequence[Event]) -> int:
    """Utterances whose accurate final is empty although the first pass had words."""
    first = {e["utterance_id"]: e for e in last_finals(events, accurate=False)}
    return sum(
        1
        for e in last_finals(events, accurate=True)
        if not e["text"].strip() and first.get(e["utterance_id"], {}).get("text", "").strip()
    )


# --- partials --------------------------------------------------------------------------------


@dataclass(slots=True)
class Trace:
    """One utterance as a viewer saw it: its partials (normalised words and pass) in order,
    then its final's words."""

    utterance_id: str
    start_s: float
    partials: list[list[str]] = field(default_factory=list)
    passes: list[int] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)
    final: list[str] = field(default_factory=list)


def traces(events: Iterable[Event]) -> list[Trace]:
    """Per utterance with a final: its partials and its last accurate final (the last final
    of any kind where no accurate one came), by start time."""
    by_id: dict[str, Trace] = {}
    finals: dict[str, tuple[bool, list[str]]] = {}
    for e in events:
        uid = e["utterance_id"]
        tr = by_id.setdefault(uid, Trace(uid, float(e["start_s"])))
        if not e["is_final"]:
            tr.partials.append(words(e["text"]))
            tr.passes.append(int(e["pass"]))
            raw = str(e["text"]).split()[: int(e.get("committed_words", 0))]
            tr.committed.append(len(words(" ".join(raw))))
        elif not e["provisional"] or not finals.get(uid, (False, []))[0]:
            finals[uid] = (not e["provisional"], words(e["text"]))
    out = []
    for uid, tr in by_id.items():
        if uid in finals:
            tr.final = finals[uid][1]
            out.append(tr)
    return sorted(out, key=lambda t: t.start_s)


def _common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def retractions(tr: Trace) -> tuple[int, int, int]:
    """``(shown, retracted, retracted_stable)`` word counts of one utterance.

    Each step from one shown text to the next (partial to partial, last partial to final)
    keeps the common prefix; the words of the earlier text beyond it were changed or
    dropped: retracted. ``retracted_stable`` counts those that had also been shown, at the
    same place, by the partial before (shown in two consecutive partials, as a local-
    agreement display would have committed them). ``shown``: words of all partials.
    """
    shown = sum(len(p) for p in tr.partials)
    seq = [*tr.partials, tr.final]
    retracted = stable = 0
    for i in range(len(seq) - 1):
        a, b = seq[i], seq[i + 1]
        keep = _common_prefix(a, b)
        retracted += len(a) - keep
        if i > 0:
            agreed = _common_prefix(seq[i - 1], a)
            stable += max(0, min(len(a), agreed) - keep)
    return shown, retracted, stable


def committed_retractions(tr: Trace) -> tuple[int, int]:
    """``(in_partials, at_final)``: committed words (the first ``committed_words`` of a
    partial, which the pipeline promises never to change) that a later partial, or the
    final, changed or dropped."""
    partial = final = 0
    for i, (shown, committed) in enumerate(zip(tr.partials, tr.committed, strict=True)):
        nxt = tr.partials[i + 1] if i + 1 < len(tr.partials) else tr.final
        lost = max(0, committed - _common_prefix(shown[:committed], nxt))
        if i + 1 < len(tr.partials):
            partial += lost
        else:
            final += lost
    return partial, final


def pass_switches(tr: Trace) -> int:
    """How often two consecutive partials of the utterance came from different passes."""
    return sum(1 for a, b in zip(tr.passes, tr.passes[1:], strict=False) if a != b)


def prefix_distances(tr: Trace) -> list[float]:
    """Per non-empty partial: word edit distance to the final's prefix of the same length,
    over the partial's length."""
    return [word_edits(p, tr.final[: len(p)]) / len(p) for p in tr.partials if p]


def pct(values: Sequence[float], q: float) -> float:
    """Percentile ``q`` (0..100); nan when empty."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def partial_summary(trs: Sequence[Trace]) -> dict[str, float]:
    """Partial-stability figures over utterances (p50/p95 are over utterances, distances
    over partials)."""
    updates = [float(len(t.partials)) for t in trs]
    rets = [retractions(t) for t in trs]
    dists = [d for t in trs for d in prefix_distances(t)]
    shown = sum(r[0] for r in rets)
    return {
        "utterances": float(len(trs)),
        "partials": float(sum(updates)),
        "updates_p50": pct(updates, 50),
        "updates_p95": pct(updates, 95),
        "shown_words": float(shown),
        "retracted": float(sum(r[1] for r in rets)),
        "retracted_stable": float(sum(r[2] for r in rets)),
        "retracted_per_utt_p50": pct([float(r[1]) for r in rets], 50),
        "retracted_per_utt_p95": pct([float(r[1]) for r in rets], 95),
        "retracted_frac": sum(r[1] for r in rets) / shown if shown else float("nan"),
        "stable_frac": sum(r[2] for r in rets) / shown if shown else float("nan"),
        "pass_switches": float(sum(pass_switches(t) for t in trs)),
        "max_switches_per_utt": float(max((pass_switches(t) for t in trs), default=0)),
        "committed_retracted": float(sum(committed_retractions(t)[0] for t in trs)),
        "committed_changed_by_final": float(sum(committed_retractions(t)[1] for t in trs)),
        "pass2_partials": float(sum(p == 2 for t in trs for p in t.passes)),
        "dist_mean": float(np.mean(dists)) if dists else float("nan"),
        "dist_p50": pct(dists, 50),
        "dist_p95": pct(dists, 95),
    }
