"""PartialMerger (supervisor/merge.py): one partial stream per utterance out of two passes.

Tables of event sequences: ``("1", end_s, text)`` a first-pass partial, ``("2", end_s,
text)`` a Whisper partial, ``("P", end_s, text)`` a provisional final (word times spread
evenly over the utterance unless given); each row gives what is shown after it as
``(pass, text, committed_words, second_pass_words)``, or None when nothing is published.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from streamasr.actors import messages as m
from streamasr.supervisor.merge import MAX_OVERLAP_WORDS, PartialMerger, skip_overlap, tail_start

UID = "s0:16000"
START_S = 1.0

Shown = tuple[int, str, int, int] | None


def tr(kind: str, end_s: float, text: str, *, uid: str = UID, **kw: Any) -> m.Transcript:
    """A transcript of ``kind`` "1" (first-pass partial), "2" (Whisper partial) or "P"
    (provisional final, words timed evenly between START_S and ``end_s``)."""
    tokens = text.split()
    words: list[list[Any]] = []
    if kind == "P":
        step = (end_s - START_S) / max(1, len(tokens))
        words = [
            [w, START_S + i * step, START_S + (i + 1) * step, 0.9] for i, w in enumerate(tokens)
        ]
    t = m.Transcript(
        stream_id="s0",
        utterance_id=uid,
        seq=0,
        is_final=kind == "P",
        passno=2 if kind == "2" else 1,
        text=text,
        start_s=START_S,
        end_s=end_s,
        words=words,
        latency_s=0.05 if kind != "2" else 0.4,
        stages_s={"refine_partial": 0.3} if kind == "2" else {"inference": 0.01},
        provisional=kind == "P",
    )
    return dataclasses.replace(t, **kw) if kw else t


def feed(merger: PartialMerger, t: m.Transcript) -> m.Transcript | None:
    if t.is_final:
        return merger.provisional_final(t)
    return merger.second_pass(t) if t.passno == 2 else merger.first_pass(t)


def shown(t: m.Transcript | None) -> Shown:
    if t is None:
        return None
    return (t.passno, t.text, t.committed_words, t.second_pass_words)


Row = tuple[tuple[str, float, str], Shown]

CASES: dict[str, list[Row]] = {
    "first pass alone is shown as it is": [
        (("1", 1.5, "turn"), (1, "turn", 0, 0)),
        (("1", 1.7, "turn on"), (1, "turn on", 0, 0)),
        (("1", 1.9, "turn on the"), (1, "turn on the", 0, 0)),
    ],
    "a whisper partial takes over and commits nothing on its first run": [
        (("1", 1.5, "turn"), (1, "turn", 0, 0)),
        (("1", 1.7, "turn on"), (1, "turn on", 0, 0)),
        (("2", 1.7, "Turn on"), (2, "Turn on", 0, 2)),
    ],
    "first-pass partials after it only add their words past the whisper partial": [
        (("1", 1.5, "turn on"), (1, "turn on", 0, 0)),
        (("2", 1.5, "Turn on"), (2, "Turn on", 0, 2)),
        (("1", 1.7, "turn on the"), (2, "Turn on the", 0, 2)),
        (("1", 1.9, "turn on the kitchen"), (2, "Turn on the kitchen", 0, 2)),
    ],
    "two agreeing whisper runs commit their common words": [
        (("1", 1.5, "turn on"), (1, "turn on", 0, 0)),
        (("2", 1.5, "Turn on"), (2, "Turn on", 0, 2)),
        (("1", 2.0, "turn on the kitchen"), (2, "Turn on the kitchen", 0, 2)),
        (("2", 2.0, "Turn on the kitchen"), (2, "Turn on the kitchen", 2, 4)),
        (("2", 2.0, "Turn on the kitchen"), (2, "Turn on the kitchen", 4, 4)),
    ],
    "committed words stay when a later run rewrites them": [
        (("1", 1.5, "turn on the"), (1, "turn on the", 0, 0)),
        (("2", 1.5, "Turn on the"), (2, "Turn on the", 0, 3)),
        (("2", 1.8, "Turn on the kitchen"), (2, "Turn on the kitchen", 3, 4)),
        (("2", 2.1, "Turn off the kitchen light"), (2, "Turn on the kitchen light", 4, 5)),
    ],
    "the first pass rewriting its hypothesis does not switch back": [
        (("1", 4.0, "shitty to"), (1, "shitty to", 0, 0)),
        (("2", 4.0, "Set a timer"), (2, "Set a timer", 0, 3)),
        (("1", 4.3, "should the time"), None),  # 3 words: nothing past Whisper's 3
        (("1", 4.5, "shitty timers"), None),
        (("1", 5.0, "shitty timers for two minutes"), (2, "Set a timer two minutes", 0, 3)),
    ],
    "the first pass lagging behind whisper adds nothing whisper already said": [
        (("1", 4.9, "shit schlemmer shorten"), (1, "shit schlemmer shorten", 0, 0)),
        (("2", 4.9, "Set a timer for 10 minutes."), (2, "Set a timer for 10 minutes.", 0, 6)),
        (("1", 5.1, "shit schlemmer sure to me"), None),
        (("1", 5.3, "shit schlemmer shore two minutes"), None),
    ],
    "under load the last whisper partial stays and first-pass words extend it": [
        (("1", 2.0, "remind me to"), (1, "remind me to", 0, 0)),
        (("2", 2.0, "Remind me to"), (2, "Remind me to", 0, 3)),
        (("1", 2.4, "remind me to buy"), (2, "Remind me to buy", 0, 3)),
        (("1", 2.8, "remind me to buy milk"), (2, "Remind me to buy milk", 0, 3)),
        (
            ("1", 3.3, "remind me to buy milk after work"),
            (2, "Remind me to buy milk after work", 0, 3),
        ),
    ],
    "the first pass's own count at whisper's end counts when it is the larger": [
        (("1", 2.0, "remind me to buy"), (1, "remind me to buy", 0, 0)),
        (("2", 2.0, "Remind me"), (2, "Remind me", 0, 2)),  # Whisper heard fewer words
        (("1", 2.4, "remind me to buy milk"), (2, "Remind me milk", 0, 2)),
    ],
    "tail words repeating whisper's last words are dropped": [
        (("1", 8.3, "what is the weather like"), (1, "what is the weather like", 0, 0)),
        (
            ("2", 8.3, "What is the weather like tomorrow"),
            (2, "What is the weather like tomorrow", 0, 6),
        ),
        (
            ("1", 8.6, "what is the weather like to tomorrow morning"),
            (2, "What is the weather like tomorrow morning", 0, 6),
        ),
    ],
    "a new whisper partial replaces the first-pass tail": [
        (("1", 2.0, "remind me to"), (1, "remind me to", 0, 0)),
        (("2", 2.0, "Remind me to"), (2, "Remind me to", 0, 3)),
        (("1", 2.5, "remind me to by milk"), (2, "Remind me to by milk", 0, 3)),
        (("2", 2.5, "Remind me to buy milk"), (2, "Remind me to buy milk", 3, 5)),
    ],
    "a whisper partial newer than the newest first-pass partial has no tail": [
        (("1", 2.0, "remind me"), (1, "remind me", 0, 0)),
        (("1", 2.5, "remind me to by"), (1, "remind me to by", 0, 0)),
        (("2", 2.5, "Remind me to buy"), (2, "Remind me to buy", 0, 4)),
    ],
    "an update that changes nothing shown is not published": [
        (("1", 1.5, "turn on"), (1, "turn on", 0, 0)),
        (("2", 1.5, "Turn on"), (2, "Turn on", 0, 2)),
        (("1", 1.6, "turn of"), None),
        (("1", 1.7, "turn on"), None),
    ],
    "an empty whisper partial keeps the committed words": [
        (("1", 1.5, "turn on"), (1, "turn on", 0, 0)),
        (("2", 1.5, "Turn on"), (2, "Turn on", 0, 2)),
        (("2", 1.8, "Turn on the"), (2, "Turn on the", 2, 3)),
        (("2", 2.0, ""), (2, "Turn on", 2, 2)),
    ],
    "an empty whisper partial with nothing committed keeps the last one": [
        (("1", 1.5, "turn on"), (1, "turn on", 0, 0)),
        (("2", 1.5, "Turn on"), (2, "Turn on", 0, 2)),
        (("2", 1.8, ""), None),
        (("1", 2.0, "turn on the"), (2, "Turn on the", 0, 2)),
    ],
    "a provisional final without whisper partials is the first pass's": [
        (("1", 1.5, "turn on"), (1, "turn on", 0, 0)),
        (("P", 2.0, "turn on the light"), (1, "turn on the light", 0, 0)),
    ],
    "a provisional final after whisper partials keeps whisper's words": [
        (("1", 4.9, "shit schlemmer shorten"), (1, "shit schlemmer shorten", 0, 0)),
        (("2", 4.9, "Set a timer for 10 minutes."), (2, "Set a timer for 10 minutes.", 0, 6)),
        (("P", 5.5, "shitty timers for two minutes"), (1, "Set a timer for 10 minutes.", 0, 6)),
    ],
    "whisper's punctuation at the cut goes when first-pass words follow": [
        (("1", 4.0, "turn off all the"), (1, "turn off all the", 0, 0)),
        (("2", 4.0, "Turn off all the."), (2, "Turn off all the.", 0, 4)),
        (("1", 4.3, "turn off all the lights"), (2, "Turn off all the lights", 0, 4)),
        (("2", 4.0, "Turn off all the."), (2, "Turn off all the. lights", 4, 4)),  # committed
        (("1", 4.6, "turn off all the lights down"), (2, "Turn off all the. lights down", 4, 4)),
    ],
    "a provisional final takes its words after whisper's end by their times": [
        (("1", 2.0, "turn on the kitchen"), (1, "turn on the kitchen", 0, 0)),
        (("2", 2.0, "Turn it on the kitchen."), (2, "Turn it on the kitchen.", 0, 5)),
        # 5 words over 1.0-2.5 s: "lights" (2.2-2.5) lies after 2.0 s
        (("P", 2.5, "turn on the kitchen lights"), (1, "Turn it on the kitchen lights", 0, 5)),
    ],
    "a provisional final with all its words after whisper's end keeps them all": [
        (("1", 1.1, "uh"), (1, "uh", 0, 0)),
        (("2", 1.1, "Uh,"), (2, "Uh,", 0, 1)),
        (("P", 2.0, "stop the music"), (1, "Uh, stop the music", 0, 1)),
    ],
    "a whisper partial without words does not take over": [
        (("1", 1.2, "uh stop"), (1, "uh stop", 0, 0)),
        (("2", 1.2, ""), None),
        (("1", 1.5, "uh stop the"), (1, "uh stop the", 0, 0)),
        (("P", 2.0, "stop the music"), (1, "stop the music", 0, 0)),
    ],
    "a provisional final adds its timed words after whisper's end": [
        (("1", 2.0, "remind me to"), (1, "remind me to", 0, 0)),
        (("2", 2.0, "Remind me to"), (2, "Remind me to", 0, 3)),
        # words timed evenly over 1.0-3.0 s: "buy" (1.8-2.2, middle 2.0) is after the end
        (("P", 3.0, "remind me to buy milk"), (1, "Remind me to buy milk", 0, 3)),
    ],
}


@pytest.mark.parametrize("rows", CASES.values(), ids=CASES.keys())
def test_merged_stream(rows: list[Row]) -> None:
    merger = PartialMerger()
    got = [shown(feed(merger, tr(*event))) for event, _ in rows]
    assert got == [want for _, want in rows]


@pytest.mark.parametrize("rows", CASES.values(), ids=CASES.keys())
def test_one_switch_and_no_retraction(rows: list[Row]) -> None:
    """The guarantees, checked on every table: the source goes 1 -> 2 at most once, and
    every shown message begins with the committed words of the one shown before."""
    merger = PartialMerger()
    sources: list[int] = []
    committed: list[str] = []
    for event, _ in rows:
        out = feed(merger, tr(*event))
        if out is None:
            continue
        sources.append(2 if out.second_pass_words or out.passno == 2 else 1)
        assert out.text.split()[: len(committed)] == committed, (committed, out.text)
        committed = out.text.split()[: out.committed_words]
    assert sources == sorted(sources)


@pytest.mark.parametrize(
    ("second", "first_count", "first", "start"),
    [
        ([], 0, [], 0),
        ([], 0, ["a", "b"], 0),
        (["A", "B"], 0, ["a", "b", "c"], 2),  # past Whisper's word count
        (["A"], 2, ["a", "b", "c"], 2),  # past the first pass's own count
        (["A", "B"], 5, ["a", "b", "c"], 3),  # both beyond: no tail
        (["Set", "a", "timer"], 2, ["shitty", "timer", "timer", "for"], 3),
        (["the", "timer."], 1, ["the", "timer", "for"], 2),  # normalised comparison
        (["x", "a", "b", "c"], 0, ["y", "z", "q", "r", "s", "b"], 4),  # no overlap
        (["x", "a", "b", "c"], 0, ["y", "z", "q", "r", "a", "b", "c", "d"], 7),
        (["a", "b", "c", "d"], 2, ["w", "x", "y", "z", "b", "c", "d", "e"], 7),
        (["a", "b", "c", "d", "e"], 0, ["p", "q", "r", "s", "t", "b", "c", "d", "e", "f"], 5),
    ],
)
def test_tail_start(second: list[str], first_count: int, first: list[str], start: int) -> None:
    assert tail_start(second, first_count, first) == start


@pytest.mark.parametrize(
    ("second", "first", "start", "moved"),
    [
        (["a", "b"], ["x", "y"], 0, 0),  # never moved by the length of ``second``
        (["a", "b"], ["b", "y"], 0, 1),
        (["a", "b"], ["a", "b", "y"], 0, 2),
        ([], ["a"], 0, 0),
        (["a"], ["a"], 5, 1),  # capped
        (["a"], ["a"], -1, 1),
    ],
)
def test_skip_overlap(second: list[str], first: list[str], start: int, moved: int) -> None:
    assert skip_overlap(second, first, start) == moved


def test_overlap_is_bounded() -> None:
    assert MAX_OVERLAP_WORDS == 3
    words = ["a", "b", "c", "d"]
    assert tail_start(words, 0, ["p", "q", "r", "s", *words, "e"]) == 4  # 4 > the bound


def test_merged_partial_timing_comes_from_the_update() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 1.5, "turn on"))
    from_whisper = merger.second_pass(tr("2", 1.5, "Turn on"))
    assert from_whisper is not None
    assert (from_whisper.latency_s, from_whisper.stages_s) == (0.4, {"refine_partial": 0.3})
    from_first = merger.first_pass(tr("1", 1.9, "turn on the"))
    assert from_first is not None
    assert (from_first.passno, from_first.latency_s, from_first.stages_s) == (
        2,
        0.05,
        {"inference": 0.01},
    )
    assert from_first.end_s == 1.9
    later = merger.second_pass(tr("2", 1.5, "Turn on it"))  # run on older audio
    assert later is not None and later.end_s == 1.9  # the display covers the newest audio


def test_whisper_word_times_extend_its_end() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 2.0, "remind"))
    merger.first_pass(tr("1", 2.2, "remind me"))
    timed = [["Remind", 1.0, 1.6, 0.9], ["me", 1.6, 2.2, 0.9]]
    merger.second_pass(tr("2", 2.0, "Remind me", words=timed))  # heard up to 2.2 s
    out = merger.first_pass(tr("1", 2.4, "remind me to"))
    assert shown(out) == (2, "Remind me to", 0, 2)
    assert out is not None and out.words == timed


def test_provisional_final_words_are_whispers_then_its_own_tail() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 2.0, "remind me to"))
    merger.second_pass(tr("2", 2.0, "Remind me to"))
    final = tr("P", 3.0, "remind me to buy milk")
    out = merger.provisional_final(final)
    assert out.is_final and out.provisional and out.passno == 1
    assert out.words == final.words[3:]  # draft Whisper partials carry no words
    assert (out.start_s, out.end_s, out.latency_s) == (final.start_s, final.end_s, 0.05)


def test_provisional_final_without_word_times_uses_the_counts() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 2.0, "remind me to"))
    merger.second_pass(tr("2", 2.0, "Remind me to"))
    out = merger.provisional_final(tr("P", 3.0, "remind me to buy milk", words=[]))
    assert shown(out) == (1, "Remind me to buy milk", 0, 3)


def test_provisional_final_ends_the_utterance() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 1.5, "turn on"))
    merger.second_pass(tr("2", 1.5, "Turn on"))
    merger.provisional_final(tr("P", 2.0, "turn on"))
    # a re-decoded partial of the same id starts over (the book drops such duplicates)
    assert shown(merger.first_pass(tr("1", 1.5, "turn on"))) == (1, "turn on", 0, 0)


def test_a_new_utterance_starts_with_the_first_pass() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 1.5, "turn on"))
    merger.second_pass(tr("2", 1.5, "Turn on"))
    nxt = tr("1", 4.5, "what", uid="s0:64000", start_s=4.0)
    assert shown(merger.first_pass(nxt)) == (1, "what", 0, 0)


def test_a_late_whisper_partial_of_an_older_utterance_leaves_the_current_one() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 4.5, "what is", uid="s0:64000", start_s=4.0))
    merger.second_pass(tr("2", 4.5, "What is", uid="s0:64000", start_s=4.0))
    merger.second_pass(tr("2", 1.5, "Turn on"))  # older utterance, no final seen
    out = merger.first_pass(tr("1", 4.8, "what is the", uid="s0:64000", start_s=4.0))
    assert shown(out) == (2, "What is the", 0, 2)


def test_finish_forgets_the_utterance() -> None:
    merger = PartialMerger()
    merger.first_pass(tr("1", 1.5, "turn on"))
    merger.second_pass(tr("2", 1.5, "Turn on"))
    merger.finish(UID)
    merger.finish("never-seen")
    assert shown(merger.provisional_final(tr("P", 2.0, "turn on"))) == (1, "turn on", 0, 0)


def test_the_refine_actors_agreement_is_reproduced() -> None:
    """Fed the texts the refine actor sends (committed + tail of its own local agreement),
    the merger commits the same words."""
    from streamasr.actors.refine.agreement import LocalAgreement

    runs = [
        "Set a",
        "Set a timer for",
        "Set a timer for ten",
        "Set the timer for 10 minutes",
        "Set a timer for 10 minutes.",
        "Set a timer for 10 minutes.",
    ]
    refine = LocalAgreement()
    merger = PartialMerger()
    merger.first_pass(tr("1", 1.5, "set"))
    last: m.Transcript | None = None
    for i, run in enumerate(runs):
        agreed = refine.update(run.split())
        last = merger.second_pass(tr("2", 1.5 + i / 10, agreed.text)) or last
        assert last is not None
        assert last.committed_words == len(agreed.committed), (run, agreed)
        assert last.text == agreed.text
    assert last is not None and last.committed_words == 6
