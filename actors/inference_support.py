"""Process-level helpers of the inference actor: hot standby, decoder release, spec rings,
and the CPU burner used for fault injection."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

from streamasr.actors import messages as m
from streamasr.actors.asr.base import RecognizerStream
from streamasr.actors.runtime import ActorRuntime

__all__ = [
    "DelayOverride",
    "burn_cpu",
    "close_decoder",
    "recognizer_options",
    "stream_rings",
    "wait_for_promotion",
]


def recognizer_options(options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The backend name and its option table from an inference actor's spec ``options``.

    With accurate finals (``[refine] finals = "accurate"``) the first pass's finals are
    provisional, so PocketSphinx's end-of-utterance ``fwdflat`` search (about 80 ms per final,
    for a better first-pass text that Whisper replaces anyway) is off unless the config sets it.
    """
    inf = options["inference"]
    backend = str(inf["backend"])
    table = dict(inf.get(backend, {}))
    accurate = options.get("refine", {}).get("finals") == "accurate"
    if backend == "pocketsphinx" and accurate and table.get("fwdflat") is None:
        table["fwdflat"] = False
    return backend, table


def burn_cpu(seconds: float) -> None:
    """Spend ``seconds`` of this process's CPU time (simulates a heavier model)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class DelayOverride:
    """Fault injection: CPU work added to each model call (a model slower than real time).

    ``delay_ms`` comes from the config; the file ``<runtime_dir>/<name>.delay_ms`` overrides
    it while it exists (read at most every 0.5 s), so a test or an operator can load a
    running actor and take the load away again without a restart.
    """

    def __init__(self, rt: ActorRuntime, name: str, delay_ms: float) -> None:
        """``name``: the override file's stem (``inference``, ``refine``)."""
        self.rt = rt
        self.configured_ms = delay_ms
        self.delay_s = delay_ms / 1000.0
        self.file = rt.runtime_dir / f"{name}.delay_ms"
        self._next_check_s = 0.0

    def check(self, now_s: float) -> bool:
        """Re-read the override (``now_s``: monotonic seconds); True if the delay changed."""
        if now_s < self._next_check_s:
            return False
        self._next_check_s = now_s + 0.5
        delay_ms = self.configured_ms
        with contextlib.suppress(OSError, ValueError):
            delay_ms = float(self.file.read_text().strip())
        changed = delay_ms / 1000.0 != self.delay_s
        self.delay_s = delay_ms / 1000.0
        self.rt.gauges["delay_ms"] = delay_ms
        return changed

    def burn(self) -> None:
        """Spend the current delay of this process's CPU time."""
        if self.delay_s:
            burn_cpu(self.delay_s)


def wait_for_promotion(rt: ActorRuntime) -> bool:
    """Hot standby: report Ready as a warm spare and wait; True once promoted."""
    rt.ready()
    rt.state = "standby"
    while not rt.stopping:
        msgs, _ = rt.poll(0.1)
        if any(isinstance(msg, m.Promote) for msg in msgs):
            rt.state = "running"
            return True
    return False


def close_decoder(decoder: RecognizerStream) -> None:
    """Return a decoder's resources to its engine (backends that pool them have close())."""
    close = getattr(decoder, "close", None)
    if callable(close):
        close()


def stream_rings(rt: ActorRuntime) -> dict[str, tuple[str, int, str]]:
    """Stream id -> (ring name, reader slot, doorbell endpoint) from the spawn spec.

    Ring roles are ``in:<stream_id>``; the doorbell of a stream has the same role.
    """
    out = {}
    for role, ref in rt.spec.rings.items():
        if role.startswith("in:"):
            sid = role[3:]
            out[sid] = (ref.name, ref.reader or 0, rt.spec.bells.get(role, ""))
    return out
