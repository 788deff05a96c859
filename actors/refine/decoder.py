"""One Whisper encoder + decoder call over a batch of pieces, with word times (CTranslate2).

The refiner (:mod:`.refiner`) decides what to decode; this module does the model work:
log-mel features zero-padded to a window, one encoder batch, generation in timestamp mode
(optionally after a text prompt: the previous text, as Whisper's own
``condition_on_previous_text`` does), and word times from CTranslate2's cross-attention
alignment (``Whisper.align``), merged with punctuation the way faster-whisper does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.asr.types import Word
from streamasr.actors.refine.vad import SAMPLE_RATE_HZ

__all__ = ["HOP_SAMPLES", "MAX_DECODE_TOKENS", "Decoded", "WhisperDecoder"]

HOP_SAMPLES = 160
"""Whisper mel hop: 10 ms at 16 kHz."""

MAX_DECODE_TOKENS = 440
"""Whisper's text context is 448 tokens, prompt included."""

#: ``auto`` language: the weight of the detections before a piece in its language's choice.
LANGUAGE_MEMORY = 0.5

#: Most prompt tokens (previous text) put before a decode: half the text context, as
#: faster-whisper does, so the decode keeps room for its own output.
MAX_PROMPT_TOKENS = 223


@dataclass(slots=True)
class Decoded:
    """One piece after decoding.

    Attributes:
        text: the text, stripped.
        text_tokens: its token ids (no timestamps, no prompt).
        no_speech_prob: Whisper's no-speech probability at the first step, in [0, 1].
        avg_logprob: mean token log-probability (natural log).
        hit_cap: the decode stopped at its token cap.
        words: words with times in seconds from the piece start (empty without alignment).
        window_s: encoder window in seconds.
        fallback: decoded again with the 30 s window after a loop.
        loop: why the decode looked like a loop (after the fallback too), or None.
    """

    text: str
    text_tokens: list[int]
    no_speech_prob: float
    avg_logprob: float
    hit_cap: bool
    words: list[Word] = field(default_factory=list)
    window_s: float = 0.0
    fallback: bool = False
    loop: str | None = None
    language: str = ""


class WhisperDecoder:
    """Encode and decode batches with a loaded faster-whisper model (not thread-safe)."""

    def __init__(
        self, fw_model: Any, tokenizer: Any, detect: Callable[[str], Any] | None = None
    ) -> None:
        """``fw_model``: a ``faster_whisper.WhisperModel``; ``tokenizer``: its Tokenizer
        (its language and task start every decode). ``detect``: the language is detected
        per piece instead (Whisper's language token, from the encoder output already
        computed: one decoder step), and ``detect(code)`` gives the tokenizer of that
        language."""
        self._fw = fw_model
        self._model: Any = fw_model.model
        self._tok = tokenizer
        self._detect = detect
        self._tokenizers: dict[str, Any] = {}
        #: Language probabilities of the pieces decoded so far, averaged (see _languages).
        self._prior: dict[str, float] = {}

    def prompt_tokens(self, text: str) -> list[int]:
        """The previous-text prompt for ``text`` (empty for no text): ``<|startofprev|>``
        and the last :data:`MAX_PROMPT_TOKENS` tokens of the text."""
        text = text.strip()
        if not text:
            return []
        tokens: list[int] = self._tok.encode(" " + text)
        return [self._tok.sot_prev, *tokens[-MAX_PROMPT_TOKENS:]]

    def decode(
        self,
        audios: Sequence[NDArray[np.float32]],
        window: int,
        prompts: Sequence[list[int]],
        caps: Sequence[int],
        *,
        beam_size: int = 1,
        word_times: bool = True,
    ) -> list[Decoded]:
        """Encode ``audios`` as one batch padded to ``window`` samples and decode each.

        Args:
            audios: 16 kHz mono float32 pieces, each at most ``window`` samples.
            window: encoder window in samples (a multiple of two hops).
            prompts: per piece, previous-text tokens from :meth:`prompt_tokens` (or []).
            caps: per piece, the most tokens its decode may write.
            beam_size: decoder beam (1: greedy).
            word_times: align words to the audio (about 10% of a decode).
        """
        if len({len(p) for p in prompts}) > 1:
            return self._decode_by_prompt_length(
                audios, window, prompts, caps, beam_size=beam_size, word_times=word_times
            )
        encoded = self._model.encode(self._features(audios, window))
        langs = self._languages(encoded, len(audios))
        full = [
            [*p, *self._tokenizer(lang).sot_sequence]
            for p, lang in zip(prompts, langs, strict=True)
        ]
        longest = max(len(p) for p in full)
        cap = min(max(caps), MAX_DECODE_TOKENS - longest)
        results = self._model.generate(
            encoded,
            full,
            beam_size=beam_size,
            # CTranslate2 4.x Whisper emits at most max_length // 2 tokens (measured); ask for
            # twice the cap, and flag the cap from the token count whichever semantics apply.
            max_length=min(MAX_DECODE_TOKENS, longest + 2 * cap),
            return_scores=True,
            return_no_speech_prob=True,
        )
        out = [self._decoded(r, min(c, cap), window) for r, c in zip(results, caps, strict=True)]
        for dec, lang in zip(out, langs, strict=True):
            dec.language = lang
        if word_times:
            for lang in sorted(set(langs)):
                self._align(encoded, audios, out, lang)
        return out

    def _languages(self, encoded: Any, n: int) -> list[str]:
        """The language of each of ``n`` encoded pieces: the tokenizer's, or detected.

        A short piece says little about its language (Whisper base reads 2 s of German as
        Thai now and then), so each detection is averaged with the ones before it
        (:data:`LANGUAGE_MEMORY`: half the weight on the past, decaying), and the most
        probable language of that average is taken. The average is one per decoder, so a
        pipeline is taken to speak one language at a time: after a change of language, a
        piece or two are read in the old one (Whisper partials and views count as pieces
        too, so a new utterance moves it quickly).
        """
        if self._detect is None:
            return [str(self._tok.language_code)] * n
        out = []
        for found in self._model.detect_language(encoded):
            probs = {str(tok)[2:-2]: float(p) for tok, p in found}  # "<|de|>" -> "de"
            keys = set(probs) | set(self._prior)
            self._prior = {
                k: LANGUAGE_MEMORY * self._prior.get(k, 0.0)
                + (1.0 - LANGUAGE_MEMORY if self._prior else 1.0) * probs.get(k, 0.0)
                for k in keys
            }
            out.append(max(self._prior, key=lambda k: self._prior[k]))
        return out

    def forget_languages(self) -> None:
        """Drop the averaged language detections (see :meth:`_languages`)."""
        self._prior = {}

    def _tokenizer(self, language: str) -> Any:
        """The tokenizer whose start sequence names ``language`` (and the task)."""
        if self._detect is None:
            return self._tok
        tok = self._tokenizers.get(language)
        if tok is None:
            tok = self._tokenizers[language] = self._detect(language)
        return tok

    def _decode_by_prompt_length(
        self,
        audios: Sequence[NDArray[np.float32]],
        window: int,
        prompts: Sequence[list[int]],
        caps: Sequence[int],
        *,
        beam_size: int,
        word_times: bool,
    ) -> list[Decoded]:
        """:meth:`decode` one sub-batch per prompt length, results in input order.

        CTranslate2's Whisper ``generate`` needs ``<|startoftranscript|>`` at the same
        position in every item of a batch (it raises ValueError otherwise); padding the
        shorter prompts would change their text, so pieces with prompts of other lengths
        (a continued utterance beside a fresh one) go through the model apart.
        """
        out: list[Decoded | None] = [None] * len(audios)
        for n in sorted({len(p) for p in prompts}):
            idx = [i for i, p in enumerate(prompts) if len(p) == n]
            part = self.decode(
                [audios[i] for i in idx],
                window,
                [prompts[i] for i in idx],
                [caps[i] for i in idx],
                beam_size=beam_size,
                word_times=word_times,
            )
            for i, dec in zip(idx, part, strict=True):
                out[i] = dec
        return [d for d in out if d is not None]

    def _features(self, audios: Sequence[NDArray[np.float32]], window: int) -> Any:
        """Log-mel features [batch, 80, window/160] of each audio zero-padded to ``window``."""
        import ctranslate2

        feats = []
        for audio in audios:
            x = np.zeros(window, dtype=np.float32)
            x[: min(len(audio), window)] = audio[:window]
            feats.append(self._fw.feature_extractor(x, padding=0)[:, : window // HOP_SAMPLES])
        batch = np.ascontiguousarray(np.stack(feats).astype(np.float32))
        return ctranslate2.StorageView.from_array(batch)

    def _decoded(self, result: Any, cap: int, window: int) -> Decoded:
        """Turn one CTranslate2 generation result into a :class:`Decoded`."""
        tokens: list[int] = list(result.sequences_ids[0])
        eot = self._tok.eot
        text_tokens = [t for t in tokens if t < eot]
        avg_logprob = float(result.scores[0]) * len(tokens) / (len(tokens) + 1)
        return Decoded(
            text=self._tok.decode(text_tokens).strip(),
            text_tokens=text_tokens,
            no_speech_prob=float(result.no_speech_prob),
            avg_logprob=avg_logprob,
            hit_cap=len(tokens) >= cap,
            window_s=window / SAMPLE_RATE_HZ,
        )

    def _align(
        self, encoded: Any, audios: Sequence[NDArray[np.float32]], out: list[Decoded], lang: str
    ) -> None:
        """Fill the word lists of the decoded pieces in ``lang`` (times relative to the
        piece start)."""
        import ctranslate2

        todo = [i for i, d in enumerate(out) if d.text_tokens and d.language == lang]
        if not todo:
            return
        enc = encoded
        if len(todo) != len(out):
            enc_np = np.asarray(encoded)
            enc = ctranslate2.StorageView.from_array(np.ascontiguousarray(enc_np[todo]))
        frames = [max(2, len(audios[i]) // HOP_SAMPLES) for i in todo]
        aligned = self._model.align(
            enc,
            list(self._tokenizer(lang).sot_sequence),
            [out[i].text_tokens for i in todo],
            frames,
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
        jump_s = time_idx[jumps] * (2 * HOP_SAMPLES / SAMPLE_RATE_HZ)
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
