"""The runtime root another local user must not control (issue 20, item 8).

The decision by table (:func:`judge`), then real directories under ``tmp_path``: a symlink in
place of the root, a root others can write, another user's root (as root only), a root that
is only readable by others (tightened), a good root; then the CLI's one line and exit 2, and
a second ``up`` of a running instance that leaves the first one's files alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamasr.supervisor import cli, paths
from streamasr.supervisor.config import from_mapping
from streamasr.supervisor.manager import AlreadyRunning, Supervisor
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.private_dir import (
    DirFacts,
    RuntimeDirError,
    Verdict,
    ensure_private_dir,
    judge,
)

ME = 1000
OTHER = 1001
ADVICE = (
    "; another user may control it: remove it, or set XDG_RUNTIME_DIR or"
    r" \[supervisor\] runtime_dir to a directory of your own$"
)


@pytest.mark.parametrize(
    ("facts", "verdict", "why"),
    [
        (DirFacts(False, True, ME, 0o700), Verdict.ACCEPT, ""),
        (DirFacts(False, True, ME, 0o500), Verdict.ACCEPT, ""),  # stricter is fine
        (DirFacts(False, True, ME, 0o755), Verdict.TIGHTEN, ""),  # nobody else can write
        (DirFacts(False, True, ME, 0o750), Verdict.TIGHTEN, ""),
        (DirFacts(False, True, ME, 0o701), Verdict.TIGHTEN, ""),
        (DirFacts(False, True, ME, 0o777), Verdict.REFUSE, "is writable by group or others"),
        (DirFacts(False, True, ME, 0o1777), Verdict.REFUSE, "is writable by group or others"),
        (DirFacts(False, True, ME, 0o720), Verdict.REFUSE, "is writable by group or others"),
        (DirFacts(False, True, ME, 0o702), Verdict.REFUSE, "is writable by group or others"),
        (DirFacts(False, True, OTHER, 0o700), Verdict.REFUSE, "is owned by uid 1001"),
        (DirFacts(False, True, 0, 0o700), Verdict.REFUSE, "is owned by uid 0, not by uid 1000"),
        (DirFacts(True, False, ME, 0o777), Verdict.REFUSE, "is a symbolic link"),
        (DirFacts(True, False, OTHER, 0o777), Verdict.REFUSE, "is a symbolic link"),
        (DirFacts(False, False, ME, 0o600), Verdict.REFUSE, "is not a directory"),
    ],
)
def test_judge(facts: DirFacts, verdict: Verdict, why: str) -> None:
    got, reason = judge(facts, ME)
    assert got is verdict
    assert reason.startswith(why) and (why or not reason)


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


def test_missing_root_is_created_0700(tmp_path: Path) -> None:
    root = tmp_path / "streamasr-1000"
    ensure_private_dir(root)
    assert root.is_dir() and mode(root) == 0o700


def test_good_root_is_accepted_as_is(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir(0o700)
    (root / "keep").write_text("x")
    ensure_private_dir(root)
    assert mode(root) == 0o700 and (root / "keep").read_text() == "x"


def test_symlink_in_place_of_the_root_is_refused_and_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "theirs"
    target.mkdir(0o777)
    os.chmod(target, 0o777)
    root = tmp_path / "streamasr-1000"
    root.symlink_to(target)
    with pytest.raises(RuntimeDirError, match=f"^runtime directory {root} is a symbolic link"):
        ensure_private_dir(root)
    assert mode(target) == 0o777  # chmod did not follow the link


def test_file_in_place_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.write_text("")
    with pytest.raises(RuntimeDirError, match=f"^runtime directory {root} is not a directory"):
        ensure_private_dir(root)


def test_root_others_can_write_is_refused_not_repaired(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.chmod(root, 0o777)
    with pytest.raises(
        RuntimeDirError,
        match=f"^runtime directory {root} is writable by group or others \\(mode 0777\\){ADVICE}",
    ):
        ensure_private_dir(root)
    assert mode(root) == 0o777


def test_root_only_readable_by_others_is_tightened(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.chmod(root, 0o755)
    ensure_private_dir(root)
    assert mode(root) == 0o700


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory away needs root")
def test_another_users_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir(0o700)
    os.chown(root, 65534, 65534)
    with pytest.raises(RuntimeDirError, match=f"is owned by uid 65534, not by uid {os.getuid()}"):
        ensure_private_dir(root)


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /tmp with XDG_RUNTIME_DIR unset: the default root lies in it."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(paths, "SHARED_TMP", tmp_path)
    return tmp_path


def test_make_root_checks_the_default_root_too(shared_tmp: Path) -> None:
    base = shared_tmp / f"streamasr-{os.getuid()}"
    base.mkdir()
    os.chmod(base, 0o777)  # another user could have made it so
    inst = InstancePaths.for_instance("default")
    assert inst.root == base / "default"
    with pytest.raises(RuntimeDirError, match=f"^runtime directory {base} is writable"):
        inst.make_root()
    assert not inst.root.exists()
    os.chmod(base, 0o755)
    inst.make_root()
    assert mode(base) == mode(inst.root) == 0o700


def test_up_with_a_symlinked_root_prints_one_line_and_exits_2(
    shared_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = shared_tmp / "theirs"
    theirs.mkdir()
    (theirs / "control").write_text("planted")
    base = shared_tmp / f"streamasr-{os.getuid()}"
    base.symlink_to(theirs)
    name = f"t{uuid.uuid4().hex[:10]}"
    assert cli.main(["up", "--source", "sample", "--instance", name]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"streamasr: runtime directory {base} is a symbolic link; another")
    assert err[0].endswith("runtime_dir to a directory of your own"), err
    assert (theirs / "control").read_text() == "planted"  # nothing cleaned up in there
    assert sorted(p.name for p in theirs.iterdir()) == ["control"]


@pytest.fixture
def live_streamasr_process() -> Iterator[int]:
    """A live process whose command line names streamasr (what a running supervisor is)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", "streamasr"],
        stdin=subprocess.PIPE,
    )
    try:
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_second_up_of_a_running_instance_leaves_its_files_alone(
    tmp_path: Path, live_streamasr_process: int
) -> None:
    root = tmp_path / "inst"
    cfg = from_mapping({"supervisor": {"instance": "inst", "runtime_dir": str(root)}})
    root.mkdir(0o700)
    (root / "supervisor.pid").write_text(str(live_streamasr_process))
    (root / "control").write_text("")
    with pytest.raises(AlreadyRunning, match=f"already running \\(pid {live_streamasr_process}\\)"):
        Supervisor(cfg).run()
    assert sorted(p.name for p in root.iterdir()) == ["control", "supervisor.pid"]
