"""Whisper second pass over finished utterances, with a short encoder window.

faster-whisper's ``transcribe`` always pads to a 30 s window (about 0.6 s per call on two
cores for Whisper base int8). CTranslate2's Whisper accepts a shorter window, so here the
encoder sees the utterance plus ``pad_s`` of silence, padded to at least ``min_window_s``
(shorter windows make the decoder repeat the sentence), decoded greedily in timestamp mode
(without timestamps it also loops) with a decode-length cap from the segment duration.
A looping or over-long decode falls back to the full 30 s window for that piece. Segments
longer than ``max_window_s - pad_s`` are cut at pauses and decoded piecewise. Word times
come from CTranslate2's cross-attention alignment (``Whisper.align``). A Silero VAD gate
keeps silence and noise away from Whisper, which would otherwise invent text on them.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.asr.types import Word
from streamasr.actors.errors import ModelError
from streamasr.actors.whisper.filters import (
    FilterOptions,
    compression_ratio,
    has_repeated_phrase,
    rejection_reason,
    words_of,
)
from streamasr.actors.whisper.model_store import resolve_model
from streamasr.actors.whisper.pieces import Piece, check_audio, to_stream
from streamasr.actors.whisper.vad import SAMPLE_RATE_HZ, SpeechGate, VadGateOptions, split_at_pauses

__all__ = ["RefineOptions", "RefineOutput", "WhisperRefiner"]

_log = logging.getLogger(__name__)

_HOP_SAMPLES = 160  # Whisper mel hop: 10 ms at 16 kHz
_FULL_WINDOW_S = 30.0
_MAX_DECODE_TOKENS = 440  # Whisper's text context is 448 tokens, prompt included


@dataclass(frozen=True, slots=True)
class RefineOptions:
    """Options of :class:`WhisperRefiner`.

    Attributes:
        model: ``"base"`` (offline pip weights), a CTranslate2 model directory, or a
            faster-whisper model name (needs internet; see ``model_store.resolve_model``).
        compute_type: CTranslate2 compute type (``"int8"``, ``"float32"``, ...).
        cpu_threads: CTranslate2 intra-op threads; 0 means ``os.cpu_count()``.
        min_window_s: shortest encoder window in seconds (below 6 s the decoder loops).
        window_step_s: encoder windows are rounded up to a multiple of this many seconds
            (above ``min_window_s``), so a batch only ever holds pieces of one window length:
            a segment's text never depends on what else was batched with it.
        pad_s: seconds of silence appended after the audio inside the window.
        max_window_s: longest encoder window in seconds (Whisper's 30 s); longer segments
            are split at pauses.
        beam_size: decoder beam size (1 = greedy).
        language: language code of the prompt.
        tokens_per_s: decode cap, tokens per second of audio (plus ``extra_tokens``).
        extra_tokens: decode cap, tokens added to the per-second allowance.
        split_search_s: seconds before the window limit searched for the quietest cut point.
        trim_view: also decode each segment cut to its VAD speech span (no margins) and
            keep whichever of the two transcripts has the higher mean token log-probability
            (Whisper base's text swings with a few hundred ms of lead-in noise; about twice
            the decode work, batched).
        trim_view_logprob: below 0, the trimmed view is decoded only for items whose first
            view was rejected or has a mean token log-probability below this (natural log;
            measured on the 24 conversation utterances: -0.5 keeps the second view's gain and
            skips it for about half of them); 0.0 decodes both views always, in one batch.
        fallback_full_window: re-decode a looping piece with the padded 30 s window.
        word_times: align words to the audio (CTranslate2 ``align``, ~10% of a decode);
            without it ``RefineOutput.words`` is empty.
        use_vad: run the Silero speech gate before Whisper.
        vad: speech gate options.
        filters: thresholds for no-speech, compression ratio, repetition, log-probability.
        cache_dir: model cache root (None: the per-user default).
    """

    model: str = "base"
    compute_type: str = "int8"
    cpu_threads: int = 0
    min_window_s: float = 6.0
    window_step_s: float = 2.0
    pad_s: float = 1.0
    max_window_s: float = 30.0
    beam_size: int = 1
    language: str = "en"
    tokens_per_s: float = 7.0
    extra_tokens: int = 10
    split_search_s: float = 5.0
    trim_view: bool = True
    trim_view_logprob: float = 0.0
    fallback_full_window: bool = True
    word_times: bool = True
    use_vad: bool = True
    vad: VadGateOptions = field(default_factory=VadGateOptions)
    filters: FilterOptions = field(default_factory=FilterOptions)
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class RefineOutput:
    """Whisper's transcript of one segment.

    Attributes:
        text: transcript, as Whisper writes it (case and punctuation kept).
        words: words with times in stream seconds and conf = mean token probability.
        no_speech_prob: Whisper's no-speech probability (first piece), in [0, 1].
        avg_logprob: mean token log-probability (natural log), over all pieces.
        compression_ratio: zlib compression ratio of ``text``.
        window_s: longest encoder window used, in seconds.
        compute_s: wall seconds spent; for a batch, the batch's time divided by its size.
        fallback: True if any piece needed the padded 30 s window.
    """

    text: str
    words: tuple[Word, ...]
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    window_s: float
    compute_s: float
    fallback: bool = False


@dataclass(slots=True)
class _Decoded:
    """One piece after decoding (internal)."""

    text: str
    text_tokens: list[int]
    no_speech_prob: float
    avg_logprob: float
    hit_cap: bool
    words: list[Word]
    window_s: float
    fallback: bool = False
    loop: str | None = None


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
        self._model: Any = self._fw.model
        self._tok: Any = Tokenizer(
            self._fw.hf_tokenizer,
            self._model.is_multilingual,
            task="transcribe",
            language=o.language,
        )
        self._gate = SpeechGate(o.vad) if o.use_vad else None

    def warm_up(self) -> None:
        """Run one decode on synthetic audio so the first real call is not slow."""
        rng = np.random.default_rng(0)
        audio = (rng.standard_normal(SAMPLE_RATE_HZ) * 1e-3).astype(np.float32)
        self._decode_batch([audio], full_window=False)

    def transcribe(self, audio: NDArray[np.float32], start_s: float) -> RefineOutput | None:
        """Transcribe one segment; None if it holds no speech or only rejected output.

        Args:
            audio: 16 kHz mono float32 samples.
            start_s: stream time (seconds) of ``audio[0]``; word times are offset by it.
        """
        return self.transcribe_batch([(audio, start_s)])[0]

    def transcribe_batch(
        self, items: Sequence[tuple[NDArray[np.float32], float]]
    ) -> list[RefineOutput | None]:
        """Transcribe several segments in one encoder batch (padded to the longest window).

        Args:
            items: (16 kHz mono float32 audio, start in stream seconds) pairs.

        Returns:
            one output per item, None where the item held no accepted speech.
        """
        t0 = time.perf_counter()
        o = self.options
        pieces, second, speech = self._pieces(items)
        if o.trim_view_logprob >= 0.0:  # not gated: both views in one batch
            pieces, second = pieces + second, []
        decoded = self._decode_pieces(pieces)
        if second:
            first = {i: self._assemble(i, 0, pieces, decoded, 0.0) for i in speech}
            second = [
                p
                for p in second
                if (out := first[p.index]) is None or out.avg_logprob < o.trim_view_logprob
            ]
            decoded += self._decode_pieces(second)
            pieces += second
        share = (time.perf_counter() - t0) / max(1, len(items))
        outs = [self._best_view(i, pieces, decoded, share) for i in range(len(items))]
        return [out if out is None else _clamp_words(out, speech[i]) for i, out in enumerate(outs)]

    def _pieces(
        self, items: Sequence[tuple[NDArray[np.float32], float]]
    ) -> tuple[list[Piece], list[Piece], dict[int, tuple[float, float]]]:
        """Pieces of the first view, pieces of the VAD-trimmed view, and each item's speech
        span in stream seconds (items without speech have none and no pieces)."""
        o = self.options
        max_piece = int((o.max_window_s - o.pad_s) * SAMPLE_RATE_HZ)
        search = int(min(o.split_search_s, o.max_window_s - o.pad_s) * SAMPLE_RATE_HZ)
        pieces: list[Piece] = []
        second: list[Piece] = []
        speech: dict[int, tuple[float, float]] = {}
        for index, (raw, start_s) in enumerate(items):
            audio = check_audio(raw)
            bounds = (0, len(audio)) if self._gate is None else self._gate.speech_bounds(audio)
            if bounds is None:
                continue
            speech[index] = (
                start_s + bounds[0] / SAMPLE_RATE_HZ,
                start_s + bounds[1] / SAMPLE_RATE_HZ,
            )
            for s, e in split_at_pauses(audio, max_piece, search):
                pieces.append(Piece(index, audio[s:e], start_s + s / SAMPLE_RATE_HZ))
            if self._trim_view(len(audio), bounds):
                lo, hi = bounds
                second.append(Piece(index, audio[lo:hi], start_s + lo / SAMPLE_RATE_HZ, 1))
        return pieces, second, speech

    def _decode_pieces(self, pieces: list[Piece]) -> list[_Decoded]:
        """Decode ``pieces`` (re-decoding loops with the 30 s window), word times in stream s."""
        if not pieces:
            return []
        decoded = self._decode_grouped([p.audio for p in pieces])
        for k, (piece, dec) in enumerate(zip(pieces, decoded, strict=True)):
            decoded[k] = self._maybe_fallback(piece, dec)
            decoded[k].words = to_stream(piece, decoded[k].words)
        return decoded

    def transcribe_draft(self, audio: NDArray[np.float32], start_s: float) -> RefineOutput | None:
        """Quick transcript of an utterance in progress (accurate partials).

        As :meth:`transcribe`, but one view only (no VAD-trimmed second decode), no 30 s
        re-decode of a looping piece (it is rejected instead) and no word times (``words``
        is empty): about half the work, no spikes.
        """
        full = self.options
        self.options = replace(full, trim_view=False, fallback_full_window=False, word_times=False)
        try:
            return self.transcribe(audio, start_s)
        finally:
            self.options = full

    def transcribe_reference(self, audio: NDArray[np.float32]) -> str:
        """Transcribe with faster-whisper's standard padded-30 s ``transcribe`` (for comparison)."""
        o = self.options
        segments, _ = self._fw.transcribe(
            check_audio(audio),
            language=o.language,
            beam_size=o.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    # -- internals -------------------------------------------------------------------------

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

    def _features(self, audios: Sequence[NDArray[np.float32]], window: int) -> Any:
        """Log-mel features [batch, 80, window/160] of each audio zero-padded to ``window``."""
        import ctranslate2

        feats = []
        for audio in audios:
            x = np.zeros(window, dtype=np.float32)
            x[: min(len(audio), window)] = audio[:window]
            feats.append(self._fw.feature_extractor(x, padding=0)[:, : window // _HOP_SAMPLES])
        batch = np.ascontiguousarray(np.stack(feats).astype(np.float32))
        return ctranslate2.StorageView.from_array(batch)

    def _decode_grouped(self, audios: Sequence[NDArray[np.float32]]) -> list[_Decoded]:
        """Decode ``audios`` in one batch per window length; results in input order.

        Batching pieces of different lengths would pad them all to the longest window, and
        Whisper's text depends on the window: grouping keeps each piece's text independent
        of its batch mates.
        """
        groups: dict[int, list[int]] = {}
        for i, audio in enumerate(audios):
            groups.setdefault(self._window_samples(len(audio), False), []).append(i)
        out: list[_Decoded | None] = [None] * len(audios)
        for idx in groups.values():
            for i, dec in zip(
                idx, self._decode_batch([audios[i] for i in idx], False), strict=True
            ):
                out[i] = dec
        return [d for d in out if d is not None]

    def _decode_batch(
        self, audios: Sequence[NDArray[np.float32]], full_window: bool
    ) -> list[_Decoded]:
        """Encode ``audios`` as one batch, decode greedily in timestamp mode, align words."""
        o = self.options
        window = max(self._window_samples(len(a), full_window) for a in audios)
        encoded = self._model.encode(self._features(audios, window))
        prompt = list(self._tok.sot_sequence)
        caps = [int(o.tokens_per_s * len(a) / SAMPLE_RATE_HZ) + o.extra_tokens for a in audios]
        cap = min(max(caps), _MAX_DECODE_TOKENS - len(prompt))
        results = self._model.generate(
            encoded,
            [prompt] * len(audios),
            beam_size=o.beam_size,
            # CTranslate2 4.x Whisper emits at most max_length // 2 tokens (measured); ask for
            # twice the cap, and flag the cap from the token count whichever semantics apply.
            max_length=min(_MAX_DECODE_TOKENS, len(prompt) + 2 * cap),
            return_scores=True,
            return_no_speech_prob=True,
        )
        out = [self._decoded(r, c, window) for r, c in zip(results, caps, strict=True)]
        if self.options.word_times:
            self._align(encoded, audios, out)
        return out

    def _decoded(self, result: Any, cap: int, window: int) -> _Decoded:
        """Turn one CTranslate2 generation result into a :class:`_Decoded`."""
        tokens: list[int] = list(result.sequences_ids[0])
        eot = self._tok.eot
        text_tokens = [t for t in tokens if t < eot]
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        return _Decoded(
            text=self._tok.decode(text_tokens).strip(),
            text_tokens=text_tokens,
            no_speech_prob=float(result.no_speech_prob),
            avg_logprob=avg_logprob,
            hit_cap=len(tokens) >= cap,
            words=[],
            window_s=window / SAMPLE_RATE_HZ,
        )

    def _align(
        self, encoded: Any, audios: Sequence[NDArray[np.float32]], out: list[_Decoded]
    ) -> None:
        """Fill each decoded piece's raw word list (times relative to the piece start)."""
        import ctranslate2

        todo = [i for i, d in enumerate(out) if d.text_tokens]
        if not todo:
            return
        enc = encoded
        if len(todo) != len(out):
            enc_np = np.asarray(encoded)
            enc = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[todo]))
        frames = [max(2, len(audios[i]) // _HOP_SAMPLES) for i in todo]
        aligned = self._model.align(
            enc, list(self._tok.sot_sequence), [out[i].text_tokens for i in todo], frames
        )
        for i, res in zip(todo, aligned, strict=True):
            out[i].words = self._raw_words(out[i].text_tokens, res)

    def _raw_words(self, text_tokens: list[int], res: Any) -> list[Word]:
        """Words with times in seconds from the piece start (faster-whisper's find_alignment)."""
        from faster_whisper.transcribe import merge_punctuations

        words, word_tokens = self._tok.split_to_word_tokens([*text_tokens, self._tok.eot])
        if len(word_tokens) <= 1:
            return []
        bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
        text_idx = np.array([p[0] for p in res.alignments])
        time_idx = np.array([p[1] for p in res.alignments])
        jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
        jump_s = time_idx[jumps] * (2 * _HOP_SAMPLES / SAMPLE_RATE_HZ)
        probs = res.text_token_probs
        items = [
            {
                "word": w,
                "tokens": t,
                "start": float(jump_s[min(a, len(jump_s) - 1)]),
                "end": float(jump_s[min(b, len(jump_s) - 1)]),
                "probability": float(np.mean(probs[a:b])) if b > a else 0.0,
            }
            for w, t, a, b in zip(words, word_tokens, bounds[:-1], bounds[1:], strict=False)
        ]
        merge_punctuations(items, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
        return [
            Word(str(d["word"]).strip(), d["start"], d["end"], d["probability"])
            for d in items
            if str(d["word"]).strip()
        ]

    def _reason(self, dec: _Decoded) -> str | None:
        """Rejection reason for a decoded piece (see ``filters.rejection_reason``)."""
        reason: str | None = rejection_reason(
            dec.text, dec.no_speech_prob, dec.avg_logprob, self.options.filters
        )
        return reason

    def _loop_reason(self, dec: _Decoded) -> str | None:
        """Why a decode looks like a decoder loop (cap hit, repetition), or None."""
        reason = self._reason(dec)
        if reason in ("compression_ratio", "repetition"):
            return reason
        if reason is None and dec.hit_cap:
            return "length_cap"
        if reason is None and has_repeated_phrase(
            words_of(dec.text), self.options.filters.phrase_words
        ):
            return "repeated_phrase"
        return None

    def _maybe_fallback(self, piece: Piece, dec: _Decoded) -> _Decoded:
        """Re-decode a looping piece with the padded 30 s window, if enabled and useful."""
        reason = self._loop_reason(dec)
        if reason is None:
            return dec
        if not self.options.fallback_full_window or dec.window_s >= _FULL_WINDOW_S:
            _log.debug("decode rejected as a loop (%s)", reason)
            dec.loop = reason
            return dec
        _log.debug("short-window decode rejected (%s); retrying with 30 s window", reason)
        again = self._decode_batch([piece.audio], full_window=True)[0]
        again.fallback = True
        return again

    def _trim_view(self, n_samples: int, bounds: tuple[int, int]) -> bool:
        """True if item's VAD-trimmed span is decoded too (see ``RefineOptions.trim_view``)."""
        o = self.options
        lo, hi = bounds
        short = n_samples <= (o.max_window_s - o.pad_s) * SAMPLE_RATE_HZ
        return o.trim_view and self._gate is not None and short and (lo, hi) != (0, n_samples)

    def _best_view(
        self, index: int, pieces: list[Piece], decoded: list[_Decoded], share_s: float
    ) -> RefineOutput | None:
        """The accepted view of item ``index`` with the highest mean token log-probability."""
        outs = [self._assemble(index, view, pieces, decoded, share_s) for view in (0, 1)]
        kept = [o for o in outs if o is not None]
        return max(kept, key=lambda o: o.avg_logprob) if kept else None

    def _assemble(
        self,
        index: int,
        view: int,
        pieces: list[Piece],
        decoded: list[_Decoded],
        share_s: float,
    ) -> RefineOutput | None:
        """Join the accepted pieces of one view of item ``index`` (None if none)."""
        kept = [
            d
            for p, d in zip(pieces, decoded, strict=True)
            if p.index == index and p.view == view and d.loop is None and self._reason(d) is None
        ]
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
        )
