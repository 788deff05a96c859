"""The installed package is ours: ``streamasr.*`` names resolve to this repository's folders (or
to an installed ``streamasr/`` package), the bare name ``supervisor`` (PyPI's supervisord) is
not ours, and the console script runs.

The import checks run in a fresh interpreter whose working directory is outside the repository,
so that the repository root on ``sys.path`` (``python -m pytest`` puts it there) cannot make a
bare ``import supervisor`` find our folder by accident.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = {"supervisor": "supervisor", "actors": "actors", "ringbuf": "ringbuf"}
MARKERS = {
    "streamasr.supervisor": ("streamasr.supervisor.config", "Config"),
    "streamasr.actors": ("streamasr.actors.messages", "MESSAGE_TYPES"),
    "streamasr.ringbuf": ("streamasr.ringbuf.errors", "RingError"),
}

PROBE = """
import importlib, importlib.util, json, sys
out = {}
for name, (module, attr) in json.loads(sys.argv[1]).items():
    pkg = importlib.import_module(name)
    out[name] = {"file": pkg.__file__, "marker": hasattr(importlib.import_module(module), attr)}
spec = importlib.util.find_spec("supervisor")
out["supervisor"] = None if spec is None else {
    "origin": spec.origin, "locations": list(spec.submodule_search_locations or [])}
print(json.dumps(out))
"""


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONSTARTUP", None)
    return env


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    cwd = tmp_path_factory.mktemp("elsewhere")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(MARKERS)],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def _inside(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


@pytest.mark.parametrize("folder", sorted(OURS))
def test_streamasr_modules_are_ours(probe: dict[str, object], folder: str) -> None:
    info = probe[f"streamasr.{folder}"]
    assert isinstance(info, dict)
    assert info["marker"] is True
    file = Path(info["file"])
    editable = _inside(file, REPO / OURS[folder])
    installed = file.parent.name == folder and file.parent.parent.name == "streamasr"
    assert editable or installed, f"streamasr.{folder} comes from {file}"


def test_bare_supervisor_is_not_ours(probe: dict[str, object]) -> None:
    spec = probe["supervisor"]
    if spec is None:
        return  # PyPI's supervisor is not installed, and ours is not reachable by that name
    assert isinstance(spec, dict)
    places = [p for p in [spec["origin"], *spec["locations"]] if p]
    assert not any(_inside(p, REPO / "supervisor") for p in places), spec


def test_console_script_help() -> None:
    local = Path(sys.executable).parent / "streamasr-supervisor"
    script = str(local) if local.exists() else shutil.which("streamasr-supervisor")
    assert script, "streamasr-supervisor is not installed (pip install -e .)"
    proc = subprocess.run(
        [script, "--help"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: streamasr-supervisor" in proc.stdout
    assert "up" in proc.stdout.split("usage:", 1)[1].split("\n", 1)[0]
    for command in ("up", "status", "tail", "down"):
        assert command in proc.stdout


def test_every_subpackage_is_listed_for_a_wheel() -> None:
    """A regular (non-editable) install only ships the packages pyproject.toml lists: every
    folder with an ``__init__.py`` under the three code folders must be there."""
    import tomllib

    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        "streamasr." + ".".join(init.parent.relative_to(REPO).parts)
        for folder in OURS
        for init in (REPO / folder).rglob("__init__.py")
    }
    assert found - listed == set(), f"missing from [tool.setuptools] packages: {found - listed}"
