"""Reading an audio file block by block without restarting its decoder at every block.

``soundfile.SoundFile.read`` brackets each libsndfile read with ``sf_seek(pos + n, SEEK_SET)``
(python-soundfile 0.12/0.13, ``SoundFile._cdata_io``: "Update read & write position").
For PCM formats that seek is free. For MP3, libsndfile hands it to ``mpg123_seek``, which
restarts decoding at that frame without the bit reservoir of the frames before it: libmpg123
prints ``part2_3_length (…) too large for available bit count (…)`` to the C stderr for the
frames that borrowed bits (dozens of lines for a minute read in 100 ms blocks), and those
frames decode to slightly different samples than a straight read gives.

:func:`read_frames` reads through libsndfile's ``sf_readf_float`` on the same handle, the
call ``SoundFile.read`` makes, without the seek: libsndfile keeps the position itself
(``tell`` stays right), and the blocks add up to exactly what one whole-file read returns.
It uses names python-soundfile does not export (``_snd`` and ``_ffi``, its cffi library and
module, and ``SoundFile._file``, the ``SNDFILE*``); where they are missing it falls back to
``SoundFile.read``.
"""

from __future__ import annotations

import numpy as np
import soundfile as sf
from numpy.typing import NDArray

__all__ = ["read_frames"]


def read_frames(audio: sf.SoundFile, frames: int) -> NDArray[np.float32]:
    """The next up to ``frames`` frames of ``audio``, float32 ``(n, channels)`` in [-1, 1].

    ``n`` is 0 at the end of the file.

    Raises:
        ValueError: ``frames`` < 0 or ``audio`` is closed.
        soundfile.LibsndfileError: libsndfile reports an error (a corrupt stream).
    """
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    if audio.closed:
        raise ValueError("I/O operation on closed file")
    lib, ffi = getattr(sf, "_snd", None), getattr(sf, "_ffi", None)
    handle = getattr(audio, "_file", None)
    if lib is None or ffi is None or handle is None:  # a python-soundfile without these internals
        block: NDArray[np.float32] = audio.read(frames, dtype="float32", always_2d=True)
        return block
    out = np.empty((frames, audio.channels), dtype=np.float32)
    got = int(lib.sf_readf_float(handle, ffi.from_buffer("float[]", out), frames))
    code = int(lib.sf_error(handle))
    if code:
        raise sf.LibsndfileError(code)
    return out[:got]
