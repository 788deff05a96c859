"""What the refine actor sends: accurate finals and Whisper partials as transcript events,
and when an ungated transcription may stand (pure functions over messages and Whisper's
output; the actor's loop is in :mod:`.actor`)."""

from __future__ import annotations

import dataclasses
import time

from streamasr.actors import messages as m
from streamasr.actors.refine.filters import words_of
from streamasr.actors.refine.options import RefineOutput
from streamasr.actors.refine.partials import Utterance

__all__ = [
    "UNGATED_LOGPROB_MIN",
    "UNGATED_NO_SPEECH_MAX",
    "agree",
    "confident",
    "final_transcript",
    "partial_transcript",
]


#: An ungated transcription (a word too short for the speech gate) is kept only when Whisper
#: is this sure there was speech: no-speech probability below, mean log-probability above.
UNGATED_NO_SPEECH_MAX = 0.4
UNGATED_LOGPROB_MIN = -1.0


def confident(out: RefineOutput | None) -> RefineOutput | None:
    """``out`` if Whisper is sure enough of it without the speech gate (else None)."""
    if out is None:
        return None
    ok = out.no_speech_prob < UNGATED_NO_SPEECH_MAX and out.avg_logprob > UNGATED_LOGPROB_MIN
    return out if ok else None


def agree(whisper_text: str, first_pass_text: str) -> bool:
    """Whether two independent recognisers heard at least one same word: an ungated Whisper
    transcript is kept only then (on noise Whisper may invent a whole sentence, confidently,
    where the first pass heard "wow"; a cut-off "No." that both heard is kept)."""
    return bool(set(words_of(whisper_text)) & set(words_of(first_pass_text)))


def partial_transcript(utt: Utterance, out: RefineOutput, compute_s: float) -> m.Transcript:
    """The ``pass = 2`` partial for ``utt`` after local agreement over ``out``."""
    shown = utt.agreement.update([w.word for w in out.words] or out.text.split())
    latest = utt.latest
    waited_s = time.monotonic() - utt.seen_s
    return dataclasses.replace(
        latest,
        passno=2,
        text=shown.text,
        words=[[w.word, w.start_s, w.end_s, w.conf] for w in out.words],
        latency_s=latest.latency_s + waited_s,
        stages_s={**latest.stages_s, "refine_partial": compute_s},
        language=out.language or latest.language,
    )


def final_transcript(
    job: m.RefineJob, out: RefineOutput | None, compute_s: float, *, early_s: float = 0.0
) -> m.Transcript:
    """The accurate final of ``job``: ``compute_s`` spent after the endpoint, ``early_s``
    before it (an early transcription, see :mod:`.speculation`)."""
    first = job.first_pass
    waited_s = (time.time_ns() - job.t_endpoint_ns) / 1e9
    stages = {**first.stages_s, "refine_queue": max(0.0, waited_s - compute_s), "refine": compute_s}
    if early_s:
        stages["refine_early"] = early_s
    return dataclasses.replace(
        first,
        passno=2,
        provisional=False,
        text=out.text.strip() if out is not None else "",
        words=[[w.word, w.start_s, w.end_s, w.conf] for w in out.words] if out else [],
        latency_s=first.latency_s + waited_s,
        stages_s=stages,
        language=(out.language if out is not None else "") or first.language,
    )
