"""The gateway's protocol state machines, without sockets: reply rules, end handling, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from streamasr.actors import messages as m
from streamasr.actors.frontdoors import metrics as gateway_metrics
from streamasr.actors.frontdoors import protocols as gp


def tr(text: str, *, final: bool, provisional: bool = False, start: float = 1.0) -> m.Transcript:
    """A transcript event of stream ``ws-1``."""
    return m.Transcript(
        stream_id="ws-1",
        utterance_id=f"ws-1:{int(start * 16000)}",
        seq=0,
        is_final=final,
        passno=1 if provisional or not final else 2,
        text=text,
        start_s=start,
        end_s=start + 1.0,
        words=[[w, start, start + 0.5, 0.9] for w in text.split()],
        latency_s=0.1,
        stages_s={},
        provisional=provisional,
    )


def pcm16(n: int) -> bytes:
    return (np.arange(n, dtype=np.int16) % 100).astype("<i2").tobytes()


def test_vosk_config_gets_no_reply_and_audio_one_reply_each() -> None:
    s = gp.VoskSession()
    assert s.on_text('{"config": {"sample_rate": 8000}}') == []
    acts = s.on_binary(pcm16(800))
    assert isinstance(acts[0], gp.Open) and acts[0].sample_rate_hz == 8000
    assert isinstance(acts[1], gp.Write) and acts[1].frames.shape == (800, 1)
    assert isinstance(acts[2], gp.Reply)
    assert json.loads(s.reply()) == {"partial": ""}
    s.on_event("transcript.ws-1", tr("turn on", final=False))
    assert json.loads(s.reply()) == {"partial": "turn on"}
    acts = s.on_binary(pcm16(10))
    assert [type(a) for a in acts] == [gp.Write, gp.Reply]


def test_vosk_reply_is_oldest_unsent_final_then_partial() -> None:
    s = gp.VoskSession()
    s.on_binary(pcm16(2))
    s.on_event("t", tr("one", final=True, start=1.0))
    s.on_event("t", tr("two", final=True, start=3.0))
    s.on_event("t", tr("thr", final=False, start=5.0))
    first = json.loads(s.reply())
    assert first["text"] == "one"
    assert first["result"][0] == {"conf": 0.9, "end": 1.5, "start": 1.0, "word": "one"}
    assert json.loads(s.reply())["text"] == "two"
    assert json.loads(s.reply()) == {"partial": "thr"}


def test_vosk_with_accurate_finals_sends_only_the_accurate_one() -> None:
    s = gp.VoskSession()
    s.on_binary(pcm16(2))
    s.on_event("t", tr("provisional words", final=True, provisional=True))
    assert json.loads(s.reply()) == {"partial": ""}
    s.on_event("t", tr("accurate words", final=True))
    assert json.loads(s.reply())["text"] == "accurate words"
    s.on_event("t", tr("", final=True))  # a retraction: nothing to send
    assert json.loads(s.reply()) == {"partial": ""}


def test_vosk_eof_finishes_and_sends_every_final_left_or_one_empty_result() -> None:
    s = gp.VoskSession()
    s.on_binary(pcm16(2))
    assert s.on_text('{"eof" : 1}') == [gp.Finish()]
    assert s.finished
    assert s.on_ended() == ['{"text": ""}']
    s2 = gp.VoskSession()
    s2.on_binary(pcm16(2))
    s2.on_event("t", tr("a", final=True))
    s2.on_event("t", tr("b", final=True, start=4.0))
    assert [json.loads(x)["text"] for x in s2.on_ended()] == ["a", "b"]


@pytest.mark.parametrize(
    ("message", "code", "match"),
    [
        ("{not json", 1007, "malformed JSON message"),
        ("[1, 2]", 1007, "a JSON message must be an object"),
        (
            '{"config": {"sample_rate": 7}}',
            1007,
            r"sample_rate must be an integer in 8000\.\.192000",
        ),
        ('{"config": 5}', 1007, "config must be an object"),
        pytest.param(
            '{"config": {"sample_rate": 1' + "0" * 400 + "}}",
            1007,
            "sample_rate must be",
            id="rate-past-float",
        ),
        ('{"config": {"sample_rate": [16000]}}', 1007, "sample_rate must be an integer"),
        ('{"hello": 1}', 1008, "expected a config or eof message"),
    ],
)
def test_vosk_text_errors(message: str, code: int, match: str) -> None:
    with pytest.raises(gp.GatewayProtocolError, match=match) as info:
        gp.VoskSession().on_text(message)
    assert info.value.close_code == code


def test_vosk_odd_pcm_length_and_late_config_are_errors() -> None:
    s = gp.VoskSession()
    with pytest.raises(gp.GatewayProtocolError, match="PCM message of 3 bytes") as info:
        s.on_binary(b"\0\0\0")
    assert info.value.close_code == 1007
    s.on_binary(pcm16(4))
    with pytest.raises(gp.GatewayProtocolError, match="config after audio"):
        s.on_text('{"config": {"sample_rate": 16000}}')


def test_classic_audio_hex_reply_and_end() -> None:
    s = gp.ClassicSession()
    samples = np.linspace(-0.5, 0.5, 160, dtype="<f4")
    acts = s.on_text(
        json.dumps({"type": "audio", "audio": samples.tobytes().hex(), "is_final": False})
    )
    assert isinstance(acts[0], gp.Open) and acts[0].sample_rate_hz == 16000
    assert isinstance(acts[1], gp.Write)
    np.testing.assert_array_equal(acts[1].frames[:, 0], samples)
    assert json.loads(s.reply()) == {"type": "transcription", "text": "", "is_final": False}
    s.on_event("t", tr("hello there", final=True))
    s.on_event("t", tr("and", final=False, start=3.0))
    reply = json.loads(s.reply())
    assert reply["text"] == "hello there" and reply["is_final"] is True
    assert json.loads(s.reply())["text"] == "and"
    s.on_event("t", tr("last one", final=True, start=3.0))
    assert s.on_text('{"type": "end"}') == [gp.Finish()]
    assert [json.loads(x)["text"] for x in s.on_ended()] == ["last one"]


@pytest.mark.parametrize(
    ("message", "code", "match"),
    [
        ('{"type": "audio", "audio": "zz"}', 1007, "audio is not valid hex"),
        ('{"type": "audio", "audio": "0000"}', 1007, "PCM message of 2 bytes"),
        ('{"type": "audio", "audio": 5}', 1007, "audio must be a hex string"),
        ('{"type": "video"}', 1008, "unknown message type 'video'"),
    ],
)
def test_classic_errors(message: str, code: int, match: str) -> None:
    with pytest.raises(gp.GatewayProtocolError, match=match) as info:
        gp.ClassicSession().on_text(message)
    assert info.value.close_code == code


def test_classic_binary_is_unsupported() -> None:
    with pytest.raises(gp.GatewayProtocolError, match="binary messages are not accepted") as info:
        gp.ClassicSession().on_binary(b"\0\0")
    assert info.value.close_code == 1003


def test_root_session_is_chosen_by_the_first_message() -> None:
    assert isinstance(gp.choose_root_session(b"\0\0"), gp.VoskSession)
    assert isinstance(gp.choose_root_session('{"config": {}}'), gp.VoskSession)
    assert isinstance(gp.choose_root_session('{"type": "audio"}'), gp.ClassicSession)
    assert isinstance(gp.choose_root_session("garbage"), gp.VoskSession)
    assert isinstance(gp.choose_root_session("1" * 5000), gp.VoskSession)  # past int digits


def test_native_start_audio_events_end() -> None:
    s = gp.NativeSession(gp.ChunkAdvisor(100))
    acts = s.on_text('{"type": "start", "sample_rate": 48000, "format": "f32le", "channels": 2}')
    assert acts[0] == gp.Open(48000, 2, "")
    assert isinstance(acts[1], gp.Send) and json.loads(acts[1].text) == {
        "type": "advice",
        "chunk_ms": 100,
    }
    frames = s.on_binary(np.zeros((10, 2), "<f4").tobytes())
    assert isinstance(frames[0], gp.Write) and frames[0].frames.shape == (10, 2)
    out = json.loads(s.on_event("t", tr("hi", final=True))[0])
    assert out["type"] == "final" and out["pass"] == 2 and out["provisional"] is False
    assert out["words"] == [["hi", 1.0, 1.5, 0.9]]
    assert s.on_text('{"type": "end"}') == [gp.Finish()]
    assert s.on_ended() == ['{"type": "end"}']


@pytest.mark.parametrize(
    ("first", "code", "match"),
    [
        ('{"type": "start", "format": "s24le"}', 1003, "unsupported format 's24le'"),
        ('{"type": "start", "channels": 0}', 1007, r"channels must be in 1\.\.8"),
        ('{"type": "start", "channels": "2"}', 1007, "channels must be an integer"),
        ('{"type": "start", "sample_rate": 44100.5}', 1007, "sample_rate must be an integer"),
        # values of a type nobody expected: protocol errors, never a TypeError/OverflowError
        ('{"type": "start", "format": ["s16le"]}', 1007, "format must be a string"),
        ('{"type": "start", "format": {"s16le": 1}}', 1007, "format must be a string"),
        pytest.param(
            '{"type": "start", "sample_rate": 1' + "0" * 400 + "}",
            1007,
            "sample_rate must be",
            id="rate-past-float",
        ),
        ('{"type": "start", "sample_rate": true}', 1007, "sample_rate must be an integer"),
        pytest.param(
            '{"type": "start", "sample_rate": ' + "1" * 5000 + "}",
            1007,
            "malformed JSON",
            id="rate-past-int-digits",
        ),
        ('{"type": "end"}', 1008, "end before start"),
        ('{"type": "pause"}', 1008, "unknown message type 'pause'"),
    ],
)
def test_native_start_errors(first: str, code: int, match: str) -> None:
    with pytest.raises(gp.GatewayProtocolError, match=match) as info:
        gp.NativeSession().on_text(first)
    assert info.value.close_code == code


def test_native_audio_before_start_and_start_twice() -> None:
    s = gp.NativeSession()
    with pytest.raises(gp.GatewayProtocolError, match="audio before the start message") as info:
        s.on_binary(b"\0\0")
    assert info.value.close_code == 1008
    s.on_text('{"type": "start"}')
    with pytest.raises(gp.GatewayProtocolError, match="start sent twice"):
        s.on_text('{"type": "start"}')
    with pytest.raises(gp.GatewayProtocolError, match="not a whole number of 2-byte frames"):
        s.on_binary(b"\0")


def test_chunk_advisor_small_chunks_on_a_steady_link_large_on_a_jittery_one() -> None:
    steady = gp.ChunkAdvisor(100)
    advice = [steady.observe(i * 0.1, 0.1) for i in range(30)]
    assert [a for a in advice if a is not None] == [50]
    jittery = gp.ChunkAdvisor(100)
    rng = np.random.default_rng(1)
    t, got = 0.0, []
    for _ in range(60):
        t += 0.1 + float(rng.uniform(-0.08, 0.08))
        got.append(jittery.observe(t, 0.1))
    assert jittery.chunk_ms >= 150
    assert all(50 <= a <= 200 for a in got if a is not None)


def test_chunk_advisor_backlog_asks_for_larger_chunks_and_holds_between_advice() -> None:
    a = gp.ChunkAdvisor(100, hold_s=1.0)
    a.backlog_s = 1.0
    assert a.observe(0.0, 0.1) == 200
    a.backlog_s = 0.0
    assert a.observe(0.5, 0.1) is None  # within hold_s
    assert a.observe(1.6, 0.1) == 50


def test_metrics_render_status_map() -> None:
    status = {
        "actors": [{"id": "inference", "state": "running", "restarts": 2, "chunk_ms": 100.0,
                    "rss_bytes": 10, "counters": {"rejected_chunks": 3}}],
        "rings": [{"name": "s0-pcm", "writes": 1600, "readers": [
            {"reader": 0, "reads": 1500, "dropped_frames": 7, "overruns": 1, "underruns": 4,
             "fill": 100}]}],
        "latency": {"partial": {"p50": 0.1, "p95": 0.2, "p99": 0.3, "count": 9}},
        "protocol_errors": 1,
    }  # fmt: skip
    text = gateway_metrics.render(status, {"connections": 5}, {"live_streams": 2.0}).decode()
    assert 'streamasr_actor_restarts_total{actor="inference"} 2.0' in text
    assert 'streamasr_ring_frames_lost_total{reader="0",ring="s0-pcm"} 7.0' in text
    assert 'streamasr_latency_seconds{quantile="0.95",series="partial"} 0.2' in text
    assert 'streamasr_actor_events_total{actor="inference",counter="rejected_chunks"} 3.0' in text
    assert 'streamasr_gateway_events_total{counter="connections"} 5.0' in text
    assert "streamasr_gateway_live_streams 2.0" in text
