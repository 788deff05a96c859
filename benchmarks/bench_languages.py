"""Other languages: the Whisper-led pipeline against Whisper base on the whole file.

    python benchmarks/bench_languages.py [--languages de,fr,es,it,nl] [--realtime de]

Per language, six espeak-ng sentences with exact text (``language_sets.py``), one second
of room silence between them, one file. Printed, all from the same run on the same box:

* accurate-final WER of ``up --fast --json --language L`` against the same Whisper base
  weights run once on the whole file (faster-whisper's ``transcribe``, its defaults, beam 5,
  ``language=L``), and their ratio;
* ``--language auto``: the share of finals labelled ``L`` (the issue's goal: >= 90 %);
* ``--language L --translate``: WER of the English text against the sentences' English
  translations (no threshold: a translation may say it otherwise), empty finals and finals
  that loop (a word n-gram repeated more than three times);
* one real-time run per ``--realtime`` language: end of speech (the sentence's end in the
  file) -> accurate final, p50/p95, from each final's own ``latency_s`` (capture of its
  newest sample -> publication), and the partials per final;
* CPU seconds per audio second of the pipeline (all its processes) and of the whole-file
  run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _common import PipelineRun, cpu_model, load_average, pct
from language_sets import SENTENCES
from synth import espeak, silence
from wer import WerCounts

RATE_HZ = 16000


@dataclass(slots=True)
class Audio:
    """One language's file: path, seconds, the sentences and their translations."""

    language: str
    path: Path
    seconds: float
    text: list[str]
    english: list[str]


def make_audio(language: str, folder: Path) -> Audio:
    """Six sentences of ``language`` spoken by espeak-ng, 1 s of room silence apart."""
    pairs = SENTENCES[language]
    parts = [silence(0.5)]
    for sentence, _ in pairs:
        parts += [espeak(sentence, language), silence(1.0)]
    pcm = np.concatenate(parts)
    path = folder / f"{language}.wav"
    sf.write(path, pcm, RATE_HZ)
    return Audio(language, path, len(pcm) / RATE_HZ, [s for s, _ in pairs], [e for _, e in pairs])


def counts(refs: list[str], hyp: str) -> WerCounts:
    return WerCounts.of(" ".join(refs), hyp)


def finals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("is_final") and not e.get("provisional")]


def run_pipeline(audio: Audio, *args: str) -> tuple[list[dict[str, Any]], float]:
    """``up --source FILE --json ARGS``: its transcript events and CPU seconds."""
    res = PipelineRun("").run(["--source", str(audio.path), *args], json_stdout=True, timeout_s=900)
    if res.returncode != 0:
        print(f"  ! {audio.language} {args}: exit {res.returncode}: {res.stderr[-300:]}")
    return [e for _, e in res.events if "is_final" in e], res.cpu_s


def whole_file(audios: list[Audio]) -> tuple[dict[str, str], float]:
    """Whisper base on each whole file, in its language: text per language, CPU seconds."""
    from faster_whisper import WhisperModel

    from streamasr.actors.refine.model_store import resolve_model

    model = WhisperModel(str(resolve_model("base")), device="cpu", compute_type="int8")
    out: dict[str, str] = {}
    t0 = time.process_time()
    for a in audios:
        segments, _ = model.transcribe(str(a.path), language=a.language)
        out[a.language] = " ".join(s.text.strip() for s in segments)
    return out, time.process_time() - t0


def loops(text: str) -> bool:
    """Whether a word n-gram (n <= 4) repeats more than three times in a row."""
    words = text.lower().split()
    for n in range(1, 5):
        for i in range(len(words) - 4 * n + 1):
            gram = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == gram for k in range(1, 4)):
                return True
    return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--languages", default="de,fr,es,it,nl")
    p.add_argument("--realtime", default="de", help="languages also run at real time ('' none)")
    args = p.parse_args()
    langs = [x for x in args.languages.split(",") if x]
    print(f"# bench_languages: {cpu_model()}, load average {load_average()}\n")
    with tempfile.TemporaryDirectory(prefix="bench-lang-") as tmp:
        audios = [make_audio(lang, Path(tmp)) for lang in langs]
        whole, whole_cpu = whole_file(audios)
        total_s = sum(a.seconds for a in audios)
        print("## Accurate finals vs Whisper base on the whole file (`--fast`)\n")
        print("| language | audio s | pipeline WER | whole-file WER | ratio | finals | empty | "
              "`auto` labelled right | translate WER (vs English) | translate empty / looping | "
              "CPU s/audio s pipeline | whole file |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for a in audios:
            events, cpu = run_pipeline(a, "--fast", "--language", a.language)
            got = finals(events)
            pipe = counts(a.text, " ".join(f["text"] for f in got))
            base = counts(a.text, whole[a.language])
            auto_events, _ = run_pipeline(a, "--fast", "--language", "auto")
            labels = Counter(f.get("language", "") for f in finals(auto_events))
            right = labels.get(a.language, 0) / max(1, sum(labels.values()))
            tr_events, _ = run_pipeline(a, "--fast", "--language", a.language, "--translate")
            tr = finals(tr_events)
            tr_wer = counts(a.english, " ".join(f["text"] for f in tr))
            empty = sum(1 for f in got if not f["text"].strip())
            tr_bad = (
                sum(1 for f in tr if not f["text"].strip()),
                sum(1 for f in tr if loops(f["text"])),
            )
            ratio = pipe.wer / base.wer if base.wer else float("inf") if pipe.wer else 1.0
            print(
                f"| {a.language} | {a.seconds:.0f} | {pipe.wer:6.1%} | {base.wer:6.1%} | "
                f"{ratio:.2f}x | {len(got)}/{len(a.text)} | {empty} | {right:.0%} "
                f"({dict(labels.most_common(3))}) | {tr_wer.wer:6.1%} | "
                f"{tr_bad[0]} / {tr_bad[1]} | {cpu / a.seconds:.3f} | {whole_cpu / total_s:.3f} |"
            )  # fmt: skip
            print(f"  pipeline: {' | '.join(f['text'] for f in got)}", file=sys.stderr)
            print(f"  whole:    {whole[a.language]}", file=sys.stderr)
            print(f"  english:  {' | '.join(f['text'] for f in tr)}", file=sys.stderr)
        rt = [a for a in audios if a.language in args.realtime.split(",")]
        if rt:
            print("\n## One real-time stream: end of speech -> accurate final\n")
            print("| language | finals | p50 s | p95 s | partials per final | WER |")
            print("|---|---|---|---|---|---|")
            for a in rt:
                events, _ = run_pipeline(a, "--language", a.language)
                got = finals(events)
                lat = [float(f["latency_s"]) for f in got]
                partials = sum(1 for e in events if not e.get("is_final"))
                wer = counts(a.text, " ".join(f["text"] for f in got)).wer
                print(
                    f"| {a.language} | {len(got)} | {pct(lat, 50):.2f} | {pct(lat, 95):.2f} | "
                    f"{partials / max(1, len(got)):.1f} | {wer:.1%} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
