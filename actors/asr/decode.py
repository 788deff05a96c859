"""A whole recording through a streaming recogniser: the loop tests and benchmarks share.

The inference actor drives a stream chunk by chunk from its rings; everything that measures a
recogniser offline (the WER benchmarks, the backend tests, the CPU figures) feeds a recording
the same way: ``accept`` a chunk, ``step`` while ``is_ready``, ``finalize`` at each endpoint,
and ``finalize`` once more at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from streamasr.actors.asr.base import RecognizerStream, close_decoder
from streamasr.actors.asr.types import Result

__all__ = ["decode_all", "endpoints"]


def endpoints(
    stream: RecognizerStream,
    frames: np.ndarray[Any, Any],
    chunk: int,
    *,
    with_partial: bool = False,
) -> Iterator[tuple[Result | None, Result | None]]:
    """Feed ``frames`` (PCM samples or feature frames) to ``stream`` in chunks of ``chunk``;
    at each endpoint yield ``(partial, final)``: the hypothesis just before the endpoint (only
    ``with_partial``, else None) and what ``finalize()`` returned (None: nothing to finalize).
    """
    for i in range(0, len(frames), chunk):
        stream.accept(frames[i : i + chunk])
        while True:
            while stream.is_ready():
                stream.step()
            if not stream.is_endpoint():
                break
            partial = stream.result() if with_partial else None
            yield partial, stream.finalize()


def decode_all(
    stream: RecognizerStream,
    frames: np.ndarray[Any, Any],
    chunk: int,
    *,
    flush: bool = True,
    close: bool = False,
) -> list[Result]:
    """Every final of ``frames`` fed in chunks of ``chunk``, in order.

    ``flush``: finalize once more after the last chunk (the utterance still open at the end of
    the recording); ``close``: give the stream's decoder back to its engine afterwards.
    """
    finals = [final for _, final in endpoints(stream, frames, chunk) if final is not None]
    if flush and (final := stream.finalize()) is not None:
        finals.append(final)
    if close:
        close_decoder(stream)
    return finals
