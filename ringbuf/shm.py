"""POSIX shared-memory segments for rings: create, attach, list and clean up.

Lifetime rule: the process that *creates* a segment owns it and is the only one that
unlinks it. Attaching processes map the segment without telling
``multiprocessing.resource_tracker``: before Python 3.13 (``track=False``) an attaching
``SharedMemory`` registers the name and the tracker unlinks it when that process exits,
destroying a live segment under its owner (gh-82300). This module therefore opens
segments itself with ``_posixshmem.shm_open`` + ``mmap`` (what ``SharedMemory`` does
internally); only :meth:`Segment.create` registers with the resource tracker, exactly
as ``SharedMemory(create=True)`` would, so a crashed owner's segment is still reclaimed.

Segments are created with mode 0600 and their names must start with
:data:`NAME_PREFIX`. Every streamasr segment begins with an 8-byte magic and stores
its creator's pid as an unsigned 64-bit word at byte :data:`OWNER_PID_OFFSET`; that is
what :func:`remove_stale` uses to tell a leftover segment from a live one.
"""

from __future__ import annotations

import _posixshmem
import contextlib
import logging
import mmap
import os
import struct
from multiprocessing import resource_tracker
from pathlib import Path

from .errors import RingError

logger = logging.getLogger(__name__)

#: Every streamasr segment name starts with this.
NAME_PREFIX = "streamasr-"
#: Where POSIX shared-memory objects appear as files on Linux.
SHM_DIR = Path("/dev/shm")
#: Byte offset of the creator pid (unsigned 64-bit) in every streamasr segment.
OWNER_PID_OFFSET = 16
_MODE = 0o600
_MAX_NAME_CHARS = 200


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.startswith(NAME_PREFIX):
        raise RingError(f"segment name {name!r} must start with {NAME_PREFIX!r}")
    if "/" in name or len(name) > _MAX_NAME_CHARS or "\0" in name:
        raise RingError(f"segment name {name!r} must be <= {_MAX_NAME_CHARS} chars without '/'")


class Segment:
    """A mapped POSIX shared-memory object (``size_bytes`` long) and its name."""

    def __init__(self, name: str, mapping: mmap.mmap, size_bytes: int, owner: bool) -> None:
        """Wrap an existing mapping; use :meth:`create` or :meth:`attach` instead."""
        self.name = name
        self.mapping = mapping
        self.size_bytes = size_bytes
        self.owner = owner
        self._unlinked = False

    @classmethod
    def create(cls, name: str, size_bytes: int) -> Segment:
        """Create a new 0600 segment of ``size_bytes`` bytes (zero-filled); caller owns it."""
        _check_name(name)
        if size_bytes <= 0:
            raise RingError(f"segment size must be > 0 bytes, got {size_bytes}")
        flags = os.O_CREAT | os.O_EXCL | os.O_RDWR
        try:
            fd = _posixshmem.shm_open("/" + name, flags, mode=_MODE)
        except FileExistsError:
            raise RingError(f"shared-memory segment {name!r} already exists") from None
        try:
            os.fchmod(fd, _MODE)
            os.ftruncate(fd, size_bytes)
            mapping = mmap.mmap(fd, size_bytes)
        except BaseException:
            os.close(fd)
            _posixshmem.shm_unlink("/" + name)
            raise
        os.close(fd)
        resource_tracker.register("/" + name, "shared_memory")
        logger.debug("created segment %s (%d bytes)", name, size_bytes)
        return cls(name, mapping, size_bytes, owner=True)

    @classmethod
    def attach(cls, name: str) -> Segment:
        """Map an existing segment read-write, without involving the resource tracker."""
        if not isinstance(name, str) or "/" in name or not name:
            raise RingError(f"invalid segment name {name!r}")
        try:
            fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0)
        except FileNotFoundError:
            raise RingError(f"no shared-memory segment named {name!r}") from None
        try:
            size_bytes = os.fstat(fd).st_size
            if size_bytes == 0:
                raise RingError(f"shared-memory segment {name!r} is empty")
            mapping = mmap.mmap(fd, size_bytes)
        finally:
            os.close(fd)
        return cls(name, mapping, size_bytes, owner=False)

    def close(self) -> None:
        """Unmap; raises ``BufferError`` if views of the mapping are still alive."""
        self.mapping.close()

    def unlink(self) -> None:
        """Remove the name (owner only); the memory lives on until every mapping closes."""
        if not self.owner:
            raise RingError(f"unlink: only the creating process may unlink {self.name!r}")
        if self._unlinked:
            return
        self._unlinked = True
        with contextlib.suppress(FileNotFoundError):
            _posixshmem.shm_unlink("/" + self.name)
        resource_tracker.unregister("/" + self.name, "shared_memory")


def list_segments(prefix: str = NAME_PREFIX) -> list[str]:
    """Names of the shared-memory segments in /dev/shm starting with ``prefix``, sorted."""
    try:
        names = os.listdir(SHM_DIR)
    except FileNotFoundError:  # pragma: no cover - non-Linux
        return []
    return sorted(n for n in names if n.startswith(prefix))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def segment_owner_pid(name: str) -> int | None:
    """Creator pid recorded in segment ``name``, or ``None`` if unreadable/too small."""
    try:
        with open(SHM_DIR / name, "rb") as f:
            head = f.read(OWNER_PID_OFFSET + 8)
    except OSError:
        return None
    if len(head) < OWNER_PID_OFFSET + 8:
        return None
    (pid,) = struct.unpack_from("=Q", head, OWNER_PID_OFFSET)
    return int(pid)


def remove_stale(prefix: str = NAME_PREFIX) -> list[str]:
    """Unlink segments starting with ``prefix`` whose creator process is gone.

    A segment is stale when its recorded creator pid is 0 or not a live process (a
    supervisor that was SIGKILLed). Live rings of other running supervisors are kept.
    Returns the names removed. ``prefix`` must itself start with :data:`NAME_PREFIX`.
    """
    if not prefix.startswith(NAME_PREFIX):
        raise RingError(f"remove_stale prefix {prefix!r} must start with {NAME_PREFIX!r}")
    removed: list[str] = []
    for name in list_segments(prefix):
        pid = segment_owner_pid(name)
        if pid is not None and pid != 0 and pid_alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            _posixshmem.shm_unlink("/" + name)
            removed.append(name)
            logger.info("removed stale segment %s (creator pid %s)", name, pid)
    return removed
