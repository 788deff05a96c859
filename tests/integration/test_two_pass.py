"""The two-pass recogniser end to end (real processes, rings, models): no finals invented
on silence or noise, and the refine actor's overload fallback.

Measured on the 2-core dev box: silence run 7-14 s; noise run 70-80 s at load average ~3,
220 s at ~7 (PocketSphinx decodes the noise as long utterances, slower than real time);
overload run 35 s at load ~3, 115 s at ~7.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import (
    EventReader,
    Instance,
    audio_file,
    cut_conversation,
    finals_by_utterance,
    last_finals,
    parse_events,
    read_tsv,
    wer_of,
)

pytestmark = pytest.mark.slow

RATE_HZ = 16_000
#: Seconds of silence or noise before the spoken utterance (16: 30 s took 100 s of a slow
#: box for the same check; every stretch the first pass takes for speech is a job).
LEAD_S = 16.0
#: Utterance-level WER allowed for the speech after the silence/noise (one word in five).
SPEECH_WER = 0.2


def _utterance(name: str, index: int) -> tuple[np.ndarray, str]:
    """Samples (float32) of utterance ``index`` of ``name``.wav, 0.3 s either side."""
    import soundfile as sf

    ref = read_tsv(audio_file(f"{name}.tsv"))[index]
    data, rate_hz = sf.read(str(audio_file(f"{name}.wav")), dtype="float32")
    assert rate_hz == RATE_HZ
    return data[int((ref.start_s - 0.3) * rate_hz) : int((ref.end_s + 0.3) * rate_hz)], ref.text


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise of unit RMS, ``n`` samples."""
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1.0))
    x = np.fft.irfft(spec, n)
    return np.asarray(x / np.sqrt(np.mean(x * x)))


def _lead(kind: str) -> np.ndarray:
    """LEAD_S seconds of ``kind``: digital zero then very low noise, or moderate noise."""
    rng = np.random.default_rng(7)
    n = int(LEAD_S * RATE_HZ)
    if kind == "silence":
        x = np.zeros(n)
        x[n // 2 :] = rng.standard_normal(n - n // 2) * 1e-4  # about -80 dBFS
        return x
    white = rng.standard_normal(n // 2) * 0.03  # about -30 dBFS
    return np.concatenate([white, _pink(n - n // 2, rng) * 0.03])


def _write(path: Path, *parts: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(str(path), np.concatenate(parts).astype(np.float32), RATE_HZ, subtype="PCM_16")
    return path


def _run(inst: Instance, *args: str, timeout_s: float) -> list[dict[str, Any]]:
    res = inst.cli("up", "--json", *args, timeout_s=timeout_s)
    assert res.returncode == 0, res.stderr
    events: list[dict[str, Any]] = parse_events(res.stdout)
    return events


@pytest.mark.timeout(420)
@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_no_final_with_text_from_silence_or_noise(
    instance: Instance, tmp_path: Path, kind: str
) -> None:
    speech, text = _utterance("conversation1", 0)
    wav = _write(tmp_path / f"{kind}.wav", _lead(kind), speech, np.zeros(RATE_HZ))
    events = _run(instance, "--source", str(wav), "--fast", timeout_s=400)
    finals = last_finals(events)
    invented = [(f["pass"], f["text"]) for f in finals if f["text"].strip() and f["end_s"] < LEAD_S]
    assert not invented, f"finals with text during the {kind}: {invented}"
    spoken = [f for f in finals if f["text"].strip()]
    assert [f["pass"] for f in spoken] == [2], spoken
    assert wer_of([text], [spoken[0]["text"]]) <= SPEECH_WER
    assert spoken[0]["end_s"] >= LEAD_S
    shown = [e["text"] for e in events if e["provisional"] and e["text"].strip()]
    if len(shown) > 1:
        pytest.xfail(
            f"the first pass (PocketSphinx's VAD) shows provisional finals on the {kind}: "
            f"{shown[:-1]} (the accurate finals retract them)"
        )
    assert len(shown) == 1


def _refine_counters(status: dict[str, Any]) -> dict[str, int]:
    for actor in status["actors"]:
        if actor["id"] == "refine":
            return dict(actor.get("counters") or {})
    return {}


@pytest.mark.extended
@pytest.mark.timeout(300)
def test_overload_falls_back_to_first_pass_finals_and_recovers(
    instance: Instance, tmp_path: Path
) -> None:
    # Four streams as fast as possible (bursts of jobs) beside one at real time; with room
    # for a single waiting job and 300 ms of extra work per Whisper call the bursts must shed
    # (early transcriptions make the second pass fast enough otherwise). Once a fallback is
    # seen the extra work ends; a live utterance finalised after that must be refined again.
    live, live_refs = cut_conversation("conversation1", 7, tmp_path / "live.wav")
    names = ("conversation1", "conversation2", "conversation3", "conversation1")
    burst = {f"b{i}": cut_conversation(n, 3, tmp_path / f"b{i}.wav") for i, n in enumerate(names)}
    tables = [f'[[streams]]\nkind = "file"\npath = "{live}"\nstream_id = "live"\n']
    tables += [
        f'[[streams]]\nkind = "file"\npath = "{p}"\nstream_id = "{sid}"\nrealtime = false\n'
        for sid, (p, _) in burst.items()
    ]
    # one inference worker: the bursts' jobs spread over the live stream's first utterances, so
    # the overload (and its end) comes well before the live stream's last one
    instance.write_config(
        "[inference]\nworkers = 1\n[refine]\nmax_queue = 1\ndelay_ms = 300.0\n\n"
        + "\n".join(tables)
    )
    proc = instance.popen("up", "--json")
    reader = EventReader(proc)
    fallbacks = 0
    counters: dict[str, Any] = {}
    reset_at: int | None = None  # events received when the extra work was taken away
    while proc.poll() is None:
        res = subprocess.run(
            instance.argv("status", "--json"), capture_output=True, text=True,
            env=instance.env, cwd=instance.base, timeout=30, check=False,
        )  # fmt: skip
        if res.returncode == 0:
            counters = _refine_counters(json.loads(res.stdout))
            fallbacks = max(fallbacks, counters.get("fallbacks", 0))
        if fallbacks and reset_at is None:  # the overload is seen: end it (the live
            (instance.root / "refine.delay_ms").write_text("0")  # override beats the config)
            reset_at = len(reader.events)
    assert reader.finish(timeout_s=60) == 0, reader.stderr()
    events = reader.events
    groups = finals_by_utterance(events)
    assert all(len(g) == 1 for g in groups.values()), groups
    provisional = {e["utterance_id"] for e in events if e["provisional"]}
    assert provisional <= set(groups), "an utterance got no final"
    finals = [g[0] for g in groups.values()]
    shed = [f for f in finals if f["pass"] == 1]
    assert shed, "no fallback under overload"
    assert 0 < fallbacks <= len(shed)
    assert len(finals) == len(live_refs) + sum(len(r) for _, r in burst.values())
    live_finals = sorted(
        (f for f in finals if f["stream_id"] == "live"), key=lambda f: f["start_s"]
    )
    # accurate finals resume: a live utterance whose final came after the load ended is refined
    assert reset_at is not None
    later = {id(e) for e in events[reset_at:]}
    recovered = [f for f in live_finals if id(f) in later and f["pass"] == 2]
    assert recovered, ([(f["pass"], f["text"]) for f in live_finals], counters)
    for f in recovered:
        ref = min(live_refs, key=lambda r: abs(r.start_s - f["start_s"]))
        assert wer_of([ref.text], [f["text"]]) <= SPEECH_WER, (f["text"], ref.text)
