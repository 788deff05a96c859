"""Process-level helpers of the inference actor: hot standby, decoder release, spec rings,
and the CPU burner used for fault injection."""

from __future__ import annotations

import time

from streamasr.actors import messages as m
from streamasr.actors.asr.base import RecognizerStream
from streamasr.actors.runtime import ActorRuntime

__all__ = ["burn_cpu", "close_decoder", "stream_rings", "wait_for_promotion"]


def burn_cpu(seconds: float) -> None:
    """Spend ``seconds`` of this process's CPU time (simulates a heavier model)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


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
