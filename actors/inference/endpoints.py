"""Where the inference actor's utterances end: its endpoint policy and what it reports.

:func:`endpointer` builds the :class:`~streamasr.actors.asr.endpointer.Endpointer` the
PocketSphinx streams consult (``[endpoint]``, the Smart Turn model from ``pipecat-ai``);
:func:`publish` sets its overload flag from the decoding backlog and puts its decisions in the
actor's counters and gauges (``status``, ``/metrics``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streamasr.actors.asr import turn_model
from streamasr.actors.asr.endpoint_policy import EndpointOptions
from streamasr.actors.asr.endpointer import Endpointer
from streamasr.actors.asr.pocketsphinx_options import PocketsphinxOptions
from streamasr.actors.runtime import ActorRuntime

__all__ = ["OVERLOAD_BACKLOG", "PAUSE_MS", "endpointer", "pause_ms", "publish"]

#: Non-speech after an utterance's speech, in ms, at which its span goes to the second pass
#: ahead of the endpoint (:class:`SpeechPaused`); half the default endpoint silence.
PAUSE_MS = 300

#: Backlog (fraction of a stream's ring waiting to be decoded) above which the endpoint
#: policy falls back to the fixed rule where streams are live: the turn model's CPU goes to
#: catching up (a file read ``--fast`` keeps the policy: its results never depend on load).
OVERLOAD_BACKLOG = 0.25


def endpointer(rt: ActorRuntime, backend: str, table: dict[str, Any]) -> Endpointer | None:
    """The endpoint policy for PocketSphinx streams (None for the torch backend, which keeps
    its own rule). The turn model is loaded and warmed here, before Ready; a missing
    ``pipecat-ai`` is logged once and the fixed rule applies."""
    if backend != "pocketsphinx":
        return None
    opts = rt.spec.section("endpoint", EndpointOptions)
    fixed_ms = int(table.get("endpoint_silence_ms", PocketsphinxOptions().endpoint_silence_ms))
    model = turn_model.load(opts.model) if opts.policy == "adaptive" else None
    if model is not None:
        model.probability(np.zeros(turn_model.SAMPLE_RATE_HZ, np.float32))
    return Endpointer(opts, fixed_ms, model)


def pause_ms(ep: Endpointer | None) -> int:
    """When a pause goes to the second pass: :data:`PAUSE_MS`, or with the adaptive policy
    half of ``[endpoint] min_silence_ms`` if that is earlier (an early endpoint then finds
    Whisper's transcript made or under way)."""
    if ep is None or not ep.adaptive:
        return PAUSE_MS
    return min(PAUSE_MS, ep.options.min_silence_ms // 2)


def publish(rt: ActorRuntime, ep: Endpointer, backlog: float) -> None:
    """Counters and gauges of ``ep``; a backlog over :data:`OVERLOAD_BACKLOG` where streams
    are live (``deadline`` in the spec, see supervisor.plan) switches to the fixed rule."""
    ep.overloaded = bool(rt.spec.options.get("deadline", True)) and backlog > OVERLOAD_BACKLOG
    for kind, n in ep.counts.items():
        rt.counters[f"endpoints_{kind}"] = n
    rt.counters["turn_model_calls"] = ep.model_calls
    rt.gauges["turn_model_ms_mean"] = 1000.0 * ep.model_s / max(1, ep.model_calls)
    waited = ep.waited_ms_p50()
    if waited is not None:
        rt.gauges["endpoint_silence_ms_p50"] = waited
    rt.gauges["endpoint_adaptive"] = float(ep.adaptive and not ep.overloaded)
