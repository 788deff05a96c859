"""Local agreement (actors/refine/agreement.py) and the accurate-partials scheduler
(actors/refine/partials.py): pure cores, fake clock, no model; then the refiner's draft
mode and gated second view (Whisper base, shared test audio)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from streamasr.actors import messages as m
from streamasr.actors.refine.agreement import (
    AgreedText,
    LocalAgreement,
    common_prefix_len,
    normalise,
)
from streamasr.actors.refine.options import RefineOptions
from streamasr.actors.refine.partials import PartialOptions, PartialScheduler, start_frame_of
from streamasr.actors.refine.refiner import WhisperRefiner

RATE_HZ = 16_000


# -------------------------------------------------------------------------------- agreement
@pytest.mark.parametrize(
    ("word", "expected"),
    [("Minutes.", "minutes"), ("don't", "don't"), ("'quoted'", "quoted"), ("10,", "10"), ("-", "")],
)
def test_normalise(word: str, expected: str) -> None:
    assert normalise(word) == expected


def test_common_prefix_ignores_case_and_punctuation() -> None:
    assert common_prefix_len(["Set", "a", "timer."], ["set", "a", "timer", "for"]) == 3
    assert common_prefix_len(["set", "a"], ["set", "the"]) == 1
    assert common_prefix_len([], ["x"]) == 0


def test_first_run_commits_nothing() -> None:
    agree = LocalAgreement()
    out = agree.update(["Set", "a", "timer."])
    assert out == AgreedText((), ("Set", "a", "timer."), 0)
    assert out.text == "Set a timer."


def test_two_runs_commit_their_common_prefix() -> None:
    agree = LocalAgreement()
    agree.update(["Set", "a", "timer."])
    out = agree.update(["Set", "a", "timer", "for", "ten"])
    assert out.committed == ("Set", "a", "timer")
    assert out.tail == ("for", "ten")
    assert out.new == 3
    assert out.text == "Set a timer for ten"


def test_committed_words_are_never_retracted() -> None:
    agree = LocalAgreement()
    agree.update(["Set", "a", "timer"])
    agree.update(["Set", "a", "timer", "for"])
    # Whisper changes its mind about a committed word: it stays committed
    out = agree.update(["Set", "the", "timer", "for", "ten", "minutes."])
    assert out.committed[:3] == ("Set", "a", "timer")
    assert out.text.startswith("Set a timer")
    assert out.text.endswith("ten minutes.")


def test_committed_prefix_only_grows() -> None:
    runs = [
        ["What"],
        ["What", "is", "the"],
        ["What", "is", "the", "weather"],
        ["What's", "the", "weather", "like"],
        ["What", "is", "the", "weather", "like", "tomorrow"],
        ["What", "is", "the", "weather", "like", "tomorrow", "morning?"],
    ]
    agree = LocalAgreement()
    lengths = [len(agree.update(r).committed) for r in runs]
    assert lengths == sorted(lengths)
    assert agree.committed[:4] == ("What", "is", "the", "weather")


def test_rewritten_last_committed_word_keeps_the_tail_aligned() -> None:
    agree = LocalAgreement()
    agree.update(["set", "a", "timer", "for", "ten"])
    agree.update(["set", "a", "timer", "for", "ten"])
    out = agree.update(["set", "a", "timer", "for", "10", "minutes"])
    assert out.committed == ("set", "a", "timer", "for", "ten")
    assert out.tail == ("minutes",)


def test_alignment_finds_committed_words_after_an_inserted_word() -> None:
    agree = LocalAgreement()
    agree.update(["turn", "on", "lights"])
    agree.update(["turn", "on", "lights"])
    out = agree.update(["turn", "on", "the", "lights", "please"])
    assert out.tail == ("please",)
    assert out.text == "turn on lights please"


def test_punctuation_only_words_are_ignored() -> None:
    agree = LocalAgreement()
    agree.update(["Hi", "-", "there"])
    out = agree.update(["hi", "there", "you"])
    assert out.committed == ("hi", "there")
    assert out.tail == ("you",)


# -------------------------------------------------------------------------------- scheduler
def partial(start_frame: int, end_s: float, stream: str = "s0", text: str = "w") -> m.Transcript:
    """A first-pass partial of the utterance starting at ``start_frame``."""
    return m.Transcript(
        stream_id=stream,
        utterance_id=f"{stream}:{start_frame}",
        seq=0,
        is_final=False,
        passno=1,
        text=text,
        start_s=start_frame / RATE_HZ,
        end_s=end_s,
        words=[],
        latency_s=0.05,
        stages_s={},
    )


def test_start_frame_of_utterance_ids() -> None:
    assert start_frame_of("s0:16000") == 16000
    assert start_frame_of("mic:a:8") == 8
    assert start_frame_of("s0:x") is None


def test_utterance_tracks_start_from_id_and_latest_end() -> None:
    sched = PartialScheduler(PartialOptions(interval_s=0.5))
    sched.update(partial(16000, 1.5), RATE_HZ, 10.0)
    sched.update(partial(16000, 2.0), RATE_HZ, 10.2)
    u = sched.utterances["s0"]
    assert (u.start_frame, u.end_frame, u.seen_s) == (16000, 32000, 10.2)
    assert u.due_s == 10.5


def test_no_run_before_interval_or_min_audio_or_new_audio() -> None:
    sched = PartialScheduler(PartialOptions(interval_s=0.5, min_audio_s=0.5))
    sched.update(partial(16000, 1.2), RATE_HZ, 10.0)  # 0.2 s of audio
    assert sched.due(10.4, 0) is None  # not due yet
    assert sched.due(10.6, 0) is None  # due, but too short
    sched.update(partial(16000, 1.8), RATE_HZ, 10.6)
    u = sched.due(10.6, 0)
    assert u is not None
    u.ran_to = u.end_frame
    sched.record(u, 0.1, 10.7)
    assert u.due_s == pytest.approx(11.0)
    assert sched.due(11.1, 0) is None  # no new audio since the run
    sched.update(partial(16000, 2.0), RATE_HZ, 11.1)
    assert sched.due(11.1, 0) is u


def test_queued_jobs_come_first() -> None:
    sched = PartialScheduler()
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    sched.update(partial(0, 1.1), RATE_HZ, 0.9)
    assert sched.due(1.0, queue_len=1) is None
    assert sched.due(1.0, queue_len=0) is not None


def test_finished_utterance_stops_and_its_late_partials_are_ignored() -> None:
    sched = PartialScheduler()
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    sched.finish("s0", "s0:0")
    assert sched.utterances == {}
    sched.update(partial(0, 1.2), RATE_HZ, 0.1)  # a partial that crossed the job
    assert sched.utterances == {}
    assert sched.next_due_s() is None


def test_new_utterance_replaces_the_old_one_of_the_stream() -> None:
    sched = PartialScheduler()
    sched.update(partial(0, 1.0, text="a"), RATE_HZ, 0.0)
    sched.update(partial(32000, 2.5, text="b"), RATE_HZ, 1.0)
    assert sched.utterances["s0"].start_frame == 32000
    assert sched.utterances["s0"].agreement.committed == ()


def test_idle_utterances_are_dropped() -> None:
    sched = PartialScheduler(PartialOptions(idle_s=5.0))
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    sched.update(partial(0, 1.0, stream="s1"), RATE_HZ, 4.0)
    assert sched.active(6.0) == 1
    assert list(sched.utterances) == ["s1"]


def _run(sched: PartialScheduler, now_s: float, compute_s: float) -> bool:
    """Feed audio, ask for a run at ``now_s``; record ``compute_s`` if one is granted."""
    for sid, cur in list(sched.utterances.items()):
        sched.update(partial(cur.start_frame, cur.latest.end_s + 0.5, stream=sid), RATE_HZ, now_s)
    u = sched.due(now_s, 0)
    if u is None:
        return False
    u.ran_to = u.end_frame
    sched.record(u, compute_s, now_s)
    return True


def test_headroom_rule_p95_times_active_within_half_the_interval() -> None:
    sched = PartialScheduler(PartialOptions(interval_s=0.5, budget_share=0.5))
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    assert _run(sched, 0.6, 0.2)  # 0.2 x 1 <= 0.25
    assert _run(sched, 1.2, 0.2)
    assert not sched.paused
    sched.update(partial(0, 1.0, stream="s1"), RATE_HZ, 1.2)  # 0.2 x 2 > 0.25
    assert not _run(sched, 1.8, 0.2)
    assert sched.paused
    assert (sched.pauses, sched.resumes) == (1, 0)


def test_pause_then_probe_then_resume_when_load_drops() -> None:
    opts = PartialOptions(interval_s=0.5, budget_share=0.5, sample_ttl_s=5.0)
    sched = PartialScheduler(opts)
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    assert _run(sched, 0.6, 0.6)  # first run: nothing measured yet, allowed
    assert not _run(sched, 1.2, 0.1)
    assert sched.paused and sched.pauses == 1
    for t in (1.7, 2.2, 3.2, 4.2, 5.2, 5.55):  # paused while the slow measurement is recent
        assert not _run(sched, t, 0.1)
    t = 5.7  # the measurement expired: one probe run (still paused until it is measured)
    assert _run(sched, t, 0.1)
    assert sched.paused
    assert _run(sched, t + 0.5, 0.1)  # the probe was fast: resumed
    assert not sched.paused
    assert (sched.pauses, sched.resumes) == (1, 1)


def test_probe_that_is_still_slow_stays_paused_without_counting_again() -> None:
    sched = PartialScheduler(PartialOptions(interval_s=0.5, sample_ttl_s=2.0))
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    assert _run(sched, 0.6, 0.6)
    assert not _run(sched, 1.2, 0.6)
    assert _run(sched, 2.7, 0.6)  # probe after the ttl
    assert not _run(sched, 3.2, 0.6)
    assert (sched.paused, sched.pauses, sched.resumes) == (True, 1, 0)


def test_forget_measurements_allows_an_immediate_probe() -> None:
    sched = PartialScheduler()
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    assert _run(sched, 0.6, 1.0)
    assert not _run(sched, 1.2, 1.0)
    sched.forget_measurements()
    assert sched.p95_s(1.3) is None
    assert _run(sched, 1.3, 0.1)


def test_no_run_once_the_first_pass_went_quiet() -> None:
    sched = PartialScheduler(PartialOptions(interval_s=0.5, quiet_s=0.4))
    sched.update(partial(0, 1.0), RATE_HZ, 0.0)
    sched.update(partial(0, 1.5), RATE_HZ, 0.3)
    assert sched.due(0.7, 0) is not None
    assert sched.due(0.71, 0) is None  # no partial for 0.41 s: the endpoint is coming
    sched.update(partial(0, 1.6), RATE_HZ, 0.8)  # speech again
    assert sched.due(0.8, 0) is not None


def test_most_overdue_utterance_runs_first() -> None:
    sched = PartialScheduler(PartialOptions(interval_s=0.5, quiet_s=2.0))
    sched.update(partial(0, 1.0, stream="a"), RATE_HZ, 0.2)
    sched.update(partial(0, 1.0, stream="b"), RATE_HZ, 0.0)
    u = sched.due(1.0, 0)
    assert u is not None and u.latest.stream_id == "b"
    assert sched.next_due_s() == pytest.approx(0.5)


# ------------------------------------------------ the refiner's partial and gated-view modes
AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"


@pytest.fixture(scope="module")
def refiner() -> WhisperRefiner:
    r = WhisperRefiner(RefineOptions(wide_view=False))
    r.warm_up()
    return r


def _utterances(n: int) -> list[tuple[np.ndarray, float]]:
    """(audio, start_s) of the utterances of conversation ``n`` with 0.6 s lead-in."""
    wav, tsv = AUDIO / f"conversation{n}.wav", AUDIO / f"conversation{n}.tsv"
    if not wav.exists() or not tsv.exists():
        pytest.skip(f"shared test audio missing: {wav}")
    audio, rate = sf.read(str(wav), dtype="float32")
    assert rate == RATE_HZ
    out = []
    for row in tsv.read_text().splitlines()[1:]:
        s, e = (float(v) for v in row.split("\t")[:2])
        lead_s = max(0.0, s - 0.6)
        out.append((audio[int(lead_s * RATE_HZ) : int((e + 0.2) * RATE_HZ)], lead_s))
    return out


@pytest.mark.timeout(240)
def test_draft_is_one_view_without_fallback_and_restores_options(
    refiner: WhisperRefiner,
) -> None:
    audio, start_s = _utterances(1)[1]
    before = refiner.options
    half = audio[: len(audio) // 2]
    draft = refiner.transcribe_draft(half, start_s)
    assert refiner.options is before
    one = WhisperRefiner(
        replace(
            before, trim_view=False, wide_view=False, fallback_full_window=False, word_times=False
        )
    )
    expected = one.transcribe(half, start_s)
    assert draft is not None and expected is not None
    assert draft.text == expected.text
    assert draft.words == ()
    timed = WhisperRefiner(
        replace(before, trim_view=False, wide_view=False, fallback_full_window=False)
    )
    with_words = timed.transcribe(half, start_s)
    assert with_words is not None and with_words.text == draft.text
    assert with_words.words and with_words.words[0].start_s >= start_s


@pytest.mark.timeout(240)
def test_finals_decode_with_the_configured_beam_and_drafts_greedy(
    refiner: WhisperRefiner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[refine] beam_size`` reaches the finals' first view, ``unsure_beam_size`` the views
    decoded again for an unsure one; Whisper partials stay greedy."""
    audio, start_s = _utterances(1)[1]
    wide = WhisperRefiner(replace(refiner.options, beam_size=5, unsure_beam_size=3))
    beams: list[int] = []
    decode = wide._dec.decode

    def spy(*args: Any, **kw: Any) -> Any:
        beams.append(kw["beam_size"])
        return decode(*args, **kw)

    monkeypatch.setattr(wide._dec, "decode", spy)
    final = wide.transcribe(audio, start_s)
    assert final is not None and final.text and beams[0] == 5 and set(beams) <= {5, 3}
    beams.clear()
    wide.transcribe(audio, start_s, thorough=False)  # finals with a deadline: no wider beam
    assert beams and set(beams) == {5}
    assert wide.options.unsure_beam_size == 3
    beams.clear()
    wide.transcribe_draft(audio[: len(audio) // 2], start_s)
    assert beams == [1]
    assert wide.options.beam_size == 5


@pytest.mark.timeout(240)
def test_gated_second_view_only_for_unconfident_first_views(refiner: WhisperRefiner) -> None:
    gated = WhisperRefiner(replace(refiner.options, trim_view_logprob=-0.5))
    first_only = WhisperRefiner(replace(refiner.options, trim_view=False))
    items = _utterances(2)[1:5]
    got = gated.transcribe_batch(items)
    both = refiner.transcribe_batch(items)
    ones = first_only.transcribe_batch(items)
    kinds = set()
    for g, b, o in zip(got, both, ones, strict=True):
        assert g is not None and b is not None
        if o is not None and o.avg_logprob >= -0.5:  # confident: the second view was not decoded
            assert (g.text, g.avg_logprob) == (o.text, o.avg_logprob)
            kinds.add("skipped")
        else:  # as with both views always
            assert (g.text, g.avg_logprob) == (b.text, b.avg_logprob)
            kinds.add("decoded")
    assert kinds == {"skipped", "decoded"}  # conversation2 2-5 holds both kinds
