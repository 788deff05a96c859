"""The ``up --fast`` progress bar: position / duration, speed and ETA from the status map,
drawn on its own line or under the printer's, and only where it belongs."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from streamasr.supervisor import cli
from streamasr.supervisor import config as config_mod
from streamasr.supervisor.config import Config
from streamasr.supervisor.printer import CLEAR, UP
from streamasr.supervisor.progress import ProgressBar, render, stream_position_s


def _status(**frames_read: int) -> dict[str, Any]:
    """A status map whose ``pcm`` rings (16 kHz) were read this far, per stream (and 8000
    frames more written; a second reader lags 4000 frames behind)."""
    rings = [
        {
            "stream_id": sid,
            "role": "pcm",
            "sample_rate_hz": 16000,
            "writes": n + 8000,
            "readers": [{"reads": 0, "fill": 12000}, {"reads": 0, "fill": 8000}],
        }
        for sid, n in frames_read.items()
    ]
    audio = {
        "stream_id": "s0",
        "role": "audio",
        "sample_rate_hz": 48000,
        "writes": 9,
        "readers": [],
    }
    return {"rings": [audio, *rings]}


def test_render() -> None:
    assert render(75.0, 300.0, None) == "[######..................] 1:15 / 5:00"
    assert render(75.0, 300.0, 12.5) == (
        "[######..................] 1:15 / 5:00  x12.5 real time  ETA 0:18"
    )
    assert render(301.0, 300.0, 2.0).startswith(f"[{'#' * 24}] 5:00 / 5:00")
    assert render(0.0, 4000.0, 1.0).endswith("0:00 / 1:06:40  x1.0 real time  ETA 1:06:40")


def test_position_is_what_the_decoder_read() -> None:
    assert stream_position_s(_status(s0=32000), "s0") == 2.0
    assert stream_position_s(_status(s0=32000), "s1") is None
    unread = {
        "rings": [
            {
                "stream_id": "s0",
                "role": "pcm",
                "sample_rate_hz": 16000,
                "writes": 16000,
                "readers": [],
            }
        ]
    }
    assert stream_position_s(unread, "s0") == 0.0


class Clock:
    """A settable clock (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speed_and_eta_from_two_samples_and_the_slowest_stream() -> None:
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(out, {"s0": 60.0, "s1": 60.0}, below=False, clock=clock)
    bar.show()
    assert out.getvalue() == ""  # nothing known yet
    bar.update(_status(s0=16000 * 10, s1=16000 * 20))
    assert bar.text == render(10.0, 60.0, None)
    clock.now += 2.0
    bar.update(_status(s0=16000 * 30, s1=16000 * 40))  # s0 is behind: 20 s in 2 s
    assert bar.text == render(30.0, 60.0, 10.0)
    assert bar.text.endswith("x10.0 real time  ETA 0:03")


def test_own_line_and_line_below_the_printer() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, {"s0": 60.0}, below=False)
    bar.update(_status(s0=16000))
    bar.hide()  # not shown: nothing to erase
    bar.show()
    bar.hide()
    assert out.getvalue() == CLEAR + bar.text + CLEAR
    out = io.StringIO()
    bar = ProgressBar(out, {"s0": 60.0}, below=True)
    bar.update(_status(s0=16000))
    bar.show()
    bar.hide()
    assert out.getvalue() == "\n" + CLEAR + bar.text + UP + "\r" + "\n" + CLEAR + UP + "\r"


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _args(**overrides: Any) -> argparse.Namespace:
    base = {"command": "up", "fast": True, "json": False, "quiet": False}
    return argparse.Namespace(**{**base, **overrides})


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "a.wav"
    sf.write(str(path), np.zeros(16000 * 3, np.int16), 16000, subtype="PCM_16")
    return path


def test_shown_only_for_fast_files_on_a_terminal(
    wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config_mod.replace(Config(), "source", kind="file", path=str(wav))
    monkeypatch.setattr("sys.stdout", io.StringIO())
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert cli._progress_bar(_args(), cfg) is None  # stderr is no terminal
    monkeypatch.setattr("sys.stderr", Tty())
    bar = cli._progress_bar(_args(), cfg)
    assert bar is not None and bar.durations_s == {"s0": 3.0} and not bar.below
    monkeypatch.setattr("sys.stdout", Tty())
    bar = cli._progress_bar(_args(), cfg)
    assert bar is not None and bar.below
    for off in ({"fast": False}, {"json": True}, {"quiet": True}, {"command": "serve"}):
        assert cli._progress_bar(_args(**off), cfg) is None, off
    mic = config_mod.replace(Config(), "source", kind="mic")
    assert cli._progress_bar(_args(), mic) is None
