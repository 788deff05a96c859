"""The refine actor's decisions: load shedding past the budget, which finals get the extra
wide view, and the order finals leave in. Real messages, a real Speculator, ring and Whisper;
the actor's runtime is reduced to what these functions touch (counters, gauges, outbox)."""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import soundfile as sf

from streamasr.actors import messages as m
from streamasr.actors.delay import DelayOverride
from streamasr.actors.refine.actor import _Actor, _receive, _refine, _shed, _thorough
from streamasr.actors.refine.options import RefineOptions, RefineOutput
from streamasr.actors.refine.refiner import WhisperRefiner
from streamasr.actors.refine.speculation import Speculator
from streamasr.actors.refine.stream import RefineStream
from streamasr.ringbuf import Ring

UTTERANCES = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio" / "utterances"

OUT = RefineOutput("Set a timer for 10 minutes.", (), 0.01, -0.3, 1.2, 6.0, 0.1)
BUDGET_S = 5.0


class _Rt:
    """The runtime's counters and outbox."""

    def __init__(self, runtime_dir: Path | None = None) -> None:
        self.counters: dict[str, int] = {"fallbacks": 0, "refined": 0, "no_speech": 0}
        self.gauges: dict[str, float] = {}
        self.sent: list[Any] = []
        self.runtime_dir = runtime_dir

    def send(self, msg: Any) -> None:
        self.sent.append(msg)


def _job(uid: str, start: int, end: int, waited_s: float, sid: str = "s0") -> m.RefineJob:
    first = m.Transcript(sid, uid, 0, True, 1, "should the time", 0.0, 1.0, [], 0.0, {}, True)
    t_endpoint_ns = time.time_ns() - int(waited_s * 1e9)
    return m.RefineJob(sid, uid, start, end, 16000, t_endpoint_ns, first)


def _act(
    budget_s: float | None = BUDGET_S, no_deadline: tuple[str, ...] = (), whisper_led: bool = False
) -> Any:
    return SimpleNamespace(
        rt=_Rt(),
        early=Speculator(),
        streams={},
        budget_s=budget_s,
        no_deadline=set(no_deadline),
        whisper_led=whisper_led,
    )


def test_a_job_past_its_budget_is_answered_from_its_early_transcription() -> None:
    act = _act()
    early = _job("s0:100", 100, 900, waited_s=2 * BUDGET_S)
    plain = _job("s0:2000", 2000, 2900, waited_s=2 * BUDGET_S)
    fresh = _job("s0:4000", 4000, 4900, waited_s=0.0)
    act.early.paused(m.SpeechPaused("s0", "s0:100", 100, 900, 16000), now_s=0.0)
    msg = act.early.next_pause(now_s=0.0)
    act.early.store(msg, OUT, compute_s=0.3)
    queue = deque([early, plain, fresh])
    _shed(cast(Any, act), queue, max_queue=16, budget_s=BUDGET_S)
    # the first had its accurate final already: sent as pass 2; the second falls back
    assert [(t.utterance_id, t.passno, t.text) for t in act.rt.sent] == [
        ("s0:100", 2, OUT.text),
        ("s0:2000", 1, "should the time"),
    ]
    assert act.rt.counters["fallbacks"] == 1 and act.rt.counters["over_budget"] == 1
    assert list(queue) == [fresh]  # within its budget: waits for Whisper


def test_jobs_of_a_stream_without_deadline_are_never_shed_nor_counted() -> None:
    """An uploaded file (``OpenStream.deadline`` false) waits for Whisper however long; the
    live stream's jobs behind it keep their budget and their queue bound."""
    act = _act(no_deadline=("up",))
    upload = [_job(f"up:{k}", k, k + 1, waited_s=9 * BUDGET_S, sid="up") for k in range(3)]
    stale = _job("s0:100", 100, 900, waited_s=2 * BUDGET_S)
    fresh = [_job(f"s0:{k}", k, k + 1, waited_s=0.0) for k in range(2000, 2002)]
    queue = deque([upload[0], stale, upload[1], *fresh, upload[2]])
    _shed(cast(Any, act), queue, max_queue=3, budget_s=BUDGET_S)
    # six jobs queued, three of them live: within the bound; the stale one is past its budget
    assert [t.utterance_id for t in act.rt.sent] == ["s0:100"]
    assert act.rt.counters["over_budget"] == 1 and "over_queue" not in act.rt.counters
    assert list(queue) == [upload[0], upload[1], *fresh, upload[2]]
    fresh.append(_job("s0:2002", 2002, 2003, waited_s=0.0))
    queue.append(fresh[-1])
    _shed(cast(Any, act), queue, max_queue=2, budget_s=BUDGET_S)  # three live: one too many
    assert [t.utterance_id for t in act.rt.sent] == ["s0:100", "s0:2000"]
    assert act.rt.counters["over_queue"] == 1
    assert list(queue) == [upload[0], upload[1], fresh[1], upload[2], fresh[2]]


def test_the_extra_wide_view_only_where_finals_have_no_deadline() -> None:
    assert _thorough(_act(budget_s=None))  # --fast files: accuracy first
    assert not _thorough(_act())  # live streams: latency first
    assert _thorough(_act(no_deadline=("up",)), "up")  # an uploaded file: as --fast
    assert not _thorough(_act(no_deadline=("up",)), "s0")
    assert _thorough(_act(whisper_led=True))  # no first-pass text to fall back on


def test_finals_of_a_batch_leave_in_batch_order(tmp_path: Path) -> None:
    """A job answered from its early transcription waits for the decode of the job before
    it in the batch: a stream's finals never overtake each other (a Wyoming transcript joins
    them in arrival order)."""
    speech, rate = sf.read(UTTERANCES / "utt01_slt.wav", dtype="float32")
    assert rate == 16000
    ring = Ring.create(
        f"streamasr-test-ra-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        1 << 18,
        np.float32,
        (1,),
        max_readers=2,
        sample_rate_hz=rate,
    )
    reader = Ring.attach(ring.name, reader=1)  # the refine actor's slot
    try:
        n = len(speech)
        ring.write(np.concatenate([speech, np.zeros(3 * rate, np.float32)])[:, None])
        rt = _Rt(tmp_path)
        refiner = WhisperRefiner(RefineOptions(wide_view=False))
        act = _Actor(
            cast(Any, rt),
            {"s0": RefineStream(reader)},
            refiner,
            DelayOverride(cast(Any, rt), "refine", 0.0),
            0.2,
            None,
        )
        decoded = _job("s0:0", 0, n, waited_s=0.0)
        early = _job(f"s0:{n + rate}", n + rate, n + 2 * rate, waited_s=0.0)
        act.early.paused(
            m.SpeechPaused("s0", early.utterance_id, n + rate, n + 2 * rate, rate), 0.0
        )
        msg = act.early.next_pause(now_s=0.0)
        act.early.store(msg, OUT, compute_s=0.3)
        _refine(act, [decoded, early])
    finally:
        reader.close()
        ring.close()
        ring.unlink()
    sent = [(t.utterance_id, t.passno) for t in rt.sent]
    assert sent == [("s0:0", 2), (early.utterance_id, 2)]
    assert "kitchen" in rt.sent[0].text.lower() and rt.sent[1].text == OUT.text
    assert rt.counters["refined"] == 2


def test_a_job_before_its_stream_attaches_is_left_to_the_resend(tmp_path: Path) -> None:
    """A restarted refine actor gets the jobs sent while it started before the run-time
    streams' StreamAttach (sent when it is Ready, followed by every pending job again): such
    a job is dropped, not fallen back for want of audio; the re-sent one is queued, and the
    attachment says whether the stream has a deadline."""
    ring = Ring.create(
        f"streamasr-test-ra-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        1 << 12,
        np.float32,
        (1,),
        max_readers=2,
        sample_rate_hz=16000,
    )
    rt = _Rt(tmp_path)
    act = _Actor(
        cast(Any, rt), {}, cast(Any, None), DelayOverride(cast(Any, rt), "refine", 0.0), 0.2, None
    )
    queue: deque[m.RefineJob] = deque()
    job = _job("up:0", 0, 1600, waited_s=0.0, sid="up")
    try:
        _receive(act, [job], queue, [])
        assert not queue and not rt.sent and rt.counters["jobs_before_attach"] == 1
        attach = m.StreamAttach("up", ring.name, 1, "", deadline=False)
        _receive(act, [attach, job], queue, [])
        assert list(queue) == [job] and act.no_deadline == {"up"}
        _receive(act, [m.StreamDetach("up")], queue, [])
        assert act.no_deadline == set()
    finally:
        for st in act.streams.values():
            st.ring.close()
        ring.close()
        ring.unlink()
