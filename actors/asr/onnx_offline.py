"""onnxruntime with its telemetry off: the one way this package imports it.

Official onnxruntime builds (1.2x and later on Linux too) start a telemetry client when the
module is *imported*: it writes a persistent device id and an event store under
``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` and may upload events over HTTPS.
``onnxruntime.disable_telemetry_events()`` comes too late for that (the import has already
done it); the documented switch is the environment variable ``ORT_DISABLE_TELEMETRY=1`` set
before the first import in the process (onnxruntime's ``Privacy.md``). :func:`import_onnxruntime`
sets it (unless the user set it either way) and then imports the module;
:func:`silero_vad_model` loads faster-whisper's Silero VAD (an onnxruntime session) the same
way. Every process of the pipeline that runs an ONNX model goes through one of the two.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, Final

__all__ = ["TELEMETRY_ENV", "import_onnxruntime", "silero_vad_model"]

#: onnxruntime's switch: "1" keeps it from creating its telemetry client, device id included.
TELEMETRY_ENV: Final = "ORT_DISABLE_TELEMETRY"


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, imported with its telemetry off (see the module docstring).

    If something in this process imported onnxruntime before (then the variable came too
    late), its non-essential telemetry events are at least switched off through the API.
    """
    os.environ.setdefault(TELEMETRY_ENV, "1")
    ort = importlib.import_module("onnxruntime")

    if os.environ[TELEMETRY_ENV] == "1":
        ort.disable_telemetry_events()
    return ort


def silero_vad_model() -> Any:
    """faster-whisper's cached Silero VAD model (one onnxruntime session per process).

    Raises whatever faster-whisper or onnxruntime raise (ImportError, onnxruntime's errors).
    """
    import_onnxruntime()
    from faster_whisper.vad import get_vad_model

    return get_vad_model()
