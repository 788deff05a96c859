"""PocketSphinx keyphrase spotting (its ``kws`` search) as a wake-word detector.

The kws search runs a phone loop beside one HMM chain per phrase and reports a phrase when the
chain's score beats the phone loop's by the phrase's threshold (a likelihood ratio). It is far
cheaper than the language-model decoder; with ``vad_gate`` it runs only on audio near speech
(found frame by frame by :class:`pocketsphinx.Vad`), so silence costs almost nothing.

Audio is cut into fixed VAD frames aligned to the stream start, and search segments begin and end
at those frames, so detections do not depend on the sizes of the chunks given to
:meth:`PocketsphinxKwsDetector.accept` (only the moment a detection is returned does).

Search segments (``start_utt`` .. ``end_utt``):

* gated: a segment starts at the first speech frame minus ``preroll_ms`` and ends after
  ``hangover_ms`` of consecutive non-speech frames;
* ungated: one segment runs all the time;
* either way a segment longer than ``max_segment_s`` is restarted, re-feeding the last
  ``overlap_ms`` of audio so a phrase that straddles the restart is still found; detections of
  the same phrase that overlap one already returned are dropped.

One :class:`pocketsphinx.Decoder` is needed per detector (about 20 MB of RSS, 0.2 s to load);
the engine keeps ``SPARE_DECODERS`` released ones for the next detector and frees the others
(:mod:`streamasr.actors.asr.decoder_pool`), so memory returns after a burst of streams.

With ``verify`` a second stage (:class:`PhraseVerifier`, one per engine) re-decodes the audio of
each kws hit and drops hits whose phrase alignment does not beat a free phone decode by
``verify_margin``; so the kws threshold can be low (more hits in noise) without more false wakes.
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

from streamasr.actors.asr.decoder_pool import DecoderPool
from streamasr.actors.errors import AudioFormatError, ModelError
from streamasr.actors.wake.base import Detection, WakeOptions

__all__ = ["PhraseVerifier", "PocketsphinxKwsDetector", "PocketsphinxKwsEngine"]

logger = logging.getLogger(__name__)

_FRAME_RATE_HZ = 100  # PocketSphinx feature frames per second
_VAD_FRAME_S = 0.03  # VAD frame length in seconds
_KWS_MAX = 1500  # kws_search.c subtracts this from a detection's score to form its "prob"
_SENSCR_SHIFT = 10  # kws scores are logmath values shifted right by this many bits
_HISTORY_S = 6.0  # seconds of accepted audio kept for verification
_FAILED_MARGIN = -1e9  # margin of a span the phrase could not be aligned to
#: Released kws decoders kept for the next detector (the one loaded at start); more are freed.
SPARE_DECODERS = 1


def _log10_score(logmath: Any, prob: float) -> float:
    """log10 of a decoder path score given (as the Python API does) as a probability."""
    if prob <= 0.0:
        return _FAILED_MARGIN
    return float(logmath.log_to_log10(int(logmath.log(prob)) << _SENSCR_SHIFT))


class PhraseVerifier:
    """Second stage: phrase alignment vs free phone decode of a hit's audio span.

    Two decoders share the acoustic model: a JSGF search per phrase (the phrase alone, with
    the optional silences and fillers PocketSphinx adds) and the allphone search with the
    shipped phone bigram LM. :meth:`margin` returns the difference of their path scores.
    """

    def __init__(self, options: WakeOptions) -> None:
        """Load both decoders (raises ModelError if the model files cannot be loaded)."""
        common: dict[str, Any] = {"samprate": options.sample_rate_hz, "loglevel": "FATAL"}
        common["dither"] = False
        if options.hmm_path is not None:
            common["hmm"] = options.hmm_path
        if options.dict_path is not None:
            common["dict"] = options.dict_path
        phone_lm = os.path.join(pocketsphinx.get_model_path(), "en-us-phone.lm.bin")
        try:
            self._phones = pocketsphinx.Decoder(allphone=phone_lm, lm=None, **common)
            self._align = pocketsphinx.Decoder(lm=None, **common)
            for i, phrase in enumerate(options.phrases):
                self._align.add_jsgf_string(
                    f"p{i}", f"#JSGF V1.0;\ngrammar p{i};\npublic <s> = {phrase};\n"
                )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"pocketsphinx kws: cannot load the verifier: {exc}") from exc
        self._index = {phrase: i for i, phrase in enumerate(options.phrases)}
        self._logmath = self._phones.get_logmath()
        self.calls = 0

    def _decode(self, decoder: pocketsphinx.Decoder, pcm: npt.NDArray[np.int16]) -> float:
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), False, True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return _FAILED_MARGIN if hyp is None else _log10_score(self._logmath, hyp.best_score)

    def margin(self, phrase: str, pcm: npt.NDArray[np.int16]) -> float:
        """log10 likelihood ratio of ``phrase`` aligned to ``pcm`` against free phones.

        Very negative (about -1e9) when the phrase cannot be aligned at all.
        """
        self.calls += 1
        self._align.activate_search(f"p{self._index[phrase]}")
        aligned = self._decode(self._align, pcm)
        if aligned <= _FAILED_MARGIN:
            return _FAILED_MARGIN
        return aligned - self._decode(self._phones, pcm)


class PocketsphinxKwsEngine:
    """Loads the kws decoder once; each detector gets its own decoder from a pool.

    Attributes:
        sample_rate_hz: PCM sample rate detectors accept.
        options: the :class:`WakeOptions` in force.
        load_time_s: wall time the first decoder took to load, in seconds.
    """

    def __init__(self, options: WakeOptions | None = None) -> None:
        """Load one decoder (raises ModelError if the model files cannot be loaded)."""
        self.options = options or WakeOptions()
        self.sample_rate_hz = self.options.sample_rate_hz
        self._keyfile_text = "".join(
            f"{phrase} /{self.options.threshold_for(i):g}/\n"
            for i, phrase in enumerate(self.options.phrases)
        )
        self._pool = DecoderPool(self._load_decoder, SPARE_DECODERS)
        t0 = time.perf_counter()
        self._pool.preload()
        self.verifier = PhraseVerifier(self.options) if self.options.verify else None
        self.load_time_s = time.perf_counter() - t0
        logger.info("pocketsphinx kws decoder loaded in %.3f s", self.load_time_s)

    def decoder_kwargs(self, keyfile: str) -> dict[str, Any]:
        """Keyword arguments for :class:`pocketsphinx.Decoder` with phrase file ``keyfile``."""
        opts = self.options
        kwargs: dict[str, Any] = {
            "kws": keyfile,
            "samprate": opts.sample_rate_hz,
            "kws_delay": opts.kws_delay_frames,
            "loglevel": "FATAL",
            "dither": False,
        }
        if opts.hmm_path is not None:
            kwargs["hmm"] = opts.hmm_path
        if opts.dict_path is not None:
            kwargs["dict"] = opts.dict_path
        return kwargs

    def _load_decoder(self) -> pocketsphinx.Decoder:
        fd, keyfile = tempfile.mkstemp(prefix="streamasr-kws-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self._keyfile_text)
            return pocketsphinx.Decoder(**self.decoder_kwargs(keyfile))
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"pocketsphinx kws: cannot load model: {exc}") from exc
        finally:
            os.unlink(keyfile)

    def create_detector(self, start_frame: int = 0) -> PocketsphinxKwsDetector:
        """A new detector whose first sample has absolute index ``start_frame``."""
        return PocketsphinxKwsDetector(self, self._pool.take(), start_frame)

    @property
    def idle_decoders(self) -> int:
        """Loaded decoders not attached to a detector (at most ``SPARE_DECODERS``)."""
        return self._pool.idle

    @property
    def live_decoders(self) -> int:
        """Decoders loaded and not freed: attached to detectors, plus the idle ones."""
        return self._pool.live

    def release(self, decoder: pocketsphinx.Decoder) -> None:
        """Return a closed detector's decoder to the pool (called by its close()); past
        ``SPARE_DECODERS`` idle ones, the longest idle is freed and the heap trimmed."""
        self._pool.give(decoder)

    def warm_up(self) -> None:
        """Search 1 s of a vowel-like tone (ungated) so the first real audio is not cold."""
        rate = self.sample_rate_hz
        t = np.arange(rate, dtype=np.float64) / rate
        tone = 0.3 * np.sin(2 * np.pi * 140 * t) + 0.2 * np.sin(2 * np.pi * 700 * t)
        detector = self.create_detector()
        detector.accept((tone * 16000).astype(np.int16))
        detector.close()


class PocketsphinxKwsDetector:
    """Per-stream kws state: pending PCM, VAD gating, one decoder, returned detections."""

    def __init__(
        self, engine: PocketsphinxKwsEngine, decoder: pocketsphinx.Decoder, start_frame: int
    ) -> None:
        """Attach ``decoder``; the first accepted sample has absolute index ``start_frame``."""
        opts = engine.options
        self._engine = engine
        self._opts = opts
        self._decoder: pocketsphinx.Decoder | None = decoder
        self._logmath = decoder.get_logmath()
        rate = opts.sample_rate_hz
        self._vad = pocketsphinx.Vad(opts.vad_mode, rate, _VAD_FRAME_S)
        self._frame_len = self._vad.frame_bytes // 2
        self._samples_per_feat = rate // _FRAME_RATE_HZ
        frame_ms = 1000.0 * self._frame_len / rate
        self._preroll_frames = int(np.ceil(opts.preroll_ms / frame_ms))
        self._hangover_frames = max(1, round(opts.hangover_ms / frame_ms))
        self._max_segment = int(opts.max_segment_s * rate)
        self._overlap = opts.overlap_ms * rate // 1000
        self._verify_pre = opts.verify_pre_ms * rate // 1000
        self._verify_post = opts.verify_post_ms * rate // 1000
        self._history_len = int(_HISTORY_S * rate)
        self.segments_started = 0
        self.rejected: collections.deque[tuple[Detection, float]] = collections.deque(maxlen=100)
        self.samples_searched = 0
        self._seg_start: int | None = None
        self.reset(start_frame)

    def reset(self, start_frame: int) -> None:
        """Forget all state; the next accepted sample has absolute index ``start_frame``."""
        if self._decoder is not None and self._seg_start is not None:
            self._decoder.end_utt()
        self._pending = np.empty(0, dtype=np.int16)
        self._pending_start = start_frame
        self._history: collections.deque[tuple[int, npt.NDArray[np.int16]]] = collections.deque(
            maxlen=self._preroll_frames
        )
        self._seg_start = None
        self._fed_end = start_frame
        self._tail = np.empty(0, dtype=np.int16)
        self._to_feed: list[npt.NDArray[np.int16]] = []
        self._silence_frames = 0
        self._reported: list[Detection] = []
        self._recent = np.empty(0, dtype=np.int16)
        self._recent_start = start_frame
        self._unverified: list[Detection] = []

    @property
    def position_frame(self) -> int:
        """Absolute sample index of the next sample :meth:`accept` expects."""
        return self._pending_start + len(self._pending)

    @property
    def in_segment(self) -> bool:
        """True while the keyword search is running (always, when not VAD-gated)."""
        return self._seg_start is not None

    def accept(self, pcm: npt.NDArray[np.int16]) -> list[Detection]:
        """Consume mono int16 PCM ``(n,)``; the detections completed so far, in order.

        Raises AudioFormatError for another dtype or shape, ModelError once closed.
        """
        if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
            shape = getattr(pcm, "shape", None)
            raise AudioFormatError(
                f"wake: expected int16 mono (n,), got {getattr(pcm, 'dtype', type(pcm))} {shape}"
            )
        decoder = self._require_decoder()
        self._pending = np.concatenate([self._pending, pcm])
        if self._engine.verifier is not None:
            self._recent = np.concatenate([self._recent, pcm])
        out: list[Detection] = []
        n, used = self._frame_len, 0
        gated = self._opts.vad_gate
        while len(self._pending) - used >= n:
            frame = self._pending[used : used + n]
            start = self._pending_start + used
            used += n
            speech = bool(self._vad.is_speech(frame.tobytes())) if gated else True
            if self._seg_start is None:
                if not speech:
                    self._history.append((start, frame))
                    continue
                self._begin_segment(decoder, start)
            self._to_feed.append(frame)
            self._silence_frames = 0 if speech else self._silence_frames + 1
            if gated and self._silence_frames >= self._hangover_frames:
                out += self._end_segment(decoder)
            elif start + n - self._seg_start >= self._max_segment:
                out += self._restart_segment(decoder)
        self._pending = self._pending[used:]
        self._pending_start += used
        if self._seg_start is not None:
            self._flush(decoder)
            out += self._collect(decoder)
        return self._verified(out)

    def _verified(self, hits: list[Detection]) -> list[Detection]:
        """Hits that pass verification once ``verify_post_ms`` of audio after them is here."""
        verifier = self._engine.verifier
        if verifier is None:
            return hits
        self._unverified += hits
        end = self.position_frame
        out: list[Detection] = []
        while self._unverified and self._unverified[0].end_frame + self._verify_post <= end:
            det = self._unverified.pop(0)
            a = max(det.start_frame - self._verify_pre, self._recent_start)
            b = det.end_frame + self._verify_post
            span = self._recent[a - self._recent_start : b - self._recent_start]
            margin = verifier.margin(det.phrase, span)
            if margin >= self._opts.verify_margin:
                out.append(det)
            else:
                self.rejected.append((det, margin))
                logger.debug("wake: %s rejected, verify margin %.1f", det, margin)
        drop = len(self._recent) - self._history_len
        if drop > 0:
            self._recent = self._recent[drop:]
            self._recent_start += drop
        return out

    def _begin_segment(self, decoder: pocketsphinx.Decoder, first_speech: int) -> None:
        """Start a search segment at the oldest pre-roll frame kept (or ``first_speech``)."""
        kept = list(self._history)
        self._history.clear()
        self._seg_start = kept[0][0] if kept else first_speech
        self._fed_end = self._seg_start
        self._reported = [d for d in self._reported if d.end_frame > self._seg_start]
        self._to_feed = [f for _, f in kept]
        self._silence_frames = 0
        self.segments_started += 1
        decoder.start_utt()

    def _flush(self, decoder: pocketsphinx.Decoder) -> None:
        """Feed queued frames to the search and remember the last ``overlap_ms`` of them."""
        audio = np.concatenate(self._to_feed) if self._to_feed else self._tail[:0]
        self._to_feed = []
        if not len(audio):
            return
        decoder.process_raw(audio.tobytes(), False, False)
        self._fed_end += len(audio)
        self.samples_searched += len(audio)
        if self._overlap:
            self._tail = np.concatenate([self._tail, audio])[-self._overlap :]

    def _end_segment(self, decoder: pocketsphinx.Decoder) -> list[Detection]:
        self._flush(decoder)
        decoder.end_utt()
        out = self._collect(decoder)
        self._seg_start = None
        self._tail = np.empty(0, dtype=np.int16)
        return out

    def _restart_segment(self, decoder: pocketsphinx.Decoder) -> list[Detection]:
        """End the long segment and start anew, re-feeding the last ``overlap_ms``."""
        self._flush(decoder)
        tail = self._tail
        out = self._end_segment(decoder)
        self._seg_start = self._fed_end - len(tail)
        self._fed_end = self._seg_start
        self._reported = [d for d in self._reported if d.end_frame > self._seg_start]
        self.segments_started += 1
        decoder.start_utt()
        self._to_feed = [tail] if len(tail) else []
        return out

    def _collect(self, decoder: pocketsphinx.Decoder) -> list[Detection]:
        """New detections of the current segment (not overlapping any already returned)."""
        assert self._seg_start is not None
        out: list[Detection] = []
        for seg in decoder.seg() or ():
            phrase = str(seg.word).strip()
            start = self._seg_start + seg.start_frame * self._samples_per_feat
            end = self._seg_start + (seg.end_frame + 1) * self._samples_per_feat
            if any(
                d.phrase == phrase and d.start_frame < end and start < d.end_frame
                for d in self._reported
            ):
                continue
            det = Detection(phrase, start, end, self._score(seg.prob))
            self._reported.append(det)
            out.append(det)
        return out

    def _score(self, prob: float) -> float:
        """log10 likelihood ratio phrase : phone loop, from a kws segment's ``prob``."""
        margin = int(self._logmath.log(prob)) + _KWS_MAX
        return float(self._logmath.log_to_log10(margin << _SENSCR_SHIFT))

    def _require_decoder(self) -> pocketsphinx.Decoder:
        if self._decoder is None:
            raise ModelError("wake: detector is closed")
        return self._decoder

    def close(self) -> None:
        """Abandon any search segment and give the decoder back to the engine's pool."""
        if self._decoder is None:
            return
        if self._seg_start is not None:
            self._decoder.end_utt()
            self._seg_start = None
        self._engine.release(self._decoder)
        self._decoder = None
