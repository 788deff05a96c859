"""``streamasr-supervisor stream --mic`` against a live ``serve`` gateway.

Two stand-in microphones, no sound card needed:

* an ALSA PCM (``ALSA_CONFIG_PATH``) whose ``file`` plugin reads a raw speech file as its
  capture data behind a ``plug`` at 48 kHz: real PortAudio / ``sounddevice`` capture, and the
  client's 48 kHz -> 16 kHz soxr resampling;
* the test-only ``file-mic:<wav>`` device, which plays a file in real time through the same
  push interface, for the Ctrl-C test (it never ends before the interrupt).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import (
    Instance,
    PipeTail,
    audio_file,
    free_port,
    healthy,
    instance_scope,
    kill_group,
    parse_events,
    stop_pipeline,
)
from conftest import wer_of as wer

pytestmark = pytest.mark.timeout(180)

ALSA_BASE = Path("/usr/share/alsa/alsa.conf")
SPEECH_MIC_CONF = """
<{base}>
pcm.speechfile {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{raw}"
    format "raw"
}}
pcm.speechmic {{
    type plug
    slave {{ pcm "speechfile"; format S16_LE; rate 48000; channels 1 }}
    hint {{ show on description "streamasr test speech capture" }}
}}
"""
UTTERANCE = "utterances/utt01_slt.wav"
UTTERANCE_TEXT = "turn on the kitchen lights"


@dataclass
class Gateway:
    """A running ``serve`` pipeline."""

    inst: Instance
    proc: subprocess.Popen[str]
    url: str


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    """``serve --finals fast`` on a free port, until the module's tests are done."""
    with instance_scope() as inst:
        port = free_port()
        proc = inst.popen(
            "serve", "-c", str(inst.config), "--port", str(port), "--finals", "fast", "--quiet"
        )
        tails = (PipeTail(proc.stdout, lines=10), PipeTail(proc.stderr))  # drained throughout
        deadline = time.monotonic() + 90
        while not healthy(port):
            if proc.poll() is not None:
                err = tails[1].text(wait_s=5.0)
                pytest.fail(f"serve exited {proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                kill_group(proc)
                pytest.fail("gateway did not answer /healthz within 90 s")
            time.sleep(0.1)
        try:
            yield Gateway(inst, proc, f"ws://127.0.0.1:{port}/v1/stream")
        finally:
            stop_pipeline(inst, proc)


def _stream_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamasr.supervisor.cli", "stream", *args]


def _run(
    env: dict[str, str], *args: str, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _stream_argv(*args), env=env, capture_output=True, text=True, timeout=timeout_s
    )


def _final_texts(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["text"]
        for e in events
        if e["type"] == "final" and not e["provisional"] and e["text"].strip()
    ]


@dataclass
class SpeechMic:
    """The environment that has ALSA's ``speechmic``, and how long its audio lasts (s)."""

    env: dict[str, str]
    seconds: str


@pytest.fixture
def speech_mic(tmp_path: Path) -> SpeechMic:
    """Environment whose ALSA has ``speechmic``: the utterance, 48 kHz s16 mono, + 1 s quiet."""
    if not ALSA_BASE.is_file():
        pytest.skip(f"ALSA base config {ALSA_BASE} not installed")
    data, rate_hz = sf.read(str(audio_file(UTTERANCE)), dtype="float32")
    up = soxr.resample(data, rate_hz, 48000)
    pcm = np.concatenate([np.zeros(24000), up, np.zeros(48000)])
    raw = tmp_path / "speech.raw"
    np.clip(pcm * 32768, -32768, 32767).astype("<i2").tofile(raw)
    conf = tmp_path / "asound.conf"
    conf.write_text(SPEECH_MIC_CONF.format(base=ALSA_BASE, raw=raw))
    return SpeechMic({**_env(), "ALSA_CONFIG_PATH": str(conf)}, f"{len(pcm) / 48000:.3f}")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def test_alsa_microphone_words_come_back(gateway: Gateway, speech_mic: SpeechMic) -> None:
    res = _run(
        speech_mic.env, "--mic", "--device", "speechmic", "--seconds", speech_mic.seconds,
        "--url", gateway.url, "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    events = parse_events(res.stdout)
    assert events[0]["type"] == "advice" and events[-1] == {"type": "end"}
    texts = _final_texts(events)
    assert texts and wer([UTTERANCE_TEXT], texts) <= 0.2, texts
    finals = [e for e in events if e["type"] == "final" and e["text"].strip()]
    # the stream is 16 kHz: times are in seconds of the sent audio (0.5 s lead-in of quiet)
    assert 0.1 <= finals[0]["start_s"] <= 1.0
    assert finals[-1]["end_s"] <= float(speech_mic.seconds) + 0.1


def test_plain_output_prints_the_final_line(gateway: Gateway, speech_mic: SpeechMic) -> None:
    res = _run(
        speech_mic.env, "--mic", "--device", "speechmic", "--seconds", speech_mic.seconds,
        "--url", gateway.url,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("[") for line in lines), res.stdout
    text = " ".join(line.split("] ", 1)[1] for line in lines)
    assert wer([UTTERANCE_TEXT], [text]) <= 0.2, res.stdout


def test_ctrl_c_ends_the_stream_and_prints_the_last_finals(gateway: Gateway) -> None:
    clip = audio_file("conversation1.wav")
    proc = subprocess.Popen(
        _stream_argv("--mic", "--device", f"file-mic:{clip}", "--url", gateway.url, "--json"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    first_final = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if '"type": "final"' in line and '"text": ""' not in line:
                first_final.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert first_final.wait(60), "no final within 60 s: " + "".join(lines)
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() - interrupted < 15
    finally:
        if proc.poll() is None:
            kill_group(proc)
    reader.join(10)
    events = [json.loads(line) for line in lines if line.strip()]
    assert events[-1] == {"type": "end"}
    assert len(_final_texts(events)) >= 1


def test_missing_device_is_one_line_exit_2(tmp_path: Path) -> None:
    res = _run(_env(), "--mic", "--device", "no-such-mic", "--url", "ws://127.0.0.1:9/v1/stream")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "'no-such-mic'" in lines[0], res.stderr
    assert lines[0].startswith("streamasr: input device 'no-such-mic'")


def test_missing_file_mic_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "none.wav"
    res = _run(_env(), "--mic", "--device", f"file-mic:{missing}", "--url", "ws://x:9/v1/stream")
    assert res.returncode == 2
    spec = f"file-mic:{missing}"
    assert res.stderr == f"streamasr: input device {spec!r}: audio file not found: {missing}\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give either FILE or --mic"),
        (("x.wav", "--mic"), "give either FILE or --mic"),
        (("x.wav", "--device", "1"), "--device and --seconds go with --mic"),
        (("--mic", "--seconds", "0"), "--seconds must be > 0, got 0.0"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    res = _run(_env(), *args)
    assert res.returncode == 2
    assert res.stderr.strip().endswith(f"error: {message}"), res.stderr
