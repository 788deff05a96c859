"""Synthetic speech for tests: ``flite`` voices resampled to the pipeline rate, and mixing.

Tests that need it skip (with the reason) where ``flite`` is not installed; CI installs it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf
import soxr

RATE_HZ = 16000

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


def say(text: str, voice: str = "slt", rate_hz: int = RATE_HZ) -> npt.NDArray[np.float32]:
    """``text`` spoken by flite ``voice`` as float32 mono at ``rate_hz``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(
            ["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True, timeout=60
        )
        x, rate = sf.read(wav, dtype="float32")
    y: npt.NDArray[np.float32] = soxr.resample(x, rate, rate_hz).astype(np.float32)
    return y


needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)


def espeak(text: str, voice: str, rate_hz: int = RATE_HZ) -> npt.NDArray[np.float32]:
    """``text`` spoken by espeak-ng ``voice`` (``de``, ``fr``, ``es``, ``it``, ``nl``, ...) as
    float32 mono at ``rate_hz``."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-w", str(wav), "--", text], check=True, timeout=60
        )
        x, rate = sf.read(wav, dtype="float32")
    y: npt.NDArray[np.float32] = soxr.resample(x, rate, rate_hz).astype(np.float32)
    return y


#: Noise floor of :func:`silence` (about -70 dBFS RMS): real microphones never give exact
#: zeros, and long runs of them upset PocketSphinx's cepstral mean normalisation.
NOISE_FLOOR = 3e-4


def silence(seconds: float, rate_hz: int = RATE_HZ, seed: int = 0) -> npt.NDArray[np.float32]:
    """``seconds`` of room silence: white noise at :data:`NOISE_FLOOR` (seeded)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * rate_hz)) * NOISE_FLOOR).astype(np.float32)


@dataclass
class Timeline:
    """Audio built piece by piece, remembering where each labelled piece lies (seconds)."""

    rate_hz: int = RATE_HZ

    def __post_init__(self) -> None:
        """Start empty."""
        self.pieces: list[npt.NDArray[np.float32]] = []
        self.marks: list[tuple[str, float, float]] = []
        self.frames = 0

    def add(self, audio: npt.NDArray[np.float32], label: str = "") -> Timeline:
        """Append ``audio``; a non-empty ``label`` records its (start_s, end_s)."""
        if label:
            self.marks.append(
                (label, self.frames / self.rate_hz, (self.frames + len(audio)) / self.rate_hz)
            )
        self.pieces.append(audio.astype(np.float32))
        self.frames += len(audio)
        return self

    def write(self, path: Path) -> Path:
        """Write the whole timeline as a 16-bit WAV file."""
        sf.write(path, np.concatenate(self.pieces), self.rate_hz, subtype="PCM_16")
        return path
