"""Assistant actions: argv commands and HTTP POSTs, bounded in time and output, never blocking.

Real subprocesses (``sys.executable -c``) and a real HTTP server on 127.0.0.1; no mocks.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
import pytest

from streamasr.actors.assistant.actions import (
    MAX_OUTPUT_BYTES,
    ActionConfig,
    ActionResult,
    ActionRunner,
    render,
    reply_text,
    run_action,
)
from streamasr.actors.errors import ConfigError
from streamasr.actors.typed import from_table

PY = sys.executable
#: Slack on top of an action's timeout for process start, kill and reap on a loaded 2-core box.
MARGIN_S = 2.0
META = {"stream_id": "kitchen", "confidence": 0.87}


def command(*argv: str, timeout_s: float = 10.0, reply: str = "") -> ActionConfig:
    return ActionConfig(intent="test", command=argv, timeout_s=timeout_s, reply=reply)


def run(action: ActionConfig, slots: dict[str, str] | None = None) -> ActionResult:
    return run_action(action, "test", slots or {}, "the spoken text", META)


# --- render ------------------------------------------------------------------------------


def test_render_substitutes_plain_names_and_blanks_unknown_ones() -> None:
    assert render("turn {state} the {room} {nothing}", {"room": "hall", "state": "on"}) == (
        "turn on the hall "
    )


def test_render_never_evaluates_attributes_indexes_conversions_or_specs() -> None:
    values = {"a": "abc"}
    assert render("{a.__class__}", values) == "{a.__class__}"
    assert render("{a[0]}", values) == "{a[0]}"
    assert render("{a!r}", values) == "{a!r}"
    assert render("{a:>10}", values) == "{a:>10}"
    assert render("{a:>999999999}", values) == "{a:>999999999}"


def test_render_escapes_and_stray_braces() -> None:
    assert render("{{x}} {a}", {"a": "1", "x": "no"}) == "{x} 1"
    assert render("}{a}{", {"a": "1"}) == "}1{"
    assert render("{}", {"": "empty name"}) == "{}"


def test_render_does_not_expand_substituted_values() -> None:
    assert render("{a}", {"a": "{b}", "b": "secret"}) == "{b}"


# --- config ------------------------------------------------------------------------------


def test_from_table_builds_a_valid_action() -> None:
    table = {
        "intent": "lights",
        "command": ["lightctl", "{room}"],
        "timeout_s": 2,
        "reply": "Done: {output}",
    }
    action = from_table(ActionConfig, table, "actions[0]")
    assert action.command == ("lightctl", "{room}")
    assert action.timeout_s == 2.0
    action.validate("actions[0]")
    ActionConfig(intent="x", http="https://ha.local:8123/api", headers=("A: b",)).validate("a")
    ActionConfig(intent="unknown").validate("a")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (ActionConfig(), r"^actions\[0\]\.intent: must not be empty$"),
        (
            ActionConfig(intent="x", command=("a",), http="http://h/"),
            r"^actions\[0\]\.command: set either command or http, not both$",
        ),
        (
            ActionConfig(intent="x", command=("",)),
            r"^actions\[0\]\.command: the program must not be empty$",
        ),
        (
            ActionConfig(intent="x", http="ftp://h/x"),
            r"^actions\[0\]\.http: must be an http\(s\) URL$",
        ),
        (ActionConfig(intent="x", http="http:///x"), r"^actions\[0\]\.http: must name a host$"),
        (
            ActionConfig(intent="x", timeout_s=0.0),
            r"^actions\[0\]\.timeout_s: must be > 0 and <= 300$",
        ),
        (
            ActionConfig(intent="x", timeout_s=301.0),
            r"^actions\[0\]\.timeout_s: must be > 0 and <= 300$",
        ),
        (
            ActionConfig(intent="x", http="http://h/", headers=("NoColon",)),
            r"^actions\[0\]\.headers\[0\]: must be 'Name: value' on one line$",
        ),
        (
            ActionConfig(intent="x", http="http://h/", headers=("A: b", "X: 1\r\nEvil: 2")),
            r"^actions\[0\]\.headers\[1\]: must be 'Name: value' on one line$",
        ),
        (
            ActionConfig(intent="x", http="http://h/", headers=("Bad Name: 1",)),
            r"^actions\[0\]\.headers\[0\]: must be 'Name: value' on one line$",
        ),
        (
            ActionConfig(intent="x", reply="{a.__class__}"),
            r"^actions\[0\]\.reply: placeholder \{a\.__class__\} must be a plain \{name\}$",
        ),
        (
            ActionConfig(intent="x", command=("echo", "{a[0]}")),
            r"^actions\[0\]\.command\[1\]: placeholder \{a\[0\]\} must be a plain \{name\}$",
        ),
    ],
)
def test_validate_names_the_bad_key(action: ActionConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        action.validate("actions[0]")


# --- commands ----------------------------------------------------------------------------

PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


def test_slot_values_are_single_literal_arguments(tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    hostile = f"; touch {marker}"
    action = command(PY, "-c", PRINT_ARGV, "{room}", "x{cmd}y", "{text}", "{missing}")
    result = run(action, {"room": hostile, "cmd": "$(id) `id` | &&"})
    assert result.ok, result
    assert result.kind == "command"
    assert result.status == 0
    assert json.loads(result.output) == [hostile, "x$(id) `id` | &&y", "the spoken text", ""]
    assert not marker.exists()
    assert result.error == ""
    assert not result.truncated


def test_non_zero_exit_fails_with_the_first_stderr_line() -> None:
    script = "import sys; print('partial'); sys.stderr.write('\\nno such room\\nmore\\n'); exit(3)"
    result = run(command(PY, "-c", script))
    assert not result.ok
    assert result.status == 3
    assert result.error == "exit status 3: no such room"
    assert result.output == "partial"
    assert not result.timed_out


def test_missing_program() -> None:
    result = run(command("/nonexistent/streamasr-no-such-program", "x"))
    assert (result.ok, result.status, result.kind) == (False, -1, "command")
    assert result.error == "command not found: /nonexistent/streamasr-no-such-program"


def test_timeout_kills_the_whole_process_group() -> None:
    # The command starts a grandchild, prints its pid, and both sleep far past the timeout.
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    timeout_s = 1.0
    result = run(command(PY, "-c", script, timeout_s=timeout_s))
    assert result.timed_out
    assert (result.ok, result.status) == (False, -1)
    assert result.error == "timed out after 1 s"
    assert timeout_s <= result.duration_s < timeout_s + MARGIN_S
    assert _gone(int(result.output))


def _gone(pid: int) -> bool:
    """The process ``pid`` has died (it may linger as a zombie until its new parent reaps it)."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)  # polling the kernel's view, bounded by the deadline above
    return False


def test_huge_output_is_capped_with_bounded_memory() -> None:
    script = (
        "import sys\nchunk = b'y' * (1 << 20)\nfor _ in range(50): sys.stdout.buffer.write(chunk)\n"
    )
    tracemalloc.start()
    try:
        result = run(command(PY, "-c", script))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok, result
    assert result.truncated
    assert len(result.output.encode()) <= MAX_OUTPUT_BYTES
    assert result.output == "y" * MAX_OUTPUT_BYTES
    assert peak < 2 << 20, peak


def test_truncation_never_leaves_half_a_character() -> None:
    script = "import sys; sys.stdout.buffer.write(b'a' + 'é'.encode() * 5000)"
    result = run(command(PY, "-c", script))
    assert result.truncated
    assert "\ufffd" not in result.output
    assert len(result.output.encode()) <= MAX_OUTPUT_BYTES


def test_a_background_child_holding_stdout_does_not_hold_the_result() -> None:
    script = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
    )
    result = run(command(PY, "-c", script, timeout_s=10.0))
    try:
        assert result.ok, result
        assert result.duration_s < MARGIN_S
    finally:
        psutil.Process(int(result.output)).kill()


def test_reply_text_uses_slots_output_and_status() -> None:
    action = command(
        PY, "-c", "print('21 degrees'); print('second')", reply="{room}: {output} ({status})"
    )
    result = run(action, {"room": "hall", "status": "shadowed"})
    assert reply_text(action, {"room": "hall", "status": "shadowed"}, result) == (
        "hall: 21 degrees (0)"
    )


def test_no_action_is_ok_at_once() -> None:
    result = run(ActionConfig(intent="unknown", reply="Sorry?"))
    assert (result.kind, result.ok, result.status, result.error) == ("none", True, 0, "")


# --- HTTP --------------------------------------------------------------------------------


@dataclass
class Server:
    """A local HTTP server that records each request: (path, headers, JSON body)."""

    url: str
    requests: queue.Queue[tuple[str, dict[str, str], Any]] = field(default_factory=queue.Queue)


@pytest.fixture
def server() -> Iterator[Server]:
    record: queue.Queue[tuple[str, dict[str, str], Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(size))
            record.put((self.path, dict(self.headers.items()), body))
            code, text = {
                "/ok": (200, "Lights on\nsecond line\n"),
                "/fail": (500, "boom"),
                "/redirect": (302, ""),
                "/big": (200, "z" * 100_000),
            }[self.path]
            payload = text.encode()
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", record)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def http(url: str, timeout_s: float = 5.0, headers: tuple[str, ...] = ()) -> ActionConfig:
    return ActionConfig(intent="lights", http=url, headers=headers, timeout_s=timeout_s)


def test_http_post_sends_the_json_body_and_headers(server: Server) -> None:
    action = http(server.url + "/ok", headers=("Authorization: Bearer s3cret", "X-Room:  hall"))
    result = run_action(action, "lights", {"room": "hall"}, "lights on in the hall", META)
    assert (result.ok, result.kind, result.status, result.error) == (True, "http", 200, "")
    assert result.output == "Lights on\nsecond line"
    path, headers, body = server.requests.get(timeout=5)
    assert path == "/ok"
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["X-Room"] == "hall"
    assert headers["Content-Type"] == "application/json"
    assert body == {
        "intent": "lights",
        "slots": {"room": "hall"},
        "text": "lights on in the hall",
        "stream_id": "kitchen",
        "confidence": 0.87,
    }


def test_http_body_is_capped(server: Server) -> None:
    result = run(http(server.url + "/big"))
    assert (result.ok, result.status, result.truncated) == (True, 200, True)
    assert result.output == "z" * MAX_OUTPUT_BYTES


def test_http_500_fails_with_its_status(server: Server) -> None:
    result = run(http(server.url + "/fail"))
    assert (result.ok, result.status, result.output) == (False, 500, "boom")
    assert result.error == "HTTP 500 Internal Server Error"
    assert not result.timed_out


def test_http_redirect_is_not_followed(server: Server) -> None:
    result = run(http(server.url + "/redirect", headers=("Authorization: Bearer s3cret",)))
    assert (result.ok, result.status) == (False, 302)
    assert server.requests.qsize() == 1


def test_http_server_that_never_answers_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts in the backlog, never reads
        port = listener.getsockname()[1]
        result = run(http(f"http://127.0.0.1:{port}/", timeout_s=0.5))
    assert (result.ok, result.status, result.timed_out) == (False, -1, True)
    assert result.error == "timed out after 0.5 s"
    assert result.duration_s < 0.5 + MARGIN_S


def test_http_connection_refused() -> None:
    with socket.socket() as bound:  # bound but not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        result = run(http(f"http://127.0.0.1:{port}/", timeout_s=2.0))
    assert (result.ok, result.status, result.timed_out) == (False, -1, False)
    assert result.error.startswith("connection failed: "), result.error
    assert "refused" in result.error


def _children(count: int) -> bool:
    """``count`` HANG commands run as children of this process (polled, bounded by a deadline)."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        hanging = []
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if child.cmdline() == list(HANG.command):
                    hanging.append(child)
        if len(hanging) >= count:
            return True
        time.sleep(0.01)  # polling the kernel's view, bounded by the deadline above
    return False


# --- ActionRunner ------------------------------------------------------------------------

HANG = command(PY, "-c", "import time; time.sleep(60)", timeout_s=60.0)


def test_runner_calls_done_from_a_worker_thread() -> None:
    runner = ActionRunner()
    results: queue.Queue[tuple[ActionResult, str]] = queue.Queue()
    try:
        accepted = runner.submit(
            command(PY, "-c", "print('hi')"),
            "greet",
            {},
            "hello",
            META,
            lambda r: results.put((r, threading.current_thread().name)),
        )
        assert accepted
        result, thread = results.get(timeout=10)
        assert (result.ok, result.output, result.intent) == (True, "hi", "greet")
        assert thread != threading.current_thread().name
        assert runner.counters == {"started": 1, "failed": 0, "timed_out": 0, "rejected": 0}
    finally:
        assert runner.close(10)


def test_runner_never_blocks_when_workers_hang() -> None:
    runner = ActionRunner(max_workers=2, max_pending=3)
    results: queue.Queue[ActionResult] = queue.Queue()
    try:
        t0 = time.monotonic()
        accepted = [runner.submit(HANG, f"hang{i}", {}, "", META, results.put) for i in range(3)]
        assert accepted == [True, True, True]
        assert not runner.submit(HANG, "overflow", {}, "", META, results.put)
        assert time.monotonic() - t0 < 1.0
        # the overflow's result is handed over at once, on the caller's thread
        rejected = results.get_nowait()
        assert (rejected.intent, rejected.ok, rejected.status) == ("overflow", False, -1)
        assert rejected.error == "too many actions running (3)"
        assert runner.pending == 3
        assert runner.counters["rejected"] == 1
        assert _children(2)  # both workers are inside a running command
    finally:
        # past its (zero) wait, close kills the running commands; the queued one never starts
        t1 = time.monotonic()
        assert not runner.close(0.0)
        assert time.monotonic() - t1 < 1.0
    done = [results.get(timeout=10) for _ in range(3)]
    assert sorted(r.intent for r in done) == ["hang0", "hang1", "hang2"]
    assert all(not r.ok and r.status == -1 for r in done)
    assert sorted(r.error for r in done) == [
        "action runner closed before the action started",
        "cancelled",
        "cancelled",
    ]
    assert not runner.submit(HANG, "late", {}, "", META, results.put)
    assert results.get_nowait().error == "action runner is closed"


def test_runner_counts_failures_and_timeouts_and_survives_a_raising_callback() -> None:
    runner = ActionRunner(max_workers=2, max_pending=8)
    results: queue.Queue[ActionResult] = queue.Queue()

    def explode(result: ActionResult) -> None:
        results.put(result)
        raise RuntimeError("callback bug")

    try:
        runner.submit(command(PY, "-c", "exit(1)"), "a", {}, "", META, explode)
        runner.submit(
            command(PY, "-c", "import time; time.sleep(60)", timeout_s=0.3),
            "b",
            {},
            "",
            META,
            explode,
        )
        got = {r.intent: r for r in (results.get(timeout=10), results.get(timeout=10))}
        assert got["a"].status == 1 and got["b"].timed_out
        runner.submit(command(PY, "-c", "print('ok')"), "c", {}, "", META, results.put)
        assert results.get(timeout=10).ok
    finally:
        assert runner.close(10)
    assert runner.counters == {"started": 3, "failed": 2, "timed_out": 1, "rejected": 0}
