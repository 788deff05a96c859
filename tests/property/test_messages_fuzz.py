"""Fuzzing the message decoder: whatever arrives, ``decode`` returns a valid message or raises
ProtocolError — never another exception — and valid transcripts round-trip exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamasr.actors import messages as m
from streamasr.actors.errors import ProtocolError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KINDS = [t.KIND for t in m.MESSAGE_TYPES]

# msgpack-able leaves (raw=False decoding: str keys, bytes values travel as bin).
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.sampled_from(KINDS)
)
msgpack_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10) | st.sampled_from(KINDS), children, max_size=5)
    ),
    max_leaves=15,
)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
words = st.lists(st.tuples(st.text(max_size=10), finite, finite, finite).map(list), max_size=5)
transcripts = st.builds(
    m.Transcript,
    stream_id=st.text(max_size=10),
    utterance_id=st.text(max_size=20),
    seq=st.integers(min_value=0, max_value=2**63 - 1),
    is_final=st.booleans(),
    passno=st.integers(min_value=1, max_value=2),
    text=st.text(max_size=50),
    start_s=finite,
    end_s=finite,
    words=words,
    latency_s=finite,
    stages_s=st.dictionaries(st.text(max_size=10), finite, max_size=5),
    provisional=st.booleans(),
)

# Valid example messages of every type, for truncation and field swaps.
EXAMPLE_TRANSCRIPT = m.Transcript(
    stream_id="s0",
    utterance_id="s0:0",
    seq=1,
    is_final=True,
    passno=1,
    text="hi",
    start_s=0.0,
    end_s=1.0,
    words=[["hi", 0.0, 1.0, 0.9]],
    latency_s=0.1,
    stages_s={"capture": 0.01},
    provisional=False,
)
EXAMPLES: list[Any] = [
    m.Ready(actor_id="a", pid=1),
    m.Heartbeat(
        actor_id="a",
        pid=1,
        t_ns=2,
        rss_bytes=3,
        cpu_percent=4.0,
        state="ok",
        counters={"c": 1},
        gauges={"g": 1.5},
    ),
    m.SetChunk(chunk_ms=100),
    m.Start(),
    m.Stop(reason="r"),
    m.EndOfStream(actor_id="a", stream_id="s0", end_frame=10),
    m.Gap(stream_id="s0", start_frame=1, end_frame=2, reason="r"),
    m.ActorError(actor_id="a", message="boom"),
    m.RefineJob(
        stream_id="s0",
        utterance_id="s0:0",
        start_frame=0,
        end_frame=16000,
        sample_rate_hz=16000,
        t_endpoint_ns=5,
        first_pass=EXAMPLE_TRANSCRIPT,
    ),
    m.StatusRequest(),
    m.StatusReply(status={"actors": {}}),
    m.StopRequest(reason="r"),
    m.HistoryRequest(),
    m.HistoryReply(finals=[EXAMPLE_TRANSCRIPT]),
    EXAMPLE_TRANSCRIPT,
    m.Lifecycle(topic="actor.a.ready", fields={"pid": 1}, t_ns=3),
    m.StreamEnded(stream_id="s0", end_s=1.0),
    m.WakeDetected("s0", "s0:wake:16000", "hey computer", 0.5, 1.0, 1.4, 3.0, 7),
    m.WakeEnded("s0", "s0:wake:16000", "final", 2.0),
    m.SpeechPaused("s0", "s0:16000", 16000, 40000, 16000),
    m.StreamRefused(stream_id="g1", reason="full"),
    m.Promote(),
    m.Intent("s0", "s0:1", "", "HassTurnOn", {"area": "kitchen"}, "t", 0.9, "", "", 4),
    m.ActionDone("s0", "s0:1", "HassTurnOn", "command", True, 0, "out", "", 0.1),
    m.Reply("s0", "s0:1", "Done.", 0.5, "default", "", 5),
    m.WakeMute("s0", 6),
    m.StreamAttach(stream_id="g1", ring="streamasr-x-g1-pcm", reader=0, bell="ipc:///r/b"),
    m.StreamDetach(stream_id="g1"),
    m.OpenStream(stream_id="g1", name="web"),
    m.StreamOpened(
        stream_id="g1", ring="streamasr-x-g1-pcm", bell="ipc:///r/b", sample_rate_hz=16000
    ),
]
assert {type(e) for e in EXAMPLES} == set(m.MESSAGE_TYPES)


def _decode_is_total(data: bytes) -> None:
    """``decode`` returns a schema message that re-encodes, or raises ProtocolError."""
    try:
        msg = m.decode(data)
    except ProtocolError as exc:
        assert str(exc)  # says what was wrong
        return
    assert type(msg) in m.MESSAGE_TYPES
    again = m.decode(m.encode(msg))  # a decoded message is a valid one
    assert type(again) is type(msg)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    _decode_is_total(data)


@FUZZ
@given(st.sampled_from(EXAMPLES), st.data())
def test_truncated_valid_messages(msg: Any, data: st.DataObject) -> None:
    full = m.encode(msg)
    cut = data.draw(st.integers(min_value=0, max_value=len(full) - 1), label="cut")
    with_tail = data.draw(st.booleans(), label="garbage tail")
    chunk = full[:cut] + (data.draw(st.binary(max_size=8)) if with_tail else b"")
    _decode_is_total(chunk)
    if not with_tail:  # a strict prefix of one msgpack object never decodes
        try:
            m.decode(chunk)
        except ProtocolError:
            pass
        else:
            raise AssertionError(f"truncated {msg.KIND} at {cut} decoded")


@FUZZ
@given(msgpack_values)
def test_random_msgpack_objects(obj: Any) -> None:
    _decode_is_total(msgpack.packb(obj, use_bin_type=True))


@FUZZ
@given(st.sampled_from(KINDS), st.dictionaries(st.text(max_size=12), msgpack_values, max_size=6))
def test_random_maps_with_a_known_kind(kind: str, body: dict[str, Any]) -> None:
    _decode_is_total(msgpack.packb({**body, "kind": kind}, use_bin_type=True))


@FUZZ
@given(st.sampled_from([e for e in EXAMPLES if dataclasses.fields(e)]), st.data())
def test_field_type_swaps(msg: Any, data: st.DataObject) -> None:
    body = m.to_dict(msg)
    names = [k for k in body if k != "kind"]
    swapped = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    for name in swapped:
        body[name] = data.draw(msgpack_values, label=name)
    _decode_is_total(msgpack.packb(body, use_bin_type=True))


@FUZZ
@given(st.sampled_from([e for e in EXAMPLES if dataclasses.fields(e)]), st.data())
def test_field_removed_or_added(msg: Any, data: st.DataObject) -> None:
    body = m.to_dict(msg)
    names = [k for k in body if k != "kind"]
    if data.draw(st.booleans(), label="remove"):
        del body[data.draw(st.sampled_from(names))]
    else:
        extra = data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in body))
        body[extra] = data.draw(msgpack_values)
    try:
        m.decode(msgpack.packb(body, use_bin_type=True))
    except ProtocolError as exc:
        assert msg.KIND in str(exc)
    else:
        raise AssertionError("a message with a missing or unknown field decoded")


@FUZZ
@given(transcripts)
def test_transcript_round_trip(t: m.Transcript) -> None:
    assert m.decode(m.encode(t)) == t
    assert m.decode(m.encode(t), m.Transcript) == t
    assert m.unpack(m.pack("transcript.s0", t), m.Transcript) == ("transcript.s0", t)


@FUZZ
@given(st.lists(transcripts, max_size=4))
def test_history_reply_round_trip(finals: list[m.Transcript]) -> None:
    reply = m.HistoryReply(finals=finals)
    assert m.decode(m.encode(reply)) == reply
