"""The voice assistant end to end on real processes and models: microWakeWord hears "okay
nabu", the command's accurate (Whisper) final becomes an intent with slots (hassil), its
action runs as a real command line, and flite speaks the reply into a WAV file sink.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import Instance, audio_file, parse_events
from synth import Timeline, needs_flite, say, silence

pytestmark = [pytest.mark.slow, needs_flite]
pytest.importorskip("hassil")
pytest.importorskip("pymicro_wakeword")

#: Prints its arguments as JSON: the action, run without a shell.
ECHO = "import json, sys; print(json.dumps(sys.argv[1:]))"


def assistant_config(out_dir: Path, path: Path) -> str:
    argv = json.dumps([sys.executable, "-c", ECHO, "{area}", "; rm -rf {area}"])
    return f"""
[source]
kind = "file"
path = "{path}"
[wake]
enabled = true
phrases = ["okay nabu"]
[assistant]
enabled = true
[tts]
engine = "flite"
output = "file"
output_dir = "{out_dir}"
[[actions]]
intent = "HassTurnOn"
command = {argv}
reply = "Turned on the {{area}} light."
[[actions]]
intent = "HassNevermind"
command = ["/nonexistent/program"]
"""


def assistant_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("wake_detected", "final", "intent", "action_done", "reply")
    return [e for e in events if e.get("kind") in keep and not e.get("provisional")]


def test_wake_command_intent_action_and_spoken_reply_in_order(
    instance: Instance, tmp_path: Path
) -> None:
    conv, _ = sf.read(audio_file("conversation1.wav"), dtype="float32")
    t = Timeline()
    t.add(conv[: 3 * 16000], "conversation").add(silence(1.0))
    t.add(say("okay nabu", "kal16"), "wake1").add(silence(0.3))
    t.add(say("turn on the kitchen light", "slt"), "command1").add(silence(2.0))
    t.add(say("okay nabu", "kal16"), "wake2").add(silence(0.3))
    t.add(say("play some jazz music", "slt"), "command2").add(silence(2.0))
    wav = t.write(tmp_path / "assistant.wav")
    out_dir = tmp_path / "replies"
    instance.write_config(assistant_config(out_dir, wav))
    res = instance.cli("up", "--fast", "--json", timeout_s=240)
    assert res.returncode == 0, res.stderr
    events = assistant_events(parse_events(res.stdout))
    dets = [e for e in events if e["kind"] == "wake_detected"]
    assert len(dets) == 2, events
    # each command in order: wake -> final -> intent -> action -> reply (files read --fast
    # may detect the second phrase before the first command's final)
    chains = []
    for det in dets:
        fin = next(e for e in events if e["kind"] == "final" and e["wake_id"] == det["wake_id"])
        uid = fin["utterance_id"]
        mine = [e for e in events if e is det or e.get("utterance_id") == uid]
        assert [e["kind"] for e in mine] == [
            "wake_detected", "final", "intent", "action_done", "reply"
        ], mine  # fmt: skip
        chains.append(mine)
    (det, fin, intent, action, reply), (_, _, unknown, done2, reply2) = chains
    assert intent["wake_id"] == det["wake_id"]
    assert (intent["name"], intent["slots"]) == ("HassTurnOn", {"area": "kitchen"}), intent
    assert 0.5 <= intent["confidence"] <= 1.0
    assert action["ok"] and action["action"] == "command", action
    # slots fill whole arguments, never a shell: the "; rm -rf" stays one literal argument
    assert json.loads(action["output"]) == ["kitchen", "; rm -rf kitchen"]
    assert reply["text"] == "Turned on the kitchen light." and not reply["error"], reply
    audio, rate = sf.read(reply["where"], dtype="float32")
    assert Path(reply["where"]).parent == out_dir
    assert abs(len(audio) / rate - reply["audio_s"]) < 0.05 and reply["audio_s"] > 0.8
    assert float(np.sqrt(np.mean(audio**2))) > 0.01  # speech, not silence
    assert (unknown["name"], unknown["reason"]) == ("", "no_match"), unknown
    assert done2["intent"] == "unknown" and done2["action"] == "none"
    assert reply2["text"] == "Sorry, I'm not sure what you mean."


def test_assistant_config_errors_are_one_line(instance: Instance, tmp_path: Path) -> None:
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    instance.write_config(
        f'[source]\nkind = "file"\npath = "{wav}"\n[assistant]\nenabled = true\n'
        '[[actions]]\nintent = "HassTurnOnn"\n'
    )
    res = instance.cli("up", "--fast", timeout_s=60)
    assert res.returncode != 0
    assert "actions[0].intent: 'HassTurnOnn' is not an intent" in res.stderr
    assert "(did you mean HassTurnOn?)" in res.stderr
    instance.write_config(
        f'[source]\nkind = "file"\npath = "{wav}"\n[assistant]\nenabled = true\n'
        '[tts]\noutput = "device"\n'
    )
    res = instance.cli("up", "--fast", timeout_s=60)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "tts.output" in lines[0], res.stderr
