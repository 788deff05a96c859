"""The Wyoming server's ``info`` (its answer to ``describe``): what it serves.

One ASR program (``streamasr``: PocketSphinx streaming first pass, Whisper base accurate
finals) and one wake-word program (``streamasr-wake``: PocketSphinx keyphrase spotting, one
model per wake phrase). Built once per server; pure (no sockets).
"""

from __future__ import annotations

import importlib.metadata

from wyoming.info import AsrModel, AsrProgram, Attribution, Info, WakeModel, WakeProgram

__all__ = ["PROJECT_URL", "build_info", "package_version"]

PROJECT_URL = "https://github.com/streamasr/streamasr"


def build_info(finals: str, phrases: tuple[str, ...], version: str) -> Info:
    """The ``info`` answer to ``describe``: one ASR program and one wake-word program.

    ``finals``: ``[refine] finals`` (Whisper is listed as installed when ``accurate``);
    ``phrases``: the wake phrases ``detect`` sessions listen for; ``version``: the package's.
    """
    attribution = Attribution(name="streamasr", url=PROJECT_URL)
    models = [
        AsrModel(
            name="pocketsphinx",
            attribution=Attribution(name="CMU Sphinx", url="https://cmusphinx.github.io"),
            installed=True,
            description="PocketSphinx US English (streaming first pass)",
            version=None,
            languages=["en"],
        ),
        AsrModel(
            name="whisper-base",
            attribution=Attribution(name="OpenAI", url="https://github.com/openai/whisper"),
            installed=finals == "accurate",
            description="Whisper base, CTranslate2 int8 (accurate finals)",
            version=None,
            languages=["en"],
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
    wake = WakeProgram(
        name="streamasr-wake",
        attribution=Attribution(name="CMU Sphinx", url="https://cmusphinx.github.io"),
        installed=True,
        description="PocketSphinx keyphrase spotting",
        version=version,
        models=[
            WakeModel(
                name=phrase,
                attribution=Attribution(name="CMU Sphinx", url="https://cmusphinx.github.io"),
                installed=True,
                description=f"wake phrase '{phrase}'",
                version=None,
                languages=["en"],
                phrase=phrase,
            )
            for phrase in phrases
        ],
    )
    return Info(asr=[program], wake=[wake])


def package_version() -> str:
    """The installed package's version ("0" when not installed)."""
    try:
        return importlib.metadata.version("streamasr")
    except importlib.metadata.PackageNotFoundError:
        return "0"
