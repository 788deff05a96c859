"""Whisper second pass over finished utterances, with a short encoder window.

faster-whisper's ``transcribe`` always pads to a 30 s window (about 0.6 s per call on two
cores for Whisper base int8). CTranslate2's Whisper accepts a shorter window, so here the
encoder sees a piece plus ``pad_s`` of silence, padded to at least ``min_window_s`` (shorter
windows make the decoder repeat the sentence), decoded in timestamp mode with a decode-length
cap from the piece's duration (:mod:`.decoder`). A Silero VAD gate keeps silence and noise
away from Whisper, which would otherwise invent text on them.

What keeps every word (each rule has a test that failed before it, see
``tests/unit/test_whisper_refiner.py``):

* Segments longer than ``max_piece_s`` are cut in the pauses between the VAD's speech runs
  (never inside a word) and decoded piece after piece, each with the text before it as its
  prompt (Whisper's ``condition_on_previous_text``), so a split costs no context; a caller
  may give a prompt too (the previous utterance of a monologue).
* A decode that stops early (the last aligned word ends more than ``resume_gap_s`` before
  the piece's last speech) is continued from that word, prompted with the text so far, as
  faster-whisper seeks to the last timestamp.
* A decoder loop is told from real repetition by the speaking rate it implies
  (:func:`~.filters.loop_reason`); a looping piece is re-decoded with the padded 30 s window
  and, if it still loops, its extra copies are dropped (:func:`~.filters.collapse_repeats`).
  A piece is dropped only as silence (empty text or Whisper's no-speech rule).

Word times come from CTranslate2's cross-attention alignment (``Whisper.align``).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.asr.types import Word
from streamasr.actors.errors import ModelError
from streamasr.actors.refine.busy import BusyRunner
from streamasr.actors.refine.decoder import Decoded, WhisperDecoder
from streamasr.actors.refine.filters import (
    collapse_repeats,
    compression_ratio,
    loop_reason,
    rejection_reason,
    words_of,
)
from streamasr.actors.refine.model_store import resolve_model
from streamasr.actors.refine.options import RefineOptions, RefineOutput
from streamasr.actors.refine.pieces import Piece, check_audio, to_stream
from streamasr.actors.refine.vad import SAMPLE_RATE_HZ, SpeechGate, plan_pieces

__all__ = ["AUTO_LANGUAGE", "WhisperRefiner"]

_log = logging.getLogger(__name__)

_HOP_SAMPLES = 160  # Whisper mel hop: 10 ms at 16 kHz
#: ``language`` that makes Whisper detect the language of each piece.
AUTO_LANGUAGE = "auto"
_FULL_WINDOW_S = 30.0

#: Reasons for which a decoded piece is dropped (silence); every other piece is kept.
_SILENCE = ("empty", "no_speech")


@dataclass(slots=True)
class _Item:
    """One segment of a batch and its speech (internal)."""

    index: int
    audio: NDArray[np.float32]
    start_s: float
    bounds: tuple[int, int]
    spans: list[tuple[int, int]]
    prompt: str


def _clamp_words(out: RefineOutput, bounds_s: tuple[float, float]) -> RefineOutput:
    """Keep word times inside the VAD speech span (alignment stretches the first word back
    to the segment start); ``bounds_s`` is (speech start, speech end) in stream seconds."""
    lo, hi = bounds_s
    words = []
    for w in out.words:
        start = min(max(w.start_s, lo), max(w.end_s, lo), hi)
        end = max(min(w.end_s, hi), start)
        words.append(Word(w.word, start, end, w.conf))
    return replace(out, words=tuple(words))


def _speech_in(spans: Sequence[tuple[int, int]], lo: int, hi: int) -> int:
    """Samples of speech (``spans``) inside [lo, hi)."""
    return sum(max(0, min(e, hi) - max(s, lo)) for s, e in spans)


def _collapse(dec: Decoded, max_repeats: int, sizes: Sequence[int]) -> None:
    """Drop the extra copies of a loop from ``dec``'s words and text, in place."""
    if dec.words:
        keep = collapse_repeats([w.word for w in dec.words], max_repeats, sizes)
        dec.words = [dec.words[i] for i in keep]
        dec.text = " ".join(w.word for w in dec.words)
    else:
        parts = dec.text.split()
        dec.text = " ".join(parts[i] for i in collapse_repeats(parts, max_repeats, sizes))


class WhisperRefiner:
    """Transcribe finished segments with Whisper (CTranslate2), short window, VAD-gated.

    Not thread-safe: one instance per process (the refine actor's core).
    """

    def __init__(self, options: RefineOptions | None = None) -> None:
        """Load the model (a few seconds on first assembly, ~0.6 s after) and the VAD.

        Raises:
            ModelError: weights missing/corrupt or CTranslate2 cannot load them.
        """
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.options = options if options is not None else RefineOptions()
        o = self.options
        path = resolve_model(o.model, o.cache_dir)
        threads = o.cpu_threads if o.cpu_threads > 0 else (os.cpu_count() or 1)
        try:
            self._fw: Any = WhisperModel(
                str(path), device="cpu", compute_type=o.compute_type, cpu_threads=threads
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"Whisper model {o.model!r} failed to load: {exc}") from exc

        def tokenizer(language: str) -> Any:
            return Tokenizer(
                self._fw.hf_tokenizer, self._fw.model.is_multilingual, o.task, language
            )

        if not self._fw.model.is_multilingual and (o.language != "en" or o.task != "transcribe"):
            raise ModelError(
                f"Whisper model {o.model!r} is English-only: language {o.language!r} / task "
                f"{o.task!r} need a multilingual model (base, small, ...)"
            )
        auto = o.language == AUTO_LANGUAGE
        tok: Any = tokenizer("en" if auto else o.language)
        self._dec = WhisperDecoder(self._fw, tok, tokenizer if auto else None)
        self._gate = SpeechGate(o.vad) if o.use_vad else None
        #: Per item of the last :meth:`transcribe_batch`, why it had no output where it had
        #: none: ``"gate"`` (no speech found), ``"no_speech"`` (Whisper's no-speech rule) or
        #: ``"empty"`` (Whisper wrote nothing).
        self.silence_reasons: list[str] = []
        #: Called between model calls (each at most a few seconds): an actor's heartbeat,
        #: so a long segment decoded in several calls does not look like a hung loop.
        self.progress: Callable[[], None] = lambda: None
        #: Runs each Whisper call while ``progress`` keeps the heartbeat going (see .busy).
        self._busy = BusyRunner(lambda: self.progress())

    def warm_up(self) -> None:
        """Run one decode on synthetic audio so the first real call is not slow."""
        rng = np.random.default_rng(0)
        audio = (rng.standard_normal(SAMPLE_RATE_HZ) * 1e-3).astype(np.float32)
        self._decode([audio], [""], full_window=False)
        self._dec.forget_languages()  # the noise's "language" must not weigh on speech

    def transcribe(
        self,
        audio: NDArray[np.float32],
        start_s: float,
        prompt: str = "",
        *,
        gate: bool = True,
        thorough: bool = True,
    ) -> RefineOutput | None:
        """Transcribe one segment; None if it holds no speech.

        Args:
            audio: 16 kHz mono float32 samples.
            start_s: stream time (seconds) of ``audio[0]``; word times are offset by it.
            prompt: text said just before the segment (context for the decoder), or "".
            gate: False skips the speech gate (the first pass heard words the gate missed);
                Whisper's own no-speech rule still applies.
            thorough: see :meth:`transcribe_batch`.
        """
        return self.transcribe_batch([(audio, start_s)], [prompt], gate=gate, thorough=thorough)[0]

    def transcribe_batch(
        self,
        items: Sequence[tuple[NDArray[np.float32], float]],
        prompts: Sequence[str] | None = None,
        *,
        gate: bool = True,
        thorough: bool = True,
    ) -> list[RefineOutput | None]:
        """Transcribe several segments in one encoder batch per window length.

        Args:
            items: (16 kHz mono float32 audio, start in stream seconds) pairs.
            prompts: per item, the text said just before it ("" or None: none).
            gate: False skips the speech gate for every item (see :meth:`transcribe`).
            thorough: with gated views, also decode the wide view where the short views
                agree but neither is sure (False: only where they disagree; the refine actor
                passes True only where finals have no deadline), and decode the views of an
                unsure item again with ``unsure_beam_size`` (False: with ``beam_size``).

        Returns:
            one output per item, None where the item held no speech.
        """
        full = self.options
        if not thorough:
            self.options = replace(full, unsure_beam_size=full.beam_size)
        try:
            return self._transcribe_batch(items, prompts, gate=gate, thorough=thorough)
        finally:
            self.options = full

    def _transcribe_batch(
        self,
        items: Sequence[tuple[NDArray[np.float32], float]],
        prompts: Sequence[str] | None,
        *,
        gate: bool,
        thorough: bool,
    ) -> list[RefineOutput | None]:
        """:meth:`transcribe_batch` with the options in force."""
        t0 = time.perf_counter()
        o = self.options
        texts = list(prompts) if prompts is not None else [""] * len(items)
        segs = self._items(items, texts, gate)
        views: dict[tuple[int, int], list[tuple[Piece, Decoded]]] = {}
        trimmed = [it for it in segs if self._trim_view(it)]
        wide = [it for it in segs if self._wide_view(it)]
        if o.trim_view_logprob >= 0.0:  # not gated: every view in one batch
            views = self._decode_views(segs, trimmed, wide)
        else:
            views = self._decode_views(segs, [])
            unsure = set()
            for it in segs:
                out = self._assemble(views.get((it.index, 0), []), 0.0)
                if out is None or out.avg_logprob < o.trim_view_logprob:
                    unsure.add(it.index)
            views.update(self._decode_views([], [it for it in trimmed if it.index in unsure]))
            split = {
                it.index
                for it in segs
                if it.index in unsure
                and (
                    self._views_differ(views, it)
                    or (thorough and self._best_short_logprob(views, it) < o.trim_view_logprob)
                )
            }
            views.update(self._decode_views([], [], [it for it in wide if it.index in split]))
        share = (time.perf_counter() - t0) / max(1, len(items))
        outs: list[RefineOutput | None] = [None] * len(items)
        self.silence_reasons = ["gate"] * len(items)
        for it in segs:
            reasons = {self._reason(d) for k, v in views.items() if k[0] == it.index for _, d in v}
            self.silence_reasons[it.index] = "no_speech" if "no_speech" in reasons else "empty"
            kept = [
                out
                for view in (0, 1, 2)
                if (out := self._assemble(views.get((it.index, view), []), share)) is not None
            ]
            if kept:
                best = max(kept, key=lambda x: x.avg_logprob)
                lo, hi = it.bounds
                bounds_s = (it.start_s + lo / SAMPLE_RATE_HZ, it.start_s + hi / SAMPLE_RATE_HZ)
                outs[it.index] = _clamp_words(best, bounds_s)
        return outs

    def heard_speech(self, audio: NDArray[np.float32]) -> tuple[bool, bool]:
        """Whether the speech gate finds any speech run in ``audio``, and enough speech to
        pass (both True without a gate)."""
        if self._gate is None:
            return True, True
        spans, bounds = self._gate.speech(check_audio(audio))
        return bool(spans), bounds is not None

    def transcribe_draft(self, audio: NDArray[np.float32], start_s: float) -> RefineOutput | None:
        """Quick transcript of an utterance in progress (accurate partials).

        As :meth:`transcribe`, but greedy, one view only (no VAD-trimmed second decode), no
        30 s re-decode of a looping piece (its loop is collapsed instead), no continuation
        and no word times (``words`` is empty): about half the work, no spikes.
        """
        full = self.options
        self.options = replace(
            full,
            trim_view=False,
            wide_view=False,
            fallback_full_window=False,
            word_times=False,
            beam_size=1,
            unsure_beam_size=1,
        )
        try:
            return self.transcribe(audio, start_s)
        finally:
            self.options = full

    def transcribe_reference(self, audio: NDArray[np.float32]) -> str:
        """Transcribe with faster-whisper's standard padded-30 s ``transcribe`` (for comparison)."""
        o = self.options
        segments, _ = self._fw.transcribe(
            check_audio(audio),
            language=None if o.language == AUTO_LANGUAGE else o.language,
            task=o.task,
            beam_size=o.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    # -- planning ----------------------------------------------------------------------------

    def _items(
        self,
        items: Sequence[tuple[NDArray[np.float32], float]],
        prompts: Sequence[str],
        gate: bool,
    ) -> list[_Item]:
        """The items with speech (the others have no output), with their speech runs."""
        out = []
        for index, ((raw, start_s), prompt) in enumerate(zip(items, prompts, strict=True)):
            audio = check_audio(raw)
            spans: list[tuple[int, int]] = [(0, len(audio))]
            bounds: tuple[int, int] | None = (0, len(audio)) if len(audio) else None
            if self._gate is not None:
                found, found_bounds = self._gate.speech(audio)
                if gate or found_bounds is not None:
                    spans, bounds = found, found_bounds
            if bounds is not None:
                out.append(_Item(index, audio, start_s, bounds, spans, prompt or ""))
        return out

    def _trim_view(self, it: _Item) -> bool:
        """True if the item's VAD-trimmed span is decoded too (see ``RefineOptions.trim_view``)."""
        o = self.options
        short = len(it.audio) <= self._max_piece() and it.bounds[1] - it.bounds[0] > 0
        return o.trim_view and self._gate is not None and short and it.bounds != (0, len(it.audio))

    def _views_differ(
        self, views: dict[tuple[int, int], list[tuple[Piece, Decoded]]], it: _Item
    ) -> bool:
        """True if the item's trimmed view was not decoded or reads other words than its
        first view (then the wide view decides; where the two agree it is not decoded)."""
        if (it.index, 1) not in views:
            return True
        texts = [self._assemble(views.get((it.index, v), []), 0.0) for v in (0, 1)]
        return len({" ".join(words_of(t.text)) if t else "" for t in texts}) > 1

    def _best_short_logprob(
        self, views: dict[tuple[int, int], list[tuple[Piece, Decoded]]], it: _Item
    ) -> float:
        """The highest mean token log-probability among the item's short views (natural
        log; -inf where none holds speech)."""
        outs = [self._assemble(views.get((it.index, v), []), 0.0) for v in (0, 1)]
        return max((o.avg_logprob for o in outs if o is not None), default=-math.inf)

    def _wide_view(self, it: _Item) -> bool:
        """True if the item is decoded in the padded 30 s window too (``wide_view``)."""
        o = self.options
        return o.wide_view and 0 < len(it.audio) <= o.wide_view_max_s * SAMPLE_RATE_HZ

    def _max_piece(self) -> int:
        o = self.options
        return int(min(o.max_piece_s, o.max_window_s - o.pad_s) * SAMPLE_RATE_HZ)

    def _first_pieces(self, it: _Item) -> list[Piece]:
        """Pieces of the segment as given (view 0), cut in its pauses."""
        search = int(min(self.options.split_search_s, self.options.max_piece_s) * SAMPLE_RATE_HZ)
        cuts = plan_pieces(it.audio, it.spans, self._max_piece(), search)
        return [Piece(it.index, it.audio[s:e], it.start_s + s / SAMPLE_RATE_HZ) for s, e in cuts]

    # -- decoding -------------------------------------------------------------------------

    def _decode_views(
        self, full: Sequence[_Item], trimmed: Sequence[_Item], wide: Sequence[_Item] = ()
    ) -> dict[tuple[int, int], list[tuple[Piece, Decoded]]]:
        """Decode view 0 of ``full``, view 1 (the VAD span) of ``trimmed`` and view 2 (the
        segment in the padded 30 s window) of ``wide`` together.

        Pieces of one item are decoded in order, each prompted with the text before it, in
        rounds (one piece per item and view per round, batched); a piece that stops early
        is continued in the next round.
        """
        queues: dict[tuple[int, int], deque[Piece]] = {}
        for it in full:
            queues[(it.index, 0)] = deque(self._first_pieces(it))
        for it in trimmed:
            lo, hi = it.bounds
            piece = Piece(it.index, it.audio[lo:hi], it.start_s + lo / SAMPLE_RATE_HZ, 1)
            queues[(it.index, 1)] = deque([piece])
        for it in wide:
            queues[(it.index, 2)] = deque([Piece(it.index, it.audio, it.start_s, 2)])
        by_index = {it.index: it for it in [*full, *trimmed, *wide]}
        done: dict[tuple[int, int], list[tuple[Piece, Decoded]]] = {k: [] for k in queues}
        resumes: dict[tuple[int, int], int] = dict.fromkeys(queues, 0)
        while any(queues.values()):
            keys = [k for k, q in queues.items() if q]
            pieces = [queues[k].popleft() for k in keys]
            prompts = [self._prompt(by_index[k[0]], done[k]) for k in keys]
            decoded = self._decode_pieces(pieces, prompts, by_index)
            for key, piece, dec in zip(keys, pieces, decoded, strict=True):
                done[key].append((piece, dec))
                rest = self._resume(piece, dec, by_index[key[0]])
                if rest is not None and resumes[key] < self.options.max_resumes:
                    resumes[key] += 1
                    queues[key].appendleft(rest)
        return done

    def _prompt(self, it: _Item, before: list[tuple[Piece, Decoded]]) -> str:
        """The item's own prompt and the text decoded so far for this view."""
        parts = [it.prompt, *(d.text for _, d in before if self._reason(d) not in _SILENCE)]
        return " ".join(p for p in parts if p).strip()

    def _resume(self, piece: Piece, dec: Decoded, it: _Item) -> Piece | None:
        """The rest of ``piece`` after its last decoded word, if the decode stopped early and
        enough speech follows (None otherwise)."""
        o = self.options
        if not o.word_times or not dec.words or self._reason(dec) in _SILENCE:
            return None
        last_end = dec.words[-1].end_s - piece.start_s  # words are in stream seconds
        first = round((piece.start_s - it.start_s) * SAMPLE_RATE_HZ)
        cut = first + max(1, int(last_end * SAMPLE_RATE_HZ))
        end = first + len(piece.audio)
        speech_after = _speech_in(it.spans, cut, end)
        last_speech = max((min(e, end) for s, e in it.spans if s < end), default=cut)
        gap = (last_speech - cut) / SAMPLE_RATE_HZ
        if gap < o.resume_gap_s or speech_after < int(0.5 * SAMPLE_RATE_HZ):
            return None
        _log.debug("decode stopped %.1f s before the speech ended; continuing", gap)
        return Piece(piece.index, it.audio[cut:end], it.start_s + cut / SAMPLE_RATE_HZ, piece.view)

    def _decode_pieces(
        self, pieces: list[Piece], prompts: list[str], items: dict[int, _Item]
    ) -> list[Decoded]:
        """Decode ``pieces`` (re-decoding loops with the 30 s window), word times in stream s."""
        decoded = self._decode_grouped(
            [p.audio for p in pieces],
            prompts,
            [p.view == 2 for p in pieces],
            [self._beam(p) for p in pieces],
        )
        for k, (piece, dec) in enumerate(zip(pieces, decoded, strict=True)):
            it = items[piece.index]
            first = round((piece.start_s - it.start_s) * SAMPLE_RATE_HZ)
            speech_s = _speech_in(it.spans, first, first + len(piece.audio)) / SAMPLE_RATE_HZ
            decoded[k] = self._unloop(piece, dec, prompts[k], speech_s, self._beam(piece))
            decoded[k].words = to_stream(piece, decoded[k].words)
        return decoded

    def _beam(self, piece: Piece) -> int:
        """The decoder beam of ``piece``: ``beam_size`` for the first view, else (a view
        decoded again because the first was unsure) ``unsure_beam_size``."""
        o = self.options
        return o.unsure_beam_size if piece.view else o.beam_size

    def _window_samples(self, n_samples: int, full_window: bool) -> int:
        """Encoder window (samples, multiple of two hops) for ``n_samples`` of audio."""
        o = self.options
        if full_window:
            return int(_FULL_WINDOW_S * SAMPLE_RATE_HZ)
        want = max(n_samples + o.pad_s * SAMPLE_RATE_HZ, o.min_window_s * SAMPLE_RATE_HZ)
        if o.window_step_s > 0 and want > o.min_window_s * SAMPLE_RATE_HZ:
            step_samples = o.window_step_s * SAMPLE_RATE_HZ
            extra = want - o.min_window_s * SAMPLE_RATE_HZ
            want = o.min_window_s * SAMPLE_RATE_HZ + math.ceil(extra / step_samples) * step_samples
        want = min(want, o.max_window_s * SAMPLE_RATE_HZ)
        step = 2 * _HOP_SAMPLES
        return int(math.ceil(want / step) * step)

    def _decode_grouped(
        self,
        audios: Sequence[NDArray[np.float32]],
        prompts: Sequence[str],
        wide: Sequence[bool] | None = None,
        beams: Sequence[int] | None = None,
    ) -> list[Decoded]:
        """Decode ``audios`` in one batch per window length and beam (``wide``: the padded
        30 s window for that one; ``beams``: its beam size, ``beam_size`` if None); results
        in input order.

        Batching pieces of different lengths would pad them all to the longest window, and
        Whisper's text depends on the window: grouping keeps each piece's text independent
        of its batch mates.
        """
        groups: dict[tuple[int, int], list[int]] = {}
        full = list(wide) if wide is not None else [False] * len(audios)
        beam = list(beams) if beams is not None else [self.options.beam_size] * len(audios)
        for i, audio in enumerate(audios):
            key = (self._window_samples(len(audio), full[i]), beam[i])
            groups.setdefault(key, []).append(i)
        out: list[Decoded | None] = [None] * len(audios)
        for (window, size), idx in groups.items():
            is_full = window == int(_FULL_WINDOW_S * SAMPLE_RATE_HZ)
            batch = self._decode([audios[i] for i in idx], [prompts[i] for i in idx], is_full, size)
            for i, dec in zip(idx, batch, strict=True):
                out[i] = dec
        return [d for d in out if d is not None]

    def _decode(
        self,
        audios: Sequence[NDArray[np.float32]],
        prompts: Sequence[str],
        full_window: bool,
        beam_size: int | None = None,
    ) -> list[Decoded]:
        """Encode ``audios`` as one batch and decode each after its prompt (``beam_size``:
        the options' if None)."""
        o = self.options
        beam = o.beam_size if beam_size is None else beam_size
        self.progress()
        window = max(self._window_samples(len(a), full_window) for a in audios)
        caps = [int(o.tokens_per_s * len(a) / SAMPLE_RATE_HZ) + o.extra_tokens for a in audios]
        tokens = [self._dec.prompt_tokens(p) for p in prompts]
        return self._busy.run(
            lambda: self._dec.decode(
                audios, window, tokens, caps, beam_size=beam, word_times=o.word_times
            )
        )

    def _reason(self, dec: Decoded) -> str | None:
        """Rejection reason for a decoded piece (see ``filters.rejection_reason``)."""
        reason: str | None = rejection_reason(
            dec.text, dec.no_speech_prob, dec.avg_logprob, self.options.filters
        )
        return reason

    def _unloop(
        self, piece: Piece, dec: Decoded, prompt: str, speech_s: float, beam_size: int
    ) -> Decoded:
        """A decode without loops: re-decoded with the padded 30 s window if it loops (when
        enabled and useful), then with the extra copies of any loop left dropped."""
        f = self.options.filters
        reason = loop_reason(dec.text, dec.hit_cap, speech_s, f)
        if reason is None:
            return dec
        if self.options.fallback_full_window and dec.window_s < _FULL_WINDOW_S:
            _log.debug("short-window decode looks like a loop (%s); 30 s window", reason)
            dec = self._decode([piece.audio], [prompt], True, beam_size)[0]
            dec.fallback = True
            reason = loop_reason(dec.text, dec.hit_cap, speech_s, f)
        if reason is not None:
            _log.debug("decode looks like a loop (%s); extra copies dropped", reason)
            dec.loop = reason
            _collapse(dec, 1, f.ngram_sizes)
        return dec

    def _assemble(
        self, decoded: list[tuple[Piece, Decoded]], share_s: float
    ) -> RefineOutput | None:
        """Join the pieces of one view of one item that hold speech (None if none)."""
        kept = [d for _, d in decoded if self._reason(d) not in _SILENCE]
        if not kept:
            return None
        text = " ".join(d.text for d in kept)
        weights = [max(1, len(d.text_tokens)) for d in kept]
        avg = sum(d.avg_logprob * w for d, w in zip(kept, weights, strict=True)) / sum(weights)
        return RefineOutput(
            text=text,
            words=tuple(w for d in kept for w in d.words),
            no_speech_prob=kept[0].no_speech_prob,
            avg_logprob=avg,
            compression_ratio=compression_ratio(text),
            window_s=max(d.window_s for d in kept),
            compute_s=share_s,
            fallback=any(d.fallback for d in kept),
            language=kept[0].language,
        )
