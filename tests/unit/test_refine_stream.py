"""The refine actor's per-stream bookkeeping: which audio an utterance is transcribed from
(margins, and none across a cut in continuing speech) and which text is its prompt."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from streamasr.actors import messages as m
from streamasr.actors.refine.stream import RefineStream
from streamasr.ringbuf import Ring

RATE_HZ = 16000
MARGIN = 3200  # 0.2 s


@pytest.fixture
def stream() -> Iterator[RefineStream]:
    """A RefineStream over a fresh 16 kHz ring."""
    ring = Ring.create(
        f"streamasr-test-rs-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        1 << 16,
        np.float32,
        (1,),
        max_readers=2,
        sample_rate_hz=RATE_HZ,
    )
    try:
        yield RefineStream(ring)
    finally:
        ring.close()
        ring.unlink()


def _job(start: int, end: int, continued: bool = False) -> m.RefineJob:
    first = m.Transcript(
        stream_id="s0",
        utterance_id=f"s0:{start}",
        seq=1,
        is_final=True,
        passno=1,
        text="words",
        start_s=start / RATE_HZ,
        end_s=end / RATE_HZ,
        words=[],
        latency_s=0.0,
        stages_s={},
        provisional=True,
    )
    return m.RefineJob("s0", f"s0:{start}", start, end, RATE_HZ, 0, first, continued)


def test_margins_on_both_sides_of_an_utterance(stream: RefineStream) -> None:
    assert stream.span(32000, 64000, False, MARGIN) == (32000 - MARGIN, 64000 + MARGIN)
    assert stream.span(1000, 8000, False, MARGIN) == (0, 8000 + MARGIN)  # not before 0


def test_no_margin_across_a_cut_in_continuing_speech(stream: RefineStream) -> None:
    # the first pass cut a monologue at frame 200000: the first part ends exactly there ...
    assert stream.span(10000, 200000, True, MARGIN) == (10000 - MARGIN, 200000)
    stream.finished(_job(10000, 200000, continued=True), "It was the best of times,")
    # ... and the part that continues it starts exactly there, with the first as its prompt
    assert stream.span(200000, 300000, False, MARGIN) == (200000, 300000 + MARGIN)
    assert stream.prompt(200000) == "It was the best of times,"
    # an utterance after an ordinary endpoint gets its margins again
    stream.finished(_job(200000, 300000), "it was the worst of times.")
    assert stream.span(340000, 360000, False, MARGIN) == (340000 - MARGIN, 360000 + MARGIN)


def test_a_cut_without_text_still_keeps_the_next_start_clean(stream: RefineStream) -> None:
    stream.finished(_job(10000, 200000, continued=True), "")
    assert stream.span(200000, 250000, False, MARGIN)[0] == 200000
    assert stream.prompt(200000) == ""


def test_a_previous_text_that_repeats_itself_is_no_prompt(stream: RefineStream) -> None:
    # Whisper conditioned on a repetition skips the next one (the real dialogue's second
    # "Ah, that's a good story."): such a text is not given
    said_twice = "Do you hear me? Yes. Do you hear me? Yes. We laugh less heartily."
    stream.finished(_job(10000, 200000, continued=True), said_twice)
    assert stream.prompt(200000) == ""
    # a three-word echo ("we shall build ..., we shall build ...") is ordinary phrasing
    parallel = "We shall build on the hills, we shall build in the valleys,"
    stream.finished(_job(10000, 200000, continued=True), parallel)
    assert stream.prompt(200000) == parallel
