"""Wake-word gating of one stream: listen cheaply, open a command window on a detection.

A gated stream is in one of two states:

* **listening** — its audio goes only to a :class:`~streamasr.actors.wake.base.WakeDetector`;
  the recogniser does no work for it;
* **command** — opened by a detection: recognition runs from ``preroll`` frames before the
  detection fired, but not before the phrase ended (the inference actor rewinds its read
  position in the ring, so nothing said right after the phrase is lost) until the command's
  final; then the stream listens again from where that utterance ended. No speech within
  ``timeout`` frames of the phrase closes the window (``timeout``); a command running past
  ``max_command`` frames is cut there (``limit``).

In ``detect`` mode (a Wyoming ``detect`` session) detections are only reported; the stream
never opens a command window. This module does no I/O: the inference actor feeds it audio
and turns its decisions into messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from streamasr.actors.errors import ConfigError
from streamasr.actors.wake.base import Detection, WakeDetector
from streamasr.actors.wake.settings import WakeConfig

__all__ = ["GateMode", "GateOptions", "WakeGate", "gate_options"]

GateMode = Literal["assistant", "detect"]

#: Seconds the shared ring cursor stays behind a listening stream: a replacement process
#: re-reads that much, so a phrase that was being spoken (or a detection that was not yet
#: acted on) when the actor died is detected again (longest phrase + detection delay).
LISTEN_LOOKBACK_S = 2.5

#: Seconds after the detector's phrase end where a command may begin at the earliest:
#: keyphrase spotting places phrase ends up to ~90 ms early (measured on flite voices), and
#: a phrase's last syllable fed to the recogniser comes out as a spurious first word.
PHRASE_END_GUARD_S = 0.1


@dataclass(frozen=True, slots=True)
class GateOptions:
    """Per-stream gate settings, in frames of the stream's sample rate.

    Attributes:
        mode: ``assistant`` (detection opens a command window) or ``detect`` (report only).
        preroll_frames: audio before the detection that belongs to the command (it never
            reaches back into the phrase).
        timeout_frames: after the phrase, how long a command may take to start.
        max_command_frames: longest command, measured from the phrase's end.
        lookback_frames: how far the ring cursor stays behind a listening stream.
        guard_frames: the earliest command start after the detector's phrase end.
    """

    mode: GateMode
    preroll_frames: int
    timeout_frames: int
    max_command_frames: int
    lookback_frames: int
    guard_frames: int = 0


def gate_options(mode: str, wake: WakeConfig, rate_hz: int) -> GateOptions:
    """:class:`GateOptions` from ``[wake]`` (milliseconds) at ``rate_hz``."""
    if mode not in ("assistant", "detect"):
        raise ConfigError(f"gate: unknown mode {mode!r}")
    per_ms = rate_hz / 1000.0
    return GateOptions(
        mode="assistant" if mode == "assistant" else "detect",
        preroll_frames=int(wake.preroll_ms * per_ms),
        timeout_frames=int(wake.command_timeout_ms * per_ms),
        max_command_frames=int(wake.max_command_ms * per_ms),
        lookback_frames=int(LISTEN_LOOKBACK_S * rate_hz),
        guard_frames=int(PHRASE_END_GUARD_S * rate_hz),
    )


class WakeGate:
    """The listening/command state of one wake-gated stream.

    Attributes:
        options: the gate's settings.
        wake_id: the detection that opened the current command ("" while listening).
        command_start: first frame of the current command's audio.
        detections: wake phrases detected so far.
    """

    def __init__(self, detector: WakeDetector, options: GateOptions) -> None:
        """Gate a stream whose detector is already positioned at the stream's read point."""
        self.detector = detector
        self.options = options
        self.wake_id = ""
        self.command_start = 0
        self._phrase_end = 0
        self.detections = 0
        #: Detections are ignored until this wall clock (ns since the epoch): the assistant
        #: is speaking its reply, which the microphone hears (see :meth:`mute`).
        self.muted_until_ns = 0
        #: Detections ignored while muted.
        self.muted = 0
        #: The detector's unconfirmed detections already counted (``[wake] verify``).
        self.unconfirmed_seen = 0

    @property
    def listening(self) -> bool:
        """True while only the detector runs."""
        return not self.wake_id

    def listen(self, pcm: npt.NDArray[np.int16], t_capture_ns: int = 0) -> Detection | None:
        """Feed the next audio to the detector; the first detection in it, if any.
        ``t_capture_ns``: when that audio was captured (wall clock, ns since the epoch; 0:
        unknown), which the mute is checked against."""
        found = self.detector.accept(pcm)
        if not found:
            return None
        if t_capture_ns and t_capture_ns < self.muted_until_ns:
            self.muted += len(found)
            return None
        self.detections += len(found)
        return found[0]

    def mute(self, until_ns: int) -> None:
        """Ignore detections until ``until_ns`` (wall clock, ns since the epoch); the
        detector keeps reading, so its state stays in step with the stream."""
        self.muted_until_ns = max(self.muted_until_ns, until_ns)

    def open(
        self, detection: Detection, wake_id: str, detected_frame: int, oldest_frame: int
    ) -> int:
        """Open the command window of ``detection``; return the command's first frame.

        The command's audio starts ``preroll_frames`` before ``detected_frame`` (how far the
        detector had read when it fired), but never inside the phrase itself nor before
        ``oldest_frame``, the oldest frame the ring still holds.
        """
        self.wake_id = wake_id
        self._phrase_end = detection.end_frame
        start = detected_frame - self.options.preroll_frames
        earliest = detection.end_frame + self.options.guard_frames
        self.command_start = max(start, earliest, oldest_frame)
        return self.command_start

    def over(self, position_frame: int, in_utterance: bool) -> str | None:
        """Why the command window must close now (``timeout`` / ``limit``), else None.

        ``position_frame``: how far the recogniser has read; ``in_utterance``: whether it is
        inside an utterance (a command that has started is not timed out, only limited).
        """
        if self.listening:
            return None
        since = position_frame - self._phrase_end
        if since >= self.options.max_command_frames:
            return "limit"
        if not in_utterance and since >= self.options.timeout_frames:
            return "timeout"
        return None

    def close(self, resume_frame: int) -> None:
        """Listen again from ``resume_frame`` (the detector forgets what it had seen)."""
        self.wake_id = ""
        self.detector.reset(resume_frame)

    def commit_target(self, position_frame: int) -> int:
        """Where the ring cursor may go while listening at ``position_frame``."""
        return position_frame - self.options.lookback_frames
