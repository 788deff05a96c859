"""The recogniser interface every backend implements.

Shaped like sherpa-onnx's ``online_recognizer.py``: a stateless :class:`Recognizer` engine (the
loaded model, shared by all streams) plus one :class:`RecognizerStream` per audio stream that holds
all per-stream decoding state.  The inference actor drives a stream like this::

    stream = recognizer.create_stream(start_frame=ring_read_position)
    stream.accept(chunk)
    while stream.is_ready():
        stream.step()
    partial = stream.result()
    if stream.is_endpoint():
        final = stream.finalize()

Frames are counted at the engine's ``sample_rate_hz``: PCM samples for ``input_kind ==
"pcm_s16"``, feature frames for ``input_kind == "features"``.  Frame indices are *absolute*
stream positions (``start_frame`` plus everything accepted so far), so a result maps back to
exact ring positions and times in :class:`~streamasr.actors.asr.types.Word` are stream seconds
(frame index divided by ``sample_rate_hz``).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from streamasr.actors.asr.types import Result

__all__ = ["InputKind", "Recognizer", "RecognizerStream", "close_decoder"]

InputKind = Literal["pcm_s16", "features"]


@runtime_checkable
class RecognizerStream(Protocol):
    """Per-stream decoding state of one audio stream (one utterance at a time)."""

    def accept(self, frames: npt.NDArray[np.generic]) -> None:
        """Append the next contiguous chunk.

        ``int16`` shape ``(n,)`` for ``pcm_s16`` engines, ``float32`` shape ``(n, n_mels)``
        for ``features`` engines.  Raises ``AudioFormatError`` on a wrong dtype or shape.
        """
        ...

    def is_ready(self) -> bool:
        """True while :meth:`step` has accepted frames to decode (False while an endpoint waits)."""
        ...

    def step(self) -> None:
        """Decode pending frames, stopping at an endpoint so the next utterance stays pending."""
        ...

    def result(self) -> Result | None:
        """Current partial hypothesis of the utterance in progress (None if no speech yet)."""
        ...

    def is_endpoint(self) -> bool:
        """True once the utterance in progress has ended (trailing non-speech after speech)."""
        ...

    def finalize(self) -> Result | None:
        """Close the utterance in progress and return its final result (None if it held no words).

        The stream then starts a new utterance with the frames still pending.
        """
        ...

    @property
    def position_frame(self) -> int:
        """Absolute frame index of the next frame :meth:`accept` expects."""
        ...

    @property
    def utterance_start_frame(self) -> int | None:
        """Absolute first frame of the utterance in progress (None when idle).

        Frames before it are never needed again: it is the stream's crash-safe commit point.
        """
        ...


@runtime_checkable
class Recognizer(Protocol):
    """A loaded recognition engine; stateless apart from the model, so streams can share it.

    Attributes:
        sample_rate_hz: rate of the frames streams accept (samples/s or feature frames/s).
        input_kind: ``"pcm_s16"`` (int16 mono PCM) or ``"features"`` (float32 log-mel frames).
    """

    sample_rate_hz: int
    input_kind: InputKind

    def create_stream(self, start_frame: int = 0) -> RecognizerStream:
        """A new stream whose first accepted frame has absolute index ``start_frame``."""
        ...

    def warm_up(self) -> None:
        """Decode about 1 s of synthetic input so the first real result pays no cold start."""
        ...


def close_decoder(decoder: RecognizerStream) -> None:
    """Return a decoder's resources to its engine (backends that pool them have close())."""
    close = getattr(decoder, "close", None)
    if callable(close):
        close()
