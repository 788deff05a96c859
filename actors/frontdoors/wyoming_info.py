"""The Wyoming server's ``info`` (its answer to ``describe``): what it serves.

One ASR program (``streamasr``: PocketSphinx streaming first pass, Whisper base accurate
finals) and one wake-word program with one model per ``[wake]`` phrase. For the bundled engines
the program and models are named as wyoming-microwakeword (``microWakeWord``) and
wyoming-openwakeword (``openwakeword``) name them — model ``okay_nabu``, phrase ``Okay Nabu`` —
so Home Assistant shows and picks them the same way; PocketSphinx keyphrases are named by their
phrase (program ``streamasr-wake``). Built once per server; pure (no sockets).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, WakeModel, WakeProgram

from streamasr.actors.settings import WHISPER_LANGUAGES
from streamasr.actors.wake.bundled import (
    ENGINE_TITLES,
    PACKAGES,
    display_phrase,
    model_id,
)

__all__ = [
    "LANGUAGES",
    "PROJECT_URL",
    "build_info",
    "name_key",
    "package_version",
    "served_languages",
    "wake_name",
]

#: The languages of the first pass and the wake models (English); Whisper serves the one
#: ``[refine] language`` names.
LANGUAGES = ("en",)

PROJECT_URL = "https://github.com/streamasr/streamasr"
_SPHINX = Attribution(name="CMU Sphinx", url="https://cmusphinx.github.io")
#: Who made each bundled engine's models (as the reference Wyoming servers credit them).
_AUTHORS = {
    "micro": Attribution(name="kahrendt", url="https://github.com/kahrendt/microWakeWord/"),
    "open": Attribution(name="dscripka", url="https://github.com/dscripka/openWakeWord"),
}
_DESCRIPTIONS = {
    "micro": "Tensorflow-based wake word detection",
    "open": "openWakeWord wake word detection",
    "pocketsphinx": "PocketSphinx keyphrase spotting",
}


def wake_name(engine: str, phrase: str) -> str:
    """The Wyoming model name of a ``[wake]`` phrase: ``okay_nabu`` for the bundled engines,
    the phrase itself for PocketSphinx keyphrases. ``detection`` events carry this name."""
    return phrase if engine == "pocketsphinx" else model_id(phrase)


def name_key(name: str) -> str:
    """A comparable form of a model name a client sent (``Okay Nabu``, ``okay_nabu`` and
    ``okay nabu`` are the same model)."""
    return "_".join(name.lower().replace("_", " ").split())


def _wake_program(engine: str, phrases: tuple[str, ...], version: str) -> WakeProgram:
    """The wake program of ``engine`` with one model per phrase."""
    if engine == "pocketsphinx":
        author, installed, title = _SPHINX, True, "streamasr-wake"
    else:
        author, title = _AUTHORS[engine], ENGINE_TITLES[engine]
        installed = importlib.util.find_spec(PACKAGES[engine][1]) is not None
    models = [
        WakeModel(
            name=wake_name(engine, phrase),
            attribution=author,
            installed=installed,
            description=(
                f"wake phrase '{phrase}'"
                if engine == "pocketsphinx"
                else display_phrase(model_id(phrase))
            ),
            version=None,
            languages=list(LANGUAGES),
            phrase=phrase if engine == "pocketsphinx" else display_phrase(model_id(phrase)),
        )
        for phrase in phrases
    ]
    return WakeProgram(
        name=title,
        attribution=author,
        installed=installed,
        description=_DESCRIPTIONS[engine],
        version=version,
        models=models,
    )


def served_languages(language: str) -> list[str]:
    """The languages a pipeline transcribing ``language`` serves (``auto``: all of
    Whisper's)."""
    return list(WHISPER_LANGUAGES) if language == "auto" else [language]


def build_info(
    finals: str, engine: str, phrases: tuple[str, ...], version: str, language: str = "en"
) -> Info:
    """The ``info`` answer to ``describe``: one ASR program and one wake-word program.

    ``finals``: ``[refine] finals`` (Whisper is listed as installed when ``accurate``);
    ``engine``/``phrases``: ``[wake] engine`` and the phrases ``detect`` sessions listen
    for; ``version``: the package's; ``language``: ``[refine] language``, the one language
    transcribed (other than English, Whisper alone writes the text).
    """
    attribution = Attribution(name="streamasr", url=PROJECT_URL)
    models = [
        AsrModel(
            name="pocketsphinx",
            attribution=Attribution(name="CMU Sphinx", url="https://cmusphinx.github.io"),
            installed=True,
            description="PocketSphinx US English (streaming first pass)",
            version=None,
            languages=list(LANGUAGES),
        ),
    ]
    if language != "en":  # PocketSphinx only segments: Whisper alone serves the language
        models = []
    models += [
        AsrModel(
            name="whisper-base",
            attribution=Attribution(name="OpenAI", url="https://github.com/openai/whisper"),
            installed=finals == "accurate",
            description="Whisper base, CTranslate2 int8 (accurate finals)",
            version=None,
            languages=served_languages(language),
        ),
    ]
    program = AsrProgram(
        name="streamasr",
        attribution=attribution,
        installed=True,
        description="Supervised streaming speech recognition",
        version=version,
        models=models,
        supports_transcript_streaming=True,
    )
    wake = _wake_program(engine, phrases, version)
    return Info(asr=[program], wake=[wake])


def package_version() -> str:
    """The installed package's version ("0" when not installed)."""
    try:
        return importlib.metadata.version("streamasr")
    except importlib.metadata.PackageNotFoundError:
        return "0"
