"""Restart points: a new PocketSphinx stream started at one cuts the rest of the audio into
exactly the utterances (the same spans, to the sample) the stream that made it cuts: what a
replacement inference process relies on after a SIGKILL (the inference actor commits its ring
cursor there), so that Whisper's accurate finals come out the same.

Driven as the inference actor drives a stream: chunks of 100 ms, ``step`` while ready,
``finalize`` at each endpoint, ``checkpoint`` after each chunk. Without the fresh VAD at the
restart point a stream resumed there decides some frames differently (the WebRTC VAD adapts
to the background) and an utterance can start a few frames off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from streamasr.actors.asr.pocketsphinx_backend import (
    RESTART_POINT_EVERY_S,
    PocketsphinxRecognizer,
    PocketsphinxStream,
)
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.asr.types import Result

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
CHUNK = 1600
RATE = 16000

pytestmark = pytest.mark.skipif(
    not (AUDIO / "conversation2.wav").is_file(), reason=f"shared test audio not found in {AUDIO}"
)


@pytest.fixture(scope="module")
def rec() -> PocketsphinxRecognizer:
    r = create_recognizer("pocketsphinx", {})
    assert isinstance(r, PocketsphinxRecognizer)
    return r


def run(stream: PocketsphinxStream, pcm: npt.NDArray[np.int16], points: list[int]) -> list[Result]:
    """Finals of ``pcm`` fed in 100 ms chunks; restart points taken appended to ``points``."""
    finals: list[Result] = []
    for i in range(0, len(pcm), CHUNK):
        stream.accept(pcm[i : i + CHUNK])
        while True:
            while stream.is_ready():
                stream.step()
            if not stream.is_endpoint():
                break
            if (final := stream.finalize()) is not None:
                finals.append(final)
        if (point := stream.checkpoint()) is not None:
            points.append(point)
    if (final := stream.finalize()) is not None:
        finals.append(final)
    return finals


def spans(finals: list[Result]) -> list[tuple[int, int]]:
    """The utterances' spans (samples): what Whisper's accurate finals are decoded from.
    The first pass's own words may differ after a restart point: PocketSphinx's cepstral
    mean goes on adapting across utterances in one process and not in the other."""
    return [(f.start_frame, f.end_frame) for f in finals]


def test_a_stream_started_at_a_restart_point_cuts_the_same_utterances(
    rec: PocketsphinxRecognizer,
) -> None:
    data, rate = sf.read(str(AUDIO / "conversation2.wav"), dtype="int16")
    assert rate == RATE
    # its first 16 s and 8 s of digital silence: four pauses, then a long silence
    pcm = np.concatenate([data[: 16 * RATE], np.zeros(8 * RATE, np.int16)])
    points: list[int] = []
    whole = run(rec.create_stream(), pcm, points)
    assert len(whole) >= 4, spans(whole)
    # one restart point in each pause (none inside an utterance), one more in the silence
    for f in whole:
        assert not [p for p in points if f.start_frame < p < f.end_frame], (f, points)
    pauses = [p for p in points if p < whole[-1].end_frame]
    assert len(pauses) >= len(whole) - 1, (points, spans(whole))
    assert points[-1] - points[-2] >= RESTART_POINT_EVERY_S * RATE - CHUNK, points
    for point in points[:-1:2]:  # every other one (each is a decode of the rest)
        rest = run(rec.create_stream(start_frame=point), pcm[point:], [])
        assert spans(rest) == [s for s in spans(whole) if s[0] >= point], point
