"""Golden wire tests and decode error cases for the message schema (actors/messages.py).

Each golden case holds three things written out by hand: an example instance, the map it must
travel as (``kind`` first, then the fields in declaration order, wire names), and the exact
msgpack bytes of that map. The test checks that the hand-written map packs to the literal (so
the literal is right), that ``encode`` of the instance gives the literal byte for byte, and that
``decode`` of the literal gives the instance back.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
import pytest

from streamasr.actors import messages as m
from streamasr.actors.errors import ProtocolError, StreamAsrError

# ------------------------------------------------------------------------------ examples
TRANSCRIPT = m.Transcript(
    stream_id="s0",
    utterance_id="s0:16000",
    seq=7,
    is_final=True,
    passno=1,
    text="hello world",
    start_s=1.0,
    end_s=2.5,
    words=[["hello", 1.0, 1.5, 0.9], ["world", 1.5, 2.5, 0.8]],
    latency_s=0.25,
    stages_s={"capture": 0.1, "inference": 0.15},
    provisional=True,
    wake_id="s0:wake:12000",
    committed_words=0,
    second_pass_words=1,
    language="en",
)
TRANSCRIPT_MAP: dict[str, Any] = {
    "kind": "transcript",
    "stream_id": "s0",
    "utterance_id": "s0:16000",
    "seq": 7,
    "is_final": True,
    "pass": 1,
    "text": "hello world",
    "start_s": 1.0,
    "end_s": 2.5,
    "words": [["hello", 1.0, 1.5, 0.9], ["world", 1.5, 2.5, 0.8]],
    "latency_s": 0.25,
    "stages_s": {"capture": 0.1, "inference": 0.15},
    "provisional": True,
    "wake_id": "s0:wake:12000",
    "committed_words": 0,
    "second_pass_words": 1,
    "language": "en",
}
TRANSCRIPT_BYTES = (
    b"\xde\x00\x11\xa4kind\xaatranscript\xa9stream_id\xa2s0\xacutterance_id\xa8s0:16000\xa3seq\x07"
    b"\xa8is_final\xc3\xa4pass\x01\xa4text\xabhello world"
    b"\xa7start_s\xcb?\xf0\x00\x00\x00\x00\x00\x00\xa5end_s\xcb@\x04\x00\x00\x00\x00\x00\x00"
    b"\xa5words\x92\x94\xa5hello\xcb?\xf0\x00\x00\x00\x00\x00\x00\xcb?\xf8\x00\x00\x00\x00\x00\x00"
    b"\xcb?\xec\xcc\xcc\xcc\xcc\xcc\xcd\x94\xa5world\xcb?\xf8\x00\x00\x00\x00\x00\x00"
    b"\xcb@\x04\x00\x00\x00\x00\x00\x00\xcb?\xe9\x99\x99\x99\x99\x99\x9a"
    b"\xa9latency_s\xcb?\xd0\x00\x00\x00\x00\x00\x00"
    b"\xa8stages_s\x82\xa7capture\xcb?\xb9\x99\x99\x99\x99\x99\x9a\xa9inference\xcb?\xc3333333"
    b"\xabprovisional\xc3\xa7wake_id\xads0:wake:12000"
    b"\xafcommitted_words\x00\xb1second_pass_words\x01\xa8language\xa2en"
)

REFINE_JOB = m.RefineJob(
    stream_id="s0",
    utterance_id="s0:16000",
    start_frame=16000,
    end_frame=40000,
    sample_rate_hz=16000,
    t_endpoint_ns=123456789,
    first_pass=TRANSCRIPT,
)

GOLDEN: list[Any] = [
    pytest.param(
        m.Ready(actor_id="capture", pid=4242),
        {"kind": "ready", "actor_id": "capture", "pid": 4242},
        b"\x83\xa4kind\xa5ready\xa8actor_id\xa7capture\xa3pid\xcd\x10\x92",
        id="ready",
    ),
    pytest.param(
        m.Heartbeat(
            actor_id="feature",
            pid=77,
            t_ns=1700000000123456789,
            rss_bytes=52428800,
            cpu_percent=12.5,
            state="running",
            counters={"rejected_chunks": 2},
            gauges={"chunk_ms": 100.0},
        ),
        {
            "kind": "heartbeat",
            "actor_id": "feature",
            "pid": 77,
            "t_ns": 1700000000123456789,
            "rss_bytes": 52428800,
            "cpu_percent": 12.5,
            "state": "running",
            "counters": {"rejected_chunks": 2},
            "gauges": {"chunk_ms": 100.0},
        },
        b"\x89\xa4kind\xa9heartbeat\xa8actor_id\xa7feature\xa3pidM"
        b"\xa4t_ns\xcf\x17\x97\x9c\xfe=\x85\xcd\x15\xa9rss_bytes\xce\x03 \x00\x00"
        b"\xabcpu_percent\xcb@)\x00\x00\x00\x00\x00\x00\xa5state\xa7running"
        b"\xa8counters\x81\xafrejected_chunks\x02"
        b"\xa6gauges\x81\xa8chunk_ms\xcb@Y\x00\x00\x00\x00\x00\x00",
        id="heartbeat",
    ),
    pytest.param(
        m.SetChunk(chunk_ms=150),
        {"kind": "set_chunk", "chunk_ms": 150},
        b"\x82\xa4kind\xa9set_chunk\xa8chunk_ms\xcc\x96",
        id="set_chunk",
    ),
    pytest.param(m.Start(), {"kind": "start"}, b"\x81\xa4kind\xa5start", id="start"),
    pytest.param(
        m.Stop(reason="down"),
        {"kind": "stop", "reason": "down"},
        b"\x82\xa4kind\xa4stop\xa6reason\xa4down",
        id="stop",
    ),
    pytest.param(
        m.EndOfStream(actor_id="capture", stream_id="s0", end_frame=480000),
        {"kind": "eos", "actor_id": "capture", "stream_id": "s0", "end_frame": 480000},
        b"\x84\xa4kind\xa3eos\xa8actor_id\xa7capture\xa9stream_id\xa2s0"
        b"\xa9end_frame\xce\x00\x07S\x00",
        id="eos",
    ),
    pytest.param(
        m.Gap(stream_id="s0", start_frame=1600, end_frame=3200, reason="overrun"),
        {
            "kind": "gap",
            "stream_id": "s0",
            "start_frame": 1600,
            "end_frame": 3200,
            "reason": "overrun",
        },
        b"\x85\xa4kind\xa3gap\xa9stream_id\xa2s0\xabstart_frame\xcd\x06@"
        b"\xa9end_frame\xcd\x0c\x80\xa6reason\xa7overrun",
        id="gap",
    ),
    pytest.param(
        m.ActorError(actor_id="inference", message="model missing"),
        {"kind": "actor_error", "actor_id": "inference", "message": "model missing"},
        b"\x83\xa4kind\xabactor_error\xa8actor_id\xa9inference\xa7message\xadmodel missing",
        id="actor_error",
    ),
    pytest.param(
        REFINE_JOB,
        {
            "kind": "refine_job",
            "stream_id": "s0",
            "utterance_id": "s0:16000",
            "start_frame": 16000,
            "end_frame": 40000,
            "sample_rate_hz": 16000,
            "t_endpoint_ns": 123456789,
            "first_pass": TRANSCRIPT_MAP,
            "continued": False,
        },
        b"\x89\xa4kind\xaarefine_job\xa9stream_id\xa2s0\xacutterance_id\xa8s0:16000"
        b"\xabstart_frame\xcd>\x80\xa9end_frame\xcd\x9c@\xaesample_rate_hz\xcd>\x80"
        b"\xadt_endpoint_ns\xce\x07[\xcd\x15\xaafirst_pass"
        + TRANSCRIPT_BYTES
        + b"\xa9continued\xc2",
        id="refine_job",
    ),
    pytest.param(
        m.StatusRequest(),
        {"kind": "status_request"},
        b"\x81\xa4kind\xaestatus_request",
        id="status_request",
    ),
    pytest.param(
        m.StatusReply(
            status={"actors": {"capture": {"pid": 1, "state": "running"}}, "uptime_s": 3.5}
        ),
        {
            "kind": "status_reply",
            "status": {"actors": {"capture": {"pid": 1, "state": "running"}}, "uptime_s": 3.5},
        },
        b"\x82\xa4kind\xacstatus_reply\xa6status\x82\xa6actors\x81\xa7capture\x82\xa3pid\x01"
        b"\xa5state\xa7running\xa8uptime_s\xcb@\x0c\x00\x00\x00\x00\x00\x00",
        id="status_reply",
    ),
    pytest.param(
        m.StopRequest(reason="user"),
        {"kind": "stop_request", "reason": "user"},
        b"\x82\xa4kind\xacstop_request\xa6reason\xa4user",
        id="stop_request",
    ),
    pytest.param(
        m.HistoryRequest(),
        {"kind": "history_request"},
        b"\x81\xa4kind\xafhistory_request",
        id="history_request",
    ),
    pytest.param(
        m.HistoryReply(finals=[TRANSCRIPT]),
        {"kind": "history_reply", "finals": [TRANSCRIPT_MAP]},
        b"\x82\xa4kind\xadhistory_reply\xa6finals\x91" + TRANSCRIPT_BYTES,
        id="history_reply",
    ),
    pytest.param(TRANSCRIPT, TRANSCRIPT_MAP, TRANSCRIPT_BYTES, id="transcript"),
    pytest.param(
        m.Lifecycle(
            topic="actor.capture.restarted", fields={"restarts": 1, "exit_code": -9}, t_ns=99
        ),
        {
            "kind": "lifecycle",
            "topic": "actor.capture.restarted",
            "fields": {"restarts": 1, "exit_code": -9},
            "t_ns": 99,
        },
        b"\x84\xa4kind\xa9lifecycle\xa5topic\xb7actor.capture.restarted"
        b"\xa6fields\x82\xa8restarts\x01\xa9exit_code\xf7\xa4t_nsc",
        id="lifecycle",
    ),
    pytest.param(
        m.StreamEnded(stream_id="s0", end_s=12.75),
        {"kind": "stream_ended", "stream_id": "s0", "end_s": 12.75},
        b"\x83\xa4kind\xacstream_ended\xa9stream_id\xa2s0\xa5end_s\xcb@)\x80\x00\x00\x00\x00\x00",
        id="stream_ended",
    ),
    pytest.param(
        m.StreamAttach(
            stream_id="g1",
            ring="streamasr-x-g1-pcm",
            reader=0,
            bell="ipc:///r/b",
            gate="detect",
            deadline=False,
        ),
        {
            "kind": "stream_attach",
            "stream_id": "g1",
            "ring": "streamasr-x-g1-pcm",
            "reader": 0,
            "bell": "ipc:///r/b",
            "gate": "detect",
            "deadline": False,
        },
        b"\x87\xa4kind\xadstream_attach\xa9stream_id\xa2g1\xa4ring\xb2streamasr-x-g1-pcm"
        b"\xa6reader\x00\xa4bell\xaaipc:///r/b\xa4gate\xa6detect\xa8deadline\xc2",
        id="stream_attach",
    ),
    pytest.param(
        m.StreamDetach(stream_id="g1"),
        {"kind": "stream_detach", "stream_id": "g1"},
        b"\x82\xa4kind\xadstream_detach\xa9stream_id\xa2g1",
        id="stream_detach",
    ),
    pytest.param(
        m.OpenStream(stream_id="g1", name="web", gate="detect", deadline=False),
        {
            "kind": "open_stream",
            "stream_id": "g1",
            "name": "web",
            "gate": "detect",
            "deadline": False,
        },
        b"\x85\xa4kind\xabopen_stream\xa9stream_id\xa2g1\xa4name\xa3web\xa4gate\xa6detect"
        b"\xa8deadline\xc2",
        id="open_stream",
    ),
    pytest.param(
        m.WakeDetected(
            stream_id="s0",
            wake_id="s0:wake:48000",
            phrase="hey computer",
            start_s=2.0,
            end_s=3.0,
            detected_s=3.5,
            score=4.5,
            t_ns=1700000000000000000,
        ),
        {
            "kind": "wake_detected",
            "stream_id": "s0",
            "wake_id": "s0:wake:48000",
            "phrase": "hey computer",
            "start_s": 2.0,
            "end_s": 3.0,
            "detected_s": 3.5,
            "score": 4.5,
            "t_ns": 1700000000000000000,
        },
        b"\x89\xa4kind\xadwake_detected\xa9stream_id\xa2s0\xa7wake_id\xads0:wake:48000"
        b"\xa6phrase\xachey computer\xa7start_s\xcb@\x00\x00\x00\x00\x00\x00\x00"
        b"\xa5end_s\xcb@\x08\x00\x00\x00\x00\x00\x00\xaadetected_s\xcb@\x0c\x00\x00\x00\x00\x00\x00"
        b"\xa5score\xcb@\x12\x00\x00\x00\x00\x00\x00\xa4t_ns\xcf\x17\x97\x9c\xfe6*\x00\x00",
        id="wake_detected",
    ),
    pytest.param(
        m.SpeechPaused(
            stream_id="s0",
            utterance_id="s0:16000",
            start_frame=16000,
            end_frame=40000,
            sample_rate_hz=16000,
        ),
        {
            "kind": "speech_paused",
            "stream_id": "s0",
            "utterance_id": "s0:16000",
            "start_frame": 16000,
            "end_frame": 40000,
            "sample_rate_hz": 16000,
        },
        b"\x86\xa4kind\xadspeech_paused\xa9stream_id\xa2s0\xacutterance_id\xa8s0:16000"
        b"\xabstart_frame\xcd>\x80\xa9end_frame\xcd\x9c@\xaesample_rate_hz\xcd>\x80",
        id="speech_paused",
    ),
    pytest.param(
        m.WakeEnded(stream_id="s0", wake_id="s0:wake:48000", reason="timeout", end_s=8.0),
        {
            "kind": "wake_ended",
            "stream_id": "s0",
            "wake_id": "s0:wake:48000",
            "reason": "timeout",
            "end_s": 8.0,
        },
        b"\x85\xa4kind\xaawake_ended\xa9stream_id\xa2s0\xa7wake_id\xads0:wake:48000"
        b"\xa6reason\xa7timeout\xa5end_s\xcb@ \x00\x00\x00\x00\x00\x00",
        id="wake_ended",
    ),
    pytest.param(
        m.StreamOpened(
            stream_id="g1", ring="streamasr-x-g1-pcm", bell="ipc:///r/b", sample_rate_hz=16000
        ),
        {
            "kind": "stream_opened",
            "stream_id": "g1",
            "ring": "streamasr-x-g1-pcm",
            "bell": "ipc:///r/b",
            "sample_rate_hz": 16000,
        },
        b"\x85\xa4kind\xadstream_opened\xa9stream_id\xa2g1\xa4ring\xb2streamasr-x-g1-pcm\xa4bell\xaaipc:///r/b\xaesample_rate_hz\xcd>\x80",
        id="stream_opened",
    ),
    pytest.param(
        m.StreamRefused(stream_id="g1", reason="stream limit reached (16)"),
        {"kind": "stream_refused", "stream_id": "g1", "reason": "stream limit reached (16)"},
        b"\x83\xa4kind\xaestream_refused\xa9stream_id\xa2g1\xa6reason\xb9stream limit reached (16)",
        id="stream_refused",
    ),
    pytest.param(m.Promote(), {"kind": "promote"}, b"\x81\xa4kind\xa7promote", id="promote"),
    pytest.param(
        m.Intent(
            stream_id="mic",
            utterance_id="mic:100",
            wake_id="mic:wake:90",
            name="HassTurnOn",
            slots={"area": "kitchen"},
            text="Turn on the kitchen light.",
            confidence=0.9,
            reason="",
            guess="",
            t_ns=7,
        ),
        {
            "kind": "intent",
            "stream_id": "mic",
            "utterance_id": "mic:100",
            "wake_id": "mic:wake:90",
            "name": "HassTurnOn",
            "slots": {"area": "kitchen"},
            "text": "Turn on the kitchen light.",
            "confidence": 0.9,
            "reason": "",
            "guess": "",
            "t_ns": 7,
        },
        b"\x8b\xa4kind\xa6intent\xa9stream_id\xa3mic\xacutterance_id\xa7mic:100\xa7wake_id"
        b"\xabmic:wake:90\xa4name\xaaHassTurnOn\xa5slots\x81\xa4area\xa7kitchen\xa4text"
        b"\xbaTurn on the kitchen light.\xaaconfidence\xcb?\xec\xcc\xcc\xcc\xcc\xcc\xcd"
        b"\xa6reason\xa0\xa5guess\xa0\xa4t_ns\x07",
        id="intent",
    ),
    pytest.param(
        m.ActionDone(
            stream_id="mic",
            utterance_id="mic:100",
            intent="HassTurnOn",
            action="command",
            ok=False,
            status=-1,
            output="",
            error="timed out after 5 s",
            duration_s=5.0,
        ),
        {
            "kind": "action_done",
            "stream_id": "mic",
            "utterance_id": "mic:100",
            "intent": "HassTurnOn",
            "action": "command",
            "ok": False,
            "status": -1,
            "output": "",
            "error": "timed out after 5 s",
            "duration_s": 5.0,
        },
        b"\x8a\xa4kind\xabaction_done\xa9stream_id\xa3mic\xacutterance_id\xa7mic:100\xa6in"
        b"tent\xaaHassTurnOn\xa6action\xa7command\xa2ok\xc2\xa6status\xff\xa6output\xa0"
        b"\xa5error\xb3timed out after 5 s\xaaduration_s\xcb@\x14\x00\x00\x00\x00\x00\x00",
        id="action_done",
    ),
    pytest.param(
        m.Reply(
            stream_id="mic",
            utterance_id="mic:100",
            text="Done.",
            audio_s=0.5,
            where="default",
            error="",
            t_ns=8,
        ),
        {
            "kind": "reply",
            "stream_id": "mic",
            "utterance_id": "mic:100",
            "text": "Done.",
            "audio_s": 0.5,
            "where": "default",
            "error": "",
            "t_ns": 8,
        },
        b"\x88\xa4kind\xa5reply\xa9stream_id\xa3mic\xacutterance_id\xa7mic:100\xa4text\xa5Done.\xa7audio_s\xcb?\xe0\x00\x00\x00\x00\x00\x00\xa5where\xa7default\xa5error\xa0\xa4t_ns\x08",
        id="reply",
    ),
    pytest.param(
        m.WakeMute(stream_id="mic", until_ns=9),
        {"kind": "wake_mute", "stream_id": "mic", "until_ns": 9},
        b"\x83\xa4kind\xa9wake_mute\xa9stream_id\xa3mic\xa8until_ns\t",
        id="wake_mute",
    ),
]


def _packb(obj: Any) -> bytes:
    out = msgpack.packb(obj, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


# --------------------------------------------------------------------------- golden wire
def test_golden_cases_cover_every_message_type() -> None:
    covered = {type(p.values[0]) for p in GOLDEN}
    assert covered == set(m.MESSAGE_TYPES)
    assert len({t.KIND for t in m.MESSAGE_TYPES}) == len(m.MESSAGE_TYPES)


@pytest.mark.parametrize(("msg", "wire_map", "wire_bytes"), GOLDEN)
def test_golden_wire(msg: Any, wire_map: dict[str, Any], wire_bytes: bytes) -> None:
    assert _packb(wire_map) == wire_bytes  # the literal is the hand-written map, packed
    assert m.encode(msg) == wire_bytes
    decoded = m.decode(wire_bytes)
    assert type(decoded) is type(msg)
    assert decoded == msg
    assert m.decode(wire_bytes, type(msg)) == msg


@pytest.mark.parametrize(("msg", "wire_map", "wire_bytes"), GOLDEN)
def test_dict_round_trip(msg: Any, wire_map: dict[str, Any], wire_bytes: bytes) -> None:
    assert m.to_dict(msg) == wire_map
    assert list(m.to_dict(msg)) == list(wire_map)  # field order is the wire order
    assert m.from_dict(wire_map) == msg


@pytest.mark.parametrize(("msg", "wire_map", "wire_bytes"), GOLDEN)
def test_pack_unpack(msg: Any, wire_map: dict[str, Any], wire_bytes: bytes) -> None:
    frames = m.pack("topic.x", msg)
    assert frames == [b"topic.x", wire_bytes]
    assert m.unpack(frames) == ("topic.x", msg)
    assert m.unpack(frames, type(msg)) == ("topic.x", msg)


# ----------------------------------------------------------------------- wire names
def test_passno_travels_as_pass() -> None:
    body = msgpack.unpackb(m.encode(TRANSCRIPT))
    assert body["pass"] == 1
    assert "passno" not in body


def test_passno_key_is_rejected_on_the_wire() -> None:
    bad = dict(TRANSCRIPT_MAP)
    bad["passno"] = bad.pop("pass")
    with pytest.raises(ProtocolError, match=r"^transcript: unknown field\(s\) passno$"):
        m.decode(_packb(bad))


def test_provisional_is_required_on_the_wire() -> None:
    bad = dict(TRANSCRIPT_MAP)
    del bad["provisional"]
    with pytest.raises(ProtocolError, match=r"^transcript: missing field 'provisional'$"):
        m.decode(_packb(bad))


# ---------------------------------------------------------------------- nested messages
def test_refine_job_first_pass_is_a_transcript() -> None:
    job = m.decode(m.encode(REFINE_JOB), m.RefineJob)
    assert isinstance(job.first_pass, m.Transcript)
    assert job.first_pass == TRANSCRIPT
    assert job.first_pass.passno == 1


def test_history_reply_finals_are_transcripts() -> None:
    second = m.Transcript(
        stream_id="s1",
        utterance_id="s1:0",
        seq=1,
        is_final=True,
        passno=2,
        text="",
        start_s=0.0,
        end_s=0.5,
        words=[],
        latency_s=0.0,
        stages_s={},
        provisional=False,
    )
    reply = m.decode(m.encode(m.HistoryReply(finals=[TRANSCRIPT, second])), m.HistoryReply)
    assert reply.finals == [TRANSCRIPT, second]
    assert all(isinstance(f, m.Transcript) for f in reply.finals)
    assert m.decode(m.encode(m.HistoryReply(finals=[]))) == m.HistoryReply(finals=[])


def test_nested_first_pass_not_a_map() -> None:
    bad = {**m.to_dict(REFINE_JOB), "first_pass": "text"}
    with pytest.raises(ProtocolError, match=r"^message is a str, not a map$"):
        m.decode(_packb(bad))


def test_nested_first_pass_of_another_kind() -> None:
    bad = {**m.to_dict(REFINE_JOB), "first_pass": {"kind": "start"}}
    with pytest.raises(ProtocolError, match=r"^expected 'transcript', got 'start'$"):
        m.decode(_packb(bad))


def test_nested_first_pass_with_wrong_field_type() -> None:
    bad = {**m.to_dict(REFINE_JOB), "first_pass": {**TRANSCRIPT_MAP, "seq": "7"}}
    with pytest.raises(ProtocolError, match=r"^transcript\.seq: expected int, got str$"):
        m.decode(_packb(bad))


def test_history_reply_final_missing_field() -> None:
    final = dict(TRANSCRIPT_MAP)
    del final["text"]
    with pytest.raises(ProtocolError, match=r"^transcript: missing field 'text'$"):
        m.decode(_packb({"kind": "history_reply", "finals": [final]}))


# ------------------------------------------------------------------------ decode errors
def test_protocol_error_is_a_streamasr_error() -> None:
    assert issubclass(ProtocolError, StreamAsrError)


def test_not_msgpack_reserved_byte() -> None:
    with pytest.raises(ProtocolError, match=r"^not msgpack: "):
        m.decode(b"\xc1")


def test_not_msgpack_truncated() -> None:
    with pytest.raises(ProtocolError, match=r"^not msgpack: "):
        m.decode(m.encode(m.Stop(reason="down"))[:-2])


def test_not_msgpack_empty() -> None:
    with pytest.raises(ProtocolError, match=r"^not msgpack: "):
        m.decode(b"")


def test_not_msgpack_trailing_bytes() -> None:
    with pytest.raises(ProtocolError, match=r"^not msgpack: "):
        m.decode(m.encode(m.Start()) + b"\x00")


def test_not_msgpack_invalid_utf8_string() -> None:
    with pytest.raises(ProtocolError, match=r"^not msgpack: "):
        m.decode(b"\x81\xa4kind\xa2\xff\xfe")


def test_not_msgpack_integer_map_key() -> None:
    with pytest.raises(ProtocolError, match=r"^not msgpack: "):
        m.decode(_packb({1: "start"}))


def test_not_a_map_list() -> None:
    with pytest.raises(ProtocolError, match=r"^message is a list, not a map$"):
        m.decode(_packb(["start"]))


def test_not_a_map_int() -> None:
    with pytest.raises(ProtocolError, match=r"^message is a int, not a map$"):
        m.decode(_packb(5))


def test_not_a_map_nil() -> None:
    with pytest.raises(ProtocolError, match=r"^message is a NoneType, not a map$"):
        m.decode(_packb(None))


def test_unknown_kind() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown message kind 'nope'$"):
        m.decode(_packb({"kind": "nope"}))


def test_missing_kind() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown message kind None$"):
        m.decode(_packb({"reason": "down"}))


def test_kind_not_a_string() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown message kind 3$"):
        m.decode(_packb({"kind": 3}))


def test_kind_as_bytes_is_unknown() -> None:
    with pytest.raises(ProtocolError, match=r"^unknown message kind b'start'$"):
        m.decode(_packb({"kind": b"start"}))


def test_unexpected_kind() -> None:
    with pytest.raises(ProtocolError, match=r"^expected 'stop', got 'start'$"):
        m.decode(m.encode(m.Start()), m.Stop)


def test_unknown_fields_are_listed_sorted() -> None:
    with pytest.raises(ProtocolError, match=r"^stop: unknown field\(s\) extra, zzz$"):
        m.decode(_packb({"kind": "stop", "zzz": 1, "reason": "x", "extra": 2}))


def test_unknown_bytes_key() -> None:
    with pytest.raises(ProtocolError, match=r"^start: unknown field\(s\) b'x'$"):
        m.decode(_packb({"kind": "start", b"x": 1}))


def test_missing_field() -> None:
    with pytest.raises(ProtocolError, match=r"^stop: missing field 'reason'$"):
        m.decode(_packb({"kind": "stop"}))


def test_wrong_type_str() -> None:
    with pytest.raises(ProtocolError, match=r"^stop\.reason: expected str, got int$"):
        m.decode(_packb({"kind": "stop", "reason": 1}))


def test_wrong_type_int_given_float() -> None:
    with pytest.raises(ProtocolError, match=r"^set_chunk\.chunk_ms: expected int, got float$"):
        m.decode(_packb({"kind": "set_chunk", "chunk_ms": 100.0}))


def test_wrong_type_int_given_bool() -> None:
    with pytest.raises(ProtocolError, match=r"^ready\.pid: expected int, got bool$"):
        m.decode(_packb({"kind": "ready", "actor_id": "a", "pid": True}))


def test_wrong_type_float_given_str() -> None:
    with pytest.raises(ProtocolError, match=r"^stream_ended\.end_s: expected float, got str$"):
        m.decode(_packb({"kind": "stream_ended", "stream_id": "s0", "end_s": "1.0"}))


def test_wrong_type_float_given_bool() -> None:
    with pytest.raises(ProtocolError, match=r"^stream_ended\.end_s: expected float, got bool$"):
        m.decode(_packb({"kind": "stream_ended", "stream_id": "s0", "end_s": False}))


def test_float_field_accepts_int_as_float() -> None:
    msg = m.decode(_packb({"kind": "stream_ended", "stream_id": "s0", "end_s": 3}))
    assert msg == m.StreamEnded(stream_id="s0", end_s=3.0)
    assert type(msg.end_s) is float


def test_wrong_type_bool_given_int() -> None:
    bad = {**TRANSCRIPT_MAP, "is_final": 1}
    with pytest.raises(ProtocolError, match=r"^transcript\.is_final: expected bool, got int$"):
        m.decode(_packb(bad))


def test_wrong_type_list_given_map() -> None:
    bad = {**TRANSCRIPT_MAP, "words": {"hello": 1}}
    with pytest.raises(ProtocolError, match=r"^transcript\.words: expected list, got dict$"):
        m.decode(_packb(bad))


def test_wrong_type_list_item() -> None:
    bad = {**TRANSCRIPT_MAP, "words": ["hello"]}
    with pytest.raises(ProtocolError, match=r"^transcript\.words: expected list, got str$"):
        m.decode(_packb(bad))


def test_wrong_type_dict_given_list() -> None:
    bad = {**TRANSCRIPT_MAP, "stages_s": [0.1]}
    with pytest.raises(ProtocolError, match=r"^transcript\.stages_s: expected dict, got list$"):
        m.decode(_packb(bad))


def test_wrong_type_dict_value() -> None:
    hb = m.to_dict(GOLDEN[1].values[0])
    hb["counters"] = {"rejected_chunks": 1.5}
    with pytest.raises(ProtocolError, match=r"^heartbeat\.counters: expected int, got float$"):
        m.decode(_packb(hb))


def test_wrong_type_dict_key() -> None:
    hb = m.to_dict(GOLDEN[1].values[0])
    hb["gauges"] = {b"chunk_ms": 1.0}
    with pytest.raises(ProtocolError, match=r"^heartbeat\.gauges: expected str, got bytes$"):
        m.decode(_packb(hb))


def test_oversize_message() -> None:
    data = b"\x00" * (m.MAX_MESSAGE_BYTES + 1)
    with pytest.raises(ProtocolError, match=r"^message of 1048577 bytes exceeds 1048576$"):
        m.decode(data)


def test_message_of_exactly_max_size_is_decoded() -> None:
    overhead = len(m.encode(m.Stop(reason="")))
    reason = "x" * (m.MAX_MESSAGE_BYTES - overhead - 4)  # str32 header: 5 bytes, not 1
    data = m.encode(m.Stop(reason=reason))
    assert len(data) == m.MAX_MESSAGE_BYTES
    assert m.decode(data) == m.Stop(reason=reason)


# ------------------------------------------------------------------------ encode / unpack
def test_encode_rejects_non_message() -> None:
    with pytest.raises(ProtocolError, match=r"^not a schema message: dict$"):
        m.encode({"kind": "start"})


def test_unpack_wrong_frame_count() -> None:
    with pytest.raises(ProtocolError, match=r"^expected 2 frames \[topic, body\], got 3$"):
        m.unpack([b"t", m.encode(m.Start()), b"extra"])
    with pytest.raises(ProtocolError, match=r"^expected 2 frames \[topic, body\], got 1$"):
        m.unpack([m.encode(m.Start())])


def test_unpack_topic_not_utf8() -> None:
    with pytest.raises(ProtocolError, match=r"^topic is not UTF-8$"):
        m.unpack([b"\xff", m.encode(m.Start())])


def test_unpack_bad_body() -> None:
    with pytest.raises(ProtocolError, match=r"^message is a list, not a map$"):
        m.unpack([b"t", _packb([])])


# ------------------------------------------------------------------------ transcript_json
def test_transcript_json_final_and_partial() -> None:
    final = m.transcript_json(TRANSCRIPT)
    assert final["kind"] == "final"
    assert final["pass"] == 1
    assert json.loads(json.dumps(final)) == {**TRANSCRIPT_MAP, "kind": "final"}
    partial = m.transcript_json(
        m.from_dict({**TRANSCRIPT_MAP, "is_final": False, "provisional": False})
    )
    assert partial["kind"] == "partial"
    assert partial["is_final"] is False
