"""``status``, ``down``, ``tail`` and ``transcript`` on an instance that is not running answer
at once (from the pid file, without waiting on a socket) with one line naming the instance."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamasr.supervisor import cli
from streamasr.supervisor.paths import InstancePaths

#: How long "not running" may take to say, in seconds: it used to wait 3 s on the socket;
#: the answer takes ~0.05 s, and up to 0.6 s on a 2-core box running the suite's pipelines.
ANSWER_S = 1.5
COMMANDS = ("status", "down", "tail", "transcript")


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ``XDG_RUNTIME_DIR`` holding no instance."""
    tmp_path.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    return tmp_path


def _run_in_process(command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    start = time.monotonic()
    code = cli.main([command, "--instance", "ux"])
    took_s = time.monotonic() - start
    return code, capsys.readouterr().err, took_s


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", COMMANDS)
def test_not_running_answers_at_once(
    command: str, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, took_s = _run_in_process(command, capsys)
    assert code == cli.EXIT_ERROR
    assert err == "streamasr: instance 'ux' is not running\n"
    assert took_s < ANSWER_S, f"{command} took {took_s:.2f} s"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", ("status", "down"))
def test_a_stale_pid_file_is_not_running(
    command: str, runtime: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths = InstancePaths.for_instance("ux")
    paths.make_root()
    paths.pid_file.write_text(str(dead.pid))
    code, err, took_s = _run_in_process(command, capsys)
    assert (code, err) == (cli.EXIT_ERROR, "streamasr: instance 'ux' is not running\n")
    assert took_s < ANSWER_S, f"{command} took {took_s:.2f} s"


@pytest.mark.timeout(60)
def test_down_twice_from_the_shell_is_one_line_each(runtime: Path) -> None:
    env_cmd = [sys.executable, "-m", "streamasr.supervisor.cli", "down", "--instance", "ux"]
    for _ in range(2):
        res = subprocess.run(env_cmd, capture_output=True, text=True, timeout=30, check=False)
        assert res.returncode == cli.EXIT_ERROR
        assert res.stderr == "streamasr: instance 'ux' is not running\n"
        assert res.stdout == ""


@pytest.mark.timeout(60)
def test_the_answer_does_not_load_the_supervisor(runtime: Path) -> None:
    """Starting the interpreter is most of the wait: ``status`` and friends leave the
    supervisor's manager (and what only it needs) unimported."""
    code = (
        "import sys\n"
        "from streamasr.supervisor import cli\n"
        "cli.main(['status', '--instance', 'ux'])\n"
        "print('streamasr.supervisor.manager' in sys.modules)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert (res.stdout, res.stderr) == ("False\n", "streamasr: instance 'ux' is not running\n")
