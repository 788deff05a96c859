"""onnxruntime's telemetry stays off in every component that runs an ONNX model.

An official onnxruntime build writes ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/deviceid``
(and an event store beside it) when it is imported, unless ``ORT_DISABLE_TELEMETRY=1`` is set
before (under ``$XDG_CACHE_HOME`` where that is set). Each component loads its model in a fresh
child Python (the first import in a process is what counts) with ``HOME`` in ``tmp_path``, the
variable and ``XDG_CACHE_HOME`` unset.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamasr.actors.asr.onnx_offline import TELEMETRY_ENV

ORT_DIR = Path(".cache") / "Microsoft" / "DeveloperTools" / ".onnxruntime"

LOADERS = {
    "frame_vad": "from streamasr.actors.asr.frame_vad import SileroFrameVad; SileroFrameVad()",
    "refine_vad": "from streamasr.actors.refine.vad import SpeechGate; SpeechGate()",
    "turn_model": (
        "from streamasr.actors.asr import turn_model as t; p = t.bundled_model(); "
        "p is None or t.TurnModel(p)"
    ),
}


def _run_with_home(code: str, home: Path) -> None:
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in (TELEMETRY_ENV, "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)


def test_a_plain_import_writes_a_device_id(tmp_path: Path) -> None:
    """The control: what the components must not do (skips where this build has no 1DS)."""
    _run_with_home("import onnxruntime", tmp_path / "h")
    if not (tmp_path / "h" / ORT_DIR / "deviceid").exists():
        pytest.skip("this onnxruntime build writes no device id")


@pytest.mark.parametrize("component", sorted(LOADERS))
def test_loading_a_model_writes_no_device_id(tmp_path: Path, component: str) -> None:
    _run_with_home(LOADERS[component], tmp_path / "h")
    assert not (tmp_path / "h" / ".cache" / "Microsoft").exists()
    assert list((tmp_path / "h").iterdir()) == []
