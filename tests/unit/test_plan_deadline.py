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
        {"source": {**FILE, "realtime": False}, "audio": {"ring_s": 8.0}},
        {
            "source": {**FILE, "realtime": False},
            "inference": {"pocketsphinx": {"max_utterance_s": 40.0}},
        },
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


def test_a_live_ring_is_the_size_the_user_set() -> None:
    """A live source never waits on the ring: it keeps ``ring_s`` (an utterance longer than
    that loses its head, counted), so overload tests can still make it lap the reader."""
    cfg = from_mapping({"source": {"kind": "mic"}, "audio": {"ring_s": 8.0}})
    assert pcm_ring_s(cfg) == 8.0


def test_a_run_time_stream_without_deadline_gets_the_ring_of_a_fast_file() -> None:
    """A front door that sends a whole file as fast as the ring takes it (``OpenStream``
    with ``deadline=False``) waits on the refine cursor like ``--fast``: its ring holds the
    longest utterance; the live streams of the same pipeline keep ``ring_s``."""
    cfg = from_mapping(
        {"source": {"kind": "none"}, "gateway": {"enabled": True}, "audio": {"ring_s": 8.0}}
    )
    longest_s = 2 * PocketsphinxOptions().max_utterance_s
    assert pcm_ring_s(cfg) == pcm_ring_s(cfg, deadline=True) == 8.0
    assert pcm_ring_s(cfg, deadline=False) >= longest_s + 1.0
