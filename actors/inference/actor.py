"""Inference actor: model-rate PCM rings -> a streaming recogniser -> transcript events.

One process serves every stream of the pipeline: one engine (the loaded model), one
recogniser stream (decoder state) per audio stream, one PCM ring and doorbell per stream.
The model is loaded and warmed before the actor reports Ready. Partials are sent when a
stream's hypothesis changes, finals at each endpoint (pass 1); with
``finals = "accurate"`` each final's exact stream positions also go to the refine actor as
a :class:`RefineJob`.

Crash safety: each stream is read with ``read_at`` from the actor's own position, and the
stream's shared ring cursor (the commit point) moves only to positions where the
recogniser was idle between utterances. A replacement process resumes from those cursors
and re-decodes the utterances that were in flight from audio the rings still hold; the
supervisor drops a re-decoded final it has already published (same stream, overlapping
times).
"""

from __future__ import annotations

from typing import Any

from streamasr.actors import messages as m
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.inference import endpoints
from streamasr.actors.inference.decoding import InferenceLoop
from streamasr.actors.inference.wake_setup import WakeSetup
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.settings import InferenceConfig, RefineConfig
from streamasr.actors.wake.settings import WakeConfig

__all__ = ["recognizer_options", "run", "stream_rings", "wait_for_promotion"]


def run(rt: ActorRuntime) -> None:
    """Actor main."""
    inference = rt.spec.section("inference", InferenceConfig)
    backend, table = recognizer_options(inference, rt.spec.section("refine", RefineConfig))
    with rt.cpu.charge("startup"):  # models loaded and warmed
        recognizer = create_recognizer(backend, table)
        recognizer.warm_up()
        wake = WakeSetup(
            rt.spec.section("wake", WakeConfig),
            rt.spec.options.get("wake_streams", ()),
            inference.pocketsphinx,
            recognizer,
        )
        wake.warm_up()  # before a standby waits: a promoted spare must not load anything
    if rt.spec.options.get("standby") and not wait_for_promotion(rt):
        return
    actor = InferenceLoop(rt, recognizer, wake, endpoints.endpointer(rt, backend, table))
    try:
        for sid, (name, reader, bell) in stream_rings(rt).items():
            actor.attach(sid, name, reader, bell)
        rt.ready()
        while not rt.stopping:
            msgs, ready = rt.poll(0.05)
            actor.handle(msgs, ready)
            actor.work()
    finally:
        actor.close()


def recognizer_options(
    inference: InferenceConfig, refine: RefineConfig
) -> tuple[str, dict[str, Any]]:
    """The backend name and its option table from ``[inference]`` and ``[refine]``.

    With accurate finals (``[refine] finals = "accurate"``) the first pass's finals are
    provisional, so PocketSphinx's end-of-utterance ``fwdflat`` search (about 80 ms per final,
    for a better first-pass text that Whisper replaces anyway) is off unless the config sets it.
    Where Whisper writes every text (``RefineConfig.whisper_led``), PocketSphinx only
    segments (``words = false``), with the Silero VAD unless the config names one (the
    WebRTC VAD heard the pauses between espeak-ng's German, French, Spanish, Italian and
    Dutch sentences as speech and made one utterance of six).
    """
    backend = inference.backend
    table = inference.backend_options()
    if backend == "pocketsphinx" and refine.finals == "accurate" and table.get("fwdflat") is None:
        table["fwdflat"] = False
    if backend == "pocketsphinx" and refine.whisper_led():
        table["words"] = False
        table.setdefault("vad", "silero")  # the WebRTC VAD is tuned to English speech
    return backend, table


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
