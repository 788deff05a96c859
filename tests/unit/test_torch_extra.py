"""PyTorch is the optional extra ``streamasr[torch]``: the default pipeline never imports it, and
choosing the torch backend without it is a one-line error that names the extra."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from streamasr.actors.asr.registry import NO_TORCH_MSG, check_torch, create_recognizer
from streamasr.actors.errors import ConfigError

#: Every module an actor process or the supervisor of the default pipeline imports.
DEFAULT_PATH = (
    "streamasr.actors.__main__",
    "streamasr.actors.capture.actor",
    "streamasr.actors.feature.actor",
    "streamasr.actors.inference.actor",
    "streamasr.actors.refine.actor",
    "streamasr.actors.frontdoors.gateway",
    "streamasr.actors.frontdoors.wyoming",
    "streamasr.supervisor.cli",
)

PROBE = """
import importlib, json, sys
from streamasr.actors.asr.registry import create_recognizer
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
create_recognizer("pocketsphinx", {})
print(json.dumps(sys.modules.get("torch") is not None))  # None: blocked, not loaded
"""


def test_default_pipeline_never_imports_torch() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(DEFAULT_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) is False


def test_torch_backend_without_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    monkeypatch.delitem(sys.modules, "streamasr.actors.asr.torch_backend", raising=False)
    with pytest.raises(ConfigError, match=re.escape("pip install 'streamasr[torch]'")):
        check_torch()
    with pytest.raises(ConfigError, match=re.escape(NO_TORCH_MSG)):
        create_recognizer("torch", {"model_path": "/m.pt"})
    assert "\n" not in NO_TORCH_MSG
