"""When accurate finals have a deadline (refine budget and queue bound) and when not."""

from __future__ import annotations

from typing import Any

import pytest

from streamasr.supervisor.config import from_mapping
from streamasr.supervisor.plan import has_deadline

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
