"""The assistant actor: command finals in, intents, action results and spoken replies out.

It subscribes to the supervisor's transcripts, and for each command final (see
:meth:`.dialog.Dialog.is_command`) sends, in this order, an
:class:`~streamasr.actors.messages.Intent`, then (on an action worker thread) runs the
intent's ``[[actions]]`` entry and sends its :class:`~streamasr.actors.messages.ActionDone`,
then (on the speaker thread) speaks the reply and sends the
:class:`~streamasr.actors.messages.Reply`. The supervisor publishes them as
``intent.<stream>.*``, ``action.<stream>`` and ``reply.<stream>``. A failing or hanging
action or speech never blocks this loop: it only waits on its sockets.

Commands are answered at most once: a replacement process (after a crash) answers the
finals published after it started, never one it may already have acted on.

The assistant is the last actor of each stream it serves: a stream's end reaches it as an
:class:`~streamasr.actors.messages.EndOfStream` on its control socket and, after the
stream's last final, as ``stream.<id>.finals_done`` on the event socket; it passes the end
on once both are in and the stream's actions and replies are done (so ``up --assistant`` on
a file speaks its last reply before it exits). A replacement process may miss that event
(it is published once per end); then the end is passed on ``_FINALS_WAIT_S`` after the
control message.
"""

from __future__ import annotations

import logging
import queue
import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from streamasr.actors import messages as m
from streamasr.actors.assistant.actions import ActionConfig, ActionResult, ActionRunner
from streamasr.actors.assistant.dialog import Dialog, action_done
from streamasr.actors.assistant.playback import make_player
from streamasr.actors.assistant.settings import AssistantConfig
from streamasr.actors.assistant.speaker import Speaker
from streamasr.actors.assistant.tts import TtsConfig, make_synthesizer
from streamasr.actors.errors import ProtocolError
from streamasr.actors.runtime import ActorRuntime
from streamasr.actors.typed import from_table

log = logging.getLogger(__name__)

#: Seconds between checks for results of the action and speaker threads.
_POLL_S = 0.02
#: Seconds a stream's end waits for its ``finals_done`` event (see the module docstring).
_FINALS_WAIT_S = 5.0
#: Seconds a reply may take to play, in the cap on how long a stream's end waits.
_REPLY_PLAY_S = 60.0


@dataclass(slots=True)
class _Ends:
    """Per stream: commands in flight, and how far its end has arrived."""

    pending: dict[str, int] = field(default_factory=dict)
    eos: dict[str, tuple[m.EndOfStream, float]] = field(default_factory=dict)
    finals_done: set[str] = field(default_factory=set)

    def due(self, now: float, cap_s: float) -> list[m.EndOfStream]:
        """The ends to pass on now (and forget): once every final is in and answered, or
        ``cap_s`` seconds after the end arrived whatever is still pending (an action or a
        reply that never ends must not keep the pipeline from ending)."""
        out = []
        for sid, (eos, since) in list(self.eos.items()):
            heard = sid in self.finals_done or now - since >= _FINALS_WAIT_S
            if (heard and not self.pending.get(sid)) or now - since >= cap_s:
                out.append(eos)
                del self.eos[sid]
                self.finals_done.discard(sid)
        return out


@dataclass(frozen=True, slots=True)
class _Settled:
    """A command of ``stream_id`` that needs no reply is done (internal)."""

    stream_id: str


_COUNTERS = (
    "commands",
    "intents",
    "intents_unknown",
    "actions_ok",
    "actions_failed",
    "replies_spoken",
    "replies_failed",
)


def run(rt: ActorRuntime) -> None:
    """Actor main loop (see the module docstring)."""
    cfg = rt.spec.section("assistant", AssistantConfig)
    tts = rt.spec.section("tts", TtsConfig)
    actions = tuple(
        from_table(ActionConfig, a, f"actions[{i}]")
        for i, a in enumerate(rt.spec.options.get("actions", []))
    )
    dialog = Dialog(
        cfg,
        actions,
        rt.spec.options.get("served_streams", []),
        rt.spec.options.get("wake_streams", []),
    )
    synth = make_synthesizer(tts)
    player = make_player(tts) if synth is not None else None
    out: queue.Queue[Any] = queue.Queue()
    speaker = Speaker(synth, player, out.put, cfg.mute_margin_ms / 1000.0)
    runner = ActionRunner()
    for key in _COUNTERS:
        rt.counters[key] = 0
    sub = rt.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.MAXMSGSIZE, m.MAX_MESSAGE_BYTES)
    sub.setsockopt(zmq.SUBSCRIBE, b"transcript.")
    sub.setsockopt(zmq.SUBSCRIBE, b"stream.")
    sub.connect(rt.spec.options["events_endpoint"])
    rt.poller.register(sub, zmq.POLLIN)
    log.info("assistant: intents %s (%s)", cfg.intents, ", ".join(dialog.recognizer.names))
    ends = _Ends()
    # the longest a stream's end waits for its commands: an action, its reply, and slack
    slowest = max((a.timeout_s for a in dialog.actions), default=0.0)
    cap_s = _FINALS_WAIT_S + slowest + tts.timeout_s + _REPLY_PLAY_S
    # the microphones that hear the replies: only where they are played on a device
    hears_replies = frozenset(
        rt.spec.options.get("mic_streams", []) if tts.output == "device" else []
    )
    rt.ready()
    try:
        while not rt.stopping:
            msgs, ready = rt.poll(_POLL_S)
            for msg in msgs:
                if isinstance(msg, m.EndOfStream):
                    ends.eos.setdefault(msg.stream_id, (msg, time.monotonic()))
            if sub in ready:
                _drain(rt, sub, dialog, runner, speaker, out, ends, hears_replies)
            _forward(rt, out, ends)
            for eos in ends.due(time.monotonic(), cap_s):
                rt.send(m.EndOfStream(rt.spec.actor_id, eos.stream_id, eos.end_frame))
    finally:
        runner.close(1.0)
        speaker.close(1.0)
        _forward(rt, out, ends)
        sub.close(0)


def _drain(
    rt: ActorRuntime,
    sub: zmq.Socket[bytes],
    dialog: Dialog,
    runner: ActionRunner,
    speaker: Speaker,
    out: queue.Queue[Any],
    ends: _Ends,
    hears_replies: frozenset[str],
) -> None:
    """Answer the command finals among the transcripts received; note streams whose last
    final has been published."""
    for _ in range(1000):
        try:
            frames = sub.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        try:
            topic, t = m.unpack(frames)
        except ProtocolError:
            rt.counters["protocol_errors"] += 1
            continue
        if isinstance(t, m.StreamEnded) and topic.endswith(".finals_done"):
            ends.finals_done.add(t.stream_id)
            continue
        if not isinstance(t, m.Transcript) or not dialog.is_command(t):
            continue
        rt.counters["commands"] += 1
        intent = dialog.understand(t)
        rt.counters["intents" if intent.name else "intents_unknown"] += 1
        rt.send(intent)
        action = dialog.action_for(intent)
        if action is None:
            continue

        def done(result: ActionResult, intent: m.Intent = intent, a: ActionConfig = action) -> None:
            out.put(action_done(intent, result))
            text = dialog.reply_text(a, intent, result)
            if text:
                sid = intent.stream_id
                speaker.say(sid, intent.utterance_id, text, mute=sid in hears_replies)
            else:
                out.put(_Settled(intent.stream_id))

        ends.pending[t.stream_id] = ends.pending.get(t.stream_id, 0) + 1
        meta = {"stream_id": t.stream_id, "confidence": intent.confidence}
        runner.submit(action, intent.name or "unknown", intent.slots, t.text, meta, done)


def _forward(rt: ActorRuntime, out: queue.Queue[Any], ends: _Ends) -> None:
    """Send what the action and speaker threads produced (sockets are this thread's)."""
    while True:
        try:
            msg = out.get_nowait()
        except queue.Empty:
            return
        if isinstance(msg, m.ActionDone):
            rt.counters["actions_ok" if msg.ok else "actions_failed"] += 1
        elif isinstance(msg, m.Reply):
            rt.counters["replies_failed" if msg.error else "replies_spoken"] += 1
        if isinstance(msg, m.Reply | _Settled):
            ends.pending[msg.stream_id] = max(0, ends.pending.get(msg.stream_id, 0) - 1)
        if not isinstance(msg, _Settled):
            rt.send(msg)
