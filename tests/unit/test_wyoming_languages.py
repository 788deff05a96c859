"""What the Wyoming server says it serves and accepts, per ``[refine] language``."""

from __future__ import annotations

import pytest

from streamasr.actors.frontdoors.wyoming import ClientError, served_language
from streamasr.actors.frontdoors.wyoming_info import build_info


def asr_languages(language: str) -> list[list[str]]:
    (program,) = build_info("accurate", "micro", ("okay nabu",), "1", language).asr
    return [model.languages for model in program.models]


def test_describe_advertises_the_languages_really_served() -> None:
    assert asr_languages("en") == [["en"], ["en"]]  # PocketSphinx and Whisper
    assert asr_languages("de") == [["de"]]  # Whisper alone: PocketSphinx only segments
    (auto,) = asr_languages("auto")
    assert {"en", "de", "fr", "es", "it", "nl", "ja"} <= set(auto) and len(auto) >= 99


@pytest.mark.parametrize(
    ("asked", "served", "answer"),
    [
        (None, "en", "en"),
        ("en-US", "en", "en"),
        ("de", "de", "de"),
        ("de_DE", "de", "de"),
        ("", "de", "de"),
        ("fr", "auto", "fr"),
        (None, "auto", ""),  # the transcript says what Whisper heard
    ],
)
def test_a_served_language_is_accepted(asked: str | None, served: str, answer: str) -> None:
    assert served_language(asked, served) == answer


@pytest.mark.parametrize(("asked", "served"), [("de", "en"), ("en", "de"), ("xx", "auto")])
def test_another_language_is_a_client_error(asked: str, served: str) -> None:
    with pytest.raises(
        ClientError, match=f"language '{asked}' is not served here; served: {served}"
    ):
        served_language(asked, served)
