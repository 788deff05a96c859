"""Where a pipeline instance keeps its sockets, specs, pid file and shared memory.

Each instance (``[supervisor] instance``) has a private runtime directory, mode 0700:
``$XDG_RUNTIME_DIR/streamasr/<instance>`` if that variable is set, else
``/tmp/streamasr-<uid>/<instance>``, unless ``runtime_dir`` is configured. ZeroMQ ipc
endpoints live there, so only the owner can connect. The default root and the instance
directory are created 0700 or, when found in place, checked without following symlinks
(:mod:`streamasr.supervisor.private_dir`): another user's directory, a symlink, or one that
others can write is refused. Shared-memory segments are named ``streamasr-<instance>-...`` so
stale ones can be found and removed after a SIGKILL.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import psutil

from streamasr.ringbuf.shm import list_segments, remove_stale
from streamasr.supervisor.private_dir import ensure_private_dir

SEGMENT_PREFIX = "streamasr-"
#: Where the runtime root goes without ``XDG_RUNTIME_DIR`` (a directory every user can write).
SHARED_TMP = Path("/tmp")


def default_runtime_root() -> Path:
    """The directory holding every instance's runtime directory."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "streamasr"
    return SHARED_TMP / f"streamasr-{os.getuid()}"


@dataclass(frozen=True, slots=True)
class InstancePaths:
    """Paths and names of one pipeline instance."""

    instance: str
    root: Path

    @classmethod
    def for_instance(cls, instance: str, runtime_dir: str = "") -> InstancePaths:
        """Paths for ``instance``; ``runtime_dir`` overrides the default location."""
        root = Path(runtime_dir) if runtime_dir else default_runtime_root() / instance
        return cls(instance=instance, root=root)

    @property
    def control(self) -> str:
        """Endpoint of the supervisor's ROUTER (actors and clients)."""
        return f"ipc://{self.root / 'control'}"

    @property
    def events(self) -> str:
        """Endpoint of the supervisor's PUB socket."""
        return f"ipc://{self.root / 'events'}"

    @property
    def pid_file(self) -> Path:
        """Holds the running supervisor's pid."""
        return self.root / "supervisor.pid"

    @property
    def log_file(self) -> Path:
        """Log of a detached supervisor and its actors."""
        return self.root / "streamasr.log"

    def bell(self, ring: str, reader: int) -> str:
        """Doorbell endpoint of reader ``reader`` of ring ``ring``."""
        return f"ipc://{self.root / f'bell-{ring}-{reader}'}"

    def spec_file(self, actor_id: str) -> Path:
        """Spawn spec of one actor."""
        return self.root / f"spec-{actor_id}.json"

    def segment(self, stream_id: str, role: str) -> str:
        """Shared-memory segment name of a stream's ring."""
        return f"{self.segment_prefix}{stream_id}-{role}"

    @property
    def segment_prefix(self) -> str:
        """Prefix of every segment this instance creates."""
        return f"{SEGMENT_PREFIX}{self.instance}-"

    def make_root(self) -> None:
        """Create the runtime directory with mode 0700, or check the one in place.

        The default root (``/tmp/streamasr-<uid>`` or ``$XDG_RUNTIME_DIR/streamasr``) is held
        to the same rule as the instance directory; a configured ``runtime_dir``'s parents
        are the user's choice and only created if missing.

        Raises:
            RuntimeDirError: a directory is refused (a symlink, another user's, writable by
                others) or cannot be created.
        """
        base = default_runtime_root()
        if self.root.parent == base:
            ensure_private_dir(base)
        else:
            self.root.parent.mkdir(parents=True, exist_ok=True)
        ensure_private_dir(self.root)

    def running_pid(self) -> int | None:
        """The pid of a live supervisor of this instance, or None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            if "streamasr" not in " ".join(proc.cmdline()):
                return None
        except psutil.Error:
            return None
        return pid

    def clean_stale(self) -> list[str]:
        """Remove what a killed supervisor left: segments, sockets, specs. Returns what went."""
        removed = remove_stale(self.segment_prefix)
        if self.root.is_dir():
            for p in self.root.iterdir():
                if p.name.startswith(("bell-", "spec-")) or p.name in (
                    "control",
                    "events",
                    "supervisor.pid",
                ):
                    p.unlink(missing_ok=True)
                    removed.append(str(p))
        return removed

    def segments(self) -> list[str]:
        """Segments of this instance that exist now."""
        return list_segments(self.segment_prefix)

    def remove_root(self) -> None:
        """Remove the runtime directory, keeping the log file's directory if a log exists."""
        if self.log_file.exists():
            for p in self.root.iterdir():
                if p != self.log_file:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
