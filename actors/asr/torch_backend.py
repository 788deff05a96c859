"""TorchScript streaming CTC recogniser: log-mel feature frames in, greedy CTC text out.

Model contract (TorchScript file at ``model_path``)::

    forward(feats: Tensor[B, T, n_mels], state: Tensor) -> (log_probs: Tensor[B, T', V], new_state)
    initial_state(batch: int) -> Tensor        # exported method; optional, see state_shape

``T' = T // subsampling``; ``V == len(tokens)`` with id 0 the CTC blank.  The state tensor has the
batch on dimension ``state_batch_dim``.  Without ``initial_state`` the state is zeros of
``state_shape`` (batch dimension included, set to 1).

The model state is carried across chunks *and* across utterances (a streaming model keeps its
context); only the CTC hypothesis is reset at :meth:`TorchCtcStream.finalize`.  An utterance starts
at its first non-blank output frame minus ``preroll_frames`` (never before the previous
utterance's end) and ends after ``endpoint_blank_frames`` consecutive blank output frames.

INT8: with ``quantize_int8`` the loaded TorchScript module is quantized in graph mode
(``torch.ao.quantization.quantize_dynamic_jit``: ``aten::linear`` becomes
``quantized::linear_dynamic``).  Limitation: graph mode only rewrites ``forward`` (exported
methods such as ``initial_state`` are taken from the unquantized module) and only linear layers;
TorchScript LSTMs stay float.  For LSTM quantization call :func:`quantize_module` on the eager
module *before* ``torch.jit.script`` and ship that file.

PyTorch is the optional extra ``streamasr[torch]``; the default pipeline never imports this
module. :func:`streamasr.actors.asr.registry.create_recognizer` turns a missing PyTorch into a
one-line :class:`~streamasr.actors.errors.ConfigError` naming the extra.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from streamasr.actors.asr.base import InputKind
from streamasr.actors.asr.ctc import GreedyCtcDecoder, greedy_ids, tokens_to_words
from streamasr.actors.asr.types import Result, Word
from streamasr.actors.errors import AudioFormatError, ConfigError, ModelError

__all__ = ["TorchCtcOptions", "TorchCtcRecognizer", "TorchCtcStream", "quantize_module"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TorchCtcOptions:
    """Options of the TorchScript CTC backend (frames are feature frames unless named output).

    Attributes:
        model_path: TorchScript file following the module's model contract.
        tokens: token list, index = id, id 0 = blank; or empty and ``tokens_path`` set.
        tokens_path: text file with one token per line (used when ``tokens`` is empty).
        n_mels: feature dimension per frame.
        frame_rate_hz: feature frames per second (10 ms hop = 100).
        subsampling: input frames per output frame (``T' = T // subsampling``).
        chunk_frames: feature frames per model call (0 = everything pending, rounded down to a
            multiple of ``subsampling``).
        state_shape: state shape with batch size 1, used when the model has no initial_state.
        state_batch_dim: the state tensor's batch dimension.
        endpoint_blank_frames: consecutive blank output frames that end an utterance.
        preroll_frames: feature frames before the first token that belong to the utterance.
        quantize_int8: dynamic INT8 quantization of linear layers at load time.
        num_threads: torch intra-op threads (0 leaves torch's default).
    """

    model_path: str
    tokens: tuple[str, ...] = ()
    tokens_path: str | None = None
    n_mels: int = 80
    frame_rate_hz: int = 100
    subsampling: int = 1
    chunk_frames: int = 0
    state_shape: tuple[int, ...] = ()
    state_batch_dim: int = 0
    endpoint_blank_frames: int = 50
    preroll_frames: int = 10
    quantize_int8: bool = False
    num_threads: int = 0

    def __post_init__(self) -> None:
        """Validate ranges; raises ConfigError naming the offending field."""
        if not self.tokens and self.tokens_path is None:
            raise ConfigError("tokens: give tokens or tokens_path")
        for name in ("n_mels", "frame_rate_hz", "subsampling", "endpoint_blank_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1")
        for name in ("chunk_frames", "preroll_frames", "num_threads", "state_batch_dim"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0")
        if self.chunk_frames % self.subsampling:
            raise ConfigError("chunk_frames: must be a multiple of subsampling")


def quantize_module(module: torch.nn.Module) -> torch.nn.Module:
    """Dynamic INT8 copy of an *eager* module (Linear and LSTM layers), to script and save."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize = torch.ao.quantization.quantize_dynamic
        quantized: torch.nn.Module = quantize(  # type: ignore[no-untyped-call]
            module, {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8
        )
    return quantized


def _load_tokens(opts: TorchCtcOptions) -> tuple[str, ...]:
    if opts.tokens:
        return opts.tokens
    assert opts.tokens_path is not None
    try:
        lines = Path(opts.tokens_path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"torch: cannot read tokens_path: {exc}") from exc
    return tuple(line if line.strip() else " " for line in lines)


def _quantize_script(model: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic_jit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized: torch.jit.ScriptModule = quantize_dynamic_jit(  # type: ignore[no-untyped-call]
            model, {"": default_dynamic_qconfig}
        )
    if "quantized::" not in str(quantized.graph):
        logger.warning("quantize_int8: the model has no linear layer graph mode can quantize")
    return quantized


class TorchCtcRecognizer:
    """Loaded TorchScript CTC model, shared by its streams (which hold the model state).

    Attributes:
        sample_rate_hz: feature frames per second streams accept.
        input_kind: always ``"features"`` (float32 ``(n, n_mels)`` log-mel frames).
        load_time_s: wall time of loading (and quantizing) the model, in seconds.
        tokens: the token list.
    """

    input_kind: InputKind = "features"

    def __init__(self, options: TorchCtcOptions) -> None:
        """Load the model (raises ModelError if it is missing or breaks the contract)."""
        self.options = options
        self.sample_rate_hz = options.frame_rate_hz
        self.tokens = _load_tokens(options)
        if options.num_threads:
            torch.set_num_threads(options.num_threads)
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load in 2.13
                load = torch.jit.load
                loaded = load(options.model_path, map_location="cpu")  # type: ignore[no-untyped-call]
                self._float_model = loaded.eval()
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"torch: cannot load {options.model_path}: {exc}") from exc
        model = self._float_model
        if options.quantize_int8:
            model = _quantize_script(model)
        self.model = model
        self.load_time_s = time.perf_counter() - t0
        logger.info("torch model loaded in %.3f s", self.load_time_s)

    def initial_state(self, batch: int) -> torch.Tensor:
        """Fresh model state for ``batch`` streams (from the model or from ``state_shape``)."""
        if hasattr(self._float_model, "initial_state"):
            state: torch.Tensor = self._float_model.initial_state(batch)
            return state
        if not self.options.state_shape:
            raise ModelError("torch: model has no initial_state() and state_shape is not set")
        shape = list(self.options.state_shape)
        shape[self.options.state_batch_dim] = batch
        return torch.zeros(shape)

    def forward(
        self, feats: npt.NDArray[np.float32], state: torch.Tensor
    ) -> tuple[npt.NDArray[np.float32], torch.Tensor]:
        """Run the model on ``feats`` shaped ``(B, T, n_mels)``; log-probs ``(B, T', V)``."""
        with torch.inference_mode():
            log_probs, new_state = self.model(torch.from_numpy(feats), state)
        out = log_probs.float().numpy()
        expected = feats.shape[1] // self.options.subsampling
        if out.ndim != 3 or out.shape[1] != expected or out.shape[2] != len(self.tokens):
            raise ModelError(
                f"torch: model returned log_probs {tuple(out.shape)}, expected "
                f"({feats.shape[0]}, {expected}, {len(self.tokens)})"
            )
        return out, new_state

    def create_stream(self, start_frame: int = 0) -> TorchCtcStream:
        """A new stream (fresh model state) whose first frame has absolute index ``start_frame``."""
        return TorchCtcStream(self, start_frame)

    def warm_up(self) -> None:
        """Run about 1 s of random features through the model and the decoder."""
        stream = self.create_stream()
        rng = np.random.default_rng(0)
        n = self.options.frame_rate_hz
        stream.accept(rng.standard_normal((n, self.options.n_mels)).astype(np.float32))
        while stream.is_ready():
            stream.step()
        stream.finalize()

    def decode_batch(
        self, streams: Sequence[TorchCtcStream], chunks: Sequence[npt.NDArray[np.float32]]
    ) -> None:
        """Accept ``chunks[i]`` into ``streams[i]`` and run the model once per group of streams.

        Streams whose next model chunk has the same length form one batch (states stacked on
        ``state_batch_dim``); groups are not padded, because padding frames would advance a
        recurrent state past the real audio and break batch == single-stream equivalence.
        In steady state every stream gets equally sized chunks, so this is a single batch.
        Left-over work (e.g. after an endpoint) is done by each stream's :meth:`step`.
        """
        if len(streams) != len(chunks):
            raise ValueError("decode_batch: streams and chunks differ in length")
        for stream, chunk in zip(streams, chunks, strict=True):
            stream.accept(chunk)
        groups: dict[int, list[TorchCtcStream]] = {}
        for stream in streams:
            n = stream.model_chunk_frames()
            if n:
                groups.setdefault(n, []).append(stream)
        dim = self.options.state_batch_dim
        for n, group in groups.items():
            feats = np.stack([s.take_frames(n) for s in group])
            state = torch.cat([s.state for s in group], dim=dim)
            log_probs, new_state = self.forward(feats, state)
            for i, (s, lp) in enumerate(zip(group, log_probs, strict=True)):
                s.push_output(lp, new_state.narrow(dim, i, 1))
        for stream in streams:
            while stream.is_ready():
                stream.step()


class TorchCtcStream:
    """Per-stream state: pending features, model state, greedy CTC hypothesis."""

    def __init__(self, engine: TorchCtcRecognizer, start_frame: int) -> None:
        """Fresh state; the first accepted frame has absolute index ``start_frame``."""
        self._engine = engine
        self._opts = engine.options
        self.state = engine.initial_state(1)
        self._ctc = GreedyCtcDecoder(0, self._opts.endpoint_blank_frames)
        self._pending = np.empty((0, self._opts.n_mels), dtype=np.float32)
        self._pending_start = start_frame
        self._out_frame = start_frame // self._opts.subsampling  # next absolute output frame
        self._ids = np.empty(0, dtype=np.int64)  # model output not yet given to the CTC
        self._probs = np.empty(0, dtype=np.float64)
        self._floor = start_frame  # an utterance never starts before this input frame
        self._utt_start: int | None = None

    @property
    def position_frame(self) -> int:
        """Absolute index of the next feature frame :meth:`accept` expects."""
        return self._pending_start + len(self._pending)

    @property
    def utterance_start_frame(self) -> int | None:
        """Absolute first feature frame of the utterance in progress (None when idle)."""
        return self._utt_start

    def accept(self, frames: npt.NDArray[np.generic]) -> None:
        """Append float32 features ``(n, n_mels)``; raises AudioFormatError otherwise."""
        if frames.dtype != np.float32 or frames.ndim != 2 or frames.shape[1] != self._opts.n_mels:
            raise AudioFormatError(
                f"torch: expected float32 (n, {self._opts.n_mels}), got {frames.dtype} "
                f"{frames.shape}"
            )
        self._pending = np.concatenate([self._pending, frames])

    def model_chunk_frames(self) -> int:
        """Feature frames the next model call would take (0 if not enough are pending)."""
        if self._ctc.is_endpoint() or len(self._ids):
            return 0
        opts, n = self._opts, len(self._pending)
        if opts.chunk_frames:
            return opts.chunk_frames if n >= opts.chunk_frames else 0
        return n - n % opts.subsampling

    def take_frames(self, n: int) -> npt.NDArray[np.float32]:
        """Remove and return the first ``n`` pending frames (for the model)."""
        taken = self._pending[:n]
        self._pending = self._pending[n:]
        self._pending_start += n
        return taken

    def push_output(self, log_probs: npt.NDArray[np.float32], new_state: torch.Tensor) -> None:
        """Store one model call's output ``(T', V)`` and state, then run the CTC on it."""
        self.state = new_state
        ids, probs = greedy_ids(log_probs)
        self._ids = np.concatenate([self._ids, ids])
        self._probs = np.concatenate([self._probs, probs])
        self._run_ctc()

    def _run_ctc(self) -> None:
        """Feed stored output frames to the CTC, stopping at an endpoint."""
        sub, used = self._opts.subsampling, 0
        for token_id, prob in zip(self._ids.tolist(), self._probs.tolist(), strict=True):
            if self._ctc.is_endpoint():
                break
            had_tokens = bool(self._ctc.tokens)
            self._ctc.push(token_id, prob, self._out_frame)
            if not had_tokens and self._ctc.tokens:
                start = self._out_frame * sub - self._opts.preroll_frames
                self._utt_start = max(self._floor, start)
            self._out_frame += 1
            used += 1
        self._ids, self._probs = self._ids[used:], self._probs[used:]

    def is_ready(self) -> bool:
        """True while model output or enough pending frames wait and no endpoint is pending."""
        if self._ctc.is_endpoint():
            return False
        return bool(len(self._ids)) or self.model_chunk_frames() > 0

    def step(self) -> None:
        """Give stored output to the CTC, else run the model on the next chunk of frames."""
        if len(self._ids):
            self._run_ctc()
            return
        n = self.model_chunk_frames()
        if n:
            feats = self.take_frames(n)[np.newaxis]
            log_probs, new_state = self._engine.forward(feats, self.state)
            self.push_output(log_probs[0], new_state)

    def is_endpoint(self) -> bool:
        """True after ``endpoint_blank_frames`` blank output frames that followed a token."""
        return bool(self._ctc.is_endpoint())

    def _words(self) -> tuple[Word, ...]:
        rate, sub = float(self._opts.frame_rate_hz), self._opts.subsampling
        return tuple(
            Word(w.text, w.start_frame * sub / rate, w.end_frame * sub / rate, w.conf)
            for w in tokens_to_words(self._ctc.tokens, self._engine.tokens)
        )

    def result(self) -> Result | None:
        """Partial hypothesis (with word times) of the utterance in progress, or None."""
        if self._utt_start is None:
            return None
        words = self._words()
        if not words:
            return None
        end = self._out_frame * self._opts.subsampling
        return Result(" ".join(w.word for w in words), False, self._utt_start, end, words)

    def finalize(self) -> Result | None:
        """Final of the utterance in progress (None if it held no words); then reset the CTC."""
        result = None
        if self._utt_start is not None:
            words = self._words()
            if words:
                end = self._ctc.tokens[-1].end_frame * self._opts.subsampling
                text = " ".join(w.word for w in words)
                result = Result(text, True, self._utt_start, end, words)
        self._floor = self._out_frame * self._opts.subsampling
        self._ctc.reset()
        self._utt_start = None
        return result
