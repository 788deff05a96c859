"""``stream FILE`` names what is wrong with FILE in one line before connecting: missing, or a
directory (libsndfile alone says "System error.")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "streamasr.supervisor.cli", "stream"]


def _stream(path: Path) -> subprocess.CompletedProcess[str]:
    # the URL is never dialled: nothing listens on port 9 and the file is checked first
    argv = [*CLI, str(path), "--url", "ws://127.0.0.1:9/v1/stream"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.timeout(60)
def test_stream_a_missing_file(tmp_path: Path) -> None:
    res = _stream(tmp_path / "nope.wav")
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == f"streamasr: audio file not found: {tmp_path / 'nope.wav'}\n"


@pytest.mark.timeout(60)
def test_stream_a_directory(tmp_path: Path) -> None:
    res = _stream(tmp_path)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == f"streamasr: {tmp_path} is a directory, not an audio file\n"
