"""A directory only this user controls: created mode 0700, checked without following symlinks.

The runtime root ``/tmp/streamasr-<uid>`` lies in a directory every local user can write, so
another user may have created it first: as a symlink to a directory of theirs, as their own
directory, or as one anyone can write. Whoever controls it controls the instance directory
inside it (ZeroMQ sockets, spawn specs that name the Python module every actor runs).
:func:`ensure_private_dir` creates the directory, or opens the existing one with
``O_DIRECTORY | O_NOFOLLOW`` (a symlink in its place fails to open), and judges what it opened
with :func:`judge`:

* a symlink, a non-directory, or a directory owned by another uid: refused;
* writable by group or others (e.g. mode 0777, or 1777 like ``/tmp``): refused, since anything
  may have been planted in it meanwhile, and tightening the mode would not remove it;
* ours, readable or searchable by others but writable by nobody else (e.g. 0755 after a
  ``mkdir`` under umask 022): tightened to 0700 with ``fchmod`` on the open descriptor
  (its contents can only be ours);
* ours with mode 0700 (or stricter): accepted as is.

A refusal raises :class:`RuntimeDirError`, a one-line message saying what was found and what
to do; the CLI prints it and exits 2. Depends on the standard library and the error root.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from streamasr.actors.errors import StreamAsrError

__all__ = ["DirFacts", "RuntimeDirError", "Verdict", "ensure_private_dir", "judge"]

#: Permission bits that let anyone but the owner create, rename or remove entries.
FOREIGN_WRITE = stat.S_IWGRP | stat.S_IWOTH
#: Any permission bit for group or others.
FOREIGN_ANY = stat.S_IRWXG | stat.S_IRWXO


class RuntimeDirError(StreamAsrError):
    """A runtime directory that another user could control (refused), or that cannot be
    created or opened."""


class Verdict(enum.Enum):
    """What to do with a directory found in place."""

    ACCEPT = "accept"
    TIGHTEN = "tighten"  # fchmod to 0700, then accept
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class DirFacts:
    """What ``lstat``/``fstat`` says about a path (never following a symlink)."""

    is_link: bool
    is_dir: bool
    uid: int
    mode: int  # permission bits (``stat.S_IMODE``)

    @classmethod
    def of(cls, st: os.stat_result) -> DirFacts:
        """The facts of a stat result."""
        return cls(
            stat.S_ISLNK(st.st_mode), stat.S_ISDIR(st.st_mode), st.st_uid, stat.S_IMODE(st.st_mode)
        )


def judge(facts: DirFacts, my_uid: int) -> tuple[Verdict, str]:
    """Accept, tighten or refuse a directory found in place; the reason for a refusal.

    Args:
        facts: the path's type, owner and permission bits (not following symlinks).
        my_uid: the uid the pipeline runs as.
    """
    if facts.is_link:
        return Verdict.REFUSE, "is a symbolic link"
    if not facts.is_dir:
        return Verdict.REFUSE, "is not a directory"
    if facts.uid != my_uid:
        return Verdict.REFUSE, f"is owned by uid {facts.uid}, not by uid {my_uid}"
    if facts.mode & FOREIGN_WRITE:
        return Verdict.REFUSE, f"is writable by group or others (mode {facts.mode:04o})"
    if facts.mode & FOREIGN_ANY:
        return Verdict.TIGHTEN, ""
    return Verdict.ACCEPT, ""


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` with mode 0700, or check the directory already there (see module doc).

    Raises:
        RuntimeDirError: the path is refused, or cannot be created or opened (no parent,
            no permission).
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RuntimeDirError(f"cannot create runtime directory {path}: {exc.strerror}") from None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink or not a directory
            with contextlib.suppress(OSError):
                _refuse(path, DirFacts.of(os.lstat(path)))
        raise RuntimeDirError(f"cannot open runtime directory {path}: {exc.strerror}") from None
    try:
        if _refuse(path, DirFacts.of(os.fstat(fd))) is Verdict.TIGHTEN:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def _refuse(path: Path, facts: DirFacts) -> Verdict:
    """The verdict on ``facts``; raise :class:`RuntimeDirError` if it is a refusal."""
    verdict, why = judge(facts, os.getuid())
    if verdict is Verdict.REFUSE:
        raise RuntimeDirError(
            f"runtime directory {path} {why}; another user may control it: remove it, or set"
            " XDG_RUNTIME_DIR or [supervisor] runtime_dir to a directory of your own"
        )
    return verdict
