"""Pauses inside an utterance, from the VAD and the frame energy (pure numpy).

The WebRTC-style VAD holds "speech" for a while after speech stops (its hangover), so the
150-400 ms pauses between clauses of read speech show as only 2-3 non-speech frames of 30 ms.
The frame energy shows them clearly: a frame is a pause frame when the VAD says non-speech
or its energy is below the midpoint (in dB) between the utterance's quiet frames (10th
percentile) and its loud ones (90th), so the rule follows the recording's level and noise
floor. Closures inside words (stops) are shorter than the pauses asked for.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["PauseTracker"]

#: Frames of an utterance whose energy sets the threshold (the most recent ones).
LEVEL_FRAMES = 1000

#: Floor of the frame energy, in dB of full scale (digital silence).
FLOOR_DB = -100.0

#: Frames between two updates of the threshold (about 1 s of 30 ms frames): percentiles
#: over the utterance every frame would be work on the hot path for no change.
REFRESH_FRAMES = 32


class PauseTracker:
    """The length of the current run of pause frames of one utterance, and its quietest
    frame (where a cut in that pause loses the least: a weak word onset such as "the" or an
    "f" may count as pause frames at the run's end, the silence between words is quieter).

    Attributes:
        run: consecutive pause frames up to the last one added.
        vad_run: how many of them the VAD called non-speech (0: a pause of low energy alone).
        quietest_back: frames from the last one added back to the quietest frame of the
            current run (0: the last frame; meaningless while ``run`` is 0).
    """

    def __init__(self) -> None:
        """Start with no frames."""
        self._db: list[float] = []
        self._threshold = FLOOR_DB
        self._frames = 0
        self._quietest_db = 0.0
        self._quietest_at = 0
        self.run = 0
        self.vad_run = 0

    @property
    def quietest_back(self) -> int:
        """See the class docstring."""
        return self._frames - self._quietest_at

    @staticmethod
    def frame_db(frame: npt.NDArray[np.int16]) -> float:
        """Mean power of an int16 frame in dB of full scale (>= :data:`FLOOR_DB`)."""
        x = frame.astype(np.float64) / 32768.0
        power = float(np.mean(x * x)) if len(x) else 0.0
        return max(FLOOR_DB, 10.0 * float(np.log10(power + 1e-10)))

    def threshold_db(self) -> float:
        """The energy below which a frame is a pause (midpoint of the 10th and 90th
        percentile of the utterance's frame energies, dB)."""
        if not self._db:
            return FLOOR_DB
        lo, hi = np.percentile(self._db, [10.0, 90.0])
        return float(lo + hi) / 2.0

    def add(self, frame: npt.NDArray[np.int16], speech: bool) -> None:
        """Add the next frame of the utterance with the VAD's decision."""
        db = self.frame_db(frame)
        self._db.append(db)
        if len(self._db) > LEVEL_FRAMES:
            del self._db[: len(self._db) - LEVEL_FRAMES]
        self._frames += 1
        if self._frames <= REFRESH_FRAMES or self._frames % REFRESH_FRAMES == 0:
            self._threshold = self.threshold_db()
        pause = not speech or db < self._threshold
        self.run = self.run + 1 if pause else 0
        self.vad_run = (self.vad_run + (not speech)) if pause else 0
        if self.run == 1 or (self.run > 1 and db < self._quietest_db):
            self._quietest_db, self._quietest_at = db, self._frames
