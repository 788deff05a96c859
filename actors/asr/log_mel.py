"""Log-mel filterbank features, offline and streaming, in pure numpy.

Framing has no centre padding: frame ``i`` covers samples ``[i*hop_length, i*hop_length + n_fft)``
of the stream, so a signal of ``N`` samples gives ``1 + (N - n_fft) // hop_length`` frames
(0 when ``N < n_fft``). With ``pad_end=True`` the signal is zero-padded at the end just enough
for every sample to lie in some frame (the last frame then starts before sample ``N``).

Each frame: periodic Hann window -> ``|rfft|**power`` -> mel filterbank (Slaney mel scale and
area normalisation, as librosa's default and Whisper's ``mel_filters``, or HTK) ->
``log(max(mel, log_floor))`` (natural log, or log10 with ``log10=True``).

:class:`StreamingLogMel` keeps the last ``n_fft - hop_length`` samples (plus whatever did not
fill a hop yet) across :meth:`StreamingLogMel.accept` calls, so the concatenation of its
outputs equals :func:`log_mel_offline` on the whole signal for any chunking, and
``frames_emitted`` is the absolute index of the next frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.errors import AudioFormatError

__all__ = ["LogMelOptions", "StreamingLogMel", "frame_count", "log_mel_offline", "mel_filterbank"]


@dataclass(frozen=True, slots=True)
class LogMelOptions:
    """Log-mel feature parameters (defaults: 25 ms window, 10 ms hop, 80 mels at 16 kHz).

    Attributes:
        sample_rate_hz: input sample rate in Hz.
        n_fft: FFT size and window length in samples.
        hop_length: samples between frame starts.
        n_mels: mel bands (feature dimension).
        f_min_hz: lowest filter edge in Hz.
        f_max_hz: highest filter edge in Hz (``None`` = Nyquist).
        power: exponent of the magnitude spectrum (2.0 = power, 1.0 = magnitude).
        mel_scale: ``"slaney"`` (area-normalised, librosa/Whisper) or ``"htk"`` (unnormalised).
        log_floor: smallest value passed to the log (avoids log(0)).
        log10: base-10 log instead of natural log.
        pad_end: zero-pad the end so the last samples are covered (see module docstring).
    """

    sample_rate_hz: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min_hz: float = 0.0
    f_max_hz: float | None = None
    power: float = 2.0
    mel_scale: Literal["slaney", "htk"] = "slaney"
    log_floor: float = 1e-10
    log10: bool = False
    pad_end: bool = False

    def __post_init__(self) -> None:
        """Reject inconsistent sizes."""
        if self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError("n_fft, hop_length and n_mels must be > 0")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length ({self.hop_length}) must be <= n_fft ({self.n_fft})")
        if self.mel_scale not in ("slaney", "htk"):
            raise ValueError(f"mel_scale must be 'slaney' or 'htk', got {self.mel_scale!r}")


def _hz_to_mel(hz: NDArray[np.float64], scale: str) -> NDArray[np.float64]:
    """Hz to mel (HTK: 2595 log10(1 + f/700); Slaney: linear below 1 kHz, log above)."""
    if scale == "htk":
        return np.asarray(2595.0 * np.log10(1.0 + hz / 700.0), dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3.0, 1000.0, np.log(6.4) / 27.0
    mel = hz / f_sp
    high = hz >= min_log_hz
    mel[high] = min_log_hz / f_sp + np.log(hz[high] / min_log_hz) / logstep
    return mel


def _mel_to_hz(mel: NDArray[np.float64], scale: str) -> NDArray[np.float64]:
    """Inverse of :func:`_hz_to_mel`."""
    if scale == "htk":
        return np.asarray(700.0 * (10.0 ** (mel / 2595.0) - 1.0), dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3.0, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    hz = mel * f_sp
    high = mel >= min_log_mel
    hz[high] = min_log_hz * np.exp(logstep * (mel[high] - min_log_mel))
    return hz


@lru_cache(maxsize=8)
def mel_filterbank(opts: LogMelOptions) -> NDArray[np.float64]:
    """Triangular mel filters, shape ``(n_mels, n_fft // 2 + 1)`` (read-only, cached)."""
    f_max = opts.sample_rate_hz / 2.0 if opts.f_max_hz is None else opts.f_max_hz
    fft_hz = np.linspace(0.0, opts.sample_rate_hz / 2.0, opts.n_fft // 2 + 1)
    edges_mel = np.linspace(
        _hz_to_mel(np.array([opts.f_min_hz]), opts.mel_scale)[0],
        _hz_to_mel(np.array([f_max]), opts.mel_scale)[0],
        opts.n_mels + 2,
    )
    edges_hz = _mel_to_hz(edges_mel, opts.mel_scale)
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if opts.mel_scale == "slaney":
        weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _window(n_fft: int) -> NDArray[np.float64]:
    """Periodic Hann window of ``n_fft`` samples (as ``torch.hann_window`` by default)."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    w.setflags(write=False)
    return w


def _whole_frames(n_samples: int, n_fft: int, hop_length: int) -> int:
    """Frames that fit entirely in ``n_samples`` samples (no padding)."""
    return 0 if n_samples < n_fft else 1 + (n_samples - n_fft) // hop_length


def frame_count(n_samples: int, opts: LogMelOptions) -> int:
    """Frames :func:`log_mel_offline` yields for ``n_samples`` samples."""
    if n_samples <= 0:
        return 0
    if opts.pad_end:
        excess = max(0, n_samples - opts.n_fft)
        return 1 + -(-excess // opts.hop_length)
    return _whole_frames(n_samples, opts.n_fft, opts.hop_length)


def _frames_to_log_mel(
    samples: NDArray[np.float32], n_frames: int, opts: LogMelOptions
) -> NDArray[np.float32]:
    """Log-mel of frames ``0..n_frames-1`` of ``samples`` (which holds all their samples)."""
    if n_frames == 0:
        return np.zeros((0, opts.n_mels), dtype=np.float32)
    x = samples.astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(x, opts.n_fft)[:: opts.hop_length]
    spec = np.abs(np.fft.rfft(frames[:n_frames] * _window(opts.n_fft), axis=1)) ** opts.power
    mel = spec @ mel_filterbank(opts).T
    logmel = np.log10 if opts.log10 else np.log
    return np.asarray(logmel(np.maximum(mel, opts.log_floor)), dtype=np.float32)


def _check_samples(samples: NDArray[np.float32]) -> NDArray[np.float32]:
    """Raise :class:`AudioFormatError` unless ``samples`` is 1-D float32."""
    if not isinstance(samples, np.ndarray) or samples.dtype != np.float32 or samples.ndim != 1:
        desc = (
            f"{samples.dtype} {samples.shape}"
            if isinstance(samples, np.ndarray)
            else type(samples).__name__
        )
        raise AudioFormatError(f"expected 1-D float32 samples, got {desc}")
    return samples


def _pad_to_frames(
    samples: NDArray[np.float32], n_frames: int, opts: LogMelOptions
) -> NDArray[np.float32]:
    """Zero-pad ``samples`` so that ``n_frames`` whole frames fit."""
    need = (n_frames - 1) * opts.hop_length + opts.n_fft if n_frames else 0
    if samples.size >= need:
        return samples
    return np.concatenate([samples, np.zeros(need - samples.size, dtype=np.float32)])


def log_mel_offline(samples: NDArray[np.float32], opts: LogMelOptions) -> NDArray[np.float32]:
    """Log-mel features of a whole signal.

    Args:
        samples: mono float32 samples at ``opts.sample_rate_hz``.
        opts: feature parameters.

    Returns:
        float32 array ``(frame_count(len(samples), opts), opts.n_mels)``.
    """
    _check_samples(samples)
    n = frame_count(samples.size, opts)
    return _frames_to_log_mel(_pad_to_frames(samples, n, opts), n, opts)


class StreamingLogMel:
    """Incremental log-mel extractor whose outputs concatenate to :func:`log_mel_offline`."""

    def __init__(self, opts: LogMelOptions | None = None) -> None:
        """Start a stream with ``opts`` (defaults: 16 kHz, 400/160, 80 mels)."""
        self.opts = opts or LogMelOptions()
        self._buf = np.zeros(0, dtype=np.float32)  # samples from the next frame's start on
        self.frames_emitted = 0
        self.samples_accepted = 0
        self._stream_frames = 0  # frames emitted since the last flush

    def accept(self, samples: NDArray[np.float32]) -> NDArray[np.float32]:
        """Add mono float32 samples; return the frames completed by them, ``(k, n_mels)``."""
        _check_samples(samples)
        self.samples_accepted += int(samples.size)
        buf = np.concatenate([self._buf, samples]) if self._buf.size else samples
        n = _whole_frames(buf.size, self.opts.n_fft, self.opts.hop_length)
        out = _frames_to_log_mel(buf, n, self.opts)
        self._buf = np.array(buf[n * self.opts.hop_length :], dtype=np.float32)
        self.frames_emitted += n
        self._stream_frames += n
        return out

    def flush(self) -> NDArray[np.float32]:
        """End of stream: with ``pad_end``, the zero-padded last frame (if any); then reset.

        Without ``pad_end`` this returns no frames (the tail shorter than ``n_fft`` is dropped,
        as in :func:`log_mel_offline`). Counters keep the totals; the next sample starts a new
        stream whose frame indices continue from ``frames_emitted``.
        """
        opts, b = self.opts, self._buf.size
        covered = opts.n_fft - opts.hop_length if self._stream_frames else 0
        out = np.zeros((0, opts.n_mels), dtype=np.float32)
        if opts.pad_end and b > covered:
            out = _frames_to_log_mel(_pad_to_frames(self._buf, 1, opts), 1, opts)
            self.frames_emitted += 1
        self._buf = np.zeros(0, dtype=np.float32)
        self._stream_frames = 0
        return out
