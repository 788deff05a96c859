"""A second opinion on a pause before a monologue split: does Silero hear it too?

A monologue split (``PocketsphinxOptions.max_utterance_s``) ends an utterance in a pause that
the WebRTC-style VAD or the frame energy found (:mod:`~streamasr.actors.asr.pauses`). In steady
noise the WebRTC VAD hears everything as speech, so only the energy rule is left, and it also
fires on the closure of a stop consonant inside a word: in pink noise at 10 dB SNR a split
landed inside "the concert starts at eight" and the accurate pass lost the sentence. Silero
VAD hears noise as non-speech and a closure as speech. :class:`PauseCheck` keeps the
utterance's last :data:`KEEP_S` seconds of frames; when a split is due at a pause that no VAD
frame confirmed (energy alone), :meth:`PauseCheck.quiet_tail` runs Silero, with a fresh
state, over that audio: the split waits until the pause's last :data:`QUIET_FRAMES` Silero
frames are non-speech, and cuts in the middle of that quiet run (the energy's quietest frame
may lie in a word's fading end, which Silero still hears as speech). The answer
depends only on the audio (not on chunk sizes or timing). About 0.1 ms of CPU per Silero
frame: a check reads at most :data:`KEEP_S` seconds (~60 frames), and runs only in pauses of
utterances past ``max_utterance_s``.
"""

from __future__ import annotations

import collections

import numpy as np
import numpy.typing as npt

from streamasr.actors.asr.frame_vad import SILERO_FRAME_SAMPLES, SileroFrameVad

__all__ = ["KEEP_S", "QUIET_FRAMES", "PauseCheck"]

#: Seconds of audio kept and read by a check: the pause plus the speech before it, from which
#: a fresh Silero state settles (it follows the audio within a few frames).
KEEP_S = 1.5

#: Silero frames (32 ms) in a row at the end of the pause that must be non-speech: a weak
#: sound inside a word ("the eve-ning" fading) dips below the threshold for a frame or
#: two; a pause between sentences stays below it.
QUIET_FRAMES = 3


class PauseCheck:
    """The last :data:`KEEP_S` seconds of an utterance's VAD frames, and Silero's view of a
    pause at their end."""

    def __init__(self, frame_len: int, rate_hz: int, threshold: float) -> None:
        """``frame_len``: samples per VAD frame; ``threshold``: the Silero probability below
        which a frame is non-speech."""
        self._frames: collections.deque[npt.NDArray[np.int16]] = collections.deque(
            maxlen=max(1, round(KEEP_S * rate_hz / frame_len))
        )
        self._frame_len = frame_len
        self._threshold = threshold
        #: Checks made, and pauses Silero did not hear (splits vetoed).
        self.checks = 0
        self.vetoes = 0

    def add(self, frame: npt.NDArray[np.int16]) -> None:
        """Keep the next VAD frame of the utterance."""
        self._frames.append(frame)

    def clear(self) -> None:
        """Forget the frames (a new utterance starts)."""
        self._frames.clear()

    def quiet_tail(self, pause_frames: int) -> int | None:
        """Samples at the end of the last ``pause_frames`` VAD frames that Silero hears as
        non-speech: its trailing run of non-speech frames, if at least :data:`QUIET_FRAMES`
        long and inside the pause; 0 if Silero does not hear the pause (yet); None when too
        little audio is kept to tell (the split goes ahead as before)."""
        audio = np.concatenate(list(self._frames)) if self._frames else np.empty(0, np.int16)
        n = len(audio) // SILERO_FRAME_SAMPLES
        pause = min(len(audio), pause_frames * self._frame_len)
        if n <= QUIET_FRAMES:
            return None
        if pause < QUIET_FRAMES * SILERO_FRAME_SAMPLES:
            return 0  # too short for Silero to have heard it yet
        self.checks += 1
        used = audio[len(audio) - n * SILERO_FRAME_SAMPLES :]
        probs = SileroFrameVad(self._threshold).probabilities(used.reshape(n, SILERO_FRAME_SAMPLES))
        loud = np.flatnonzero(probs >= self._threshold)
        quiet = n - (int(loud[-1]) + 1 if len(loud) else 0)
        quiet = min(quiet, pause // SILERO_FRAME_SAMPLES)
        if quiet >= QUIET_FRAMES:
            return quiet * SILERO_FRAME_SAMPLES
        self.vetoes += 1
        return 0
