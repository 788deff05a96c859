"""What :class:`~streamasr.actors.refine.refiner.WhisperRefiner` is told and what it answers:
its options (windows in seconds, views, decode caps) and a segment's transcript."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamasr.actors.asr.types import Word
from streamasr.actors.refine.filters import FilterOptions
from streamasr.actors.refine.vad import VadGateOptions

__all__ = ["RefineOptions", "RefineOutput"]


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
        max_window_s: longest encoder window in seconds (Whisper's 30 s).
        max_piece_s: longest piece decoded at once, in seconds (at most ``max_window_s -
            pad_s``); longer segments are cut in their pauses.
        resume_gap_s: a decode whose last word ends this many seconds or more before the
            piece's last speech is continued from that word.
        max_resumes: most continuations per segment.
        beam_size: decoder beam size of the first view (1 = greedy).
        unsure_beam_size: decoder beam size of the views decoded again for an unsure first
            view (the VAD-trimmed and the padded 30 s view), where finals have no deadline
            (``thorough``); with one, ``beam_size``.
        language: language code of the prompt (the language spoken); ``auto``: detected per
            piece.
        task: ``transcribe`` (text in ``language``) or ``translate`` (English text).
        tokens_per_s: decode cap, tokens per second of audio (plus ``extra_tokens``); timestamp
            tokens count, so this allows fast speech (about 4-5 text tokens per second).
        extra_tokens: decode cap, tokens added to the per-second allowance.
        split_search_s: seconds before the piece limit searched for the quietest cut point
            when a speech run is longer than a piece.
        trim_view: also decode each segment cut to its VAD speech span (no margins) and
            keep whichever of the two transcripts has the higher mean token log-probability
            (Whisper base's text swings with a few hundred ms of lead-in noise; about twice
            the decode work, batched).
        trim_view_logprob: below 0, the trimmed view is decoded only for items whose first
            view was rejected or has a mean token log-probability below this (natural log;
            measured on the 24 conversation utterances: -0.5 keeps the second view's gain and
            skips it for about half of them); 0.0 decodes both views always, in one batch.
        wide_view: also decode segments of at most ``wide_view_max_s`` in the padded 30 s
            window Whisper was trained on (the short window misreads a word now and then
            where the long one does not, and the other way round) and keep whichever view
            has the highest mean token log-probability. With ``trim_view_logprob`` < 0 it is
            decoded only for unsure items whose trimmed view was not decoded, reads other
            words than the first, or (``thorough``) is no surer than ``trim_view_logprob``
            either (two short views that agree with confidence are rarely both wrong; two
            unsure ones that agree sometimes are: "timer for 14 minutes" in both, "10
            minutes" in the wide view; conversations 4.8 % -> 3.6 % WER).
        wide_view_max_s: longest segment given the wide view, seconds (longer ones already
            get a window of about that length).
        fallback_full_window: re-decode a looping piece with the padded 30 s window.
        word_times: align words to the audio (CTranslate2 ``align``, ~10% of a decode);
            without it ``RefineOutput.words`` is empty and decodes are not continued.
        use_vad: run the Silero speech gate before Whisper.
        vad: speech gate options.
        filters: thresholds for no-speech, loops, log-probability.
        cache_dir: model cache root (None: the per-user default).
    """

    model: str = "base"
    compute_type: str = "int8"
    cpu_threads: int = 0
    min_window_s: float = 6.0
    window_step_s: float = 2.0
    pad_s: float = 1.0
    max_window_s: float = 30.0
    max_piece_s: float = 24.0
    resume_gap_s: float = 1.5
    max_resumes: int = 4
    beam_size: int = 1
    unsure_beam_size: int = 1
    language: str = "en"
    task: str = "transcribe"
    tokens_per_s: float = 10.0
    extra_tokens: int = 16
    split_search_s: float = 5.0
    trim_view: bool = True
    trim_view_logprob: float = 0.0
    wide_view: bool = True
    wide_view_max_s: float = 12.0
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
        language: the language Whisper decoded it in (detected where ``language`` is
            ``auto``), "" where unknown.
    """

    text: str
    words: tuple[Word, ...]
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    window_s: float
    compute_s: float
    fallback: bool = False
    language: str = ""
