"""StreamBook (supervisor/streams.py): seq numbers, duplicates, refine jobs, history, and the
masked, merged partial stream (the merge rules themselves: tests/unit/test_merge.py)."""

from __future__ import annotations

import dataclasses

from streamasr.actors import messages as m
from streamasr.supervisor.mask import DisplayConfig, WordMask
from streamasr.supervisor.streams import OVERLAP_TOLERANCE_S, StreamBook


def tr(
    start_s: float,
    end_s: float,
    *,
    final: bool = True,
    stream: str = "s0",
    passno: int = 1,
    provisional: bool = False,
    text: str = "words",
) -> m.Transcript:
    """A transcript of ``stream`` whose utterance id is its start in 16 kHz frames."""
    return m.Transcript(
        stream_id=stream,
        utterance_id=f"{stream}:{round(start_s * 16000)}",
        seq=0,
        is_final=final,
        passno=passno,
        text=text,
        start_s=start_s,
        end_s=end_s,
        words=[],
        latency_s=0.1,
        stages_s={},
        provisional=provisional,
    )


def job(first: m.Transcript) -> m.RefineJob:
    """The refine job for a first-pass final."""
    return m.RefineJob(
        stream_id=first.stream_id,
        utterance_id=first.utterance_id,
        start_frame=round(first.start_s * 16000),
        end_frame=round(first.end_s * 16000),
        sample_rate_hz=16000,
        t_endpoint_ns=0,
        first_pass=first,
    )


def accurate(first: m.Transcript, text: str = "accurate words") -> m.Transcript:
    """The pass-2 final answering ``first``."""
    return dataclasses.replace(first, passno=2, text=text, provisional=False)


# ----------------------------------------------------------------------------- seq numbers
def test_seq_numbers_count_per_stream() -> None:
    book = StreamBook()
    out = [
        book.publish(tr(0.0, 0.5, final=False)),
        book.publish(tr(0.0, 0.5, final=False, stream="s1")),
        book.publish(tr(0.0, 1.0, final=False, text="words and more")),
        book.publish(tr(0.0, 1.0)),
        book.publish(tr(0.0, 0.8, stream="s1")),
    ]
    assert [(t.stream_id, t.seq) for t in out if t is not None] == [
        ("s0", 1),
        ("s1", 1),
        ("s0", 2),
        ("s0", 3),
        ("s1", 2),
    ]


def test_publish_returns_a_numbered_copy_and_keeps_the_rest() -> None:
    book = StreamBook()
    original = tr(1.0, 2.0)
    out = book.publish(original)
    assert out is not None
    assert out.seq == 1
    assert original.seq == 0
    assert dataclasses.replace(out, seq=0) == original


# ------------------------------------------------------------------------------ duplicates
def test_re_decoded_final_is_dropped_and_its_job_refused() -> None:
    book = StreamBook()
    first = tr(1.0, 2.0)
    assert book.publish(first) is not None
    assert book.add_job(job(first)) is True
    again = tr(1.0, 2.1)  # a restarted inference re-decodes the same utterance
    assert again.utterance_id == first.utterance_id
    assert book.publish(again) is None
    assert book.counters()["s0"]["duplicates"] == 1
    assert book.add_job(job(again)) is False
    assert book.pending_jobs() == [job(first)]  # the original job stays pending


def test_dropped_final_refuses_its_job_once() -> None:
    book = StreamBook()
    book.publish(tr(0.0, 3.0))
    dup = tr(1.0, 2.0)
    assert book.publish(dup) is None
    assert book.add_job(job(dup)) is False
    assert book.add_job(job(dup)) is True  # the refusal is used up
    assert book.has_pending("s0")


def test_partial_inside_a_published_final_is_dropped() -> None:
    book = StreamBook()
    book.publish(tr(0.0, 2.0))
    assert book.publish(tr(1.0, 1.5, final=False)) is None
    assert book.counters()["s0"] == {
        "events": 1,
        "finals": 1,
        "duplicates": 1,
        "refine_pending": 0,
        "partials_suppressed": 0,
        "masked_words": 0,
    }
    partial = tr(1.0, 1.5, final=False)
    assert book.add_job(job(partial)) is True  # only dropped finals refuse their job


def test_overlap_within_tolerance_is_a_new_utterance() -> None:
    book = StreamBook()
    book.publish(tr(0.0, 2.0))
    start = 2.0 - OVERLAP_TOLERANCE_S + 0.001
    out = book.publish(tr(start, 3.0, final=False))
    assert out is not None
    assert out.seq == 2
    assert book.publish(tr(2.0 - OVERLAP_TOLERANCE_S - 0.001, 3.0)) is None


def test_duplicates_are_per_stream() -> None:
    book = StreamBook()
    book.publish(tr(0.0, 5.0, stream="a"))
    out = book.publish(tr(1.0, 2.0, stream="b"))
    assert out is not None
    assert out.seq == 1
    assert book.counters()["b"]["duplicates"] == 0


def test_final_end_only_moves_forward() -> None:
    book = StreamBook()
    book.publish(tr(0.0, 5.0))
    assert book.publish(tr(4.0, 4.5)) is None  # inside the published final
    # starts within the tolerance, ends before 5.0: published, but the cut stays at 5.0
    assert book.publish(tr(4.96, 4.99)) is not None
    assert book.publish(tr(4.94, 5.5, final=False)) is None
    assert book.publish(tr(5.0, 6.0)) is not None


# ------------------------------------------------------------------------------ refine jobs
def test_refine_final_is_published_once_per_job() -> None:
    book = StreamBook()
    first = tr(1.0, 2.0, provisional=True)
    assert book.publish(first) is not None
    assert book.add_job(job(first))
    assert book.has_pending("s0")
    out = book.publish(accurate(first), from_refine=True)
    assert out is not None
    assert (out.seq, out.passno, out.text) == (2, 2, "accurate words")
    assert not book.has_pending("s0")
    # a restarted refine actor answers the same job again
    assert book.publish(accurate(first, "other"), from_refine=True) is None
    assert book.counters()["s0"] == {
        "events": 2,
        "finals": 1,
        "duplicates": 1,
        "refine_pending": 0,
        "partials_suppressed": 0,
        "masked_words": 0,
    }


def test_refine_final_without_a_job_is_dropped() -> None:
    book = StreamBook()
    assert book.publish(accurate(tr(0.0, 1.0)), from_refine=True) is None
    assert book.counters()["s0"]["duplicates"] == 1
    assert book.history() == []


def test_pending_jobs_in_order_and_answered_out_of_order() -> None:
    book = StreamBook()
    a, b, c = tr(0.0, 1.0), tr(1.0, 2.0), tr(0.0, 1.0, stream="s1")
    for t in (a, b, c):
        book.publish(t)
        assert book.add_job(job(t))
    assert book.pending_jobs() == [job(a), job(b), job(c)]
    assert book.publish(accurate(b), from_refine=True) is not None
    assert book.pending_jobs() == [job(a), job(c)]
    assert book.has_pending("s0") and book.has_pending("s1")
    assert not book.has_pending("never-seen")
    assert book.counters()["s0"]["refine_pending"] == 1


# ---------------------------------------------------------------------------------- history
def test_provisional_finals_are_not_history() -> None:
    book = StreamBook()
    first = tr(0.0, 1.0, provisional=True)
    book.publish(tr(0.0, 0.5, final=False))
    book.publish(first)
    book.add_job(job(first))
    assert book.history() == []
    assert book.counters()["s0"]["finals"] == 0
    out = book.publish(accurate(first), from_refine=True)
    assert book.history() == [out]
    assert book.counters()["s0"]["finals"] == 1


def test_history_holds_finals_oldest_first_and_is_bounded() -> None:
    book = StreamBook(history=2)
    outs = [book.publish(tr(float(i), i + 0.5)) for i in range(3)]
    book.publish(tr(3.0, 3.2, final=False))
    assert book.history() == outs[1:]
    assert [t.seq for t in book.history()] == [2, 3]
    assert book.counters()["s0"]["finals"] == 3


def test_history_zero_keeps_nothing() -> None:
    book = StreamBook(history=0)
    assert book.publish(tr(0.0, 1.0)) is not None
    assert book.history() == []
    assert book.counters()["s0"]["finals"] == 1


def test_history_is_a_copy() -> None:
    book = StreamBook()
    book.publish(tr(0.0, 1.0))
    book.history().clear()
    assert len(book.history()) == 1


def test_history_keeps_words_and_hands_out_fresh_copies() -> None:
    book = StreamBook()
    t = dataclasses.replace(tr(0.0, 1.0), words=[["words", 0.1, 0.9, 0.8]], stages_s={"a": 0.1})
    out = book.publish(t)
    assert out is not None and out.words == t.words
    first = book.history()[0]
    assert first == out and first is not out
    first.words.clear()
    assert book.history()[0].words == out.words


# --------------------------------------------------------------------------------- counters
def test_counters_for_every_stream_seen() -> None:
    book = StreamBook()
    assert book.counters() == {}
    book.publish(tr(0.0, 1.0))
    book.publish(tr(0.2, 0.8))
    book.add_job(job(tr(5.0, 6.0, stream="s1")))
    assert book.counters() == {
        "s0": {
            "events": 1,
            "finals": 1,
            "duplicates": 1,
            "refine_pending": 0,
            "partials_suppressed": 0,
            "masked_words": 0,
        },
        "s1": {
            "events": 0,
            "finals": 0,
            "duplicates": 0,
            "refine_pending": 1,
            "partials_suppressed": 0,
            "masked_words": 0,
        },
    }


# ------------------------------------------------------------------- partials of two passes
def accurate_partial(first: m.Transcript, text: str = "accurate") -> m.Transcript:
    """A pass-2 partial of the utterance of first-pass partial ``first``."""
    return dataclasses.replace(first, passno=2, text=text, stages_s={"refine_partial": 0.3})


def shown(out: m.Transcript | None) -> tuple[int, str] | None:
    return None if out is None else (out.passno, out.text)


def test_pass2_partials_take_over_and_pass1_only_extends_them() -> None:
    book = StreamBook()
    p1 = tr(1.0, 1.5, final=False, text="turn on")
    assert shown(book.publish(p1)) == (1, "turn on")
    assert shown(book.publish(accurate_partial(p1, "Turn on"), from_refine=True)) == (2, "Turn on")
    out = book.publish(tr(1.0, 2.0, final=False, text="turn on the"))
    assert shown(out) == (2, "Turn on the")
    assert out is not None and (out.second_pass_words, out.committed_words) == (2, 0)
    assert book.publish(tr(1.0, 2.1, final=False, text="turn of the")) is None  # no change
    assert book.counters()["s0"]["partials_suppressed"] == 1
    assert book.counters()["s0"]["events"] == 3


def test_no_switch_back_however_long_pass2_partials_pause() -> None:
    """Under load the last Whisper partial stays; first-pass words extend it (no clock)."""
    book = StreamBook()
    p1 = tr(1.0, 1.5, final=False, text="remind me")
    book.publish(p1)
    book.publish(accurate_partial(p1, "Remind me"), from_refine=True)
    texts = [
        shown(book.publish(tr(1.0, 1.5 + i / 2, final=False, text=text)))
        for i, text in enumerate(["remind me to", "remind me to buy", "remind me to buy milk"])
    ]
    assert texts == [(2, "Remind me to"), (2, "Remind me to buy"), (2, "Remind me to buy milk")]


def test_first_pass_text_is_masked_and_counted() -> None:
    book = StreamBook()
    p1 = tr(4.0, 4.5, final=False, text="shitty timers")
    assert shown(book.publish(p1)) == (1, "s*** timers")
    final = tr(4.0, 5.0, provisional=True, text="shitty timers for two")
    assert shown(book.publish(final)) == (1, "s*** timers for two")
    assert book.counters()["s0"]["masked_words"] == 2
    assert book.add_job(job(final))
    fallback = dataclasses.replace(final, provisional=False)  # refine fell back to pass 1
    out = book.publish(fallback, from_refine=True)
    assert shown(out) == (1, "s*** timers for two")
    assert book.history() == [out]
    assert book.counters()["s0"]["masked_words"] == 3


def test_second_pass_text_is_not_masked_unless_configured() -> None:
    for option, want in ((False, "Oh shit"), (True, "Oh s***")):
        book = StreamBook(mask=WordMask(DisplayConfig(mask_second_pass=option)))
        first = tr(1.0, 2.0, provisional=True, text="oh shit")
        book.publish(first)
        book.add_job(job(first))
        out = book.publish(accurate(first, "Oh shit"), from_refine=True)
        assert out is not None and out.text == want


def test_grammar_words_are_not_masked() -> None:
    book = StreamBook(mask=WordMask(keep=["shit"]))
    assert shown(book.publish(tr(1.0, 1.5, final=False, text="shit happens"))) == (
        1,
        "shit happens",
    )


def test_provisional_final_after_pass2_partials_keeps_their_words() -> None:
    book = StreamBook()
    p1 = tr(4.0, 4.9, final=False, text="shit schlemmer shorten")
    book.publish(p1)
    book.publish(accurate_partial(p1, "Set a timer for 10 minutes."), from_refine=True)
    first = tr(4.0, 5.5, provisional=True, text="shitty timers for two minutes")
    out = book.publish(first)
    assert out is not None and out.provisional and out.passno == 1
    assert (out.text, out.second_pass_words) == ("Set a timer for 10 minutes.", 6)
    assert book.add_job(job(first))
    final = book.publish(accurate(first, "Set a timer for 10 minutes."), from_refine=True)
    assert final is not None and final.second_pass_words == 6  # all of it Whisper's


def test_pass2_partial_after_the_final_is_dropped() -> None:
    book = StreamBook()
    p1 = tr(1.0, 1.5, final=False)
    book.publish(p1)
    first = tr(1.0, 2.0, provisional=True)
    book.publish(first)
    assert book.add_job(job(first))
    assert book.publish(accurate_partial(p1), from_refine=True) is None
    assert book.counters()["s0"]["partials_suppressed"] == 1
    assert book.has_pending("s0")  # a partial never answers the refine job
    out = book.publish(accurate(first), from_refine=True)
    assert out is not None and out.is_final and out.passno == 2
    assert book.publish(accurate_partial(p1), from_refine=True) is None


def test_pass2_partial_does_not_answer_or_count_as_a_final() -> None:
    book = StreamBook()
    p1 = tr(1.0, 1.5, final=False)
    first = tr(1.0, 2.0, provisional=True)
    book.add_job(job(first))
    out = book.publish(accurate_partial(p1), from_refine=True)
    assert out is not None and not out.is_final
    assert book.counters()["s0"]["refine_pending"] == 1
    assert book.counters()["s0"]["finals"] == 0
    assert book.history() == []


def test_partials_of_another_stream_or_utterance_start_with_the_first_pass() -> None:
    book = StreamBook()
    a = tr(1.0, 1.5, final=False)
    book.publish(a)
    book.publish(accurate_partial(a), from_refine=True)
    assert shown(book.publish(tr(1.0, 1.5, final=False, stream="s1"))) == (1, "words")
    book.publish(tr(1.0, 2.0, provisional=True))
    assert shown(book.publish(tr(3.0, 3.5, final=False, text="next"))) == (1, "next")


def test_finals_are_unaffected_by_pass2_partials() -> None:
    book = StreamBook()
    p1 = tr(1.0, 1.5, final=False)
    book.publish(accurate_partial(p1), from_refine=True)
    final = tr(1.0, 2.0)  # a first-pass (fast mode) final
    out = book.publish(final)
    assert out is not None and out.is_final and out.text == "words" and out.passno == 1
