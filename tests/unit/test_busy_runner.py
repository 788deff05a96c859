"""Long model calls keep the heartbeat going (``actors/refine/busy.py``): ``progress`` is
called from the calling thread while the call runs on the worker, for at most
``max_busy_s``; results and exceptions come back to the caller."""

from __future__ import annotations

import threading

import pytest

from streamasr.actors.refine.busy import BusyRunner


def test_progress_is_called_while_a_long_call_runs() -> None:
    release = threading.Event()
    beats: list[int] = []

    def progress() -> None:  # the caller's thread, while the call waits on ``release``
        beats.append(threading.get_ident())
        if len(beats) == 5:
            release.set()

    runner = BusyRunner(progress, interval_s=0.01, max_busy_s=60.0)
    caller = threading.get_ident()
    worker: list[int] = []

    def call() -> str:
        worker.append(threading.get_ident())
        assert release.wait(30), "progress was not called while the call ran"
        return "words"

    assert runner.run(call) == "words"
    assert len(beats) >= 5 and set(beats) == {caller} and worker != [caller]
    runner.close()


def test_heartbeats_stop_after_max_busy_s() -> None:
    release = threading.Event()
    beats: list[int] = []
    runner = BusyRunner(lambda: beats.append(1), interval_s=0.01, max_busy_s=0.05)

    def call() -> int:
        # waits until the runner has stopped calling progress (5 intervals) plus margin
        while not release.wait(0.01):
            if len(beats) >= 5:
                n = len(beats)
                if not release.wait(0.2) and len(beats) == n:
                    release.set()
        return len(beats)

    assert runner.run(call) <= 5
    runner.close()


def test_an_exception_reaches_the_caller_and_other_threads_call_directly() -> None:
    runner = BusyRunner(lambda: None, interval_s=0.01)

    def boom() -> None:
        raise ValueError("model failed")

    with pytest.raises(ValueError, match="model failed"):
        runner.run(boom)
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(runner.run(threading.get_ident)))
    t.start()
    t.join(10)
    assert seen == [t.ident]  # run from a thread that does not own the runner: inline
    runner.close()
