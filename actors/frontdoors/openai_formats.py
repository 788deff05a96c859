"""The transcript of an upload in the OpenAI API's response formats (pure functions).

A :class:`Segment` is one final of the upload's stream (an utterance: Whisper's text and
word times where finals are accurate). :func:`render` writes the five ``response_format``
bodies as OpenAI does: ``json`` (``{"text", "usage"}``), ``text`` (the text and a newline),
``srt`` and ``vtt`` (one cue per utterance), ``verbose_json`` (``task``, ``language``,
``duration``, ``text``, ``segments`` and/or ``words`` by ``timestamp_granularities``,
``usage``). :func:`sse` frames a streaming event (``transcript.text.delta`` per utterance,
``transcript.text.done`` at the end) as a server-sent event. Times are stream seconds from
the start of the file.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamasr.actors import messages as m

#: Content types by response format.
CONTENT_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Segment:
    """One utterance of the transcript.

    Attributes:
        text: its words.
        start_s, end_s: seconds from the start of the file (its first word's start and last
            word's end where words carry times, else the utterance's bounds).
        words: ``(word, start_s, end_s, probability)`` per word.
    """

    text: str
    start_s: float
    end_s: float
    words: tuple[tuple[str, float, float, float], ...] = ()

    @classmethod
    def of(cls, t: m.Transcript) -> Segment:
        """The segment of final ``t``."""
        words = tuple(
            (str(w[0]).strip(), float(w[1]), float(w[2]), float(w[3]))
            for w in t.words
            if str(w[0]).strip()
        )
        start = words[0][1] if words else t.start_s
        end = words[-1][2] if words else t.end_s
        return cls(t.text.strip(), start, end, words)


def full_text(segments: Sequence[Segment]) -> str:
    """The whole transcript: the segments' texts joined by spaces."""
    return " ".join(s.text for s in segments if s.text)


def _clock(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    mi, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{mi:02d}:{s:02d}{sep}{ms:03d}"


def as_srt(segments: Sequence[Segment]) -> str:
    """SubRip: numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    cues = [
        f"{i}\n{_clock(s.start_s, ',')} --> {_clock(s.end_s, ',')}\n{s.text}\n"
        for i, s in enumerate(segments, 1)
    ]
    return "\n".join(cues) + ("\n" if cues else "")


def as_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT: a ``WEBVTT`` header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    cues = [f"{_clock(s.start_s, '.')} --> {_clock(s.end_s, '.')}\n{s.text}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues) + ("\n" if cues else "")


def _usage(duration_s: float) -> dict[str, Any]:
    """OpenAI's duration usage: whole seconds of audio, rounded up."""
    return {"type": "duration", "seconds": math.ceil(duration_s)}


def _segment_json(i: int, s: Segment) -> dict[str, Any]:
    """A ``verbose_json`` segment. Whisper's per-token figures are not kept by the pipeline:
    ``avg_logprob`` is the mean log probability of the segment's words, ``compression_ratio``
    Whisper's own measure (text bytes over their zlib size), ``no_speech_prob`` 0 (the
    pipeline's speech gate has already dropped what was not speech)."""
    raw = s.text.encode()
    probs = [max(w[3], 1e-6) for w in s.words]
    return {
        "id": i,
        "seek": 0,
        "start": round(s.start_s, 3),
        "end": round(s.end_s, 3),
        "text": s.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": sum(math.log(p) for p in probs) / len(probs) if probs else 0.0,
        "compression_ratio": len(raw) / len(zlib.compress(raw)) if raw else 0.0,
        "no_speech_prob": 0.0,
    }


def as_verbose_json(
    segments: Sequence[Segment],
    duration_s: float,
    granularities: frozenset[str],
    language: str = "english",
    task: str = "transcribe",
) -> dict[str, Any]:
    """The ``verbose_json`` object; ``segments`` and ``words`` as ``granularities`` ask;
    ``language``: what was spoken (OpenAI names English ``english``), ``task``: as asked of
    Whisper (``translate``: the text is English)."""
    out: dict[str, Any] = {
        "task": task,
        "language": language,
        "duration": round(duration_s, 3),
        "text": full_text(segments),
    }
    if "segment" in granularities:
        out["segments"] = [_segment_json(i, s) for i, s in enumerate(segments)]
    if "word" in granularities:
        out["words"] = [
            {"word": w[0], "start": round(w[1], 3), "end": round(w[2], 3)}
            for s in segments
            for w in s.words
        ]
    out["usage"] = _usage(duration_s)
    return out


def render(
    fmt: str,
    segments: Sequence[Segment],
    duration_s: float,
    granularities: frozenset[str],
    language: str = "english",
    task: str = "transcribe",
) -> tuple[str, str]:
    """The body of ``response_format`` ``fmt`` and its content type (``language``, ``task``:
    see :func:`as_verbose_json`)."""
    if fmt == "text":
        body = full_text(segments) + "\n"
    elif fmt == "srt":
        body = as_srt(segments)
    elif fmt == "vtt":
        body = as_vtt(segments)
    elif fmt == "verbose_json":
        body = json.dumps(as_verbose_json(segments, duration_s, granularities, language, task))
    else:
        body = json.dumps({"text": full_text(segments), "usage": _usage(duration_s)})
    return body, CONTENT_TYPES.get(fmt, CONTENT_TYPES["json"])


def delta_event(segment: Segment, first: bool) -> dict[str, Any]:
    """``transcript.text.delta`` for one more utterance (a space before all but the first,
    so the deltas concatenate to the done event's text)."""
    return {"type": "transcript.text.delta", "delta": segment.text if first else " " + segment.text}


def done_event(segments: Sequence[Segment]) -> dict[str, Any]:
    """``transcript.text.done`` with the whole text."""
    return {"type": "transcript.text.done", "text": full_text(segments)}


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event: ``data: <json>`` and a blank line."""
    return b"data: " + json.dumps(event).encode() + b"\n\n"
