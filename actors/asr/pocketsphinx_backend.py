"""PocketSphinx recogniser: int16 PCM in, incremental decoding, VAD endpointing.

Runs fully offline on the US-English model that the ``pocketsphinx`` wheel ships
(``pocketsphinx.get_model_path()``).  Audio is cut into fixed VAD frames (``vad_frame_ms``,
aligned to the stream's first sample), so segmentation and results do not depend on the size
of the chunks given to :meth:`PocketsphinxStream.accept`.

Utterance segmentation (a pure state machine over the per-frame decisions of PocketSphinx's
WebRTC-style :class:`pocketsphinx.Vad`):

* idle: an utterance starts once ``speech_ratio`` of the last ``speech_window_ms`` of frames are
  speech; its first frame is the first speech frame of that window minus ``preroll_ms``, and
  everything from there is fed to the decoder (``start_utt`` / ``process_raw``);
* in speech: it ends (:meth:`PocketsphinxStream.is_endpoint`) after ``endpoint_silence_ms`` of
  consecutive non-speech frames, or, once it is ``max_utterance_s`` long, at its next pause of
  ``split_pause_ms`` (non-speech or low energy, :mod:`~streamasr.actors.asr.pauses`; counted
  in ``splits``; see ``PocketsphinxOptions``; a pause of low energy alone must be heard
  by Silero too, :mod:`~streamasr.actors.asr.pause_check`).  The final's ``end_frame`` is
  the end of the last speech frame plus ``end_hangover_ms``; a split's is the middle of the
  quietest frame of that pause (``Result.continued``), and when speech resumes within
  ``CONTINUE_WITHIN_S`` the next utterance starts exactly there, so the two spans meet and
  no word is cut or lost between them.  Non-speech past ``FEED_SILENCE_MS`` (300 ms)
  after the last speech frame is held back from the decoder, fed if speech resumes and
  dropped at the endpoint: the words do not change, and the endpoint's final does not wait
  for 300 ms of silence to be searched (about 20 % less decoding per utterance on the
  shared conversations).

The decoder gets one ``process_raw`` call per VAD frame: PocketSphinx's results depend on how
its input is grouped into calls, and this grouping does not depend on the chunk size.

One :class:`pocketsphinx.Decoder` is needed per concurrent stream (it holds the search state);
:class:`PocketsphinxRecognizer` loads one at construction and keeps released decoders in a
bounded pool (``spare_decoders`` of them; the others are freed and their memory returned, see
:mod:`~streamasr.actors.asr.decoder_pool`).

Command grammars (``grammar_path``: a JSGF file; ``commands``: whole phrases, see
:mod:`streamasr.actors.asr.grammar`) replace the language model by a finite-state grammar search:
every utterance is decoded as the closest grammar sentence, with the same partials, finals and
word times as with the language model.  Because a grammar search forces *any* speech into the
grammar, out-of-grammar speech is rejected at :meth:`PocketsphinxStream.finalize` (which then
returns None and counts it in ``rejected_finals``):

* ``reject_out_of_grammar`` (default on): a final whose words are not a complete sentence of the
  grammar is rejected.  When no path reaches the grammar's end, PocketSphinx returns the best
  partial path ("what time is"); that is the usual symptom of out-of-grammar speech.  Free.
* ``min_score_ratio`` (default 0: off): a phone-loop decoder (the shipped phone bigram
  ``en-us-phone.lm.bin`` at weight 1) runs beside the grammar decoder; a final whose per-frame
  path score (``Hypothesis.score``) is below ``min_score_ratio`` times the phone loop's is
  rejected.  On the benchmark's flite voices (``configs/commands.jsgf``) in-grammar commands
  score about 0.8-1.1 and out-of-grammar speech forced into a sentence about 0.45-0.85 (a few
  higher); 0.8 cut false accepts of out-of-grammar speech from 75 % to 2 % and rejected 3.8 %
  of the commands (``benchmarks/bench_commands.py``).  The phone loop costs about 0.1 s of CPU
  per utterance, about 3x the grammar search, still about 5x less than the language model.
"""

from __future__ import annotations

import collections
import logging
import os
import tempfile
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import pocketsphinx

from streamasr.actors.asr.base import InputKind
from streamasr.actors.asr.decoder_pool import DecoderPool
from streamasr.actors.asr.endpoint_policy import EndpointKind
from streamasr.actors.asr.endpointer import Endpointer
from streamasr.actors.asr.frame_vad import FrameVad, SileroFrameVad, WebrtcFrameVad
from streamasr.actors.asr.grammar import score_ratio
from streamasr.actors.asr.pause_check import PauseCheck
from streamasr.actors.asr.pauses import PauseTracker
from streamasr.actors.asr.pocketsphinx_options import PocketsphinxOptions
from streamasr.actors.asr.types import Result, Word
from streamasr.actors.errors import AudioFormatError, ModelError

__all__ = [
    "PocketsphinxOptions",
    "PocketsphinxRecognizer",
    "PocketsphinxStream",
]

logger = logging.getLogger(__name__)

_FRAME_RATE_HZ = 100  # PocketSphinx feature frames per second (its ``frate`` default)

#: Non-speech after an utterance's speech that is still decoded, ms; frames after it are held
#: back until speech resumes or the endpoint (see :meth:`PocketsphinxStream._hold`).
FEED_SILENCE_MS = 300
#: Seconds after a monologue split within which the next utterance starts at the cut itself
#: (the speech that resumes right after the cut's pause belongs to it).
CONTINUE_WITHIN_S = 1.0
#: Seconds of an utterance's end kept for the turn model (Smart Turn v3 reads 8 s).
TURN_AUDIO_S = 8.0
_PHONE_LOOP_LW = 1.0  # phone-LM weight of the rejection phone loop (in-grammar ratio >= ~1)


class _NoSearch:
    """Stands in for a decoder when ``words`` is off (segmentation only): every search call
    does nothing and finds no words."""

    def start_utt(self) -> None:
        pass

    def end_utt(self) -> None:
        pass

    def process_raw(self, pcm: bytes, no_search: bool, full_utt: bool) -> None:
        pass

    def hyp(self) -> None:
        return None

    def seg(self) -> list[Any]:
        return []

    def get_logmath(self) -> None:
        return None


class PocketsphinxRecognizer:
    """PocketSphinx engine: loads the model once; each stream gets its own decoder.

    Attributes:
        sample_rate_hz: PCM sample rate streams accept.
        input_kind: always ``"pcm_s16"`` (mono int16 PCM).
        load_time_s: wall time the first decoder took to load, in seconds.
    """

    input_kind: InputKind = "pcm_s16"

    def __init__(self, options: PocketsphinxOptions | None = None) -> None:
        """Load one decoder (raises ModelError if the model files cannot be loaded)."""
        self.options = options or PocketsphinxOptions()
        self.sample_rate_hz = self.options.sample_rate_hz
        self._jsgf = self.options.grammar_jsgf()
        self._use_phone_loop = self._jsgf is not None and self.options.min_score_ratio > 0
        spares = self.options.spare_decoders
        self._pool = DecoderPool(self._load_decoder, spares)
        self._phone_pool = DecoderPool(self._load_phone_decoder, spares)
        t0 = time.perf_counter()
        self._pool.preload()
        if self._use_phone_loop:
            self._phone_pool.preload()
        self.load_time_s = time.perf_counter() - t0
        logger.info("pocketsphinx decoder loaded in %.3f s", self.load_time_s)

    @property
    def grammar_jsgf(self) -> str | None:
        """The JSGF text recognition is restricted to (None with the language model)."""
        return self._jsgf

    @property
    def words(self) -> bool:
        """Whether streams decode words (False: segmentation only, see ``options.words``)."""
        return self.options.words

    def _load_decoder(self) -> pocketsphinx.Decoder:
        if not self.options.words:
            return _NoSearch()  # type: ignore[return-value]
        return _with_feat_options(self._new_decoder(), self.options.decoder_kwargs())

    def _new_decoder(self) -> pocketsphinx.Decoder:
        kwargs = self.options.decoder_kwargs()
        try:
            if self._jsgf is None:
                return pocketsphinx.Decoder(**kwargs)
            # The decoder needs a search at construction (it crashes without one), and only a
            # file-based JSGF skips loading the default language model: write the checked text.
            with tempfile.TemporaryDirectory(prefix="streamasr-jsgf-") as tmp:
                path = os.path.join(tmp, "grammar.jsgf")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(self._jsgf)
                return pocketsphinx.Decoder(**kwargs, jsgf=path)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"pocketsphinx: cannot load model: {exc}") from exc

    def _load_phone_decoder(self) -> pocketsphinx.Decoder:
        """A phone-loop decoder: the reference score for ``min_score_ratio`` rejection."""
        kwargs = self.options.decoder_kwargs()
        kwargs["bestpath"] = False
        kwargs["lw"] = _PHONE_LOOP_LW
        kwargs["allphone"] = os.path.join(
            pocketsphinx.get_model_path(), "en-us", "en-us-phone.lm.bin"
        )
        try:
            return _with_feat_options(pocketsphinx.Decoder(**kwargs), kwargs)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"pocketsphinx: cannot load phone loop: {exc}") from exc

    def create_stream(self, start_frame: int = 0) -> PocketsphinxStream:
        """A new stream whose first sample has absolute index ``start_frame``."""
        decoder = self._pool.take()
        phone = self._phone_pool.take() if self._use_phone_loop else None
        return PocketsphinxStream(self, decoder, start_frame, phone)

    @property
    def idle_decoders(self) -> int:
        """Loaded decoders not attached to a stream (the next create_stream reuses one);
        at most ``options.spare_decoders``."""
        return self._pool.idle

    @property
    def live_decoders(self) -> int:
        """Decoders loaded and not freed: attached to streams, plus the idle ones."""
        return self._pool.live

    def release(
        self, decoder: pocketsphinx.Decoder, phone_decoder: pocketsphinx.Decoder | None = None
    ) -> None:
        """Return a closed stream's decoders to the pool (called by PocketsphinxStream.close);
        past ``spare_decoders`` idle ones, the longest idle is freed and the heap trimmed."""
        self._pool.give(decoder)
        if phone_decoder is not None:
            self._phone_pool.give(phone_decoder)

    def warm_up(self) -> None:
        """Decode 1 s of a synthetic vowel-like tone so the first real utterance is not cold."""
        rate = self.sample_rate_hz
        t = np.arange(rate, dtype=np.float64) / rate
        tone = 0.3 * np.sin(2 * np.pi * 140 * t) + 0.2 * np.sin(2 * np.pi * 700 * t)
        pcm = (tone * 32767 * 0.5).astype(np.int16)
        stream = self.create_stream()
        stream.accept(np.concatenate([pcm, np.zeros(rate // 2, dtype=np.int16)]))
        while stream.is_ready():
            stream.step()
        stream.finalize()
        stream.close()


#: Decoder options the acoustic model's ``feat.params`` sets too: PocketSphinx lets the
#: model's value win over the one given to the constructor (the en-us model says
#: ``-remove_noise yes``), so they are applied again after loading.
FEAT_PARAMS_OPTIONS = ("remove_noise",)


def _with_feat_options(
    decoder: pocketsphinx.Decoder, kwargs: dict[str, Any]
) -> pocketsphinx.Decoder:
    """``decoder`` with the :data:`FEAT_PARAMS_OPTIONS` of ``kwargs`` in force."""
    changed = False
    for key in FEAT_PARAMS_OPTIONS:
        if key in kwargs and decoder.config[key] != kwargs[key]:
            decoder.config[key] = kwargs[key]
            changed = True
    if changed:
        decoder.reinit_feat()
    return decoder


class PocketsphinxStream:
    """Per-stream state: pending PCM, VAD segmentation, and one PocketSphinx decoder."""

    def __init__(
        self,
        engine: PocketsphinxRecognizer,
        decoder: pocketsphinx.Decoder,
        start_frame: int,
        phone_decoder: pocketsphinx.Decoder | None = None,
    ) -> None:
        """Attach ``decoder`` (and the phone loop used for ``min_score_ratio`` rejection).

        The first accepted sample has absolute index ``start_frame``.
        """
        opts = engine.options
        self._engine = engine
        self._opts = opts
        self._decoder: pocketsphinx.Decoder | None = decoder
        self._phone = phone_decoder
        self._fsg = decoder.get_fsg(decoder.current_search()) if opts.uses_grammar else None
        #: Finals dropped as out of grammar (see the module docstring).
        self.rejected_finals = 0
        #: The last rejected final (for diagnostics), or None.
        self.last_rejected: Result | None = None
        #: Score ratio of the last grammar final (None without the phone loop).
        self.last_score_ratio: float | None = None
        rate = opts.sample_rate_hz
        self._vad: FrameVad = (
            SileroFrameVad(opts.silero_threshold)
            if opts.frame_vad == "silero"
            else WebrtcFrameVad(opts.vad_mode, rate, opts.vad_frame_ms)
        )
        self._frame_len = self._vad.frame_len
        #: Decisions of the whole frames at the head of ``_pending`` already asked of the VAD.
        self._decided: list[bool] = []
        frame_ms = 1000.0 * self._frame_len / rate
        self._window_frames = max(1, round(opts.speech_window_ms / frame_ms))
        self._preroll_frames = round(opts.preroll_ms / frame_ms)
        self._endpoint_frames = max(1, round(opts.endpoint_silence_ms / frame_ms))
        self._split_frames = max(1, round(opts.split_pause_ms / frame_ms))
        self._max_utt = int(opts.max_utterance_s * rate)
        #: Utterances ended at a pause because they reached ``max_utterance_s``.
        self.splits = 0
        #: Silero's second opinion on energy-only pauses before a split (WebRTC VAD at
        #: 16 kHz; see :mod:`~streamasr.actors.asr.pause_check`), None where it is not asked.
        self._pause_check = (
            PauseCheck(self._frame_len, rate, opts.silero_threshold)
            if opts.frame_vad == "webrtc" and rate == 16000 and self._max_utt > 0
            else None
        )
        #: Samples of Silero-quiet audio at the end of the pause a split was confirmed in.
        self._quiet_tail: int | None = None
        self._history: collections.deque[tuple[int, npt.NDArray[np.int16], bool]] = (
            collections.deque(maxlen=self._window_frames + self._preroll_frames)
        )
        self._samples_per_feat = rate // _FRAME_RATE_HZ
        self._pending = np.empty(0, dtype=np.int16)
        self._pending_start = start_frame
        self._utt_start: int | None = None
        self._fed_end = start_frame
        self._last_speech_end = start_frame
        self._silence_frames = 0
        self._endpoint = False
        self._partial = ""
        self._frame_ms = 1000.0 * self._frame_len / rate
        self._held: list[npt.NDArray[np.int16]] = []  # trailing non-speech not decoded yet
        self._pauses = PauseTracker()
        #: Where a monologue split cuts the utterance in progress (set when the split is due).
        self._split_cut: int | None = None
        #: The cut of the last split: the next utterance starts there if speech resumes
        #: within ``CONTINUE_WITHIN_S`` (contiguous spans: no audio between them is lost).
        self._continue_from: int | None = None
        #: The endpoint policy (None: ``endpoint_silence_ms`` alone), see :meth:`use_endpointer`.
        self._endpointer: Endpointer | None = None
        #: Whether the utterance's audio is kept for the turn model (an adaptive endpointer).
        self._keep_tail = False
        self._checkpoints: list[int] = []
        self._next_checkpoint = 0
        #: The utterance's last ``TURN_AUDIO_S`` seconds of audio, VAD frames (for the turn model).
        self._tail: collections.deque[npt.NDArray[np.int16]] = collections.deque(
            maxlen=max(1, round(TURN_AUDIO_S * 1000.0 / frame_ms))
        )
        #: (kind, trailing silence in ms) of the last endpoint, None before the first.
        self.last_endpoint: tuple[EndpointKind, int] | None = None

    def use_endpointer(self, endpointer: Endpointer | None) -> None:
        """Let ``endpointer`` decide where utterances end (None: ``endpoint_silence_ms``)."""
        self._endpointer = endpointer
        self._keep_tail = endpointer is not None and endpointer.adaptive
        self._checkpoints = endpointer.checkpoints_ms() if endpointer is not None else []

    @property
    def position_frame(self) -> int:
        """Absolute index of the next sample :meth:`accept` expects."""
        return self._pending_start + len(self._pending)

    @property
    def utterance_start_frame(self) -> int | None:
        """Absolute first sample of the utterance in progress (None when idle)."""
        return self._utt_start

    def accept(self, frames: npt.NDArray[np.generic]) -> None:
        """Append mono int16 PCM of shape ``(n,)``; raises AudioFormatError otherwise."""
        if frames.dtype != np.int16 or frames.ndim != 1:
            raise AudioFormatError(
                f"pocketsphinx: expected int16 mono (n,), got {frames.dtype} {frames.shape}"
            )
        self._pending = np.concatenate([self._pending, frames])

    def is_ready(self) -> bool:
        """True while a whole VAD frame is pending and no endpoint waits for finalize()."""
        return not self._endpoint and len(self._pending) >= self._frame_len

    def is_endpoint(self) -> bool:
        """True once ``endpoint_silence_ms`` of non-speech followed the utterance's speech."""
        return self._endpoint

    def step(self) -> None:
        """Run the VAD over pending frames and feed utterance audio to the decoder."""
        decoder = self._require_decoder()
        to_feed: list[npt.NDArray[np.int16]] = []
        n, used = self._frame_len, 0
        whole, known = len(self._pending) // n, len(self._decided)
        if whole > known:  # each frame is decided once (the VAD may carry state)
            fresh = self._pending[known * n : whole * n].reshape(whole - known, n)
            self._decided.extend(self._vad.decide(fresh))
        while not self._endpoint and len(self._pending) - used >= n:
            frame = self._pending[used : used + n]
            start = self._pending_start + used
            speech = self._decided[used // n]
            used += n
            if self._utt_start is None:
                self._history.append((start, frame, speech))
                if self._onset():
                    to_feed.extend(self._begin_utterance(decoder))
            else:
                to_feed.extend(self._hold(frame, speech))
                if self._keep_tail:
                    self._tail.append(frame)
                if self._track_silence(start + n, speech, frame):
                    self._feed(decoder, to_feed)  # the text the policy reads: all speech so far
                    to_feed = []
                    self._judge()
        self._pending = self._pending[used:]
        self._pending_start += used
        del self._decided[: used // n]
        self._feed(decoder, to_feed)

    def _feed(self, decoder: pocketsphinx.Decoder, frames: list[npt.NDArray[np.int16]]) -> None:
        """Decode ``frames`` and update the partial hypothesis."""
        if not frames:
            return
        # one call per VAD frame: PocketSphinx's results depend on how its input is
        # grouped into calls, so the grouping must not depend on the chunk size
        for f in frames:
            pcm = f.tobytes()
            decoder.process_raw(pcm, False, False)
            if self._phone is not None:
                self._phone.process_raw(pcm, False, False)
        self._fed_end += sum(len(f) for f in frames)
        hyp = decoder.hyp()
        self._partial = hyp.hypstr if hyp is not None else ""

    def _judge(self) -> None:
        """Ask the endpoint policy at a checkpoint of trailing silence (see _track_silence)."""
        assert self._endpointer is not None
        silence_ms = round(self._silence_frames * self._frame_ms)
        audio = np.concatenate(list(self._tail)) if self._tail else np.empty(0, np.int16)
        kind = self._endpointer.judge(audio, silence_ms, self._partial)
        if kind is not None:
            self._endpoint = True
            self.last_endpoint = (kind, silence_ms)

    def _hold(self, frame: npt.NDArray[np.int16], speech: bool) -> list[npt.NDArray[np.int16]]:
        """The frames to feed the decoder for ``frame`` inside an utterance.

        Once ``FEED_SILENCE_MS`` of non-speech followed the speech, further non-speech frames
        are held back instead of decoded: more trailing silence does not change the words,
        and the frames up to the endpoint would cost decoding time right before the final.
        If speech resumes, the held frames go to the decoder first (nothing is skipped).
        """
        if speech:
            held, self._held = self._held, []
            return [*held, frame]
        if self._held or self._silence_frames * self._frame_ms >= FEED_SILENCE_MS:
            self._held.append(frame)
            return []
        return [frame]

    def _onset(self) -> bool:
        window = list(self._history)[-self._window_frames :]
        n_speech = sum(1 for _, _, s in window if s)
        return bool(n_speech >= self._opts.speech_ratio * self._window_frames)

    def _begin_utterance(self, decoder: pocketsphinx.Decoder) -> list[npt.NDArray[np.int16]]:
        """Start an utterance at the first speech frame of the window minus the pre-roll."""
        entries = list(self._history)
        first_speech = next(
            i
            for i, (_, _, s) in enumerate(entries)
            if s and i >= len(entries) - self._window_frames
        )
        first = max(0, first_speech - self._preroll_frames)
        kept = entries[first:]
        self._history.clear()
        self._tail.clear()
        if self._keep_tail:
            self._tail.extend(f for _, f, _ in kept)
        self._next_checkpoint = 0
        self._utt_start = kept[0][0]
        self._fed_end = kept[0][0]
        cut, self._continue_from = self._continue_from, None
        within = int(CONTINUE_WITHIN_S * self._opts.sample_rate_hz)
        if cut is not None and cut <= self._utt_start <= cut + within:
            self._utt_start = cut  # the monologue goes on: this utterance starts at the cut
        self._silence_frames = 0
        self._last_speech_end = kept[-1][0] + self._frame_len
        for start, _, speech in kept:
            if speech:
                self._last_speech_end = start + self._frame_len
        decoder.start_utt()
        if self._phone is not None:
            self._phone.start_utt()
        self._pauses = PauseTracker()
        if self._pause_check is not None:
            self._pause_check.clear()
        return [f for _, f, _ in kept]

    def _track_silence(self, frame_end: int, speech: bool, frame: npt.NDArray[np.int16]) -> bool:
        """Count trailing non-speech; end the utterance by the fixed rule or a monologue
        split. True when the endpoint policy must be asked (a checkpoint was reached)."""
        if speech:
            self._silence_frames = 0
            self._last_speech_end = frame_end
            self._next_checkpoint = 0
        else:
            self._silence_frames += 1
        if self._max_utt > 0:
            self._pauses.add(frame, speech)
            if self._pause_check is not None:
                self._pause_check.add(frame)
        if self._endpointer is not None:
            cps, k = self._checkpoints, self._next_checkpoint
            if k < len(cps) and self._silence_frames * self._frame_ms >= cps[k] - 1e-6:
                self._next_checkpoint = k + 1
                return True
        elif self._silence_frames >= self._endpoint_frames:
            self._endpoint = True
            self.last_endpoint = ("normal", round(self._silence_frames * self._frame_ms))
            return False
        if self._split_due(frame_end):
            self._endpoint = True
            self.splits += 1
            # cut in the middle of the pause's quietest frame, not at the end of the run
            # (which may already hold the next word's weak onset)
            back = self._pauses.quietest_back
            self._split_cut = frame_end - back * self._frame_len - self._frame_len // 2
            if self._quiet_tail is not None:  # not before the middle of what Silero hears
                self._split_cut = max(self._split_cut, frame_end - self._quiet_tail // 2)
                self._quiet_tail = None
        return False

    def _split_due(self, frame_end: int) -> bool:
        """Whether an utterance over ``max_utterance_s`` ends here (at a long enough pause;
        see ``PocketsphinxOptions.max_utterance_s``)."""
        if self._max_utt <= 0 or self._utt_start is None:
            return False
        length = frame_end - self._utt_start
        if length < self._max_utt:
            return False
        if length >= 2 * self._max_utt:
            return True
        need = self._split_frames if length < 1.5 * self._max_utt else min(3, self._split_frames)
        if self._pauses.run < need:
            return False
        if self._pause_check is None or self._pauses.vad_run > 0:
            return True
        quiet = self._pause_check.quiet_tail(self._pauses.run)  # energy alone: ask Silero
        self._quiet_tail = quiet or None
        return bool(quiet is None or quiet > 0)  # None: too little audio kept to tell

    @property
    def split_vetoes(self) -> int:
        """Energy-only pauses past ``max_utterance_s`` where Silero heard speech (no split)."""
        return self._pause_check.vetoes if self._pause_check is not None else 0

    def paused_span(self, min_silence_ms: int) -> tuple[int, int] | None:
        """``(start, end)`` frames the utterance's final will span if no more speech comes,
        once ``min_silence_ms`` of non-speech followed its speech (None otherwise, and while
        idle). ``end`` is what :meth:`finalize` would give now."""
        if self._utt_start is None or (self._opts.words and not self._partial):
            return None
        frame_ms = 1000.0 * self._frame_len / self._opts.sample_rate_hz
        if self._silence_frames * frame_ms < min_silence_ms:
            return None
        end = min(self._fed_end, self._last_speech_end + self._hangover_frames())
        return self._utt_start, end

    def result(self) -> Result | None:
        """Partial text of the utterance in progress (no word times), or None if no words yet
        (segmentation only: the utterance's span with no text, None while idle)."""
        if self._utt_start is None or (self._opts.words and not self._partial):
            return None
        return Result(self._partial, False, self._utt_start, self._fed_end)

    def finalize(self) -> Result | None:
        """End the utterance; its final Result with word times, or None if it held no words."""
        self._endpoint = False
        if self._utt_start is None:
            return None
        decoder = self._require_decoder()
        decoder.end_utt()
        if self._phone is not None:
            self._phone.end_utt()
        words = self._words(decoder)
        self._held = []  # trailing non-speech: not part of the utterance
        end = min(self._fed_end, self._last_speech_end + self._hangover_frames())
        start = self._utt_start
        cut, self._split_cut = self._split_cut, None
        if cut is not None:
            end = max(start + 1, min(cut, self._fed_end))
            self._continue_from = end
        self._utt_start = None
        self._partial = ""
        self._silence_frames = 0
        if not self._opts.words:  # segmentation only: the span, for Whisper to write
            return Result("", True, start, end, (), cut is not None)
        if not words:
            return None
        final = Result(
            " ".join(w.word for w in words), True, start, end, tuple(words), cut is not None
        )
        reason = self._rejection(decoder, final.text)
        if reason:
            self.rejected_finals += 1
            self.last_rejected = final
            logger.debug("pocketsphinx: rejected %r: %s", final.text, reason)
            return None
        return final

    def _rejection(self, decoder: pocketsphinx.Decoder, text: str) -> str:
        """Why a grammar final is out of grammar ("" to keep it); see the module docstring."""
        if self._fsg is None:
            return ""
        ratio = None
        if self._phone is not None:
            hyp, ref = decoder.hyp(), self._phone.hyp()
            ratio = score_ratio(hyp.score if hyp else 0.0, ref.score if ref else 0.0)
        self.last_score_ratio = ratio
        if self._opts.reject_out_of_grammar and not self._fsg.accept(text):
            return "not a complete sentence of the grammar"
        if ratio is not None and ratio < self._opts.min_score_ratio:
            return f"score ratio {ratio:.3f} < {self._opts.min_score_ratio}"
        return ""

    def _hangover_frames(self) -> int:
        return self._opts.end_hangover_ms * self._opts.sample_rate_hz // 1000

    def _words(self, decoder: pocketsphinx.Decoder) -> list[Word]:
        """Real words of the last utterance (fillers dropped, ``word(2)`` variants merged)."""
        assert self._utt_start is not None
        rate = float(self._opts.sample_rate_hz)
        logmath = decoder.get_logmath()
        words: list[Word] = []
        for seg in decoder.seg() or ():
            text = str(seg.word)
            if text.startswith(("<", "[")) or not text:
                continue
            text = text.split("(", 1)[0]
            start = self._utt_start + seg.start_frame * self._samples_per_feat
            end = self._utt_start + (seg.end_frame + 1) * self._samples_per_feat
            conf = min(1.0, max(0.0, float(logmath.exp(seg.prob))))
            words.append(Word(text, start / rate, end / rate, conf))
        return words

    def _require_decoder(self) -> pocketsphinx.Decoder:
        if self._decoder is None:
            raise ModelError("pocketsphinx: stream is closed")
        return self._decoder

    def close(self) -> None:
        """Abandon any utterance and give the decoder back to the engine's pool."""
        if self._decoder is None:
            return
        if self._utt_start is not None:
            self._decoder.end_utt()
            if self._phone is not None:
                self._phone.end_utt()
            self._utt_start = None
        self._engine.release(self._decoder, self._phone)
        self._decoder = None
        self._phone = None
