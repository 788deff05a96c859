"""Meeting transcripts: finals of several streams merged in time order, and their exports.

A meeting is a pipeline with one ``[[streams]]`` entry per participant (its own source, or
one ``channel`` of a multichannel file); every event carries its ``stream_id`` and the
config gives each stream a display ``name``. :class:`Meeting` (pure, no sockets) keeps the
best final of each utterance — non-provisional only, the accurate (pass 2) one where there
is one, none where the final text is empty — and renders them in stream-time order:

* text: ``[MM:SS] Name: text`` per utterance;
* WebVTT: cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` with a ``<v Name>`` voice span;
* SubRip (SRT): numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` and ``Name: text``;
* JSON: participants, and segments with their words and word times (seconds).

:func:`transcript_main` is the ``streamasr-supervisor transcript`` command: it reads a
running pipeline (the finals so far from the supervisor's history, then live finals until
the pipeline stops, or only the history with ``--no-follow``) or ``up --json`` output from
a file or stdin (``--from-json``), and writes the merged transcript or an export.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from streamasr.actors import messages as m
from streamasr.actors.errors import ProtocolError, StreamAsrError
from streamasr.supervisor import config as config_mod
from streamasr.supervisor.client import (
    InstanceNotRunning,
    NotRunning,
    Subscriber,
    request,
    require_running,
)
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.printer import stdout_gone

#: Export formats of :func:`render`.
FORMATS = ("text", "vtt", "srt", "json")
#: Seconds ``transcript`` waits for events before checking that the supervisor still runs.
LIVENESS_CHECK_S = 1.0

_TRANSCRIPT_WIRE = {f.metadata.get("wire", f.name) for f in dataclasses.fields(m.Transcript)}


@dataclass(frozen=True, slots=True)
class WordTime:
    """One word of a segment: stream times in seconds, confidence 0..1."""

    word: str
    start_s: float
    end_s: float
    conf: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One utterance of one participant, as it appears in the transcript.

    Attributes:
        stream_id: the stream (participant) id.
        name: display name (the stream id when the config gives none).
        utterance_id: the pipeline's utterance id.
        passno: 1 (first pass) or 2 (accurate final).
        start_s, end_s: stream seconds of the utterance.
        text: the words, stripped.
        words: per-word times.
    """

    stream_id: str
    name: str
    utterance_id: str
    passno: int
    start_s: float
    end_s: float
    text: str
    words: tuple[WordTime, ...]


class Meeting:
    """The finals of several streams, merged in time order (pure)."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        """``names``: display name per stream id; its order breaks ties between streams."""
        self.names = dict(names or {})
        self._order = {sid: i for i, sid in enumerate(self.names)}
        self._by_utt: dict[tuple[str, str], Segment] = {}

    def add(self, t: m.Transcript) -> Segment | None:
        """Take one event; return the segment if it is new (None: ignored or a replacement).

        Partials and provisional finals are ignored; a final replaces an earlier final of
        the same utterance unless that one came from a later pass; an empty final removes
        the utterance (the second pass found no speech).
        """
        if not t.is_final or t.provisional:
            return None
        key = (t.stream_id, t.utterance_id)
        old = self._by_utt.get(key)
        if old is not None and old.passno > t.passno:
            return None
        text = " ".join(t.text.split())
        if not text:
            self._by_utt.pop(key, None)
            return None
        seg = Segment(
            stream_id=t.stream_id,
            name=self.names.get(t.stream_id) or t.stream_id,
            utterance_id=t.utterance_id,
            passno=t.passno,
            start_s=t.start_s,
            end_s=max(t.end_s, t.start_s),
            text=text,
            words=tuple(_word(w) for w in t.words if _is_word(w)),
        )
        self._by_utt[key] = seg
        return seg if old is None else None

    def segments(self) -> list[Segment]:
        """Every segment, ordered by start time (then end time, then stream order)."""
        return sorted(
            self._by_utt.values(),
            key=lambda s: (s.start_s, s.end_s, self._order.get(s.stream_id, 1 << 30), s.stream_id),
        )

    def participants(self) -> dict[str, str]:
        """Stream id -> display name of the configured streams and of every stream seen."""
        out = dict(self.names)
        for seg in self._by_utt.values():
            out.setdefault(seg.stream_id, seg.name)
        return out


def _is_word(w: Any) -> bool:
    return isinstance(w, list | tuple) and len(w) >= 3


def _word(w: list[Any] | tuple[Any, ...]) -> WordTime:
    conf = float(w[3]) if len(w) > 3 else 1.0
    return WordTime(str(w[0]).strip(), float(w[1]), float(w[2]), conf)


def transcript_from_json(obj: Any) -> m.Transcript | None:
    """An ``up --json`` / ``tail --json`` object as a Transcript (None: not a transcript).

    Raises:
        ProtocolError: a transcript object with missing fields or wrongly typed values.
    """
    if not isinstance(obj, dict) or obj.get("kind") not in ("final", "partial", "transcript"):
        return None
    body = {k: v for k, v in obj.items() if k in _TRANSCRIPT_WIRE}
    body["kind"] = m.Transcript.KIND
    return m.from_dict(body, m.Transcript)


def read_json_lines(lines: Iterable[str], meeting: Meeting) -> int:
    """Add every transcript of ``up --json`` output to ``meeting``; return lines read.

    Raises:
        ProtocolError: a line that is not JSON or not a well-formed transcript (line number).
    """
    n = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            t = transcript_from_json(json.loads(line))
        except (json.JSONDecodeError, ProtocolError) as exc:
            raise ProtocolError(f"line {n}: {exc}") from None
        if t is not None:
            meeting.add(t)
    return n


# ------------------------------------------------------------------------------ rendering
def clock(seconds: float) -> str:
    """``MM:SS`` of a stream time (whole seconds, floored; minutes may exceed 59)."""
    total = int(max(0.0, seconds)) if math.isfinite(seconds) else 0
    return f"{total // 60:02d}:{total % 60:02d}"


def cue_time(seconds: float, sep: str = ".") -> str:
    """``HH:MM:SS.mmm`` (WebVTT; ``sep=","`` gives SubRip's ``HH:MM:SS,mmm``)."""
    ms = round(max(0.0, seconds) * 1000) if math.isfinite(seconds) else 0
    h, rest = divmod(ms, 3_600_000)
    mi, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{mi:02d}:{s:02d}{sep}{ms:03d}"


def _cue_span(seg: Segment) -> tuple[float, float]:
    """Start and end of a cue: the end at least 1 ms after the start."""
    return seg.start_s, max(seg.end_s, seg.start_s + 0.001)


def render_text(segments: Iterable[Segment]) -> str:
    """``[MM:SS] Name: text`` lines."""
    return "".join(f"[{clock(s.start_s)}] {s.name}: {s.text}\n" for s in segments)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


VTT_HEADER = "WEBVTT\n"


def vtt_cue(index: int, seg: Segment, speakers: bool = True) -> str:
    """One WebVTT cue (blank line first), the speaker in a ``<v Name>`` span if ``speakers``."""
    start, end = _cue_span(seg)
    voice = f"<v {_vtt_escape(seg.name)}>" if speakers else ""
    return f"\n{index}\n{cue_time(start)} --> {cue_time(end)}\n{voice}{_vtt_escape(seg.text)}\n"


def srt_cue(index: int, seg: Segment, speakers: bool = True) -> str:
    """One SubRip cue, ``Name: text`` if ``speakers`` else the text alone."""
    start, end = _cue_span(seg)
    text = f"{seg.name}: {seg.text}" if speakers else seg.text
    return f"{index}\n{cue_time(start, ',')} --> {cue_time(end, ',')}\n{text}\n\n"


def render_vtt(segments: Iterable[Segment], speakers: bool = True) -> str:
    """A WebVTT document: one cue per segment (see :func:`vtt_cue`)."""
    cues = (vtt_cue(i, seg, speakers) for i, seg in enumerate(segments, 1))
    return VTT_HEADER + "".join(cues)


def render_srt(segments: Iterable[Segment], speakers: bool = True) -> str:
    """A SubRip document: numbered cues (see :func:`srt_cue`)."""
    return "".join(srt_cue(i, seg, speakers) for i, seg in enumerate(segments, 1))


def speakers_shown(meeting: Meeting) -> bool:
    """Whether cues name their speaker: with more than one participant, or one the config
    names; a lone stream's id ("s0") on every cue says nothing."""
    people = meeting.participants()
    return len(people) > 1 or any(name != sid for sid, name in people.items())


def to_json(meeting: Meeting) -> dict[str, Any]:
    """The JSON export as a map: participants and segments with word times (seconds)."""
    return {
        "participants": [{"stream_id": k, "name": v} for k, v in meeting.participants().items()],
        "segments": [
            {
                "stream_id": s.stream_id,
                "name": s.name,
                "utterance_id": s.utterance_id,
                "pass": s.passno,
                "start_s": s.start_s,
                "end_s": s.end_s,
                "text": s.text,
                "words": [dataclasses.asdict(w) for w in s.words],
            }
            for s in meeting.segments()
        ],
    }


def render(meeting: Meeting, fmt: str) -> str:
    """The merged transcript of ``meeting`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "text":
        return render_text(meeting.segments())
    if fmt == "vtt":
        return render_vtt(meeting.segments(), speakers_shown(meeting))
    if fmt == "srt":
        return render_srt(meeting.segments(), speakers_shown(meeting))
    if fmt == "json":
        return json.dumps(to_json(meeting), indent=2) + "\n"
    raise ValueError(f"unknown transcript format {fmt!r} (one of {', '.join(FORMATS)})")


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step (readers never see half a file)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------ command
def _config_names(args: argparse.Namespace) -> tuple[dict[str, str], InstancePaths]:
    """Display names from ``-c`` (if given) and the instance's paths."""
    path = getattr(args, "config", None)
    cfg = config_mod.load(path) if path else config_mod.Config()
    names = {s.stream_id: s.name for s in (cfg.streams or (cfg.source,)) if s.name}
    instance = getattr(args, "instance", None) or cfg.supervisor.instance
    return names, InstancePaths.for_instance(instance, cfg.supervisor.runtime_dir)


class _Output:
    """Where ``transcript`` writes: a file rewritten on every change, or stdout, where text
    lines and VTT/SRT cues are printed as the finals come (JSON, one document, at the end)."""

    def __init__(self, meeting: Meeting, fmt: str, out: str | None, stdout: TextIO) -> None:
        self.meeting, self.fmt, self.stdout = meeting, fmt, stdout
        self.path = Path(out) if out and out != "-" else None
        self.cues = 0
        self.header = False

    def update(self, new: Segment | None) -> None:
        """After an event: rewrite the file, or print the new line or cue (live)."""
        if self.path is not None:
            write_atomic(self.path, render(self.meeting, self.fmt))
            return
        if self.fmt == "vtt" and not self.header:
            self.stdout.write(VTT_HEADER)  # a player may open the stream before any cue
            self.header = True
        if new is None or self.fmt == "json":
            self.stdout.flush()
            return
        self.cues += 1
        speakers = speakers_shown(self.meeting)
        if self.fmt == "text":
            self.stdout.write(render_text([new]))
        elif self.fmt == "vtt":
            self.stdout.write(vtt_cue(self.cues, new, speakers))
        else:
            self.stdout.write(srt_cue(self.cues, new, speakers))
        self.stdout.flush()

    def finish(self) -> None:
        """At the end: write the file, or print the JSON export."""
        if self.path is not None:
            write_atomic(self.path, render(self.meeting, self.fmt))
        elif self.fmt == "json":
            self.stdout.write(render(self.meeting, self.fmt))
            self.stdout.flush()


def _from_json(args: argparse.Namespace, stdout: TextIO) -> int:
    names, _ = _config_names(args)
    meeting = Meeting(names)
    if args.from_json == "-":
        read_json_lines(sys.stdin, meeting)
    else:
        with open(args.from_json, encoding="utf-8") as f:
            read_json_lines(f, meeting)
    text = render(meeting, args.format)
    if args.out and args.out != "-":
        write_atomic(Path(args.out), text)
    else:
        stdout.write(text)
    return 0


def _live(args: argparse.Namespace, stdout: TextIO) -> int:
    names, paths = _config_names(args)
    require_running(paths)
    topics = ("transcript.", "supervisor.shutdown")
    with Subscriber(paths.events, topics=topics) as sub:
        status = request(paths.control, m.StatusRequest()).status
        for src in status.get("sources", []):
            if src.get("name"):
                names.setdefault(src["stream_id"], src["name"])
        meeting = Meeting(names)
        out = _Output(meeting, args.format, args.out, stdout)
        history = request(paths.control, m.HistoryRequest()).finals
        new = [seg for t in history if (seg := meeting.add(t)) is not None]
        new.sort(key=lambda s: (s.start_s, s.end_s))
        for seg in new:
            out.update(seg)
        if not new:
            out.update(None)
        if not args.no_follow:
            _follow(sub, paths, meeting, out)
        out.finish()
    return 0


def _follow(sub: Subscriber, paths: InstancePaths, meeting: Meeting, out: _Output) -> None:
    """Add live finals until the pipeline shuts down or goes away (or Ctrl-C)."""
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            item = sub.recv(LIVENESS_CHECK_S)
            if item is None:
                if paths.running_pid() is None:
                    return
                continue
            topic, msg = item
            if topic == "supervisor.shutdown":
                return
            if isinstance(msg, m.Transcript):
                seg = meeting.add(msg)
                if seg is not None or (msg.is_final and not msg.provisional):
                    out.update(seg)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the ``transcript`` options (all but ``--instance``/``-v``, which ``cli`` adds)."""
    p.add_argument("-c", "--config", help="the TOML config (participant names, instance)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format")
    p.add_argument("--out", help="write here (rewritten on every new final) instead of stdout")
    p.add_argument(
        "--from-json",
        dest="from_json",
        metavar="FILE",
        help="read `up --json` output from FILE ('-': stdin) instead of a running pipeline",
    )
    p.add_argument(
        "--no-follow", action="store_true", help="write the finals so far and exit (no live)"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m streamasr.supervisor.meeting``: the ``transcript`` command on its own."""
    p = argparse.ArgumentParser(
        prog="streamasr-transcript", description="Merged meeting transcript and exports."
    )
    add_arguments(p)
    p.add_argument("--instance", help="instance name (default: from config or 'default')")
    args = p.parse_args(argv)
    try:
        code = transcript_main(args)
        sys.stdout.flush()  # a reader gone early shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return stdout_gone()
    except (StreamAsrError, OSError, ValueError) as exc:
        print(f"streamasr: {exc}", file=sys.stderr)
        return 1


def transcript_main(args: argparse.Namespace, stdout: TextIO | None = None) -> int:
    """``streamasr-supervisor transcript``: the merged transcript of a meeting.

    ``args``: ``config`` (-c), ``instance``, ``format`` (text|vtt|srt|json), ``out`` (a
    file, rewritten on every new final; default stdout), ``from_json`` (a file of
    ``up --json`` output, or ``-`` for stdin; default: the running pipeline), ``no_follow``
    (print the finals so far and exit). Returns the exit code.

    Raises:
        NotRunning: no pipeline answered (live mode).
        ProtocolError: malformed ``--from-json`` input.
    """
    stdout = stdout or sys.stdout
    if getattr(args, "from_json", None):
        return _from_json(args, stdout)
    try:
        return _live(args, stdout)
    except InstanceNotRunning:
        raise
    except NotRunning as exc:
        raise NotRunning(f"{exc} (is the pipeline running? see `status`)") from None


if __name__ == "__main__":
    sys.exit(main())
