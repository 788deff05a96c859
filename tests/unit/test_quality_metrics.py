"""The figures of ``benchmarks/bench_quality.py``: text normalisation, the last finals of
each utterance, empty accurate finals, and the partial-stability measures."""

from __future__ import annotations

from typing import Any

from benchmarks import _quality_metrics as qm


def _e(uid: str, text: str, *, final: bool = False, passno: int = 1, prov: bool = False,
       committed: int = 0, start: float = 0.0) -> dict[str, Any]:  # fmt: skip
    return {
        "utterance_id": uid,
        "text": text,
        "is_final": final,
        "pass": passno,
        "provisional": prov,
        "committed_words": committed,
        "start_s": start,
        "end_s": start + 1.0,
    }


def test_numbers_compare_equal_however_written() -> None:
    assert qm.words("Three hundred and twelve, 42!") == qm.words("three hundred twelve forty two")
    assert qm.counts("the best of times", "the best of crimes").wer == 0.25


def test_last_finals_and_empty_accurate_finals() -> None:
    events = [
        _e("a", "hello there", final=True, prov=True),
        _e("a", "Hello there.", final=True, passno=2),
        _e("b", "no", final=True, prov=True, start=5.0),
        _e("b", "", final=True, passno=2, start=5.0),
        _e("c", "wow", final=True, prov=True, start=9.0),
    ]
    assert [e["text"] for e in qm.last_finals(events, accurate=True)] == ["Hello there.", ""]
    assert [e["text"] for e in qm.last_finals(events, accurate=False)] == [
        "hello there",
        "no",
        "wow",
    ]
    assert qm.empty_accurate(events) == 1  # "b": the first pass heard a word


def test_partial_measures_of_one_utterance() -> None:
    events = [
        _e("u", "set a"),
        _e("u", "shitty timers"),  # first pass changes its mind: 2 words retracted
        _e("u", "Set a timer", passno=2, committed=0),
        _e("u", "Set a timer for", passno=2, committed=4),
        _e("u", "Set a timer four ten", passno=2, committed=4),  # retracts committed "for"
        _e("u", "Set a timer for ten minutes.", final=True, passno=2),
    ]
    (tr,) = qm.traces(events)
    assert tr.passes == [1, 1, 2, 2, 2]
    assert qm.pass_switches(tr) == 1
    assert qm.committed_retractions(tr) == (1, 1)  # "for" by a partial, "four" by the final
    summary = qm.partial_summary([tr])
    assert summary["committed_retracted"] == 1 and summary["max_switches_per_utt"] == 1
    assert summary["partials"] == 5
