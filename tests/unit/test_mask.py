"""WordMask (supervisor/mask.py): the profanity guard on first-pass text shown to users."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from streamasr.actors import messages as m
from streamasr.actors.errors import ConfigError
from streamasr.supervisor import config as c
from streamasr.supervisor.mask import DEFAULT_MASK_WORDS, DisplayConfig, WordMask, command_words

REPO = Path(__file__).resolve().parents[2]


def tr(text: str, *, passno: int = 1, words: list[list[Any]] | None = None) -> m.Transcript:
    return m.Transcript(
        stream_id="s0",
        utterance_id="s0:0",
        seq=0,
        is_final=False,
        passno=passno,
        text=text,
        start_s=0.0,
        end_s=1.0,
        words=words or [],
        latency_s=0.1,
        stages_s={},
    )


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        ("shitty", "s***"),
        ("shit", "s***"),
        ("Shit", "S***"),  # case is ignored, the first letter kept as written
        ("SHIT!", "S***!"),
        ('"fucking,"', '"f***,"'),  # punctuation around the word stays
        ("ass", "a***"),
        ("assistant", "assistant"),  # whole words only
        ("class", "class"),
        ("shite", "shite"),  # no stemming: only the listed forms
        ("timer", "timer"),
        ("", ""),
        ("...", "..."),
        ("don't", "don't"),
    ],
)
def test_word(token: str, shown: str) -> None:
    assert WordMask().word(token) == shown


def test_default_list_is_short_lowercase_single_words() -> None:
    assert 20 <= len(DEFAULT_MASK_WORDS) <= 50
    assert len(set(DEFAULT_MASK_WORDS)) == len(DEFAULT_MASK_WORDS)
    assert all(w == w.lower() and w.isalpha() for w in DEFAULT_MASK_WORDS)
    DisplayConfig().validate()


def test_first_pass_transcript_is_masked_in_text_and_words() -> None:
    t = tr(
        "shitty timers for two minutes",
        words=[["shitty", 0.0, 0.3, 0.5], ["timers", 0.3, 0.6, 0.9]],
    )
    out, n = WordMask().transcript(t)
    assert n == 1
    assert out.text == "s*** timers for two minutes"
    assert out.words == [["s***", 0.0, 0.3, 0.5], ["timers", 0.3, 0.6, 0.9]]
    assert t.text == "shitty timers for two minutes"  # the original is left alone


def test_unmasked_transcript_is_returned_as_it_is() -> None:
    t = tr("set a timer")
    out, n = WordMask().transcript(t)
    assert out is t and n == 0


def test_second_pass_is_not_masked_by_default() -> None:
    t = tr("Oh shit, the timer", passno=2)
    assert WordMask().transcript(t) == (t, 0)
    out, n = WordMask(DisplayConfig(mask_second_pass=True)).transcript(t)
    assert (out.text, n) == ("Oh s***, the timer", 1)


def test_empty_list_turns_masking_off() -> None:
    mask = WordMask(DisplayConfig(mask_words=()))
    t = tr("shit")
    assert not mask.applies(t)
    assert mask.transcript(t) == (t, 0)


def test_grammar_words_are_kept() -> None:
    mask = WordMask(DisplayConfig(mask_words=("shit", "damn", "cock")), keep=["Cock", "crow"])
    assert mask.words == frozenset({"shit", "damn"})
    assert mask.transcript(tr("cock a doodle damn"))[0].text == "cock a doodle d***"


def test_every_word_counts() -> None:
    out, n = WordMask().transcript(tr("shit shit bullshit fine"))
    assert (out.text, n) == ("s*** s*** b*** fine", 3)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("shit", ""), "display.mask_words[1]: '' must be a single word without punctuation"),
        (("two words",), "display.mask_words[0]: 'two words' must be a single word"),
        (("s.h.i.t",), "display.mask_words[0]: 's.h.i.t' must be a single word"),
    ],
)
def test_bad_mask_words(words: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        DisplayConfig(mask_words=words).validate()


# ------------------------------------------------------------------------- grammar words
def test_no_grammar_no_words() -> None:
    assert command_words(c.Config()) == frozenset()


def test_wake_grammar_file_words() -> None:
    cfg = c.from_mapping(
        {"wake": {"grammar": str(REPO / "configs" / "commands.jsgf"), "phrases": ["hey"]}}
    )
    words = command_words(cfg)
    assert {"kitchen", "timer", "minutes", "forty", "five", "mind", "never"} <= words
    assert "public" not in words and "command" not in words


def test_command_phrases_words() -> None:
    cfg = c.from_mapping({"wake": {"commands": ["Turn on the LIGHT!", "stop"]}})
    assert command_words(cfg) == frozenset({"turn", "on", "the", "light", "stop"})


def test_recogniser_grammar_words(tmp_path: Path) -> None:
    jsgf = tmp_path / "g.jsgf"
    jsgf.write_text("#JSGF V1.0;\ngrammar g;\npublic <g> = yes | no thanks;\n")
    cfg = c.from_mapping({"inference": {"pocketsphinx": {"grammar_path": str(jsgf)}}})
    assert command_words(cfg) == frozenset({"yes", "no", "thanks"})
    cfg = c.from_mapping({"inference": {"pocketsphinx": {"commands": ["Shit happens"]}}})
    assert command_words(cfg) == frozenset({"shit", "happens"})


def test_unreadable_grammar_contributes_nothing(tmp_path: Path) -> None:
    wake = c.WakeConfig(grammar=str(tmp_path / "gone.jsgf"))
    cfg = c.Config(wake=wake)  # not validated: the file went away after loading
    assert command_words(cfg) == frozenset()
