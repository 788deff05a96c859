"""The voice assistant's config sections, defined once for the loader and the actor:
``[assistant]``, ``[[actions]]`` (run by :mod:`.actions`) and ``[tts]`` (:mod:`.tts`).

Only light imports here: the supervisor's CLI loads this module on every command.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from streamasr.actors.typed import require

__all__ = [
    "ENGINES",
    "FIELD",
    "NAME",
    "OUTPUTS",
    "ActionConfig",
    "AssistantConfig",
    "TtsConfig",
    "parse_header",
    "tcp_address",
]

#: Longest an action may be given, in seconds.
MAX_ACTION_TIMEOUT_S = 300.0
#: A ``{…}`` field of a template (``{{``/``}}`` are literal braces); ``NAME`` a plain name.
FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


@dataclass(frozen=True, slots=True)
class AssistantConfig:
    """``[assistant]``: turn command finals into intents, actions and a spoken reply.

    The assistant reads the accurate final of each wake command (on a stream without wake
    gating: every final), matches it against ``intents`` (a hassil sentence-template file;
    ``"default"``: the bundled lights / timer / time templates), runs the ``[[actions]]``
    entry for the intent and speaks its ``reply`` through ``[tts]``. A command that matches
    no template, or whose words' mean confidence (0..1) is below ``min_confidence``, is the
    ``unknown`` intent, answered with ``unknown_reply`` ("" says nothing). While a reply
    plays, and for ``mute_margin_ms`` after, wake detections on that stream are ignored (the
    microphone hears the reply). ``streams``: the stream ids served (empty: every local
    stream).
    """

    enabled: bool = False
    intents: str = "default"
    min_confidence: float = 0.5
    unknown_reply: str = "Sorry, I'm not sure what you mean."
    mute_margin_ms: int = 1500
    streams: tuple[str, ...] = ()

    def validate(self) -> None:
        """Range checks (the intents file is read when the assistant starts)."""
        require(bool(self.intents), "assistant.intents", "must name a file or 'default'")
        require(0.0 <= self.min_confidence <= 1.0, "assistant.min_confidence", "must be in 0..1")
        require(
            0 <= self.mute_margin_ms <= 60000, "assistant.mute_margin_ms", "must be in 0..60000"
        )


#: Values of ``tts.engine``.
ENGINES: Final = ("flite", "espeak-ng", "wyoming", "none")
#: Values of ``tts.output``.
OUTPUTS: Final = ("device", "file")


@dataclass(frozen=True, slots=True)
class TtsConfig:
    """The ``[tts]`` config section: which engine speaks the reply and where it is played."""

    engine: str = "flite"
    """``flite``, ``espeak-ng``, ``wyoming`` (a Wyoming TTS server) or ``none`` (silent)."""
    voice: str = ""
    """flite: its ``-voice`` (``slt``, ``kal``, ``awb``, ``rms`` or a .flitevox file);
    espeak-ng: its ``-v`` voice (``en-us``); wyoming: the voice name sent in ``synthesize``.
    ``""`` = the engine's default voice."""
    wyoming: str = ""
    """``tcp://host:port`` of the Wyoming TTS server (wyoming-piper); required for ``wyoming``."""
    output: str = "device"
    """``device``: play on a sounddevice output device; ``file``: write WAV files."""
    device: str = ""
    """sounddevice output device, a name (substring) or an index as a string; ``""`` = default."""
    output_dir: str = ""
    """Folder for the WAV files; required when ``output = "file"``."""
    timeout_s: float = 10.0
    """Most seconds one synthesis may take (program run or server reply)."""
    max_text_chars: int = 500
    """Longest reply spoken, in characters; a longer one is cut at a word boundary."""

    def validate(self) -> None:
        """Range checks; raises ``ConfigError("tts.<key>: ...")``."""
        require(self.engine in ENGINES, "tts.engine", f"must be one of {', '.join(ENGINES)}")
        require(self.output in OUTPUTS, "tts.output", f"must be one of {', '.join(OUTPUTS)}")
        if self.engine == "wyoming":
            require(bool(self.wyoming), "tts.wyoming", "required when tts.engine = 'wyoming'")
            require(tcp_address(self.wyoming) is not None, "tts.wyoming", "must be tcp://host:port")
        require(
            self.output != "file" or bool(self.output_dir),
            "tts.output_dir",
            "required when tts.output = 'file'",
        )
        require(
            math.isfinite(self.timeout_s) and self.timeout_s > 0, "tts.timeout_s", "must be > 0"
        )
        require(self.max_text_chars >= 1, "tts.max_text_chars", "must be >= 1")


@dataclass(frozen=True, slots=True)
class ActionConfig:
    """One ``[[actions]]`` entry: what to run for one intent, and what to say afterwards.

    Neither ``command`` nor ``http`` set means "no action": only the reply is spoken.
    """

    #: The intent name it handles, or ``"unknown"`` for commands no intent matched.
    intent: str = ""
    #: The argv to run (no shell); each element may hold ``{slot}`` placeholders.
    command: tuple[str, ...] = ()
    #: A URL to POST ``{"intent", "slots", "text", "stream_id", "confidence"}`` to as JSON.
    http: str = ""
    #: ``"Name: value"`` headers for the HTTP request (e.g. ``"Authorization: Bearer …"``).
    headers: tuple[str, ...] = ()
    #: The most seconds the action may take (0 < timeout_s <= 300).
    timeout_s: float = 5.0
    #: The spoken reply: ``{slot}`` placeholders, ``{output}`` (first line of the action's
    #: output) and ``{status}`` (exit or HTTP status, -1 when it did not finish).
    reply: str = ""

    def validate(self, where: str) -> None:
        """Raise ``ConfigError("<where>.<key>: …")`` for the first invalid field."""
        require(bool(self.intent.strip()), f"{where}.intent", "must not be empty")
        require(
            not (self.command and self.http),
            f"{where}.command",
            "set either command or http, not both",
        )
        if self.command:
            require(bool(self.command[0]), f"{where}.command", "the program must not be empty")
        for i, arg in enumerate(self.command):
            require_template(arg, f"{where}.command[{i}]")
        if self.http:
            url = urlsplit(self.http)
            require(url.scheme in ("http", "https"), f"{where}.http", "must be an http(s) URL")
            require(bool(url.hostname), f"{where}.http", "must name a host")
        require(
            0.0 < self.timeout_s <= MAX_ACTION_TIMEOUT_S,
            f"{where}.timeout_s",
            f"must be > 0 and <= {MAX_ACTION_TIMEOUT_S:g}",
        )
        for i, header in enumerate(self.headers):
            require(
                parse_header(header) is not None,
                f"{where}.headers[{i}]",
                "must be 'Name: value' on one line",
            )
        require_template(self.reply, f"{where}.reply")


def require_template(template: str, key: str) -> None:
    """Config check: every ``{…}`` field in ``template`` is a plain name."""
    for match in FIELD.finditer(template):
        name = match.group(1)
        require(
            name is None or bool(NAME.match(name)),
            key,
            f"placeholder {match.group(0)} must be a plain {{name}}",
        )


def parse_header(header: str) -> tuple[str, str] | None:
    """``("Name", "value")`` from ``"Name: value"``, or None when malformed."""
    name, colon, value = header.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _HEADER_NAME.match(name) or any(c in value for c in "\r\n\0"):
        return None
    return name, value


def tcp_address(uri: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``tcp://host:port``, or None."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        return None
    return parts.hostname, port
