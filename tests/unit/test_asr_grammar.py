"""Command grammars: JSGF from phrases, vocabulary and file checks, grammar-restricted decoding."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

from streamasr.actors.asr.decode import decode_all
from streamasr.actors.asr.grammar import (
    check_words,
    jsgf_from_phrases,
    jsgf_word_loop,
    jsgf_words,
    load_jsgf,
    normalize_phrase,
    score_ratio,
)
from streamasr.actors.asr.pocketsphinx_backend import (
    PocketsphinxOptions,
    PocketsphinxRecognizer,
    PocketsphinxStream,
)
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.asr.types import Result
from streamasr.actors.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "commands.jsgf"
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")


def say(text: str, tmp_path: Path, voice: str = "slt") -> npt.NDArray[np.int16]:
    """flite speech at 16 kHz with 0.5 s / 1 s pauses and a -60 dBFS noise floor."""
    wav = tmp_path / "say.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    data, rate = sf.read(str(wav), dtype="float32")
    speech = soxr.resample(data, rate, 16000)
    audio = np.concatenate([np.zeros(8000), speech, np.zeros(16000)])
    audio += np.random.default_rng(0).standard_normal(len(audio)) * 1e-3
    pcm: npt.NDArray[np.int16] = np.round(audio * 32767).astype(np.int16)
    return pcm


def decode(stream: PocketsphinxStream, pcm: npt.NDArray[np.int16]) -> list[Result]:
    return decode_all(stream, pcm, 1600)


@pytest.fixture(scope="module")
def example_rec() -> PocketsphinxRecognizer:
    return PocketsphinxRecognizer(PocketsphinxOptions(grammar_path=str(EXAMPLE)))


def test_phrases_become_one_public_rule() -> None:
    text = jsgf_from_phrases(["Turn on the light!", "what's the time", "stop", "stop"])
    assert text == (
        "#JSGF V1.0;\n\ngrammar commands;\n\n"
        "public <command> = turn on the light\n    | what's the time\n    | stop;\n"
    )
    assert jsgf_words(text) == ("turn", "on", "the", "light", "what's", "time", "stop")
    assert normalize_phrase("Living-room  lights.") == ("living", "room", "lights")
    loop = jsgf_word_loop(["yes", "no"])
    assert loop.endswith("public <words> = (no | yes)+;\n")
    with pytest.raises(ConfigError, match=r"^commands: must hold at least one phrase$"):
        jsgf_from_phrases([])
    with pytest.raises(ConfigError, match=r"^commands\[1\]: '\?!' has no words$"):
        jsgf_from_phrases(["stop", "?!"])


def test_jsgf_words_skips_syntax() -> None:
    text = (
        "#JSGF V1.0;\ngrammar g;\n/* block\ncomment */ // line comment\n"
        'public <a> = /10/ (turn | switch) [the] <b> {tag} * ;\n<b> = light + | "lamp";\n'
    )
    assert jsgf_words(text) == ("turn", "switch", "the", "light", "lamp")


def test_unknown_words_are_named() -> None:
    check_words(["turn", "on"])
    with pytest.raises(
        ConfigError, match=r"^commands: 'frobnicate' is not in the pronunciation dictionary$"
    ):
        check_words(["turn", "frobnicate"])
    with pytest.raises(ConfigError, match=r"'5' is not in .* \(digits must be spelled out"):
        PocketsphinxOptions(commands=("set a timer for 5 minutes",))
    with pytest.raises(ConfigError, match=r"^grammar_path: 'Turn' .* write 'turn'\)$"):
        check_words(["Turn"], field="grammar_path")
    with pytest.raises(ConfigError, match=r"^dict_path: cannot read '/nonexistent\.dict'"):
        check_words(["turn"], "/nonexistent.dict")


def test_grammar_sources_are_mutually_exclusive() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^grammar_path, commands: at most one of grammar_path, commands, lm_path",
    ):
        PocketsphinxOptions(grammar_path=str(EXAMPLE), commands=("stop",))
    with pytest.raises(ConfigError, match=r"^commands, lm_path: at most one"):
        PocketsphinxOptions(commands=("stop",), lm_path="x.lm.bin")
    with pytest.raises(ConfigError, match=r"^inference\.pocketsphinx\.min_score_ratio: must be"):
        create_recognizer("pocketsphinx", {"commands": ["stop"], "min_score_ratio": 3.0})
    with pytest.raises(
        ConfigError, match=r"^inference\.pocketsphinx\.commands: 'frobnicate' is not in"
    ):
        create_recognizer("pocketsphinx", {"commands": ["frobnicate the light"]})
    assert PocketsphinxOptions(commands=("stop",)).uses_grammar
    assert not PocketsphinxOptions().uses_grammar


def test_bad_grammar_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsgf"
    with pytest.raises(ConfigError, match=r"^grammar_path: no such file '.*missing\.jsgf'$"):
        PocketsphinxOptions(grammar_path=str(missing))
    bad = tmp_path / "bad.jsgf"
    bad.write_text("#JSGF V1.0;\ngrammar g;\npublic <c> = turn on ( the ;\n")
    with pytest.raises(ConfigError, match=r"^grammar_path: '.*bad\.jsgf' is not valid JSGF"):
        load_jsgf(str(bad))
    private = tmp_path / "private.jsgf"
    private.write_text("#JSGF V1.0;\ngrammar g;\n<c> = turn on;\n")
    with pytest.raises(ConfigError, match=r"^grammar_path: '.*private\.jsgf' has no public rule"):
        load_jsgf(str(private))
    unknown = tmp_path / "unknown.jsgf"
    unknown.write_text("#JSGF V1.0;\ngrammar g;\npublic <c> = frobnicate the light;\n")
    with pytest.raises(ConfigError, match=r"^grammar_path: 'frobnicate' is not in the pron"):
        load_jsgf(str(unknown))


def test_example_grammar_loads(example_rec: PocketsphinxRecognizer) -> None:
    assert example_rec.grammar_jsgf is not None
    assert {"kitchen", "timer", "volume", "stop"} <= set(jsgf_words(example_rec.grammar_jsgf))
    assert score_ratio(0.8, 0.8) == 1.0 and score_ratio(0.0, 0.8) == 0.0


@needs_flite
def test_command_recognised_exactly_with_word_times(
    example_rec: PocketsphinxRecognizer, tmp_path: Path
) -> None:
    pcm = say("turn on the kitchen light", tmp_path)
    stream = example_rec.create_stream(start_frame=32000)
    finals = decode(stream, pcm)
    assert [f.text for f in finals] == ["turn on the kitchen light"]
    words = finals[0].words
    assert [w.word for w in words] == ["turn", "on", "the", "kitchen", "light"]
    speech_end_s = 2.0 + (len(pcm) - 16000) / 16000
    assert 2.3 < words[0].start_s < 2.8 and words[-1].end_s < speech_end_s + 0.2
    assert all(a.end_s <= b.start_s + 0.011 for a, b in itertools.pairwise(words))
    assert all(w.start_s < w.end_s and 0.0 <= w.conf <= 1.0 for w in words)
    assert stream.rejected_finals == 0
    stream.close()
    assert example_rec.idle_decoders == 1


@needs_flite
def test_commands_option_and_out_of_grammar(tmp_path: Path) -> None:
    rec = PocketsphinxRecognizer(
        PocketsphinxOptions(commands=("what time is it", "stop"), min_score_ratio=0.8)
    )
    stream = rec.create_stream()
    assert [f.text for f in decode(stream, say("what time is it", tmp_path))] == ["what time is it"]
    assert stream.last_score_ratio is not None and stream.last_score_ratio > 0.8
    assert decode(stream, say("please play some jazz music tonight", tmp_path)) == []
    assert stream.rejected_finals == 1 and stream.last_rejected is not None
    stream.close()
