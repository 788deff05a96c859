"""The assistant's core, without processes: which finals are commands, what they mean, which
action answers them and what the reply says.

Pure apart from the intent templates it reads at construction; tested by table in
``tests/unit/test_assistant_dialog.py``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

from streamasr.actors import messages as m
from streamasr.actors.assistant.actions import ActionConfig, ActionResult, reply_text
from streamasr.actors.assistant.intents import IntentRecognizer
from streamasr.actors.assistant.settings import AssistantConfig

__all__ = ["DEFAULT_ACTIONS", "Dialog"]

#: The actions used when the config has no ``[[actions]]``: the bundled intents answered
#: by a spoken reply only (no command runs).
DEFAULT_ACTIONS: tuple[ActionConfig, ...] = (
    ActionConfig(intent="HassTurnOn", reply="Turned on the {area} light."),
    ActionConfig(intent="HassTurnOff", reply="Turned off the {area} light."),
    ActionConfig(intent="HassStartTimer", reply="Timer set for {minutes} minutes."),
    ActionConfig(intent="HassCancelTimer", reply="Timer cancelled."),
    ActionConfig(intent="HassGetCurrentTime", reply="It is {time}."),
    ActionConfig(intent="HassNevermind"),
)

#: Finals remembered to answer each command once (a restarted refine may resend one).
_SEEN = 256


class Dialog:
    """From a command's final to its intent, its action and its reply text."""

    def __init__(
        self,
        cfg: AssistantConfig,
        actions: Sequence[ActionConfig],
        served: Sequence[str],
        gated: Sequence[str],
    ) -> None:
        """``served``: the stream ids answered; ``gated``: those with wake gating (there only
        wake commands are answered; elsewhere every final is a command).

        Raises:
            ConfigError: the intents file cannot be read (see :class:`IntentRecognizer`).
        """
        self.cfg = cfg
        self.recognizer = IntentRecognizer(cfg.intents, cfg.min_confidence)
        self.actions = tuple(actions) or DEFAULT_ACTIONS
        self.served = frozenset(served)
        self.gated = frozenset(gated)
        self._seen: OrderedDict[str, None] = OrderedDict()

    def is_command(self, t: m.Transcript) -> bool:
        """True for a final the assistant answers (once per utterance): the last final of an
        utterance (not a provisional one, not an empty one) on a served stream, a wake
        command where the stream is wake-gated."""
        if not t.is_final or t.provisional or t.stream_id not in self.served:
            return False
        if not t.text.strip():  # Whisper heard no speech: it retracts a provisional final
            return False
        if t.stream_id in self.gated and not t.wake_id:
            return False
        if t.utterance_id in self._seen:
            return False
        self._seen[t.utterance_id] = None
        while len(self._seen) > _SEEN:
            self._seen.popitem(last=False)
        return True

    def understand(self, t: m.Transcript) -> m.Intent:
        """The intent of a command final (its words' confidences are the recogniser's)."""
        confs = [float(w[3]) for w in t.words if len(w) >= 4]
        found = self.recognizer.recognize(t.text, confs)
        return m.Intent(
            stream_id=t.stream_id,
            utterance_id=t.utterance_id,
            wake_id=t.wake_id,
            name=found.name,
            slots=dict(found.slots),
            text=t.text,
            confidence=round(found.confidence, 4),
            reason=found.reason,
            guess=found.guess,
            t_ns=time.time_ns(),
        )

    def action_for(self, intent: m.Intent) -> ActionConfig | None:
        """The action that answers ``intent`` (the ``unknown`` entry for an unknown one, or
        the built-in ``unknown_reply``); None: nothing to do."""
        name = intent.name or "unknown"
        for action in self.actions:
            if action.intent == name:
                return action
        if not intent.name and self.cfg.unknown_reply:
            return ActionConfig(intent="unknown", reply=self.cfg.unknown_reply)
        return None

    def reply_text(self, action: ActionConfig, intent: m.Intent, result: ActionResult) -> str:
        """The action's reply (see :func:`.actions.reply_text`), with ``{time}`` (HH:MM) and
        ``{text}`` (the command) too; whitespace runs collapsed."""
        values = {"time": time.strftime("%H:%M"), "text": intent.text, **intent.slots}
        return " ".join(reply_text(action, values, result).split())


def action_done(intent: m.Intent, result: ActionResult) -> m.ActionDone:
    """The event for an action's result."""
    return m.ActionDone(
        stream_id=intent.stream_id,
        utterance_id=intent.utterance_id,
        intent=intent.name or "unknown",
        action=result.kind,
        ok=result.ok,
        status=result.status,
        output=result.output,
        error=result.error,
        duration_s=round(result.duration_s, 4),
    )
