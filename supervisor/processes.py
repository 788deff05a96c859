"""Actor processes as the supervisor starts and tracks them: environment, command line,
the per-process record, and reading an actor log's tail."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from streamasr.actors import messages as m
from streamasr.actors.settings import SourceConfig
from streamasr.actors.spec import ActorSpec

__all__ = ["Child", "actor_env", "popen_actor", "read_log_tail"]


def actor_env() -> dict[str, str]:
    """The environment an actor starts with: this process's, taken at spawn time.

    OpenMP threads (CTranslate2's Whisper, torch) sleep when idle instead of spinning
    ~100 ms after each call, which on a small box takes the cores the streaming first pass
    needs (``OMP_WAIT_POLICY=PASSIVE``). A user's own setting wins.
    """
    return {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}


@dataclass
class Child:
    """A running actor process and what it last told the supervisor."""

    proc: subprocess.Popen[bytes]
    heartbeat: m.Heartbeat | None = None
    started: bool = False
    reaped: bool = False
    errors: list[str] = field(default_factory=list)


def popen_actor(spec: ActorSpec, spec_path: Path, log: IO[bytes] | None) -> subprocess.Popen[bytes]:
    """Start the actor ``spec`` (written to ``spec_path``) as ``python -m streamasr.actors``.

    Only a stdin capture inherits stdin; stdout is discarded, stderr goes to ``log``
    (None: inherited).
    """
    spec.write(spec_path)
    reads_stdin = spec.kind == "capture" and spec.section("source", SourceConfig).kind == "stdin"
    return subprocess.Popen(
        [sys.executable, "-m", "streamasr.actors", str(spec_path)],
        stdin=None if reads_stdin else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=actor_env(),
    )


def read_log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ('' if none)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
