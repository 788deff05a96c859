"""``[assistant]``: the voice-assistant section, defined once for the loader and the actor.

``[[actions]]`` (:mod:`.actions`) and ``[tts]`` (:mod:`.tts`) are its companions.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamasr.actors.typed import require

__all__ = ["AssistantConfig"]


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
