"""Options of the PocketSphinx recogniser (a frozen dataclass, validated on construction).

Re-exported by :mod:`streamasr.actors.asr.pocketsphinx_backend`, which documents how they are
used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamasr.actors.asr.grammar import check_words, jsgf_from_phrases, jsgf_words, load_jsgf
from streamasr.actors.errors import ConfigError

__all__ = ["DEFAULT_MAXHMMPF", "PocketsphinxOptions"]

#: Active HMMs per frame at most (see ``PocketsphinxOptions.maxhmmpf``).
DEFAULT_MAXHMMPF = 6000


@dataclass(frozen=True, slots=True)
class PocketsphinxOptions:
    """Options of the PocketSphinx backend (times in milliseconds, rates in Hz).

    Attributes:
        sample_rate_hz: PCM rate streams accept; the shipped en-us model is 16 kHz.
        hmm_path, lm_path, dict_path: model files; None uses the model shipped with the wheel.
        endpoint_silence_ms: trailing non-speech after speech that ends an utterance.
        max_utterance_s: an utterance at least this long (seconds) ends at its next pause
            of ``split_pause_ms`` (a monologue is cut into sentences or clauses: the accurate
            pass transcribes each with the one before as its prompt, the ring holds each
            whole, and Whisper partials stay cheap); past 1.5x it ends at any pause of three
            VAD frames, and at 2x it ends where it is. 0 turns the limit off.
        split_pause_ms: the pause that ends an utterance longer than ``max_utterance_s``.
        vad: the per-frame speech decider, ``webrtc`` (PocketSphinx's WebRTC-style VAD),
            ``silero`` (Silero VAD from the faster-whisper wheel: 32 ms frames, hears steady
            noise as non-speech; 16 kHz only) or ``auto`` (Silero at 16 kHz, WebRTC at 8 kHz),
            see :mod:`~streamasr.actors.asr.frame_vad`. The default stays ``webrtc`` until
            the first pass is tuned for Silero's tighter speech spans (its first utterance
            and short replies such as "No." at an onset read worse).
        vad_mode: WebRTC VAD aggressiveness 0 (loose) .. 3 (strict).
        vad_frame_ms: WebRTC VAD frame length: 10, 20 or 30 (Silero's is 32 ms).
        silero_threshold: Silero speech probability that starts speech (it continues down
            to 0.15 below).
        speech_window_ms: window over which speech onset is decided.
        speech_ratio: fraction of that window that must be speech to start an utterance.
        preroll_ms: audio before the first speech frame that is fed to the decoder.
        end_hangover_ms: added after the last speech frame to a final's ``end_frame``.
        lw: language-model weight (None keeps PocketSphinx's 6.5).
        beam, wbeam: Viterbi beams (None keeps PocketSphinx's defaults 1e-48, 7e-29).
        maxhmmpf: most HMMs the search keeps active per 10 ms frame (PocketSphinx's own
            default is 30000; 0 keeps it). In steady noise the beams let the search grow
            until a frame costs several times real time and the lattice at the end of a
            12 s utterance takes seconds to search (measured below, ``configs/README.md``);
            the cap bounds both, on clean speech it rarely binds.
        remove_noise: spectral-subtraction noise removal (None keeps the model's feat.params,
            on for the shipped en-us model; a value is applied over it after loading).
        dither: add 1/2-bit noise in the front end (off makes decoding reproducible).
        bestpath: run the lattice best-path pass (gives word posteriors as confidences).
        fwdflat: run PocketSphinx's second (flat-lexicon) search over the whole utterance
            when it ends. None keeps PocketSphinx's default (on). It costs about 80 ms per
            final on one core of the benchmark box, between the endpoint and the final, for
            about 2 points of WER (15.6 % -> 17.4 % on the shared conversations); the
            inference actor turns it off when its finals are provisional (``[refine] finals =
            "accurate"``: Whisper gives the final text) unless it is set here.
        grammar_path: a JSGF file; recognition is restricted to its first public rule.
        commands: whole phrases, one per alternative (``"turn on the kitchen light"``); builds
            ``public <command> = phrase1 | phrase2 ...;``.  At most one of grammar_path,
            commands and lm_path may be set.  Words must be in the dictionary, numbers spelled.
        reject_out_of_grammar: with a grammar, drop finals that are not a complete sentence.
        min_score_ratio: with a grammar and > 0, drop finals whose per-frame score is below
            this multiple of a phone loop's (0.8 suits the benchmark's flite voices).
        words: decode words (False: segmentation only, for the Whisper-led mode of languages
            other than English: utterances start and end as usual, partials and finals carry
            no text, Whisper writes it; no decoder is loaded, no search runs).
        spare_decoders: loaded decoders kept for the next stream when streams close (>= 1;
            each costs about 45-90 MB of RSS, and a stream that finds none waits about 0.9 s
            for a load; see :mod:`streamasr.actors.asr.decoder_pool`).
    """

    sample_rate_hz: int = 16000
    hmm_path: str | None = None
    lm_path: str | None = None
    dict_path: str | None = None
    endpoint_silence_ms: int = 600
    max_utterance_s: float = 12.0
    split_pause_ms: int = 150
    vad: str = "webrtc"
    vad_mode: int = 0
    vad_frame_ms: int = 30
    silero_threshold: float = 0.5
    speech_window_ms: int = 300
    speech_ratio: float = 0.7
    preroll_ms: int = 200
    end_hangover_ms: int = 60
    lw: float | None = None
    beam: float | None = None
    wbeam: float | None = None
    maxhmmpf: int = DEFAULT_MAXHMMPF
    remove_noise: bool | None = None
    dither: bool = False
    bestpath: bool = True
    fwdflat: bool | None = None
    grammar_path: str | None = None
    commands: tuple[str, ...] = ()
    reject_out_of_grammar: bool = True
    min_score_ratio: float = 0.0
    spare_decoders: int = 1
    words: bool = True

    def __post_init__(self) -> None:
        """Validate ranges; raises ConfigError naming the offending field."""
        if self.sample_rate_hz not in (8000, 16000):
            raise ConfigError(f"sample_rate_hz: must be 8000 or 16000, got {self.sample_rate_hz}")
        if self.vad not in ("auto", "webrtc", "silero"):
            raise ConfigError(f"vad: must be 'auto', 'webrtc' or 'silero', got {self.vad!r}")
        if self.vad == "silero" and self.sample_rate_hz != 16000:
            raise ConfigError(f"vad: 'silero' needs 16000 Hz, got {self.sample_rate_hz}")
        if not 0.2 <= self.silero_threshold <= 0.95:
            raise ConfigError(
                f"silero_threshold: must be in [0.2, 0.95], got {self.silero_threshold}"
            )
        if self.maxhmmpf < 0:
            raise ConfigError(
                f"maxhmmpf: must be >= 0 (0: PocketSphinx's own), got {self.maxhmmpf}"
            )
        if self.vad_mode not in (0, 1, 2, 3):
            raise ConfigError(f"vad_mode: must be 0..3, got {self.vad_mode}")
        if self.vad_frame_ms not in (10, 20, 30):
            raise ConfigError(f"vad_frame_ms: must be 10, 20 or 30, got {self.vad_frame_ms}")
        if not 0.0 < self.speech_ratio <= 1.0:
            raise ConfigError(f"speech_ratio: must be in (0, 1], got {self.speech_ratio}")
        for name in ("endpoint_silence_ms", "speech_window_ms"):
            if getattr(self, name) < self.vad_frame_ms:
                raise ConfigError(f"{name}: must be >= vad_frame_ms ({self.vad_frame_ms})")
        if self.max_utterance_s != 0.0 and not 2.0 <= self.max_utterance_s <= 300.0:
            raise ConfigError(
                f"max_utterance_s: must be 0 (off) or in [2, 300], got {self.max_utterance_s}"
            )
        if not self.vad_frame_ms <= self.split_pause_ms <= self.endpoint_silence_ms:
            raise ConfigError(
                f"split_pause_ms: must be in [vad_frame_ms, endpoint_silence_ms], "
                f"got {self.split_pause_ms}"
            )
        for name in ("preroll_ms", "end_hangover_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0")
        if not 0.0 <= self.min_score_ratio <= 2.0:
            raise ConfigError(f"min_score_ratio: must be in [0, 2], got {self.min_score_ratio}")
        if self.spare_decoders < 1:
            raise ConfigError(f"spare_decoders: must be >= 1, got {self.spare_decoders}")
        chosen = [
            name
            for name, value in (
                ("grammar_path", self.grammar_path),
                ("commands", self.commands),
                ("lm_path", self.lm_path),
            )
            if value
        ]
        if len(chosen) > 1:
            raise ConfigError(
                f"{', '.join(chosen)}: at most one of grammar_path, commands, lm_path may be set"
            )
        self.grammar_jsgf()  # validates the grammar file or the phrases and their words

    @property
    def frame_vad(self) -> str:
        """The VAD ``vad`` resolves to: ``silero`` or ``webrtc``."""
        if self.vad == "auto":
            return "silero" if self.sample_rate_hz == 16000 else "webrtc"
        return self.vad

    @property
    def uses_grammar(self) -> bool:
        """True when recognition is restricted to a grammar (grammar_path or commands)."""
        return bool(self.grammar_path or self.commands)

    def grammar_jsgf(self) -> str | None:
        """The grammar's JSGF text, checked against the dictionary (None without a grammar).

        Raises ConfigError naming ``grammar_path`` or ``commands``.
        """
        text: str | None = None
        if self.grammar_path:
            text = load_jsgf(self.grammar_path, self.dict_path, "grammar_path")
        elif self.commands:
            text = jsgf_from_phrases(self.commands)
            check_words(jsgf_words(text), self.dict_path, "commands")
        return text

    def decoder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`pocketsphinx.Decoder` (model paths, weights, beams)."""
        kwargs: dict[str, Any] = {
            "samprate": self.sample_rate_hz,
            "loglevel": "FATAL",
            "dither": self.dither,
            "bestpath": self.bestpath,
        }
        for key, value in (
            ("hmm", self.hmm_path),
            ("lm", self.lm_path),
            ("dict", self.dict_path),
            ("lw", self.lw),
            ("beam", self.beam),
            ("wbeam", self.wbeam),
            ("maxhmmpf", self.maxhmmpf or None),
            ("remove_noise", self.remove_noise),
            ("fwdflat", self.fwdflat),
        ):
            if value is not None:
                kwargs[key] = value
        return kwargs
