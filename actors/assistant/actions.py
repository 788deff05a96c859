"""Actions an assistant runs for a recognised intent: an argv command or an HTTP POST.

One ``[[actions]]`` config entry is an :class:`ActionConfig`. :func:`run_action` runs it,
blocking for at most about ``timeout_s`` seconds, and returns an :class:`ActionResult`;
:class:`ActionRunner` runs actions on worker threads so that the caller never blocks, however
an action fails or hangs.

Safety rules, each one deliberate:

- A command is an argv run without a shell; ``{slot}`` placeholders are substituted per
  element, so a spoken ``"; rm -rf ~"`` stays one literal argument.
- :func:`render` substitutes plain ``{name}`` placeholders only: no attribute or index access,
  no format specs or conversions (those fields are left in the text as written).
- A command runs in its own session (process group); on timeout the whole group is killed.
  Children it leaves running after a normal exit are not touched (an action may start a
  daemon), but their output is no longer read.
- Output is read in chunks and only the first :data:`MAX_OUTPUT_BYTES` are kept, so an action
  writing gigabytes cannot exhaust memory.
- HTTP requests never follow redirects (a redirect would carry the Authorization header to
  another host; a 3xx answer is a failure with its status) and ignore proxy environment
  variables (actions talk to services the box can reach directly).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import os
import re
import selectors
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from streamasr.actors.assistant.settings import (
    FIELD,
    NAME,
    ActionConfig,
    parse_header,
)

__all__ = [
    "MAX_OUTPUT_BYTES",
    "ActionConfig",
    "ActionResult",
    "ActionRunner",
    "render",
    "reply_text",
    "run_action",
]

log = logging.getLogger(__name__)

#: The most bytes of stdout (or an HTTP body) kept in :attr:`ActionResult.output`.
MAX_OUTPUT_BYTES = 4096
#: The most bytes of stderr kept to quote its first line in an error.
_MAX_STDERR_BYTES = 1024
#: The longest error line, in characters.
_MAX_ERROR_CHARS = 300
#: Bytes asked of a pipe or socket per read.
_CHUNK_BYTES = 65536
#: Seconds between checks of a running command's exit and of cancellation.
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class ActionResult:
    """How one action ended."""

    intent: str
    #: ``"command"``, ``"http"`` or ``"none"``.
    kind: str
    #: Exit status 0, or an HTTP 2xx answer (always true for kind ``"none"``).
    ok: bool
    #: Exit status or HTTP status; -1 when it did not finish (timeout, could not start or
    #: connect, cancelled). A command killed by a signal has the negative signal number.
    status: int
    #: Stdout or the response body, decoded (errors replaced), at most MAX_OUTPUT_BYTES, stripped.
    output: str
    #: More output was produced than was kept.
    truncated: bool
    #: One line saying what went wrong; "" when ok.
    error: str
    #: Wall-clock seconds the action took.
    duration_s: float
    #: It was stopped because it ran past its timeout_s.
    timed_out: bool = False


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each plain ``{name}`` replaced by ``values[name]`` ("" if absent).

    ``{{`` and ``}}`` are literal braces. Anything else inside braces (``{a.b}``, ``{a[0]}``,
    ``{a!r}``, ``{a:>10}``) is never evaluated and stays in the text as written; so do
    unmatched braces. Substituted values are never expanded again.
    """

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        if NAME.match(name):
            return values.get(name, "")
        return match.group(0)

    return FIELD.sub(one, template)


def reply_text(action: ActionConfig, slots: Mapping[str, str], result: ActionResult) -> str:
    """The spoken reply: ``action.reply`` rendered with the slots, ``{output}``, ``{status}``.

    ``{output}`` is the first line of the output; ``{output}`` and ``{status}`` win over slots
    of the same name, and ``{intent}`` comes from the result.
    """
    lines = result.output.splitlines()
    values = {
        "intent": result.intent,
        **slots,
        "output": lines[0] if lines else "",
        "status": str(result.status),
    }
    return render(action.reply, values)


def run_action(
    action: ActionConfig,
    intent: str,
    slots: Mapping[str, str],
    text: str,
    meta: Mapping[str, Any],
    cancel: threading.Event | None = None,
) -> ActionResult:
    """Run ``action`` for one recognised command; blocks for about ``action.timeout_s`` at most.

    ``text`` is the transcript, ``meta`` may hold ``stream_id`` and ``confidence`` (sent in the
    HTTP body). Command placeholders see ``{intent}``, ``{text}`` and the slots (a slot wins
    over those names). Setting ``cancel`` kills a running command within about 50 ms.
    Never raises for a failing action: the failure is in the result.
    """
    start = time.monotonic()
    if action.command:
        values = {"intent": intent, "text": text, **slots}
        argv = [render(arg, values) for arg in action.command]
        return _run_command(argv, intent, action.timeout_s, start, cancel)
    if action.http:
        body = {
            "intent": intent,
            "slots": dict(slots),
            "text": text,
            "stream_id": meta.get("stream_id", ""),
            "confidence": meta.get("confidence"),
        }
        return _post(action, intent, json.dumps(body, default=str).encode(), start)
    return ActionResult(intent, "none", True, 0, "", False, "", time.monotonic() - start)


class ActionRunner:
    """Runs actions on ``max_workers`` threads; :meth:`submit` never blocks its caller.

    At most ``max_pending`` actions are queued or running at once; past that a submission is
    rejected at once (its ``done`` gets a failed result). :attr:`counters` counts ``started``
    (accepted), ``failed`` (finished not ok, timeouts included), ``timed_out`` and ``rejected``.
    """

    def __init__(self, max_workers: int = 2, max_pending: int = 8) -> None:
        if max_workers < 1 or max_pending < 1:
            raise ValueError("max_workers and max_pending must be >= 1")
        self._max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="assistant-action")
        self._lock = threading.Condition()
        self._pending = 0
        self._closed = False
        self._cancel = threading.Event()
        self._counts = {"started": 0, "failed": 0, "timed_out": 0, "rejected": 0}

    @property
    def counters(self) -> dict[str, int]:
        """A snapshot of the counters (see the class docstring)."""
        with self._lock:
            return dict(self._counts)

    @property
    def pending(self) -> int:
        """Actions queued or running now."""
        with self._lock:
            return self._pending

    def submit(
        self,
        action: ActionConfig,
        intent: str,
        slots: Mapping[str, str],
        text: str,
        meta: Mapping[str, Any],
        done: Callable[[ActionResult], None],
    ) -> bool:
        """Queue ``action``; ``done(result)`` is called later from a worker thread.

        Returns False, having called ``done`` at once on this thread with a failed result, when
        ``max_pending`` actions are already queued or running or the runner is closed.
        """
        with self._lock:
            if self._closed:
                reason = "action runner is closed"
            elif self._pending >= self._max_pending:
                reason = f"too many actions running ({self._max_pending})"
            else:
                args = (action, intent, dict(slots), text, dict(meta), done)
                self._pool.submit(self._run, *args)
                self._pending += 1
                self._counts["started"] += 1
                return True
            self._counts["rejected"] += 1
        _call(done, ActionResult(intent, _kind(action), False, -1, "", False, reason, 0.0))
        return False

    def close(self, timeout_s: float) -> bool:
        """Stop accepting; wait up to ``timeout_s`` seconds for the queued and running actions.

        Actions not yet started when this is called are not run (their ``done`` gets a failed
        result). Past the timeout, running commands are killed (HTTP requests end at their own
        timeout). Returns whether every action had finished within ``timeout_s``.
        """
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._lock:
            self._closed = True
            finished = self._lock.wait_for(
                lambda: self._pending == 0, max(0.0, deadline - time.monotonic())
            )
            self._pool.shutdown(wait=False)
        if not finished:
            self._cancel.set()
        return finished

    def _run(
        self,
        action: ActionConfig,
        intent: str,
        slots: Mapping[str, str],
        text: str,
        meta: Mapping[str, Any],
        done: Callable[[ActionResult], None],
    ) -> None:
        """Worker body: run one action, count it, hand the result to ``done``."""
        try:
            with self._lock:
                closed = self._closed
            if closed:
                error = "action runner closed before the action started"
                result = ActionResult(intent, _kind(action), False, -1, "", False, error, 0.0)
            else:
                result = _run_guarded(action, intent, slots, text, meta, self._cancel)
            with self._lock:
                self._counts["failed"] += not result.ok
                self._counts["timed_out"] += result.timed_out
            _call(done, result)
        finally:
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()


def _run_guarded(
    action: ActionConfig,
    intent: str,
    slots: Mapping[str, str],
    text: str,
    meta: Mapping[str, Any],
    cancel: threading.Event,
) -> ActionResult:
    """:func:`run_action`, with an unexpected exception turned into a failed result."""
    try:
        return run_action(action, intent, slots, text, meta, cancel)
    except Exception as exc:
        log.exception("action for intent %r failed unexpectedly", intent)
        error = _one_line(f"internal error: {type(exc).__name__}: {exc}")
        return ActionResult(intent, _kind(action), False, -1, "", False, error, 0.0)


def _call(done: Callable[[ActionResult], None], result: ActionResult) -> None:
    """Call ``done(result)``; an exception in the callback is logged, never propagated."""
    try:
        done(result)
    except Exception:
        log.exception("action done callback failed for intent %r", result.intent)


def _kind(action: ActionConfig) -> str:
    return "command" if action.command else "http" if action.http else "none"


def _one_line(text: str) -> str:
    """The first line of ``text``, stripped and capped at _MAX_ERROR_CHARS characters."""
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    return line if len(line) <= _MAX_ERROR_CHARS else line[: _MAX_ERROR_CHARS - 1] + "…"


def _decode(data: bytes, truncated: bool) -> str:
    """UTF-8 text of ``data`` (errors replaced), dropping a character cut by truncation."""
    return codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=not truncated)


class _Capped:
    """Keeps the first ``limit`` bytes of a stream and counts whether more came."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]


def _run_command(
    argv: list[str],
    intent: str,
    timeout_s: float,
    start: float,
    cancel: threading.Event | None,
) -> ActionResult:
    """Run ``argv`` in its own session; kill its process group at ``timeout_s`` seconds."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError:
        error = _one_line(f"command not found: {argv[0]}")
        return ActionResult(intent, "command", False, -1, "", False, error, _since(start))
    except OSError as exc:
        error = _one_line(f"could not start {argv[0]}: {exc.strerror or exc}")
        return ActionResult(intent, "command", False, -1, "", False, error, _since(start))
    out, err = _Capped(MAX_OUTPUT_BYTES), _Capped(_MAX_STDERR_BYTES)
    stopped = ""
    try:
        stopped = _pump(proc, out, err, start + timeout_s, cancel)
    finally:
        if stopped or proc.poll() is None:
            _kill_group(proc)
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    output = _decode(bytes(out.data), out.truncated).strip()
    status = -1 if stopped else proc.returncode
    if stopped == "timeout":
        error = f"timed out after {timeout_s:g} s"
    elif stopped:
        error = "cancelled"
    elif status < 0:
        error = f"killed by signal {_signal_name(-status)}"
    elif status != 0:
        first = _one_line(_decode(bytes(err.data), err.truncated))
        error = f"exit status {status}" + (f": {first}" if first else "")
    else:
        error = ""
    return ActionResult(
        intent,
        "command",
        status == 0,
        status,
        output,
        out.truncated,
        _one_line(error),
        _since(start),
        timed_out=stopped == "timeout",
    )


def _pump(
    proc: subprocess.Popen[bytes],
    out: _Capped,
    err: _Capped,
    deadline: float,
    cancel: threading.Event | None,
) -> str:
    """Read stdout and stderr until the command exits.

    Returns "" when it finished, "timeout" past ``deadline`` (monotonic seconds), "cancelled"
    when ``cancel`` was set.
    """
    sinks: dict[int, _Capped] = {}
    with selectors.DefaultSelector() as sel:
        for pipe, sink in ((proc.stdout, out), (proc.stderr, err)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            sel.register(pipe, selectors.EVENT_READ)
            sinks[pipe.fileno()] = sink
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            if cancel is not None and cancel.is_set():
                return "cancelled"
            exited = proc.poll() is not None
            if sel.get_map():
                for key, _ in sel.select(min(remaining, _POLL_S)):
                    if not _drain(key.fileobj, sinks[key.fd]):
                        sel.unregister(key.fileobj)
            elif not exited:
                # Both pipes are closed but the command still runs: wait for its exit.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(min(remaining, _POLL_S))
                continue
            if exited:
                # The command has exited and what it wrote is drained; a child it left
                # running may hold the pipes open, and is not waited for.
                for key in list(sel.get_map().values()):
                    _drain(key.fileobj, sinks[key.fd])
                return ""


def _drain(pipe: Any, sink: _Capped) -> bool:
    """Read what ``pipe`` has now into ``sink``; False at end of file."""
    stream: IO[bytes] = pipe
    while True:
        try:
            chunk = os.read(stream.fileno(), _CHUNK_BYTES)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        sink.add(chunk)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the command's whole process group (its session), then the command itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _since(start: float) -> float:
    return time.monotonic() - start


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the 3xx answer is raised as an HTTPError and reported as such."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _post(action: ActionConfig, intent: str, body: bytes, start: float) -> ActionResult:
    """POST ``body`` (JSON) to ``action.http``; each network wait bounded by timeout_s."""
    url = urllib.parse.urlsplit(action.http)
    if url.scheme not in ("http", "https") or not url.hostname:
        error = "http must be an http(s) URL with a host"
        return ActionResult(intent, "http", False, -1, "", False, error, _since(start))
    headers = {"Content-Type": "application/json"}
    for header in action.headers:
        parsed = parse_header(header)
        if parsed is not None:
            headers[parsed[0]] = parsed[1]
    request = urllib.request.Request(action.http, data=body, headers=headers, method="POST")
    deadline = start + action.timeout_s
    sink = _Capped(MAX_OUTPUT_BYTES)
    status, error, timed_out = -1, "", False
    try:
        with _OPENER.open(request, timeout=action.timeout_s) as response:
            status = response.status
            timed_out = not _read_body(response, sink, deadline)
    except urllib.error.HTTPError as exc:
        status = exc.code
        error = f"HTTP {exc.code} {exc.reason}"
        with contextlib.suppress(OSError, ValueError):
            _read_body(exc, sink, deadline)
        exc.close()
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        timed_out = isinstance(reason, TimeoutError)
        error = "" if timed_out else f"connection failed: {reason}"
    except Exception as exc:  # http.client.HTTPException: a malformed answer
        error = f"bad HTTP answer: {type(exc).__name__}: {exc}"
    if timed_out:
        status, error = -1, f"timed out after {action.timeout_s:g} s"
    ok = not error and 200 <= status < 300
    if not ok and not error:
        error = f"HTTP {status}"
    output = _decode(bytes(sink.data), sink.truncated).strip()
    return ActionResult(
        intent,
        "http",
        ok,
        status,
        output,
        sink.truncated,
        _one_line(error),
        _since(start),
        timed_out=timed_out,
    )


def _read_body(response: Any, sink: _Capped, deadline: float) -> bool:
    """Read the body into ``sink`` until its end or past the cap (the rest is never read).

    Returns False when ``deadline`` (monotonic seconds) passed before that.
    """
    while not sink.truncated:
        if time.monotonic() > deadline:
            return False
        # read1: what one receive brings (read() would wait for a whole chunk, each receive
        # under the socket timeout: a server trickling bytes would hold it for hours)
        chunk = response.read1(_CHUNK_BYTES)
        if not chunk:
            break
        sink.add(chunk)
    return True
