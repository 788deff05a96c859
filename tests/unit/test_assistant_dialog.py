"""The assistant's core: intents from command finals (real hassil templates), the action that
answers each, the reply text, and which finals are commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streamasr.actors import messages as m
from streamasr.actors.assistant.actions import ActionConfig, ActionResult
from streamasr.actors.assistant.dialog import Dialog, action_done
from streamasr.actors.assistant.intents import IntentRecognizer
from streamasr.actors.assistant.settings import AssistantConfig
from streamasr.actors.errors import ConfigError

pytest.importorskip("hassil")


def final(
    text: str,
    *,
    confs: tuple[float, ...] = (),
    sid: str = "mic",
    uid: str = "mic:100",
    wake_id: str = "mic:wake:90",
    provisional: bool = False,
    is_final: bool = True,
) -> m.Transcript:
    words = [[w, 0.0, 0.1, c] for w, c in zip(text.split(), confs, strict=False)]
    return m.Transcript(
        stream_id=sid,
        utterance_id=uid,
        seq=1,
        is_final=is_final,
        passno=2,
        text=text,
        start_s=0.0,
        end_s=1.0,
        words=words,
        latency_s=0.1,
        stages_s={},
        provisional=provisional,
        wake_id=wake_id,
    )


@pytest.mark.parametrize(
    ("text", "name", "slots"),
    [
        ("Turn on the kitchen light.", "HassTurnOn", {"area": "kitchen"}),
        ("switch the living room lights off", "HassTurnOff", {"area": "living room"}),
        ("Set a timer for ten minutes.", "HassStartTimer", {"minutes": "10"}),
        ("Set a timer for 10 minutes.", "HassStartTimer", {"minutes": "10"}),
        ("What time is it?", "HassGetCurrentTime", {}),
        ("Cancel the timer.", "HassCancelTimer", {}),
    ],
)
def test_bundled_templates_read_whisper_style_finals(
    text: str, name: str, slots: dict[str, str]
) -> None:
    found = IntentRecognizer().recognize(text, [0.9] * len(text.split()))
    assert (found.name, found.slots, found.reason) == (name, slots, "")
    assert found.confidence == pytest.approx(0.9)


@pytest.mark.parametrize(
    ("text", "confs", "reason", "guess"),
    [
        ("Play some music.", (0.95, 0.95, 0.95), "no_match", ""),
        ("turn on the kitchen light", (0.3, 0.2, 0.4, 0.3, 0.3), "low_confidence", "HassTurnOn"),
        ("", (), "empty", ""),
        ("turn on the garden light", (0.9,) * 5, "no_match", ""),  # not in the area list
    ],
)
def test_unknown_commands_say_why(
    text: str, confs: tuple[float, ...], reason: str, guess: str
) -> None:
    found = IntentRecognizer(min_confidence=0.5).recognize(text, confs)
    assert (found.name, found.reason, found.guess) == ("", reason, guess)


def test_a_user_template_file_and_its_errors(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text(
        "language: en\nintents:\n  Feed:\n    data:\n      - sentences:\n"
        '          - "feed the {pet}"\nlists:\n  pet:\n    values: [cat, dog]\n'
    )
    found = IntentRecognizer(str(f)).recognize("Feed the cat.")
    assert (found.name, found.slots) == ("Feed", {"pet": "cat"})
    with pytest.raises(ConfigError, match=r"^assistant\.intents: cannot read .*nope\.yaml"):
        IntentRecognizer(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("just: [a, list")
    with pytest.raises(ConfigError, match="not a hassil intents file"):
        IntentRecognizer(str(bad))


def dialog(**kw: object) -> Dialog:
    actions = kw.pop("actions", ())
    cfg = AssistantConfig(enabled=True, **kw)  # type: ignore[arg-type]
    return Dialog(cfg, actions, served=["mic", "door"], gated=["mic"])  # type: ignore[arg-type]


def test_which_finals_are_commands_once_each() -> None:
    d = dialog()
    assert not d.is_command(final("turn on the kitchen light", is_final=False))
    assert not d.is_command(final("turn on the kitchen light", provisional=True))
    assert not d.is_command(final("hello", wake_id=""))  # gated stream: only wake commands
    assert not d.is_command(final("hello", sid="other"))  # not served
    assert d.is_command(final("hello", sid="door", uid="door:5", wake_id=""))  # ungated: all
    assert d.is_command(final("turn on the kitchen light"))
    assert not d.is_command(final("turn on the kitchen light"))  # answered once


def test_intent_event_action_and_reply_text() -> None:
    act = ActionConfig(intent="HassTurnOn", command=("true",), reply="{area} on. {output}")
    d = dialog(actions=(act,))
    t = final("Turn on the bedroom lamp.", confs=(0.8, 0.9, 1.0, 0.9, 0.9))
    intent = d.understand(t)
    assert (intent.name, intent.slots, intent.wake_id) == (
        "HassTurnOn",
        {"area": "bedroom"},
        t.wake_id,
    )
    assert m.assistant_topic(intent) == "intent.mic.recognized"
    assert m.decode(m.encode(intent)) == intent  # travels as a schema message
    assert d.action_for(intent) is act
    result = ActionResult("HassTurnOn", "command", True, 0, "done\nmore", False, "", 0.01)
    assert d.reply_text(act, intent, result) == "bedroom on. done"
    done = action_done(intent, result)
    assert (done.ok, done.status, m.assistant_topic(done)) == (True, 0, "action.mic")


def test_unknown_gets_the_unknown_reply_or_its_own_action() -> None:
    d = dialog()
    intent = d.understand(final("Play some music.", confs=(0.9, 0.9, 0.9)))
    assert m.assistant_topic(intent) == "intent.mic.unknown"
    action = d.action_for(intent)
    assert action is not None and action.reply == AssistantConfig().unknown_reply
    silent = dialog(unknown_reply="")
    assert silent.action_for(intent) is None
    own = ActionConfig(intent="unknown", reply="Pardon?")
    assert dialog(actions=(own,)).action_for(intent) is own


def test_default_actions_reply_for_every_bundled_intent() -> None:
    d = dialog()
    for name in d.recognizer.names:
        intent = m.Intent(
            "mic", "mic:1", "", name, {"area": "kitchen", "minutes": "5"}, "", 1.0, "", "", 0
        )
        action = d.action_for(intent)
        assert action is not None, name
        result = ActionResult(name, "none", True, 0, "", False, "", 0.0)
        text = d.reply_text(action, intent, result)
        assert "{" not in text, (name, text)


def test_without_hassil_a_one_line_error_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hassil", None)  # what an absent package looks like
    with pytest.raises(ConfigError) as err:
        IntentRecognizer()
    assert str(err.value) == (
        "assistant.intents: the hassil package is not installed "
        "(pip install 'streamasr[assistant]')"
    )


def test_a_streams_end_waits_for_its_commands_but_not_forever() -> None:
    from streamasr.actors.assistant.actor import _FINALS_WAIT_S, _Ends

    ends = _Ends()
    eos = m.EndOfStream("refine", "mic", 16000)
    ends.eos["mic"] = (eos, 100.0)
    ends.pending["mic"] = 1
    assert ends.due(100.1, cap_s=30.0) == []  # its last final may still be on its way
    ends.finals_done.add("mic")
    assert ends.due(101.0, cap_s=30.0) == []  # a command is still being answered
    ends.pending["mic"] = 0
    assert ends.due(101.0, cap_s=30.0) == [eos] and not ends.eos
    ends.eos["mic"], ends.pending["mic"] = (eos, 200.0), 0
    assert ends.due(200.0 + _FINALS_WAIT_S, cap_s=30.0) == [eos]  # finals_done was missed
    ends.eos["mic"], ends.pending["mic"] = (eos, 300.0), 3
    assert ends.due(329.0, cap_s=30.0) == []
    assert ends.due(330.0, cap_s=30.0) == [eos]  # an action that never ends: the cap
