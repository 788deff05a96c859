"""Long model calls that do not silence the actor's heartbeat.

An actor heartbeats from its main loop, so the supervisor declares it hung when one
iteration takes longer than ``heartbeat_timeout_s`` (5 s by default). A Whisper call can: a
batch of unsure finals decoded in the padded 30 s window takes 0.7 s on a quiet 2-core box
and more than 5 s on a loaded one or on a slow edge board, and the refine actor was then
killed and restarted in a loop (with ``--fast`` on a long file, until the restart intensity
was exceeded). :class:`BusyRunner` runs such a call on one worker thread (CTranslate2 and
onnxruntime release the GIL while they compute) while the calling thread keeps calling
``progress`` (the heartbeat), at most ``max_busy_s`` seconds: a call that never returns still
stops the heartbeat, and the supervisor replaces the actor as before.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["BusyRunner"]

T = TypeVar("T")

#: Seconds between two ``progress`` calls while a call runs.
PROGRESS_INTERVAL_S = 0.25
#: The longest one call is covered by heartbeats, in seconds.
MAX_BUSY_S = 120.0


class BusyRunner:
    """Runs calls on one worker thread, calling ``progress`` meanwhile (see the module)."""

    def __init__(
        self,
        progress: Callable[[], None],
        interval_s: float = PROGRESS_INTERVAL_S,
        max_busy_s: float = MAX_BUSY_S,
    ) -> None:
        """``progress``: called from the calling thread every ``interval_s`` seconds while a
        call runs, for at most ``max_busy_s`` seconds per call."""
        self._progress = progress
        self._interval_s = interval_s
        self._max_busy_s = max_busy_s
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._owner = threading.get_ident()

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()``, computed on the worker thread; its exception is raised here. Called
        from another thread than the one that made this runner, it just calls ``fn``."""
        if threading.get_ident() != self._owner:
            return fn()
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "busy")
        future = self._pool.submit(fn)
        waited = 0.0
        while True:
            done, _ = concurrent.futures.wait([future], timeout=self._interval_s)
            if done:
                return future.result()
            waited += self._interval_s
            if waited <= self._max_busy_s:
                self._progress()

    def close(self) -> None:
        """Stop the worker thread (after the call in progress, if any)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
