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
from collections.abc import Iterable, Mapping
from typing import Any

from streamasr.actors import messages as m
from streamasr.actors.asr.base import Recognizer, RecognizerStream, close_decoder
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.inference.wake_gate import GateMode, WakeGate, gate_options
from streamasr.actors.wake.base import Detection, WakeEngine
from streamasr.actors.wake.registry import create_wake_engine
from streamasr.actors.wake.settings import WakeConfig

log = logging.getLogger(__name__)

__all__ = ["WakeSetup"]


class WakeSetup:
    """Wake-word engines and per-stream gates of one inference process."""

    def __init__(
        self,
        config: WakeConfig,
        gated: Iterable[str],
        pocketsphinx: Mapping[str, Any],
        recognizer: Recognizer,
    ) -> None:
        """``config``: ``[wake]``; ``gated``: the local streams it gates; ``pocketsphinx``:
        ``[inference.pocketsphinx]``, the base of a grammar-restricted command recogniser."""
        self.config = config
        self.gated: set[str] = set(gated)
        self.grammar: dict[str, Any] = config.recognizer_options()
        self._ps_options: dict[str, Any] = dict(pocketsphinx)
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
            self._engine = create_wake_engine(self.config.engine, self.config.detector_options())
            self._engine.warm_up()
            log.info("wake engine loaded in %.2f s", time.perf_counter() - t0)
        return self._engine

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
