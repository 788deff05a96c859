"""Accurate finals decoded before the endpoint (pure bookkeeping; the refine actor runs them).

An endpoint is declared only after ``endpoint_silence_ms`` (600 ms) of non-speech, but the
utterance's audio is complete as soon as its speech stops. The first pass reports that moment
(:class:`~streamasr.actors.messages.SpeechPaused`, after a shorter pause) with the span the
final will have if no more speech comes; the refine actor, when it has nothing else to do,
transcribes that span at once and keeps the result. When the :class:`RefineJob` arrives with
the same span, its accurate final is sent without decoding again; if the speaker went on,
the job's span differs and it is decoded as usual (the early run was wasted work, counted as
a miss).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from streamasr.actors import messages as m
from streamasr.actors.refine.options import RefineOutput

__all__ = ["Early", "Speculator"]

#: Results and pauses remembered (oldest dropped first).
KEEP = 64

#: Seconds a pause stays worth an early transcription: by then (real time) its endpoint has
#: come, or the speaker went on.
MAX_AGE_S = 0.4


@dataclass(frozen=True, slots=True)
class Early:
    """An accurate transcription made before the endpoint.

    Attributes:
        start_frame, end_frame: the utterance span it covers (ring frames).
        out: Whisper's result (None: the speech gate found no speech in it).
        compute_s: seconds the transcription took.
        prompt: the text it was prompted with (a job with another prompt decodes again).
    """

    start_frame: int
    end_frame: int
    out: RefineOutput | None
    compute_s: float
    prompt: str = ""


class Speculator:
    """Pauses waiting for an early transcription, and the results kept for their jobs.

    Attributes:
        hits: jobs answered from an early result.
        misses: early results whose utterance went on (a different span arrived).
        runs: early transcriptions made.
    """

    def __init__(self) -> None:
        """Start with nothing pending."""
        self._pauses: OrderedDict[str, tuple[m.SpeechPaused, float]] = OrderedDict()
        self._done: OrderedDict[str, Early] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.runs = 0

    def paused(self, msg: m.SpeechPaused, now_s: float) -> None:
        """Note a pause received at ``now_s`` (monotonic seconds; a newer pause of the same
        utterance replaces the older one)."""
        done = self._done.get(msg.utterance_id)
        if done is not None and (done.start_frame, done.end_frame) == (
            msg.start_frame,
            msg.end_frame,
        ):
            return  # already transcribed exactly this span
        self._pauses.pop(msg.utterance_id, None)
        self._pauses[msg.utterance_id] = (msg, now_s)
        while len(self._pauses) > KEEP:
            self._pauses.popitem(last=False)

    def next_pause(self, now_s: float) -> m.SpeechPaused | None:
        """The newest pause still worth an early transcription (None if none); older ones
        (received more than :data:`MAX_AGE_S` before ``now_s``) are dropped."""
        while self._pauses:
            msg, seen_s = self._pauses.popitem(last=True)[1]
            if now_s - seen_s <= MAX_AGE_S:
                return msg
        return None

    def clear(self) -> None:
        """Drop every waiting pause (the second pass is behind: no time for early work)."""
        self._pauses.clear()

    def store(
        self, msg: m.SpeechPaused, out: RefineOutput | None, compute_s: float, prompt: str = ""
    ) -> None:
        """Keep the early transcription of ``msg``'s span (made after ``prompt``)."""
        self.runs += 1
        self._done[msg.utterance_id] = Early(msg.start_frame, msg.end_frame, out, compute_s, prompt)
        while len(self._done) > KEEP:
            self._done.popitem(last=False)

    def take(self, job: m.RefineJob, prompt: str = "") -> Early | None:
        """The early result for ``job`` if it covers exactly the job's span and was made
        after the same ``prompt``, else None."""
        self._pauses.pop(job.utterance_id, None)  # the endpoint came first: no early run
        early = self._done.pop(job.utterance_id, None)
        if early is None:
            return None
        if job.continued or (early.start_frame, early.end_frame, early.prompt) != (
            job.start_frame,
            job.end_frame,
            prompt,
        ):  # a job cut in continuing speech is read without the end margin the run had
            self.misses += 1
            return None
        self.hits += 1
        return early

    def forget_stream(self, stream_id: str) -> None:
        """Drop what is pending for a stream that ended."""
        prefix = f"{stream_id}:"
        for table in (self._pauses, self._done):
            for uid in [u for u in table if u.startswith(prefix)]:
                del table[uid]
