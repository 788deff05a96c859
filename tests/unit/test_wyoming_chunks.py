"""Wyoming transcript chunks from partials and finals: committed words go out as they commit,
the rest of each final after them; the transcript text is the finals' (the chunks join into
it unless a final rewrote a committed word)."""

from __future__ import annotations

from streamasr.actors import messages as m
from streamasr.actors.frontdoors.wyoming_chunks import ChunkComposer, words_after


def _t(
    start_s: float,
    text: str,
    committed: int = 0,
    *,
    final: bool = False,
    provisional: bool = False,
) -> m.Transcript:
    """A transcript of utterance ``u<start_s>`` (times in stream seconds)."""
    return m.Transcript(
        stream_id="s",
        utterance_id=f"s:{start_s}",
        seq=0,
        is_final=final,
        passno=2,
        text=text,
        start_s=start_s,
        end_s=start_s + 1.0,
        words=[],
        latency_s=0.0,
        stages_s={},
        provisional=provisional,
        committed_words=committed,
    )


def _run(c: ChunkComposer, events: list[m.Transcript]) -> list[str]:
    return [x for x in (c.add(e) for e in events) if x]


def test_committed_words_are_sent_before_the_final_and_the_rest_after() -> None:
    c = ChunkComposer()
    chunks = _run(
        c,
        [
            _t(0, "turn"),  # first pass: nothing committed
            _t(0, "Turn off the", 0),
            _t(0, "Turn off the light", 2),
            _t(0, "Turn off the lights in", 4),
            _t(0, "Turn off the lights in the", 4),  # nothing new
            _t(0, "Turn off the lights in the kitchen", final=True, provisional=True),
            _t(0, "Turn off the lights in the kitchen.", final=True),
        ],
    )
    assert chunks == ["Turn off", " the lights", " in the kitchen."]
    assert c.end() == ""
    assert c.text == "Turn off the lights in the kitchen."


def test_a_final_that_rewrote_committed_words_keeps_them_and_adds_what_follows() -> None:
    c = ChunkComposer()
    chunks = _run(
        c,
        [
            _t(0, "Set a timer for ten", 4),
            _t(0, "Set the timer for 10 minutes.", final=True),  # "a" -> "the", "ten" -> "10"
        ],
    )
    assert chunks == ["Set a timer for", " 10 minutes."]
    assert c.sent == "".join(chunks).strip() == "Set a timer for 10 minutes."
    assert c.text == "Set the timer for 10 minutes."  # what the client acts on: the final


def test_a_later_utterance_waits_for_the_final_of_an_earlier_one() -> None:
    c = ChunkComposer()
    chunks = _run(
        c,
        [
            _t(0, "Hello there", 1),
            _t(0, "Hello there", final=True, provisional=True),
            _t(2, "How are you", 2),  # utterance 0's accurate final is not in yet
            _t(0, "Hello there.", final=True),
            _t(2, "How are you doing?", final=True),
        ],
    )
    assert chunks == ["Hello", " there. How are", " you doing?"]
    assert c.text == "Hello there. How are you doing?"


def test_an_utterance_without_a_final_is_closed_by_a_later_final() -> None:
    """The first pass dropped utterance 0 (empty final: none sent); utterance 1's first-pass
    final closes it, so utterance 1's words are not held back until the stream ends."""
    c = ChunkComposer()
    chunks = _run(
        c,
        [
            _t(0, "um"),
            _t(1, "Good morning", final=True, provisional=True),
            _t(3, "See you", 1),
        ],
    )
    assert chunks == []  # utterance 1's accurate final is still to come
    assert c.add(_t(1, "Good morning.", final=True)) == "Good morning. See"
    assert c.end() == ""
    assert c.text == "Good morning. See"


def test_end_sends_the_committed_words_left_and_late_events_are_ignored() -> None:
    c = ChunkComposer()
    assert c.add(_t(0, "one two three", 2)) == "one two"
    assert c.add(_t(5, "four five", 1)) == ""  # waits for utterance 0
    assert c.end() == " four"
    assert c.add(_t(0, "one two three", final=True)) == ""
    assert c.text == "one two four"


def test_empty_and_fast_finals() -> None:
    c = ChunkComposer()
    assert c.add(_t(0, "", final=True)) == ""  # no speech: nothing
    assert c.add(_t(1, "fast final words", final=True)) == "fast final words"
    assert c.add(_t(2, "more", final=True)) == " more"
    assert c.text == "fast final words more"


def test_words_after_aligns_the_final_to_the_words_sent() -> None:
    assert words_after([], ["a", "b"]) == 0
    assert words_after(["Hello,", "world"], ["hello", "World!", "again"]) == 2
    assert words_after(["turn", "off", "all", "the"], ["Turn", "all", "the", "lights"]) == 3
    # the last sent words were rewritten: as many words skipped after the last match
    sent, final = ["set", "a", "timer", "for", "ten"], ["set", "the", "time", "for", "10", "now"]
    assert words_after(sent, final) == 5
    assert words_after(["x", "y"], ["p"]) == 1  # nothing matches: capped position
