"""``stream --help`` is a usage text (what the command does, options, examples, exit
status), not the module docstring with its reStructuredText roles and mangled example."""

from __future__ import annotations

import pytest

from streamasr.supervisor.stream_command import stream_main


def test_stream_help_is_plain_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        stream_main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: streamasr-supervisor stream ")
    assert "``" not in text and ":func:" not in text and ":class:" not in text
    lines = text.splitlines()
    assert "examples:" in lines
    assert "  streamasr-supervisor stream talk.wav" in lines
    assert "exit status: 0 the gateway ended the stream" in text
    assert max(len(line) for line in lines) <= 100
