"""Wake-word benchmark, engines side by side: detections, false wakes per hour, delay, CPU.

The engines (issue 16): microWakeWord (``micro``) and openWakeWord (``open``) with their bundled
"okay nabu" (and "hey jarvis" with ``--jarvis``), PocketSphinx keyphrase spotting (``pocketsphinx``)
with its tuned "hey computer" (it has no "nabu" in its dictionary). Each engine at its defaults.

Audio is made on the fly (see ``_wake_audio.py``), the same for every engine but for the phrase:
the phrase in 8 voices (flite kal, kal16, awb, rms, slt; espeak-ng en-us, en-gb-x-rp, en-us+f3)
spliced into the pauses of the three shared conversations (21 phrases per pass, three passes
with other voices: 63 insertions), without added noise and at pink noise 20 / 10 dB SNR.
False wakes are counted on ``--fa-minutes`` (default 60) of the conversations without the
phrase, speed/gain perturbed, a third of it clean, a third with pink noise at 20 dB and a
third with babble (the conversations reversed) at 10 dB SNR; on 10 min of noise; and on
sentences that use "okay", "hey", "computer" in other senses (8 voices). Separately, the
phrase's confusables (``_wake_audio.CONFUSABLES``, near-rhymes, 8 voices) are played one at a
time and the utterances that woke the engine counted. A voice is "heard" when at least half
of its clean insertions were detected.
Detection delay is the end of the 100 ms chunk at whose ``accept()`` the detection came back,
minus the end of the phrase's speech; "end err" is the detector's ``end_frame`` minus it.
CPU is process time per second of audio (the conversations, clean).

    python benchmarks/bench_wake.py                  # all engines (~20 min; open: ~12 min)
    python benchmarks/bench_wake.py --engines micro  # one engine
    python benchmarks/bench_wake.py --tune           # pocketsphinx phrase x threshold sweep
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wake_audio as wa

from streamasr.actors.wake.base import Detection, WakeEngine, WakeOptions
from streamasr.actors.wake.bundled import NeuralWakeOptions
from streamasr.actors.wake.registry import create_wake_engine

CHUNK = 1600  # samples: 100 ms chunks
NOISE_LEVELS: tuple[tuple[str, float | None], ...] = (
    ("none", None),
    ("pink 20 dB", 20.0),
    ("pink 10 dB", 10.0),
)
FA_VARIANTS = ((1.0, 0.0), (0.9, -6.0), (1.1, 4.0), (0.95, 6.0), (1.05, -10.0))
#: The phrase each engine is benchmarked with (its default).
PHRASES = {"micro": "okay nabu", "open": "okay nabu", "pocketsphinx": "hey computer"}
CANDIDATES = ("hey computer", "okay computer", "hey sphinx", "hello jarvis", "computer")
SWEEP = (1e-5, 1e-10, 1e-15, 1e-20, 1e-25, 1e-30, 1e-35, 1e-40)


@dataclass(frozen=True, slots=True)
class Hit:
    """A detection and the stream position (samples) at which accept() returned it."""

    det: Detection
    emitted: int


Options = WakeOptions | NeuralWakeOptions
_LOADED: dict[Options, WakeEngine] = {}


def options_for(
    engine: str, phrase: str, threshold: float | None = None, verify: float | None = None
) -> Options:
    """The engine's default options for one phrase (``threshold``: a neural engine's
    probability threshold instead of its default; ``verify``: micro's detections confirmed
    by openWakeWord at this probability)."""
    if engine == "pocketsphinx":
        return WakeOptions(phrases=(phrase,))
    thresholds = () if threshold is None else (threshold,)
    if verify is None:
        return NeuralWakeOptions(engine, (phrase,), thresholds=thresholds)
    return NeuralWakeOptions(
        engine, (phrase,), thresholds=thresholds, verify="open", verify_threshold=verify
    )


def run(options: Options, pcm: wa.Pcm) -> tuple[list[Hit], float]:
    """All detections on ``pcm`` fed in 100 ms chunks, and the process CPU seconds it took."""
    name = options.engine if isinstance(options, NeuralWakeOptions) else "pocketsphinx"
    if options not in _LOADED:
        _LOADED[options] = create_wake_engine(name, options)
    det = _LOADED[options].create_detector(0)
    hits: list[Hit] = []
    t0 = time.process_time()
    for i in range(0, len(pcm), CHUNK):
        chunk = pcm[i : i + CHUNK]
        hits += [Hit(d, i + len(chunk)) for d in det.accept(chunk)]
    cpu = time.process_time() - t0
    det.close()
    return hits, cpu


def match(
    hits: Sequence[Hit], spans: Sequence[wa.Span], phrase: str, log_thr: float
) -> tuple[list[float], int]:
    """Delays (s) of the first hit on each detected span, and the hits outside any span."""
    slack = int(0.3 * wa.RATE_HZ)
    good = [h for h in hits if h.det.phrase == phrase and h.det.score >= log_thr]
    delays: list[float] = []
    used: set[int] = set()
    for span in spans:
        on = [
            h for h in good if h.det.start_frame < span.end + slack and h.det.end_frame > span.start
        ]
        if on:
            delays.append((min(h.emitted for h in on) - span.end) / wa.RATE_HZ)
            used.update(id(h) for h in on)
    return delays, sum(1 for h in good if id(h) not in used)


def fa_audio(minutes: float) -> tuple[wa.Pcm, wa.Pcm]:
    """(perturbed clean conversations of about ``minutes``, hard-negative sentences)."""
    convs = np.concatenate([wa.load(n) for n in wa.CONVERSATIONS])
    parts, total = [], 0
    for k in range(1000):
        speed, gain = FA_VARIANTS[k % len(FA_VARIANTS)]
        gain += 2.0 * (k // len(FA_VARIANTS) % 8)
        parts.append(wa.perturbed(convs, speed, gain if gain < 8 else gain - 16))
        total += len(parts[-1])
        if total >= minutes * 60 * wa.RATE_HZ:
            break
    return np.concatenate(parts), wa.hard_negatives()


def noisy_fa_audio(minutes: float) -> dict[str, wa.Pcm]:
    """About ``minutes`` of non-wake speech in three conditions, a third each: clean, pink
    noise at 20 dB SNR, babble (the conversations reversed, other speed) at 10 dB SNR."""
    convs, _ = fa_audio(minutes)
    third = len(convs) // 3
    clean, pinked, babbled = convs[:third], convs[third : 2 * third], convs[2 * third :]
    babble = wa.perturbed(convs[::-1].copy(), 1.07, 0.0)
    babble = np.resize(babble, len(babbled)).astype(np.float64)
    level = wa.speech_rms(babbled) * 10 ** (-10 / 20) / (wa.speech_rms(babble.astype(np.int16)))
    return {
        "convs clean": clean,
        "convs pink 20 dB": wa.add_noise(pinked, 20.0, 21),
        "convs babble 10 dB": wa.to_pcm(babbled.astype(np.float64) + babble * level),
    }


def pct(values: Sequence[float], q: float) -> float:
    """Percentile ``q`` of ``values`` (nan when empty)."""
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass(frozen=True, slots=True)
class EngineResult:
    """One engine's figures on the shared audio."""

    label: str
    detected: dict[str, tuple[int, int]]  # noise label -> (detected, inserted)
    per_voice: dict[str, tuple[int, int]]  # voice -> (detected, inserted), clean
    delay_p50_s: float
    end_err_p50_s: float
    fa: dict[str, tuple[int, float]]  # condition -> (false wakes, hours)
    cpu_s_per_s: float
    confusables: tuple[int, int] = (0, 0)  # (utterances that woke it, utterances)
    heard: dict[str, tuple[int, int]] | None = None  # like detected, heard voices only


def detections(options: Options, phrase: str, passes: int) -> EngineResult:
    """Detection rates of ``options`` on ``phrase`` spliced into the conversations."""
    per_level: dict[str, tuple[int, int]] = {}
    per_voice: dict[str, tuple[int, int]] = {}
    outcomes: dict[str, list[tuple[str, bool]]] = {}  # level -> (voice, detected)
    delays: list[float] = []
    end_errs: list[float] = []
    for label, snr in NOISE_LEVELS:
        n_in = n_det = 0
        for rotation in range(0, 3 * passes, 3):
            pcm, spans = wa.mixed_stream(phrase, rotation, seed=rotation)
            hits, _ = run(options, wa.add_noise(pcm, snr, seed=11 + rotation))
            for span in spans:
                d, _ = match(hits, [span], phrase, -math.inf)
                n_in, n_det = n_in + 1, n_det + len(d)
                outcomes.setdefault(label, []).append((span.voice, bool(d)))
                if snr is None:
                    got = per_voice.get(span.voice, (0, 0))
                    per_voice[span.voice] = (got[0] + len(d), got[1] + 1)
                    delays += d
                    end_errs += [
                        (h.det.end_frame - span.end) / wa.RATE_HZ
                        for h in hits
                        if h.det.start_frame < span.end + 4800 and h.det.end_frame > span.start
                    ][:1]
        per_level[label] = (n_det, n_in)
    heard_voices = {v for v, (d, n) in per_voice.items() if d >= n / 2}
    heard = {
        label: (
            sum(1 for v, ok in got if ok and v in heard_voices),
            sum(1 for v, _ in got if v in heard_voices),
        )
        for label, got in outcomes.items()
    }
    res = EngineResult("", per_level, per_voice, pct(delays, 50), pct(end_errs, 50), {}, 0.0)
    return replace(res, heard=heard)


def confusables(options: Options, phrase: str) -> tuple[int, int]:
    """(confusable utterances that woke the engine, utterances): each of the phrase's
    :data:`~_wake_audio.CONFUSABLES` in every voice, one at a time."""
    texts = wa.CONFUSABLES.get(phrase, ())
    woke = 0
    for text in texts:
        for voice in wa.VOICES:
            pcm = np.concatenate([wa.background(8000, np.random.default_rng(1))] * 2)
            hits, _ = run(options, np.concatenate([pcm, wa.synth(text, voice, trim=False), pcm]))
            woke += bool(hits)
    return woke, len(texts) * len(wa.VOICES)


def false_wakes(
    options: Options, phrase: str, fa: dict[str, wa.Pcm]
) -> dict[str, tuple[int, float]]:
    """False wakes of ``options`` per condition, and the hours of each."""
    out: dict[str, tuple[int, float]] = {}
    for label, pcm in {**fa, "hard negatives": wa.hard_negatives(wa.VOICES)}.items():
        hits, _ = run(options, pcm)
        out[label] = (len(hits), len(pcm) / wa.RATE_HZ / 3600)
        if hits:
            where = ", ".join(f"{h.det.start_frame / wa.RATE_HZ:.1f}s" for h in hits[:4])
            print(f"  {options_label(options)} false wakes on {label}: {len(hits)} ({where})")
    return out


def options_label(options: Options) -> str:
    """``engine "phrase"`` (with `` >T`` for a threshold other than the default)."""
    name = options.engine if isinstance(options, NeuralWakeOptions) else "pocketsphinx"
    label = f'{name} "{options.phrases[0]}"'
    if isinstance(options, NeuralWakeOptions) and options.thresholds:
        label += f" >{options.thresholds[0]:g}"
    if isinstance(options, NeuralWakeOptions) and options.verify:
        label += f" +open>{options.verify_threshold:g}"
    return label


def report_engines(
    engines: Sequence[tuple[str, str, float | None, float | None]],
    fa_minutes: float,
    passes: int,
) -> None:
    """Every engine on the same audio; print the side-by-side table."""
    fa = noisy_fa_audio(fa_minutes)
    fa["noise (pink, -40 dBFS)"] = wa.to_pcm(
        wa.pink(10 * 60 * wa.RATE_HZ, np.random.default_rng(4)) * 328.0
    )
    hours = sum(len(p) for p in fa.values()) / wa.RATE_HZ / 3600
    print(f"false-wake audio: {hours:.2f} h; phrases inserted per noise level: {21 * passes}")
    convs = np.concatenate([wa.load(n) for n in wa.CONVERSATIONS])
    results: list[EngineResult] = []
    for engine, phrase, threshold, verify in engines:
        options = options_for(engine, phrase, threshold, verify)
        t0 = time.perf_counter()
        res = detections(options, phrase, passes)
        _, cpu = run(options, convs)
        res = replace(
            res,
            label=options_label(options),
            fa=false_wakes(options, phrase, fa),
            cpu_s_per_s=cpu / (len(convs) / wa.RATE_HZ),
            confusables=confusables(options, phrase),
        )
        results.append(res)
        print(f"  {res.label}: {time.perf_counter() - t0:.0f} s")
    print_table(results)


def print_table(results: Sequence[EngineResult]) -> None:
    """The side-by-side table, then detections per voice (clean)."""
    levels = [label for label, _ in NOISE_LEVELS]
    conds = list(results[0].fa)
    print("detected: all voices | voices the model hears (>= half of them clean)")
    print(f"{'engine':24} " + " ".join(f"{lv:>20}" for lv in levels) + " delay p50  end err")
    for r in results:
        heard = r.heard or {}
        cells = [
            f"{100 * d / n:3.0f}% {100 * hd / max(hn, 1):3.0f}% {hd:>2}/{hn:<3}"
            for (d, n), (hd, hn) in zip(r.detected.values(), heard.values(), strict=True)
        ]
        print(
            f"{r.label:24} "
            + " ".join(f"{c:>20}" for c in cells)
            + f" {r.delay_p50_s:8.2f} s {r.end_err_p50_s:6.2f} s"
        )
    print("false wakes (count, per hour) on non-wake audio; confusable utterances that woke it")
    print(
        f"{'engine':24} "
        + " ".join(f"{c[:18]:>18}" for c in conds)
        + f" {'all FA/h':>8} {'confusables':>11} {'CPU s/s':>8}"
    )
    for r in results:
        fa_cells = [f"{w:3d} ({w / h:6.2f}/h)" for w, h in r.fa.values()]
        wakes = sum(w for w, _ in r.fa.values())
        hours = sum(h for _, h in r.fa.values())
        print(
            f"{r.label:24} "
            + " ".join(f"{c:>18}" for c in fa_cells)
            + f" {wakes / hours:8.2f} {r.confusables[0]:>5}/{r.confusables[1]:<5} "
            + f"{r.cpu_s_per_s:8.4f}"
        )
    print("detected clean per voice:")
    print(f"{'engine':24} " + " ".join(f"{v.split(':')[-1]:>10}" for v in wa.VOICES))
    for r in results:
        print(
            f"{r.label:24} "
            + " ".join(
                f"{r.per_voice.get(v, (0, 0))[0]:>4}/{r.per_voice.get(v, (0, 0))[1]:<5}"
                for v in wa.VOICES
            )
        )


def tune(fa_minutes: float) -> None:
    """Phrase x threshold sweep: every candidate at a very low threshold, then filter scores."""
    low = WakeOptions(phrases=CANDIDATES, thresholds=(1e-45,) * len(CANDIDATES))
    convs, negatives = fa_audio(fa_minutes)
    fa_hits = run(low, convs)[0] + run(low, negatives)[0]
    hours = (len(convs) + len(negatives)) / wa.RATE_HZ / 3600
    print(f"false-wake audio {hours:.3f} h (perturbed conversations + hard negatives)")
    print(
        f"{'phrase':14} {'thr':>6} "
        + " ".join(f"{lab:>16}" for lab, _ in NOISE_LEVELS)
        + f" {'FA/h':>6} {'p50 s':>5}"
    )
    for phrase in CANDIDATES:
        one = replace(low, phrases=(phrase,), thresholds=(1e-45,))
        runs = []
        for _label, snr in NOISE_LEVELS:
            for rotation in (0, 2):
                pcm, spans = wa.mixed_stream(phrase, rotation, seed=rotation)
                runs.append((snr, spans, run(one, wa.add_noise(pcm, snr, 11 + rotation))[0]))
        for thr in SWEEP:
            lt = math.log10(thr)
            cells: list[str] = []
            delays: list[float] = []
            for _label, snr in NOISE_LEVELS:
                n_in = n_det = n_x = 0
                for s, spans, hits in runs:
                    if s == snr:
                        d, x = match(hits, spans, phrase, lt)
                        n_in, n_det, n_x, delays = (
                            n_in + len(spans),
                            n_det + len(d),
                            n_x + x,
                            (delays + d),
                        )
                cells.append(f"{n_det:3d}/{n_in:<3d} x{n_x:<3d}")
            fa = sum(1 for h in fa_hits if h.det.phrase == phrase and h.det.score >= lt)
            print(
                f"{phrase:14} {thr:6.0e} "
                + " ".join(f"{c:>16}" for c in cells)
                + f" {fa / hours:6.1f} {pct(delays, 50):5.2f}"
            )


def main() -> None:
    """Parse arguments and run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--tune", action="store_true", help="phrase x threshold sweep")
    ap.add_argument(
        "--fa-minutes",
        type=float,
        default=60.0,
        help="minutes of perturbed conversations for false wakes",
    )
    ap.add_argument(
        "--engines",
        default="micro,open,pocketsphinx",
        help="comma-separated engines to compare (micro, open, pocketsphinx)",
    )
    ap.add_argument("--jarvis", action="store_true", help='also "hey jarvis" on micro and open')
    ap.add_argument("--passes", type=int, default=3, help="21 insertions per pass and level")
    ap.add_argument(
        "--thresholds",
        default="",
        help="comma-separated probability thresholds: each neural engine once per value "
        "(side by side with its default)",
    )
    ap.add_argument(
        "--verify",
        default="",
        help="comma-separated openWakeWord probabilities: micro once per value with each "
        "detection confirmed by openWakeWord ([wake] verify)",
    )
    args = ap.parse_args()
    if not (wa.have_flite() and wa.have_espeak()):
        sys.exit("flite or espeak-ng is not on PATH (apt-get install flite espeak-ng)")
    t0 = time.perf_counter()
    if args.tune:
        tune(args.fa_minutes)
    else:
        chosen = args.engines.split(",")
        engines: list[tuple[str, str, float | None, float | None]] = [
            (e, PHRASES[e], None, None) for e in chosen
        ]
        if args.jarvis:
            engines += [(e, "hey jarvis", None, None) for e in chosen if e != "pocketsphinx"]
        neural = [(e, p) for e, p, _, _ in engines if e != "pocketsphinx"]
        for value in filter(None, args.thresholds.split(",")):
            engines += [(e, p, float(value), None) for e, p in neural]
        for value in filter(None, args.verify.split(",")):
            engines += [(e, p, None, float(value)) for e, p in neural if e == "micro"]
        report_engines(engines, args.fa_minutes, args.passes)
    print(f"benchmark wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
