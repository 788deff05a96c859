"""Streaming audio conditioning: validate, downmix to mono, resample to the pipeline rate.

:class:`Conditioner` is the pure core of the capture actor's signal path. Each
:meth:`Conditioner.process` call takes one block of float32 frames ``(n, channels)`` at the
source rate and returns the mono float32 samples at the output rate that the streaming
resampler (``soxr.ResampleStream``, quality ``HQ``) can release so far; :meth:`Conditioner.flush`
drains it at end of stream, so that the total output length is
``round(total_in_frames * out_rate_hz / in_rate_hz)`` and the concatenated output equals
one-shot ``soxr.resample`` of the whole signal.

Order of operations per block: shape/dtype check -> NaN/Inf replacement (whole block zeroed
when more than ``reject_bad_fraction`` of its samples are bad) -> clip to [-1, 1] ->
mean downmix -> resample -> optional DC removal.

DC removal (``remove_dc=True``, off by default) is a one-pole high-pass at the output rate,
``y[n] = a*y[n-1] + x[n] - x[n-1]`` with ``a = exp(-2*pi*dc_cutoff_hz/out_rate_hz)``: it
removes a constant offset from cheap microphones and passes speech (>= ~80 Hz) unchanged
(gain > 0.97 above 5x the cutoff). It runs on the output, so it is stateful across blocks too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Final

import numpy as np
import soxr
from numpy.typing import NDArray

from streamasr.actors.errors import AudioFormatError

__all__ = ["Conditioner", "ConditionerCounters", "ConditionerOptions", "to_int16"]

_EMPTY: Final = np.zeros(0, dtype=np.float32)
_DC_BLOCK: Final = 256  # samples per closed-form step of the one-pole filter


@dataclass(frozen=True, slots=True)
class ConditionerOptions:
    """Tuning of a :class:`Conditioner`.

    Attributes:
        quality: soxr quality recipe (``"HQ"``, ``"VHQ"``, ``"MQ"``, ``"LQ"``, ``"QQ"``).
        reject_bad_fraction: a block whose fraction of NaN/Inf samples exceeds this (0..1) is
            counted in ``rejected_chunks`` and replaced by silence of the same length.
        remove_dc: apply the one-pole DC-removal high-pass to the output.
        dc_cutoff_hz: -3 dB corner of that high-pass in Hz.
    """

    quality: str = "HQ"
    reject_bad_fraction: float = 0.05
    remove_dc: bool = False
    dc_cutoff_hz: float = 20.0


@dataclass(slots=True)
class ConditionerCounters:
    """Running counts of a :class:`Conditioner` (a copy is returned by ``counters``).

    Attributes:
        chunks_in: non-empty blocks processed.
        frames_in: input frames processed (at the input rate).
        samples_out: mono samples returned (at the output rate), flush included.
        empty_chunks: zero-length blocks ignored.
        nan_inf_samples: NaN or +-Inf input samples (replaced by 0).
        rejected_chunks: blocks zeroed because too many of their samples were NaN/Inf.
        clipped_samples: finite input samples with ``|x| > 1.0`` (clipped to +-1).
    """

    chunks_in: int = 0
    frames_in: int = 0
    samples_out: int = 0
    empty_chunks: int = 0
    nan_inf_samples: int = 0
    rejected_chunks: int = 0
    clipped_samples: int = 0


@dataclass(slots=True)
class _DcState:
    """One-pole high-pass memory: last input and last output sample."""

    a: float
    x_prev: float = 0.0
    y_prev: float = 0.0
    primed: bool = field(default=False)


def to_int16(x: NDArray[np.floating]) -> NDArray[np.int16]:
    """Float samples in [-1, 1] to int16 PCM (scaled by 32767, clipped, rounded)."""
    scaled = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0) * np.float32(32767.0)
    out: NDArray[np.int16] = np.rint(scaled).astype(np.int16)
    return out


def _dc_filter(x: NDArray[np.float32], st: _DcState) -> NDArray[np.float32]:
    """Apply the one-pole high-pass to ``x`` in place of a Python loop, updating ``st``.

    Uses the closed form ``y[n] = a^n (a*y[-1] + sum_{k<=n} a^-k d[k])`` with
    ``d = diff(x)`` over blocks of ``_DC_BLOCK`` samples, which keeps ``a^-k`` well scaled.
    """
    if x.size == 0:
        return x
    xd = x.astype(np.float64)
    if not st.primed:  # start from the first sample: no step response to a leading offset
        st.x_prev, st.primed = float(xd[0]), True
    d = np.diff(xd, prepend=st.x_prev)
    y = np.empty_like(xd)
    powers = st.a ** np.arange(_DC_BLOCK, dtype=np.float64)
    for start in range(0, xd.size, _DC_BLOCK):
        blk = d[start : start + _DC_BLOCK]
        p = powers[: blk.size]
        y[start : start + blk.size] = p * (st.a * st.y_prev + np.cumsum(blk / p))
        st.y_prev = float(y[start + blk.size - 1])
    st.x_prev = float(xd[-1])
    return y.astype(np.float32)


class Conditioner:
    """Streaming validator, mono downmixer and resampler (see module docstring).

    Not thread-safe; one instance per stream. Calling :meth:`process` after :meth:`flush`
    starts a new stream (the resampler is cleared, counters keep counting).
    """

    def __init__(
        self,
        in_rate_hz: int,
        in_channels: int,
        out_rate_hz: int = 16000,
        options: ConditionerOptions | None = None,
    ) -> None:
        """Condition ``in_channels``-channel audio at ``in_rate_hz`` to mono ``out_rate_hz``.

        Raises:
            AudioFormatError: a rate or the channel count is not positive.
        """
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise AudioFormatError(
                f"sample rates must be > 0 Hz, got in={in_rate_hz} out={out_rate_hz}"
            )
        if in_channels <= 0:
            raise AudioFormatError(f"channel count must be >= 1, got {in_channels}")
        self.in_rate_hz = in_rate_hz
        self.in_channels = in_channels
        self.out_rate_hz = out_rate_hz
        self.options = options or ConditionerOptions()
        self._counters = ConditionerCounters()
        self._stream_in = 0  # input frames in the current stream
        self._stream_out = 0  # output samples in the current stream
        self._resampler: soxr.ResampleStream | None = None
        if in_rate_hz != out_rate_hz:
            self._resampler = soxr.ResampleStream(
                in_rate_hz, out_rate_hz, 1, dtype="float32", quality=self.options.quality
            )
        a = math.exp(-2.0 * math.pi * self.options.dc_cutoff_hz / out_rate_hz)
        self._dc = _DcState(a=a)

    @property
    def counters(self) -> ConditionerCounters:
        """A snapshot copy of the running counters."""
        return replace(self._counters)

    def _validate(self, chunk: NDArray[np.float32]) -> None:
        """Raise :class:`AudioFormatError` unless ``chunk`` is float32 ``(n, in_channels)``."""
        if not isinstance(chunk, np.ndarray):
            raise AudioFormatError(f"expected a numpy array, got {type(chunk).__name__}")
        if chunk.dtype != np.float32:
            raise AudioFormatError(f"expected float32 samples, got {chunk.dtype}")
        if chunk.ndim != 2 or chunk.shape[1] != self.in_channels:
            raise AudioFormatError(
                f"expected shape (n, {self.in_channels}), got {tuple(chunk.shape)}"
            )

    def _sanitize(self, chunk: NDArray[np.float32]) -> NDArray[np.float32]:
        """Replace NaN/Inf by 0 (or zero the block when too many), clip to [-1, 1]; count."""
        c = self._counters
        bad = ~np.isfinite(chunk)
        n_bad = int(np.count_nonzero(bad))
        if n_bad:
            c.nan_inf_samples += n_bad
            if n_bad > self.options.reject_bad_fraction * chunk.size:
                c.rejected_chunks += 1
                return np.zeros_like(chunk)
            chunk = np.where(bad, np.float32(0.0), chunk)
        n_clip = int(np.count_nonzero(np.abs(chunk) > 1.0))
        if n_clip:
            c.clipped_samples += n_clip
            chunk = np.clip(chunk, -1.0, 1.0)
        return chunk

    def process(self, chunk: NDArray[np.float32]) -> NDArray[np.float32]:
        """Condition one block; returns the mono float32 samples ready at the output rate.

        Args:
            chunk: float32 frames ``(n, in_channels)`` at ``in_rate_hz``; ``n`` may be 0.

        Raises:
            AudioFormatError: wrong type, dtype or shape (nothing is consumed or counted).
        """
        self._validate(chunk)
        if chunk.shape[0] == 0:
            self._counters.empty_chunks += 1
            return _EMPTY
        clean = self._sanitize(chunk)
        mono = clean[:, 0] if self.in_channels == 1 else clean.mean(axis=1, dtype=np.float32)
        mono = np.ascontiguousarray(mono, dtype=np.float32)
        self._counters.chunks_in += 1
        self._counters.frames_in += int(chunk.shape[0])
        self._stream_in += int(chunk.shape[0])
        out = mono if self._resampler is None else self._resampler.resample_chunk(mono)
        return self._emit(out)

    def flush(self) -> NDArray[np.float32]:
        """Drain the resampler at end of stream and reset it for a new stream.

        The returned tail makes this stream's total output exactly
        ``round(total_in * out_rate_hz / in_rate_hz)`` samples.
        """
        tail = _EMPTY
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(_EMPTY, last=True)
            self._resampler.clear()
        expected = round(self._stream_in * self.out_rate_hz / self.in_rate_hz)
        missing = expected - (self._stream_out + tail.size)
        if missing > 0:  # never seen with soxr; kept so the length contract always holds
            tail = np.concatenate([tail, np.zeros(missing, dtype=np.float32)])
        elif missing < 0:
            tail = tail[: max(0, tail.size + missing)]
        out = self._emit(np.ascontiguousarray(tail, dtype=np.float32))
        self._stream_in = self._stream_out = 0
        self._dc = _DcState(a=self._dc.a)
        return out

    def _emit(self, out: NDArray[np.float32]) -> NDArray[np.float32]:
        """Apply DC removal if enabled and count the returned samples."""
        if self.options.remove_dc:
            out = _dc_filter(out, self._dc)
        self._stream_out += int(out.size)
        self._counters.samples_out += int(out.size)
        return out
