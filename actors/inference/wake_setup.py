"""What the inference actor needs for wake-word gating: engines, gates and wake messages.

The wake engine (``[wake] engine``, default PocketSphinx keyphrase spotting) is loaded the
first time a gated stream attaches, so a pipeline without gating pays nothing. Commands are
decoded by the actor's recogniser, or — when ``[wake] grammar`` / ``commands`` is set — by a
second PocketSphinx recogniser restricted to that grammar (ungated streams keep the full
language model).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from streamasr.actors import messages as m
from streamasr.actors.asr.base import Recognizer, RecognizerStream, close_decoder
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.inference.wake_gate import GateMode, WakeGate, gate_options
from streamasr.actors.wake.base import Detection, WakeEngine, WakeOptions
from streamasr.actors.wake.registry import create_wake_engine

log = logging.getLogger(__name__)

__all__ = ["WakeSetup"]


class WakeSetup:
    """Wake-word engines and per-stream gates of one inference process."""

    def __init__(self, options: dict[str, Any], recognizer: Recognizer) -> None:
        """``options``: the actor spec's options (``wake``, ``wake_streams``, ``inference``)."""
        self.config: dict[str, Any] = dict(options.get("wake") or {})
        self.gated: set[str] = set(options.get("wake_streams") or ())
        inference = options.get("inference") or {}
        self.grammar: dict[str, Any] = {}
        if self.config.get("grammar"):
            self.grammar = {"grammar_path": self.config["grammar"]}
        elif self.config.get("commands"):
            self.grammar = {"commands": list(self.config["commands"])}
        self._ps_options: dict[str, Any] = dict(inference.get("pocketsphinx") or {})
        self._recognizer = recognizer
        self._command: Recognizer | None = None
        self._engine: WakeEngine | None = None

    def mode(self, stream_id: str, requested: str) -> GateMode | None:
        """The gate of a stream: configured local streams are assistants; else as requested."""
        if stream_id in self.gated:
            return "assistant"
        if requested in ("assistant", "detect"):
            return "assistant" if requested == "assistant" else "detect"
        return None

    def engine(self) -> WakeEngine:
        """The wake engine, loaded on first use."""
        if self._engine is None:
            t0 = time.perf_counter()
            self._engine = create_wake_engine(
                str(self.config.get("engine", "pocketsphinx")), self.detector_options()
            )
            self._engine.warm_up()
            log.info("wake engine loaded in %.2f s", time.perf_counter() - t0)
        return self._engine

    def detector_options(self) -> WakeOptions:
        """:class:`WakeOptions` from ``[wake]`` (engine defaults where it leaves them empty)."""
        kwargs: dict[str, Any] = {}
        if self.config.get("phrases"):
            kwargs["phrases"] = tuple(self.config["phrases"])
        if self.config.get("thresholds"):
            kwargs["thresholds"] = tuple(float(t) for t in self.config["thresholds"])
        return WakeOptions(**kwargs)

    def gate(self, mode: GateMode, start_frame: int, rate_hz: int) -> WakeGate:
        """A gate for a stream whose next frame is ``start_frame``."""
        detector = self.engine().create_detector(start_frame)
        return WakeGate(detector, gate_options(mode, self.config, rate_hz))

    def command_stream(self, start_frame: int) -> RecognizerStream:
        """A recogniser stream for one command (grammar-restricted if configured)."""
        if not self.grammar:
            return self._recognizer.create_stream(start_frame=start_frame)
        if self._command is None:
            self._command = create_recognizer("pocketsphinx", {**self._ps_options, **self.grammar})
        return self._command.create_stream(start_frame=start_frame)

    def warm_up(self) -> None:
        """Load what the configured gated streams need before the actor reports Ready."""
        if self.gated:
            self.engine()
            close_decoder(self.command_stream(0))

    @staticmethod
    def detected(stream_id: str, det: Detection, position: int, rate_hz: int) -> m.WakeDetected:
        """The :class:`WakeDetected` message of ``det`` (seen at ring frame ``position``)."""
        return m.WakeDetected(
            stream_id=stream_id,
            wake_id=f"{stream_id}:wake:{det.end_frame}",
            phrase=det.phrase,
            start_s=det.start_frame / rate_hz,
            end_s=det.end_frame / rate_hz,
            detected_s=position / rate_hz,
            score=float(det.score),
            t_ns=time.time_ns(),
        )
