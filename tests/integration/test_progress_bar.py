"""``up --fast`` on a file draws a progress bar on a terminal's stderr (position, duration,
speed, ETA) and erases it at the end; piped stdout still gets plain transcript lines."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import Instance, audio_file

pytestmark = pytest.mark.slow


@pytest.mark.timeout(120)
def test_fast_file_on_a_terminal_shows_progress(instance: Instance, tmp_path: Path) -> None:
    wav = audio_file("conversation1.wav")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        instance.argv("up", "--source", str(wav), "--fast", "--finals", "fast"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=instance.env,
        cwd=instance.base,
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:  # until the child's side closes (EIO)
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=100)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)
        os.close(master)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, err[-2000:]
    bars = re.findall(r"\[[#.]{24}\] \d+:\d\d / 0:28  x\d+\.\d real time  ETA \d+:\d\d", err)
    assert bars, err[-2000:]
    assert err.rindex("\r\x1b[K") > err.rindex("ETA"), "the bar is erased at the end"
    assert "Traceback" not in err
    assert re.search(r"^\[00:00\.\d - 00:0\d\.\d\] s0: ", out.decode(), re.M), out
