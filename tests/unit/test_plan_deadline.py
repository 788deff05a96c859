"""When accurate finals have a deadline (refine budget and queue bound) and when not, and how much
audio the PCM ring holds."""

from __future__ import annotations

from typing import Any

import pytest

from streamasr.actors.asr.pocketsphinx_options import PocketsphinxOptions
from streamasr.supervisor.config import from_mapping
from streamasr.supervisor.plan import has_deadline, pcm_ring_s

FILE = {"kind": "file", "path": "/x.wav"}


@pytest.mark.parametrize(
    ("table", "deadline"),
    [
        ({"source": {**FILE, "realtime": False}}, False),  # up --fast on a file
        ({"source": {"kind": "stdin", "realtime": False}}, False),
        ({"source": {**FILE, "realtime": True}}, True),  # paced like a live source
        ({"source": {"kind": "mic"}}, True),
        ({"source": {"kind": "none"}, "gateway": {"enabled": True}}, True),
        ({"source": {**FILE, "realtime": False}, "wyoming": {"enabled": True}}, True),
        (
            {
                "streams": [
                    {**FILE, "stream_id": "a", "realtime": False},
                    {**FILE, "stream_id": "b", "realtime": True},
                ]
            },
            True,
        ),
    ],
)
def test_only_fast_local_files_have_no_deadline(table: dict[str, Any], deadline: bool) -> None:
    assert has_deadline(from_mapping(table)) is deadline


@pytest.mark.parametrize(
    "table",
    [
        {"source": {**FILE, "realtime": False}},
        {"source": {"kind": "mic"}, "audio": {"ring_s": 8.0}},
        {"source": {**FILE}, "inference": {"pocketsphinx": {"max_utterance_s": 40.0}}},
    ],
)
def test_the_pcm_ring_holds_the_longest_utterance(table: dict[str, Any]) -> None:
    """The refine actor keeps an utterance in progress in the ring and a --fast file waits
    for it: the ring must hold the longest utterance (twice max_utterance_s) and margins."""
    cfg = from_mapping(table)
    ps = cfg.inference.pocketsphinx
    longest_s = 2 * ps.get("max_utterance_s", PocketsphinxOptions().max_utterance_s)
    assert pcm_ring_s(cfg) >= longest_s + 1.0
    assert pcm_ring_s(cfg) >= cfg.audio.ring_s
