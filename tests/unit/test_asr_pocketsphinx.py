"""PocketSphinx backend: segmentation, timing and accuracy on the shared test conversations."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr
from wer import WerCounts, word_edits

from streamasr.actors.asr.base import Recognizer, RecognizerStream
from streamasr.actors.asr.decode import decode_all, endpoints
from streamasr.actors.asr.pocketsphinx_backend import (
    PocketsphinxOptions,
    PocketsphinxRecognizer,
    PocketsphinxStream,
)
from streamasr.actors.asr.registry import create_recognizer
from streamasr.actors.asr.types import Result
from streamasr.actors.errors import AudioFormatError, ConfigError, ModelError

AUDIO = Path(__file__).resolve().parents[2] / ".." / "shared" / "audio"
HEAD = 16000 * 10  # samples: the first 10 s of conversation1 hold utterances 1-3
needs_audio = pytest.mark.skipif(
    not (AUDIO / "conversation1.wav").is_file(), reason=f"shared test audio not found in {AUDIO}"
)


def load16k(path: Path) -> npt.NDArray[np.int16]:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != 16000:
        mono = soxr.resample(mono, rate, 16000)
    pcm: npt.NDArray[np.int16] = np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)
    return pcm


def refs(name: str) -> list[tuple[float, float, str]]:
    with (AUDIO / f"{name}.tsv").open(newline="") as f:
        return [
            (float(r["start_s"]), float(r["end_s"]), r["text"])
            for r in csv.DictReader(f, delimiter="\t")
        ]


@pytest.fixture(scope="module")
def rec() -> PocketsphinxRecognizer:
    r = create_recognizer("pocketsphinx", {})
    assert isinstance(r, PocketsphinxRecognizer)
    r.warm_up()
    return r


@pytest.fixture(scope="module")
def conv1_100ms(rec: PocketsphinxRecognizer) -> list[Result]:
    return decode_all(rec.create_stream(), load16k(AUDIO / "conversation1.wav"), 1600)


def test_satisfies_protocol(rec: PocketsphinxRecognizer) -> None:
    assert isinstance(rec, Recognizer)
    assert isinstance(rec.create_stream(), RecognizerStream)
    assert rec.sample_rate_hz == 16000 and rec.input_kind == "pcm_s16"


def test_silence_gives_nothing_and_positions_track(rec: PocketsphinxRecognizer) -> None:
    stream = rec.create_stream(start_frame=5_000_000)
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(16000 * 2) * 30).astype(np.int16)  # about -60 dBFS
    for i in range(0, len(noise), 1000):
        stream.accept(noise[i : i + 1000])
        while stream.is_ready():
            stream.step()
        assert not stream.is_endpoint()
        assert stream.utterance_start_frame is None and stream.result() is None
    assert stream.position_frame == 5_000_000 + len(noise)
    assert stream.finalize() is None


def test_rejects_wrong_format(rec: PocketsphinxRecognizer) -> None:
    stream = rec.create_stream()
    with pytest.raises(AudioFormatError, match=r"expected int16 mono \(n,\), got float32 \(10,\)"):
        stream.accept(np.zeros(10, dtype=np.float32))
    with pytest.raises(AudioFormatError, match=r"got int16 \(10, 2\)"):
        stream.accept(np.zeros((10, 2), dtype=np.int16))


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"^inference\.pocketsphinx\.foo: unknown key$"):
        create_recognizer("pocketsphinx", {"foo": 1})
    with pytest.raises(ConfigError, match=r"^inference\.pocketsphinx\.vad_mode: must be 0\.\.3"):
        create_recognizer("pocketsphinx", {"vad_mode": 7})
    with pytest.raises(ConfigError, match=r"endpoint_silence_ms: must be int, got str '600'"):
        create_recognizer("pocketsphinx", {"endpoint_silence_ms": "600"})
    with pytest.raises(ConfigError, match=r"^inference\.backend: unknown backend 'kaldi'"):
        create_recognizer("kaldi", {})
    assert PocketsphinxOptions(lw=7.0).decoder_kwargs()["lw"] == 7.0
    assert "lw" not in PocketsphinxOptions().decoder_kwargs()


@needs_audio
def test_one_final_per_utterance_with_boundaries(conv1_100ms: list[Result]) -> None:
    expected = refs("conversation1")
    assert len(conv1_100ms) == len(expected) == 8
    for final, (start_s, end_s, _) in zip(conv1_100ms, expected, strict=True):
        assert final.is_final
        assert abs(final.start_frame / 16000 - start_s) < 0.5
        assert abs(final.end_frame / 16000 - end_s) < 0.5
        assert final.words and all(
            start_s - 0.5 < w.start_s < w.end_s < end_s + 0.5 for w in final.words
        )
        assert all(0.0 <= w.conf <= 1.0 for w in final.words)
    counts = sum(
        (WerCounts.of(t, f.text) for f, (_, _, t) in zip(conv1_100ms, expected, strict=True)),
        WerCounts(),
    )
    assert counts.wer < 0.25


@needs_audio
def test_partials_and_commit_point(rec: PocketsphinxRecognizer) -> None:
    pcm = load16k(AUDIO / "conversation1.wav")[: int(16000 * 3.0)]
    stream = rec.create_stream(start_frame=160_000)
    partials: list[Result] = []
    for i in range(0, len(pcm), 1600):
        stream.accept(pcm[i : i + 1600])
        while stream.is_ready():
            stream.step()
        if (r := stream.result()) is not None:
            partials.append(r)
        if stream.is_endpoint():
            break
    assert stream.is_endpoint() and not stream.is_ready()
    start = stream.utterance_start_frame
    assert start is not None and abs((start - 160_000) / 16000 - 0.5) < 0.5
    assert partials and not partials[-1].is_final and partials[-1].start_frame == start
    final = stream.finalize()
    assert final is not None and final.start_frame == start
    assert final.words[0].start_s > 160_000 / 16000  # word times are absolute stream seconds
    assert stream.utterance_start_frame is None


@needs_audio
@pytest.mark.parametrize("chunk_ms", [50])  # 200 ms too took 31 s of the suite's 10 minutes
def test_chunk_size_does_not_change_finals(chunk_ms: int) -> None:
    # fresh decoders on both sides: PocketSphinx's live cepstral mean carries over from the
    # audio a decoder decoded before, which can change a borderline word
    pcm = load16k(AUDIO / "conversation1.wav")
    pcm = pcm[:HEAD]  # three utterances: the whole file took 78 s of the suite on a slow box
    ref = decode_all(create_recognizer("pocketsphinx", {}).create_stream(), pcm, 1600)
    finals = decode_all(create_recognizer("pocketsphinx", {}).create_stream(), pcm, 16 * chunk_ms)
    assert [f.text for f in finals] == [f.text for f in ref]
    assert [f.start_frame for f in finals] == [f.start_frame for f in ref]
    assert [f.end_frame for f in finals] == [f.end_frame for f in ref]


@needs_audio
def test_48k_stereo_resampled_matches(
    rec: PocketsphinxRecognizer, conv1_100ms: list[Result]
) -> None:
    pcm = load16k(AUDIO / "conversation1_48k_stereo.wav")[:HEAD]  # first 3 utterances
    finals = decode_all(rec.create_stream(), pcm, 1600)
    head = [f for f in conv1_100ms if f.start_frame < HEAD]
    assert len(finals) == len(head) == 3
    for got, want in zip(finals, head, strict=True):  # same segmentation within 0.1 s
        assert abs(got.start_frame - want.start_frame) <= 1600
        assert abs(got.end_frame - want.end_frame) <= 1600
    ref = " ".join(f.text for f in head).split()
    assert word_edits(ref, " ".join(f.text for f in finals).split()) <= 4


@needs_audio
def test_8k_upsampled_keeps_segmentation(rec: PocketsphinxRecognizer) -> None:
    """Telephone-band audio: the 16 kHz model loses its 4-8 kHz cues, so only timing holds.

    Measured WER on the whole file is about 50 % (vs 13 % at 16 kHz); segmentation holds.
    """
    finals = decode_all(rec.create_stream(), load16k(AUDIO / "conversation1_8k.wav")[:HEAD], 1600)
    expected = refs("conversation1")[:3]
    assert len(finals) == len(expected)
    for final, (start_s, end_s, _) in zip(finals, expected, strict=True):
        assert abs(final.start_frame / 16000 - start_s) < 0.5
        assert abs(final.end_frame / 16000 - end_s) < 0.5
    ref_text = " ".join(t for _, _, t in expected)
    assert WerCounts.of(ref_text, " ".join(f.text for f in finals)).wer < 0.8


def test_stream_close_returns_decoder_to_pool(rec: PocketsphinxRecognizer) -> None:
    idle = rec.idle_decoders
    a = rec.create_stream()
    assert isinstance(a, PocketsphinxStream)
    assert rec.idle_decoders == max(0, idle - 1)
    a.close()
    assert rec.idle_decoders == max(1, idle)
    a.accept(np.zeros(16000, dtype=np.int16))
    with pytest.raises(ModelError, match=r"^pocketsphinx: stream is closed$"):
        a.step()


@needs_audio
@pytest.mark.extended
def test_fwdflat_off_keeps_the_same_utterances(conv1_100ms: list[Result]) -> None:
    """Without the end-of-utterance fwdflat search: same segmentation, words still close."""
    rec_off = create_recognizer("pocketsphinx", {"fwdflat": False})
    finals = decode_all(rec_off.create_stream(), load16k(AUDIO / "conversation1.wav"), 1600)
    assert [(f.start_frame, f.end_frame) for f in finals] == [
        (f.start_frame, f.end_frame) for f in conv1_100ms
    ]
    expected = refs("conversation1")
    counts = sum(
        (WerCounts.of(t, f.text) for f, (_, _, t) in zip(finals, expected, strict=True)),
        WerCounts(),
    )
    assert counts.wer < 0.3


@pytest.mark.parametrize(
    ("finals", "table", "expected"),
    [
        ("accurate", {}, False),  # provisional finals: the fwdflat search is skipped
        ("accurate", {"fwdflat": True}, True),  # unless the config asks for it
        ("fast", {}, None),  # pass-1 finals are the user's: PocketSphinx's default (on)
        ("fast", {"fwdflat": False}, False),
    ],
)
def test_inference_resolves_fwdflat_from_the_finals_mode(
    finals: str, table: dict[str, object], expected: bool | None
) -> None:
    from streamasr.actors.inference.actor import recognizer_options
    from streamasr.actors.settings import InferenceConfig, RefineConfig

    backend, options = recognizer_options(
        InferenceConfig(backend="pocketsphinx", pocketsphinx=table),
        RefineConfig(finals=finals),  # type: ignore[arg-type]
    )
    assert "words" not in options  # English: the first pass decodes words
    assert backend == "pocketsphinx"
    assert options.get("fwdflat") == expected
    kwargs = PocketsphinxOptions(**options).decoder_kwargs()  # type: ignore[arg-type]
    assert kwargs.get("fwdflat") == expected


@needs_audio
def test_trailing_silence_is_not_decoded_past_the_feed_limit() -> None:
    """At each endpoint the decoder has been fed only FEED_SILENCE_MS (+ one VAD frame) of
    the non-speech after the last speech frame; the rest was held back and dropped."""
    from streamasr.actors.asr.pocketsphinx_backend import FEED_SILENCE_MS

    stream = create_recognizer("pocketsphinx", {}).create_stream()
    pcm = load16k(AUDIO / "conversation1.wav")[:HEAD]  # three utterances
    fed_past_speech: list[int] = []
    for partial, final in endpoints(stream, pcm, 1600, with_partial=True):
        if partial is not None and final is not None:
            speech_end = final.end_frame - 16 * 60  # minus end_hangover_ms
            fed_past_speech.append(partial.end_frame - speech_end)
    assert len(fed_past_speech) == 3
    assert all(0 < n <= 16 * (FEED_SILENCE_MS + 30) for n in fed_past_speech), fed_past_speech


@needs_audio
def test_a_pause_shorter_than_the_endpoint_keeps_every_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Speech, 450 ms of the recording's noise floor, speech: one utterance whose decoder got
    the held-back part of the pause when the speech resumed, so its final is exactly the one
    of a decoder fed every frame at once."""
    from streamasr.actors.asr import pocketsphinx_backend

    first = load16k(AUDIO / "utterances" / "utt01_slt.wav")
    second = load16k(AUDIO / "utterances" / "utt02_rms.wav")
    noise = load16k(AUDIO / "conversation1.wav")[:7200]  # the lead-in: background noise only
    pcm = np.concatenate([noise, first, noise, second, noise, noise])
    held = decode_all(create_recognizer("pocketsphinx", {}).create_stream(), pcm, 1600)
    monkeypatch.setattr(pocketsphinx_backend, "FEED_SILENCE_MS", 10_000)
    unheld = decode_all(create_recognizer("pocketsphinx", {}).create_stream(), pcm, 1600)
    assert len(held) == 1, [f.text for f in held]
    assert {"kitchen", "lights", "minutes"} <= set(held[0].text.split()), held[0].text
    assert [(f.text, f.start_frame, f.end_frame) for f in held] == [
        (f.text, f.start_frame, f.end_frame) for f in unheld
    ]


def _run_on(pcm: npt.NDArray[np.int16], gap_s: float) -> npt.NDArray[np.int16]:
    """The shared conversation's utterances again with ``gap_s`` pauses: a monologue."""
    gap = np.zeros(int(gap_s * 16000), np.int16)
    parts = []
    for start, end, _ in refs("conversation1"):
        parts += [pcm[int(start * 16000) : int(end * 16000)], gap]
    return np.concatenate(parts)


@needs_audio
def test_a_monologue_is_split_at_its_pauses() -> None:
    """Continuous speech with 250 ms pauses (below the 600 ms endpoint) is one utterance
    without the length limit; with it, it ends at pauses once 12 s long, finals do not
    overlap, no word is lost at a cut, and results do not depend on the chunk size."""
    mono = _run_on(load16k(AUDIO / "conversation1.wav"), 0.25)
    assert len(mono) / 16000 > 19.0
    unlimited = PocketsphinxRecognizer(PocketsphinxOptions(max_utterance_s=0))
    whole = decode_all(unlimited.create_stream(), mono, 1600)
    assert len(whole) == 1
    # fresh decoders on both sides: PocketSphinx's live cepstral mean carries over between
    # the utterances a pooled decoder decoded
    split_stream = PocketsphinxRecognizer(PocketsphinxOptions()).create_stream()
    assert isinstance(split_stream, PocketsphinxStream)
    split = decode_all(split_stream, mono, 1600)
    assert len(split) >= 2 and split_stream.splits == len(split) - 1
    for a, b in itertools.pairwise(split):
        # the spans meet at the cut: no overlap (nothing published twice), no gap (no audio
        # lost to the accurate pass), and the cut lies in the silence of a pause, so no
        # word is cut in two
        assert a.continued and a.end_frame == b.start_frame, (a, b)
        around = mono[a.end_frame - 240 : a.end_frame + 240].astype(np.float64)
        rms_dbfs = 20 * np.log10(np.sqrt(np.mean(around**2)) / 32768 + 1e-12)
        assert rms_dbfs < -50.0, (a.end_frame / 16000, rms_dbfs)  # the floor, not speech
    assert not split[-1].continued
    for r in split[:-1]:
        assert 12.0 * 16000 <= r.end_frame - r.start_frame <= 24.0 * 16000
    words = sum(len(r.text.split()) for r in split)
    assert abs(words - len(whole[0].text.split())) <= 3
    # the cuts do not depend on the chunk size (segmentation only: the spans without the
    # words' search, which the chunk test covers)
    spans = PocketsphinxRecognizer(PocketsphinxOptions(words=False)).create_stream()
    again = decode_all(spans, mono, 3200)
    assert [(r.start_frame, r.end_frame) for r in again] == [
        (r.start_frame, r.end_frame) for r in split
    ]


def test_utterance_limit_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"max_utterance_s: must be 0 \(off\) or in \[2, 300\]"):
        PocketsphinxOptions(max_utterance_s=1.0)
    with pytest.raises(ConfigError, match=r"split_pause_ms: must be in \[vad_frame_ms"):
        PocketsphinxOptions(split_pause_ms=900)


@pytest.mark.parametrize("value", [False, True])
def test_remove_noise_takes_effect_over_the_models_feat_params(value: bool) -> None:
    """The en-us model's feat.params says ``-remove_noise yes`` and PocketSphinx lets it win
    over the constructor's value: the option is applied again after loading (it was a
    documented option that did nothing)."""
    rec = create_recognizer("pocketsphinx", {"remove_noise": value})
    stream = rec.create_stream(0)
    try:
        assert stream._decoder is not None and stream._decoder.config["remove_noise"] is value
    finally:
        stream.close()


def test_remove_noise_unset_keeps_the_models_setting() -> None:
    stream = create_recognizer("pocketsphinx", {}).create_stream(0)
    try:
        assert stream._decoder is not None and stream._decoder.config["remove_noise"] is True
    finally:
        stream.close()


@needs_audio
def test_segmentation_only_finds_the_same_utterances_without_words(
    conv1_100ms: list[Result],
) -> None:
    """``words = false`` (the Whisper-led mode): the same spans as with the search, no text,
    no decoder loaded, and a small fraction of the CPU."""
    import time

    from streamasr.actors.inference.actor import recognizer_options
    from streamasr.actors.settings import InferenceConfig, RefineConfig

    _, options = recognizer_options(InferenceConfig(), RefineConfig(language="de"))
    assert options["words"] is False and options["vad"] == "silero"
    spans_only = create_recognizer("pocketsphinx", {"words": False})
    assert spans_only.live_decoders == 1  # a stand-in: no PocketSphinx decoder loaded
    c0 = time.process_time()
    got = decode_all(spans_only.create_stream(), load16k(AUDIO / "conversation1.wav"), 1600)
    cpu_s = time.process_time() - c0
    assert [(r.start_frame, r.end_frame) for r in got] == [
        (r.start_frame, r.end_frame) for r in conv1_100ms
    ]
    assert all(r.text == "" and r.is_final for r in got)
    assert cpu_s < 0.5  # decoding them takes ~3 s
