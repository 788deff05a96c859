"""The supervisor forgets run-time streams once they have ended (issue 20, item 5).

The real supervisor (its message handler, run-time streams with real shared-memory rings,
ROUTER and PUB sockets, the status builder) serves many streams one after another; no actor
processes: each actor's messages are handed to the handler as the ROUTER socket would
deliver them. The status map must not grow with the streams ended, and the totals must
count them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest

from streamasr.actors import messages as m
from streamasr.actors.frontdoors import metrics
from streamasr.supervisor import restart_policy as rp
from streamasr.supervisor import restart_types as rt
from streamasr.supervisor.config import from_mapping
from streamasr.supervisor.manager import Supervisor
from streamasr.supervisor.processes import Child
from streamasr.supervisor.status import StatusBuilder
from streamasr.supervisor.streams import ENDED_KEYS, StreamBook

pytestmark = pytest.mark.timeout(60)

RATE_HZ = 16000


class ExitedProc:
    """What the supervisor reads of an actor process: a pid, and that it is not running."""

    pid = 0

    def poll(self) -> int:
        """Exit status (the harness never runs a process)."""
        return 0


@dataclass
class Harness:
    """A prepared supervisor whose actors are played by the test."""

    sup: Supervisor
    state: rt.SupervisorState
    published: list[tuple[str, Any]] = field(default_factory=list)

    def deliver(self, actor_id: str, msg: Any) -> None:
        """``msg`` as if ``actor_id`` had sent it on the control socket."""
        self.state = self.sup._handle(self.state, actor_id.encode(), msg)

    def status(self) -> dict[str, Any]:
        """The status map the supervisor would publish now."""
        status: dict[str, Any] = self.sup.status.build(self.state)
        return status

    def serve(self, stream_id: str) -> None:
        """One gateway stream from open to end: a partial, a provisional final, its refine
        job and accurate final, a capture gap, then the end of stream along its chain."""
        self.deliver("gateway", m.OpenStream(stream_id, "client"))
        dyn = self.sup.dynamic
        assert dyn is not None and stream_id in dyn.streams, "the open was refused"
        chain = dyn.chain(stream_id)
        assert chain is not None and chain[0] == "gateway" and chain[-1] == "refine"
        worker, utt = chain[1], f"{stream_id}:u1"
        self.deliver(worker, transcript(stream_id, utt, is_final=False))
        first = transcript(stream_id, utt, is_final=True, provisional=True)
        self.deliver(worker, first)
        job = m.RefineJob(stream_id, utt, 8000, 24000, RATE_HZ, 0, first)
        self.deliver(worker, job)
        self.deliver("gateway", m.Gap(stream_id, 100, 200, "test"))
        self.deliver("refine", transcript(stream_id, utt, is_final=True, passno=2))
        for actor_id in chain:
            self.deliver(actor_id, m.EndOfStream(actor_id, stream_id, 32000))


def transcript(
    stream_id: str, utt: str, *, is_final: bool, provisional: bool = False, passno: int = 1
) -> m.Transcript:
    """An utterance at 0.5-1.5 s of its stream."""
    return m.Transcript(
        stream_id=stream_id,
        utterance_id=utt,
        seq=0,
        is_final=is_final,
        passno=passno,
        text="turn on the light",
        start_s=0.5,
        end_s=1.5,
        words=[],
        latency_s=0.1,
        stages_s={},
        provisional=provisional,
    )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """A gateway-only pipeline (accurate finals) prepared but with no actor running."""
    cfg = from_mapping(
        {
            "supervisor": {
                "instance": f"t{uuid.uuid4().hex[:10]}",
                "runtime_dir": str(tmp_path / "run"),
            },
            "source": {"kind": "none"},
            "gateway": {"enabled": True, "max_streams": 4},
            "refine": {"finals": "accurate"},
        }
    )
    published: list[tuple[str, Any]] = []
    sup = Supervisor(cfg, sink=lambda topic, msg: published.append((topic, msg)))
    try:
        plan = sup._prepare()
        sup._plan = plan
        sup._open_sockets()
        sup.status = StatusBuilder(sup, plan)
        for actor in plan.actors:
            sup.children[actor.actor_id] = Child(ExitedProc())  # type: ignore[arg-type]
        state = rp.initial_state(rt.SupervisorSpec(children=plan.children))
        yield Harness(sup, state, published)
    finally:
        sup._teardown()
    assert sup.paths.segments() == []


def packed_size(status: dict[str, Any]) -> int:
    """Bytes of the status map on the wire (msgpack, as StatusReply carries it)."""
    return len(msgpack.packb(status, use_bin_type=True))


def test_status_map_does_not_grow_with_the_streams_ended(harness: Harness) -> None:
    for i in range(5):
        harness.serve(f"ws-{i}")
    first = harness.status()
    for i in range(5, 205):
        harness.serve(f"ws-{i}")
    last = harness.status()
    assert last["streams"] == {} and last["rings"] == [] and last["gaps"] == {}
    assert last["ended_streams"] == {
        "streams": 205,
        "events": 3 * 205,  # partial, provisional final, accurate final
        "finals": 205,
        "duplicates": 0,
        "refine_pending": 0,
        "partials_suppressed": 0,
        "masked_words": 0,
        "gaps": 205,
    }
    # 200 more streams ended: only a few digits longer (counts), not ~200 entries longer
    assert packed_size(last) - packed_size(first) < 64, (packed_size(first), packed_size(last))
    assert "205 finals" in harness.sup.status.summary(harness.state)
    text = metrics.render(last, {}, {}).decode()
    assert 'streamasr_ended_streams_total{counter="streams"} 205.0' in text.splitlines()


def test_a_reused_stream_id_starts_afresh(harness: Harness) -> None:
    # a restarted gateway numbers its streams from ws-1 again
    harness.serve("ws-1")
    harness.serve("ws-1")
    finals = [
        msg
        for topic, msg in harness.published
        if topic == "transcript.ws-1" and msg.is_final and not msg.provisional
    ]
    # the second stream's final (same times as the first's) is not taken for a repeat
    assert [(t.seq, t.passno) for t in finals] == [(3, 2), (3, 2)]
    assert harness.status()["ended_streams"]["streams"] == 2


def test_a_stream_that_published_nothing_still_counts_as_ended() -> None:
    book = StreamBook()
    book.forget("ws-9", gaps=2)
    assert book.counters() == {}
    assert book.ended() == dict.fromkeys(ENDED_KEYS, 0) | {"streams": 1, "gaps": 2}
