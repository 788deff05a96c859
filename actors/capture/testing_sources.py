"""Test and fault-injection sources only: never use them for real capture.

:class:`FailingSource` wraps a pull source and raises :class:`DeviceError` after a number of
blocks. :class:`FileMic` is a microphone stand-in (device spec ``"file-mic:<wav path>"``) that
plays a file in real time through the same push path as
:class:`~streamasr.actors.capture.mic.MicSource`, and :class:`FaultTrigger` is a trigger file
that makes it fail on command. Times in seconds, sizes in frames. Imported only by tests, the
``stream --mic`` client's test device and the capture actor's fault-injection path (device
spec ``"file-mic:<wav>"``); nothing else builds on this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from streamasr.actors.capture.formats import BlockSource, MicSink, SourceFormat
from streamasr.actors.capture.sources import FileSource, Pacer
from streamasr.actors.errors import DeviceError

__all__ = ["FailingSource", "FaultTrigger", "FileMic"]

logger = logging.getLogger(__name__)


class FailingSource:
    """Fault injector: passes ``inner``'s blocks through, then raises :class:`DeviceError`.

    After ``fail_after_blocks`` blocks (``None`` = never, until :meth:`fail_now`) the next
    ``read_block`` raises ``DeviceError("injected failure: device unplugged")``.
    """

    def __init__(self, inner: BlockSource, fail_after_blocks: int | None) -> None:
        """Wrap ``inner``; fail after ``fail_after_blocks`` blocks."""
        self._inner = inner
        self._fail_after = fail_after_blocks
        self.blocks_read = 0

    @property
    def format(self) -> SourceFormat:
        """The inner source's format."""
        return self._inner.format

    def fail_now(self) -> None:
        """Make the next ``read_block`` raise."""
        self._fail_after = self.blocks_read

    def read_block(self) -> NDArray[np.float32] | None:
        """Inner block, or raise :class:`DeviceError` once the failure point is reached."""
        if self._fail_after is not None and self.blocks_read >= self._fail_after:
            raise DeviceError("injected failure: device unplugged")
        block = self._inner.read_block()
        if block is not None:
            self.blocks_read += 1
        return block

    def close(self) -> None:
        """Close the inner source."""
        self._inner.close()


class FaultTrigger:
    """Test-only fault injection: a file whose appearance takes the "device" down.

    When :meth:`check` finds the file at ``path``, it reads a duration in seconds from it
    (text, e.g. ``"1.5"``; empty or unparsable = 1.0), deletes the file (the trigger is
    consumed once) and raises :class:`DeviceError` from then until that many seconds have
    passed on ``clock``. Write the file atomically (write elsewhere, then rename) so a
    half-written duration is never read.
    """

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.monotonic) -> None:
        """Watch ``path``; ``clock`` returns monotonic seconds (injected for tests)."""
        self.path = Path(path)
        self._clock = clock
        self.down_until_s = -float("inf")
        self.triggered = 0

    def check(self) -> None:
        """Raise :class:`DeviceError` while an injected outage lasts (starting one if due)."""
        try:
            text = self.path.read_text()
        except OSError:
            text = None
        if text is not None:
            self.path.unlink(missing_ok=True)
            try:
                seconds = float(text.strip() or "1.0")
            except ValueError:
                seconds = 1.0
            self.down_until_s = self._clock() + max(0.0, seconds)
            self.triggered += 1
            logger.warning("fault injection: device down for %.3f s", seconds)
        left = self.down_until_s - self._clock()
        if left > 0:
            raise DeviceError(f"injected fault: device down for another {left:.3f} s")


class FileMic:
    """Test-only microphone stand-in: plays a file in real time into a sink from a thread.

    Selected by the device spec ``"file-mic:<path>"``; it has :class:`MicSource`'s push
    interface (``start``, ``raise_if_failed``, ``close``, ``active``, ``input_overflows``),
    so the capture actor drives it through exactly the microphone's code path: a thread
    calls ``sink(block, frames, None)`` with ``block_frames`` frames every
    ``block_frames / rate`` seconds, the main loop polls. Like a live microphone it captures
    "now": :meth:`start` positions the file at ``start_frame`` (the stream position the
    capture actor has reached), so audio that played while the device was down is lost. At the
    file's end :attr:`ended` becomes True (a real microphone never ends). A
    :class:`FaultTrigger` makes the running stream fail (:meth:`raise_if_failed` raises) and
    :meth:`start` refuse while the injected outage lasts.
    """

    def __init__(
        self,
        sink: MicSink,
        fmt: SourceFormat,
        path: str | Path,
        *,
        start_frame: int = 0,
        block_frames: int = 320,
        trigger: FaultTrigger | None = None,
    ) -> None:
        """Prepare to play ``path`` (rate must equal ``fmt``'s; first ``fmt.channels`` kept)."""
        if block_frames <= 0:
            raise ValueError(f"block_frames must be > 0, got {block_frames}")
        self._sink = sink
        self._format = fmt
        self._path = Path(path)
        self._start_frame = start_frame
        self._block_frames = block_frames
        self._trigger = trigger
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: DeviceError | None = None
        self.ended = False
        self.frames_captured = 0
        self.input_overflows = 0

    @property
    def format(self) -> SourceFormat:
        """Rate (Hz) and channels delivered."""
        return self._format

    def start(self) -> None:
        """Open the file at ``start_frame`` and start playing.

        Raises:
            DeviceError: an injected outage lasts, the file is missing, or its rate differs.
        """
        if self._trigger is not None:
            self._trigger.check()
        src = FileSource(self._path, self._block_frames)
        if src.format.sample_rate_hz != self._format.sample_rate_hz:
            src.close()
            raise DeviceError(
                f"file-mic {self._path}: rate {src.format.sample_rate_hz} Hz, "
                f"expected {self._format.sample_rate_hz} Hz"
            )
        src.seek(self._start_frame)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._play, args=(src,), name="file-mic", daemon=True
        )
        self._thread.start()

    def _play(self, src: FileSource) -> None:
        pacer = Pacer(self._format.sample_rate_hz)
        pacer.reset()
        done = 0
        try:
            while not self._stop.is_set():
                if self._stop.wait(pacer.delay_s(done + self._block_frames)):
                    return
                if self._trigger is not None:
                    self._trigger.check()
                block = src.read_block()
                if block is None:
                    self.ended = True
                    return
                block = np.ascontiguousarray(block[:, : self._format.channels])
                self._sink(block, int(block.shape[0]), None)
                done += int(block.shape[0])
                self.frames_captured += int(block.shape[0])
        except DeviceError as exc:
            self.error = exc
        except Exception as exc:  # reported by raise_if_failed() off this thread
            self.error = DeviceError(f"capture sink failed: {exc!r}")
        finally:
            src.close()

    @property
    def active(self) -> bool:
        """True while the playing thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def raise_if_failed(self) -> None:
        """Raise :class:`DeviceError` if the stream failed (injected fault or sink error)."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
