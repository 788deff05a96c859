"""Speaks the assistant's replies on a thread of its own, one after another.

Synthesis and playback take seconds and may fail or hang (a Wyoming TTS server away); the
assistant's loop hands a reply over with :meth:`Speaker.say`, which never blocks, and gets
back events through ``emit`` (called from the speaker's thread; it must be thread-safe):
where the stream's microphone hears the reply, a :class:`~streamasr.actors.messages.WakeMute`
just before the audio plays, covering its length plus a margin; then the
:class:`~streamasr.actors.messages.Reply`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamasr.actors import messages as m
from streamasr.actors.assistant.playback import Player
from streamasr.actors.assistant.tts import Synthesizer, TtsError

__all__ = ["Speaker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Job:
    stream_id: str
    utterance_id: str
    text: str
    mute: bool


class Speaker:
    """Synthesises and plays replies in order, off the caller's thread."""

    def __init__(
        self,
        synth: Synthesizer | None,
        player: Player | None,
        emit: Callable[[Any], None],
        mute_margin_s: float,
        max_pending: int = 4,
    ) -> None:
        """``synth`` None: replies are published as text only (``[tts] engine = "none"``).
        ``mute_margin_s``: seconds after the audio ends that wake detections stay muted.
        ``max_pending``: replies waiting at most; more are published with an error."""
        self._synth = synth
        self._player = player
        self._emit = emit
        self._margin_ns = int(mute_margin_s * 1e9)
        self._jobs: queue.Queue[_Job | None] = queue.Queue(max_pending)
        self.spoken = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="speaker", daemon=True)
        self._thread.start()

    def say(self, stream_id: str, utterance_id: str, text: str, *, mute: bool) -> None:
        """Queue a reply (returns at once; a full queue publishes it as not spoken).
        ``mute``: the stream's microphone hears the reply (wake detections are muted)."""
        job = _Job(stream_id, utterance_id, text, mute)
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            self.failed += 1
            self._reply(job, 0.0, "", "too many replies queued")

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop after the reply in progress (waits at most ``timeout_s`` seconds)."""
        try:
            self._jobs.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._speak(job)

    def _speak(self, job: _Job) -> None:
        if self._synth is None or self._player is None or not job.text:
            self._reply(job, 0.0, "", "")
            return
        try:
            speech = self._synth.synthesize(job.text)
            if job.mute:
                until = time.time_ns() + int(speech.duration_s * 1e9) + self._margin_ns
                self._emit(m.WakeMute(job.stream_id, until))
            played = self._player.play(speech, job.utterance_id.replace(":", "-"))
        except Exception as exc:  # TtsError, or a device's surprise: the reply fails, not us
            self.failed += 1
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not isinstance(exc, TtsError):
                log.exception("reply %r not spoken", job.text)
            else:
                log.warning("reply %r not spoken: %s", job.text, line)
            self._reply(job, 0.0, "", line)
            return
        self.spoken += 1
        self._reply(job, played.duration_s, played.where, "")

    def _reply(self, job: _Job, audio_s: float, where: str, error: str) -> None:
        self._emit(
            m.Reply(
                stream_id=job.stream_id,
                utterance_id=job.utterance_id,
                text=job.text,
                audio_s=round(audio_s, 3),
                where=where,
                error=error,
                t_ns=time.time_ns(),
            )
        )
