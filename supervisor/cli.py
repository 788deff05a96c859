"""``streamasr-supervisor``: run, inspect and stop a pipeline.

Commands: ``up`` (start; foreground or ``--detach``), ``status``, ``tail``, ``down``,
``devices``. Errors are one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from streamasr.actors import messages as m
from streamasr.actors.errors import StreamAsrError
from streamasr.actors.frontdoors.ports import port_in_use, port_in_use_message
from streamasr.actors.settings import SAMPLE
from streamasr.supervisor import config as config_mod
from streamasr.supervisor import meeting
from streamasr.supervisor.client import NotRunning, Subscriber, request, require_running
from streamasr.supervisor.config import Config
from streamasr.supervisor.paths import InstancePaths
from streamasr.supervisor.printer import Printer, stdout_gone
from streamasr.supervisor.private_dir import RuntimeDirError
from streamasr.supervisor.processes import read_log_tail
from streamasr.supervisor.progress import ProgressBar
from streamasr.supervisor.restart_types import EXIT_CONFIG
from streamasr.supervisor.status import format_table

EXIT_ERROR = 1
#: Exit code when the runtime directory is refused (see :mod:`streamasr.supervisor.private_dir`).
EXIT_UNSAFE_DIR = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamasr-supervisor", description="Supervised real-time speech recognition."
    )
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the pipeline")
    up.add_argument(
        "-c",
        "--config",
        help="TOML config (default: built-in defaults, the same as configs/default.toml)",
    )
    up.add_argument(
        "--source",
        help="'mic', a WAV/FLAC file, 'sample' (bundled speech) or '-' for raw PCM on stdin",
    )
    up.add_argument("--fast", action="store_true", help="do not pace files at real time")
    up.add_argument("--json", action="store_true", help="one JSON object per event")
    up.add_argument("--detach", action="store_true", help="run in the background")
    up.add_argument("--device", help="input device name or index (mic)")
    up.add_argument("--rate", type=int, help="raw PCM rate in Hz (--source -)")
    up.add_argument(
        "--format",
        dest="raw_format",
        choices=("s16le", "s32le", "f32le"),
        help="raw PCM sample format (--source -)",
    )
    up.add_argument("--channels", type=int, help="channels to capture / of raw PCM")
    up.add_argument("--finals", choices=("accurate", "fast"), help="override refine.finals")
    up.add_argument("--model", help="Whisper model of the accurate pass (refine.model)")
    _language_options(up)
    up.add_argument("--quiet", action="store_true", help="print no transcripts")
    up.add_argument(
        "--wake",
        metavar="PHRASE",
        nargs="?",
        const="",
        help="wake-word gating: transcribe only commands after PHRASE (default: [wake] phrases)",
    )
    up.add_argument(
        "--assistant",
        action="store_true",
        help="voice assistant: intents, actions and a spoken reply for each command "
        "(with the microphone, wake-word gating too; see [assistant] in configs/README.md)",
    )
    serve = sub.add_parser("serve", help="serve remote clients only (WebSocket gateway, Wyoming)")
    serve.add_argument("-c", "--config", help="TOML config")
    serve.add_argument("--port", type=int, help="gateway port (default 2700)")
    serve.add_argument("--host", help="gateway listen address (default 127.0.0.1)")
    serve.add_argument("--wyoming-port", type=int, help="also serve Wyoming on this port")
    serve.add_argument(
        "--wyoming-host", help="Wyoming listen address (default 127.0.0.1; implies Wyoming)"
    )
    serve.add_argument("--model", help="Whisper model of the accurate pass (refine.model)")
    _language_options(serve)
    serve.add_argument("--finals", choices=("accurate", "fast"), help="override refine.finals")
    serve.add_argument("--detach", action="store_true", help="run in the background")
    serve.add_argument("--json", action="store_true", help="print events as JSON lines")
    serve.add_argument("--quiet", action="store_true", help="print no transcripts")
    for name, helptext in (
        ("status", "show actors, rings and latency"),
        ("tail", "print transcripts of a running pipeline"),
        ("down", "stop a running pipeline"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("-c", "--config", help="the TOML config the pipeline was started with")
        if name in ("status", "tail"):
            sp.add_argument("--json", action="store_true")
        if name == "tail":
            sp.add_argument("--endpoint", help="events endpoint (default: the instance's ipc)")
            sp.add_argument("--curve-secret", default="", help="this client's .key_secret")
            sp.add_argument("--curve-server", default="", help="the supervisor's public .key")
    sub.add_parser("devices", help="list audio input devices")
    kg = sub.add_parser(
        "keygen", help="create a CURVE certificate pair (NAME.key, NAME.key_secret)"
    )
    kg.add_argument("directory", help="where to write the certificate files")
    kg.add_argument("name", help="certificate name, e.g. server or a client's name")
    meeting.add_arguments(
        sub.add_parser("transcript", help="merged meeting transcript (text, WebVTT, SRT, JSON)")
    )
    sub.add_parser(
        "stream", add_help=False, help="stream a file or the microphone to a gateway (--help)"
    )
    for sp in sub.choices.values():
        sp.add_argument("--instance", help="instance name (default: from config or 'default')")
        sp.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _language_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--language",
        help="the language spoken: a Whisper language code (en, de, fr, es, ...; "
        "refine.language); other than en, Whisper writes every text",
    )
    p.add_argument(
        "--translate",
        action="store_true",
        help="English text from any language (refine.task = translate)",
    )


def _load_config(args: argparse.Namespace) -> Config:
    cfg = config_mod.load(args.config) if getattr(args, "config", None) else Config()
    if args.instance:
        cfg = config_mod.replace(cfg, "supervisor", instance=args.instance)
    src: dict[str, Any] = {}
    if getattr(args, "source", None):
        if args.source == "mic":
            src["kind"] = "mic"
        elif args.source == "-":
            src["kind"] = "stdin"
        elif args.source == SAMPLE:
            src.update(kind="file", path=SAMPLE)
        else:
            src.update(kind="file", path=str(Path(args.source).resolve()))
    for flag, key in (
        ("device", "device"),
        ("rate", "raw_rate_hz"),
        ("raw_format", "raw_format"),
        ("channels", "channels"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            src[key] = str(value) if key == "device" else value
    if src:
        cfg = config_mod.replace(cfg, "source", **src)
        if "kind" in src:
            cfg = dataclasses.replace(cfg, streams=())
    if getattr(args, "fast", False):
        cfg = config_mod.set_realtime(cfg, False)
    if getattr(args, "finals", None):
        cfg = config_mod.replace(cfg, "refine", finals=args.finals)
    if getattr(args, "model", None):
        cfg = config_mod.replace(cfg, "refine", model=args.model)
    if getattr(args, "language", None):
        cfg = config_mod.replace(cfg, "refine", language=args.language.strip().lower())
    if getattr(args, "translate", False):
        cfg = config_mod.replace(cfg, "refine", task="translate")
    if getattr(args, "assistant", False):
        if not cfg.wake.enabled and any(s.kind == "mic" for s in cfg.sources()):
            cfg = config_mod.replace(cfg, "wake", enabled=True)  # before: it is checked
        cfg = config_mod.replace(cfg, "assistant", enabled=True)
    wake = getattr(args, "wake", None)
    if wake is not None:
        phrases = (wake.strip().lower(),) if wake.strip() else cfg.wake.phrases
        cfg = config_mod.replace(cfg, "wake", enabled=True, phrases=phrases, thresholds=())
    return cfg


def _paths(args: argparse.Namespace) -> InstancePaths:
    cfg = _load_config(args) if getattr(args, "config", None) else Config()
    instance = args.instance or cfg.supervisor.instance
    return InstancePaths.for_instance(instance, cfg.supervisor.runtime_dir)


def cmd_up(args: argparse.Namespace) -> int:
    """Run the pipeline in the foreground (or hand it to a detached child)."""
    return _run(args, _load_config(args))


def _run(args: argparse.Namespace, cfg: Config) -> int:
    taken = _taken_port(cfg, serve=args.command == "serve")
    if taken:
        print(f"streamasr: {taken}", file=sys.stderr)
        return EXIT_CONFIG
    if args.detach:
        return _detach(args, cfg)
    names = {s.stream_id: s.name for s in cfg.sources() if s.name}
    printer = None if args.quiet else Printer(json_mode=args.json, names=names)
    announce = sys.stderr.isatty() or args.verbose > 0
    page = _live_page(cfg)
    bar = _progress_bar(args, cfg)

    def sink(topic: str, msg: Any) -> None:
        if bar is not None:
            bar.hide()
        if printer is not None:
            printer(topic, msg)
        if bar is not None and isinstance(msg, m.StatusReply):
            bar.update(msg.status)
        if topic == "supervisor.ready":
            _announce_ready(args, cfg, announce, page)
        if bar is not None:
            bar.show()

    from streamasr.supervisor.manager import Supervisor  # not needed by status, down, ...

    sup = Supervisor(
        cfg,
        sink=sink,
        exit_on_eos=bool(cfg.sources())
        and all(src.kind != "mic" for src in cfg.sources())
        and not (cfg.gateway.enabled or cfg.wyoming.enabled),
        log_level="INFO" if args.verbose else "WARNING",
    )
    code = sup.run()
    if bar is not None:
        bar.hide()
    if printer is not None:
        printer.close()
    if code != 0:
        print(f"streamasr: {sup.exit_reason or 'stopped with an error'}", file=sys.stderr)
    return code


def _announce_ready(args: argparse.Namespace, cfg: Config, announce: bool, page: str) -> None:
    """The line on stderr once every actor is ready: what the pipeline listens to (on a
    terminal or with -v), or for ``serve`` at least its live page."""
    if announce and not args.json:
        extra = f"; live page {page}" if page else ""
        print(f"streamasr: listening ({_where(cfg)}){extra}; Ctrl-C stops", file=sys.stderr)
    elif page and args.command == "serve":  # a server's address is what its user needs
        print(f"streamasr: live page {page}", file=sys.stderr)


def _progress_bar(args: argparse.Namespace, cfg: Config) -> ProgressBar | None:
    """A progress bar on stderr for ``up --fast`` on files: only on a terminal, not with
    ``--json`` or ``--quiet``, and only where every source is a file of known length."""
    if args.command != "up" or not args.fast or args.json or args.quiet:
        return None
    if not sys.stderr.isatty():
        return None
    sources = config_mod.resolve_sample(cfg).sources()
    if not sources or any(src.kind != "file" for src in sources):
        return None
    import soundfile as sf

    durations_s = {}
    for src in sources:
        try:
            durations_s[src.stream_id] = float(sf.info(src.path).duration)
        except (OSError, RuntimeError):  # unreadable: the capture actor will say why
            return None
    return ProgressBar(sys.stderr, durations_s, below=sys.stdout.isatty())


def _taken_port(cfg: Config, *, serve: bool) -> str:
    """The one-line error for a front door whose port is in use ("" if none is), checked
    before any actor starts; ``serve`` names its ``--port``/``--wyoming-port`` options."""
    doors = (
        ("gateway", cfg.gateway.enabled, cfg.gateway.host, cfg.gateway.port, "--port"),
        ("wyoming", cfg.wyoming.enabled, cfg.wyoming.host, cfg.wyoming.port, "--wyoming-port"),
    )
    for section, enabled, host, port, flag in doors:
        if enabled and port_in_use(host, port):
            return port_in_use_message(section, port, flag if serve else "")
    return ""


def _live_page(cfg: Config) -> str:
    """URL of the gateway's live page ("" without a gateway, or on a port chosen at start).

    A wildcard listen address (``0.0.0.0``, ``::``, "") is shown as this box's loopback.
    """
    gw = cfg.gateway
    if not gw.enabled or gw.port == 0:
        return ""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(gw.host, gw.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    scheme = "https" if gw.tls_cert else "http"
    return f"{scheme}://{host}:{gw.port}/ui"


def _where(cfg: Config) -> str:
    """What the pipeline listens to, for the start-up line."""
    parts = [f"{s.kind} {s.path}".strip() for s in cfg.sources()]
    if cfg.gateway.enabled:
        parts.append(f"ws://{cfg.gateway.host}:{cfg.gateway.port}")
    if cfg.wyoming.enabled:
        parts.append(f"wyoming tcp://{cfg.wyoming.host}:{cfg.wyoming.port}")
    return ", ".join(parts)


def _detach(args: argparse.Namespace, cfg: Config) -> int:
    paths = InstancePaths.for_instance(cfg.supervisor.instance, cfg.supervisor.runtime_dir)
    paths.make_root()
    argv = [a for a in sys.argv[1:] if a != "--detach"]
    if "--quiet" not in argv:
        argv.append("--quiet")
    with paths.log_file.open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamasr.supervisor.cli", *argv],
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            start_new_session=True,
        )
    deadline = time.monotonic() + cfg.supervisor.ready_timeout_s + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(
                f"streamasr: pipeline exited with code {proc.returncode}:\n"
                f"{read_log_tail(paths.log_file)}",
                file=sys.stderr,
            )
            return EXIT_ERROR
        try:
            status = request(paths.control, m.StatusRequest(), timeout_s=0.5).status
        except NotRunning:
            continue
        if all(a["state"] == "running" for a in status["actors"]):
            page = _live_page(cfg)
            extra = f"; live page {page}" if page else ""
            print(
                f"streamasr: running in the background (pid {proc.pid}); "
                f"log: {paths.log_file}{extra}"
            )
            return 0
    print("streamasr: pipeline did not become ready in time", file=sys.stderr)
    return EXIT_ERROR


def cmd_status(args: argparse.Namespace) -> int:
    """Print the status table (or JSON)."""
    paths = _paths(args)
    require_running(paths)
    reply = request(paths.control, m.StatusRequest())
    print(json.dumps(reply.status, indent=2) if args.json else format_table(reply.status))
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    """Print transcripts from a running pipeline until interrupted."""
    paths = _paths(args)
    if args.endpoint is None:
        require_running(paths)
    printer = Printer(json_mode=args.json)
    endpoint = args.endpoint or paths.events
    with Subscriber(
        endpoint,
        topics=("transcript.", "wake.", "intent.", "action.", "reply.", "supervisor.shutdown"),
        curve_secret=args.curve_secret,
        curve_server=args.curve_server,
    ) as sub:
        if args.endpoint is None:
            for t in request(paths.control, m.HistoryRequest()).finals:
                printer("history", t)
        try:
            for topic, msg in sub:
                if topic == "supervisor.shutdown":
                    break
                printer(topic, msg)
        except KeyboardInterrupt:
            pass
    printer.close()
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    """Ask a running pipeline to stop and wait until its supervisor has exited."""
    paths = _paths(args)
    pid: int | None = require_running(paths)
    request(paths.control, m.StopRequest("down requested"))
    deadline = time.monotonic() + 30
    while pid is not None and time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    print("streamasr: stopped")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """Write a CURVE certificate pair for ``[events] curve_secret`` / ``curve_clients``."""
    from streamasr.supervisor.curve import keygen

    public, secret = keygen(Path(args.directory), args.name)
    print(f"public: {public}\nsecret: {secret} (keep it private)")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    """List audio input devices."""
    from streamasr.actors.capture.mic import list_input_devices

    devices = list_input_devices()
    if not devices:
        print(
            "streamasr: no input devices found (use --source FILE.wav or --source -)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    for d in devices:
        mark = "*" if d.get("is_default") else " "
        print(
            f"{mark} {d['index']:>3}  {d['name']}  ({d['channels']} ch, "
            f"{d['default_rate_hz']:.0f} Hz)"
        )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """``up`` with no local source and the gateway (and optionally Wyoming) enabled."""
    cfg = _load_config(args)
    cfg = config_mod.replace(cfg, "source", kind="none")
    cfg = dataclasses.replace(cfg, streams=())
    gw: dict[str, Any] = {"enabled": True}
    if args.port is not None:
        gw["port"] = args.port
    if args.host:
        gw["host"] = args.host
    cfg = config_mod.replace(cfg, "gateway", **gw)
    wy: dict[str, Any] = {}
    if args.wyoming_port is not None:
        wy["port"] = args.wyoming_port
    if args.wyoming_host:
        wy["host"] = args.wyoming_host
    if wy:
        cfg = config_mod.replace(cfg, "wyoming", enabled=True, **wy)
    return _run(args, cfg)


COMMANDS = {
    "up": cmd_up,
    "serve": cmd_serve,
    "keygen": cmd_keygen,
    "transcript": meeting.transcript_main,
    "status": cmd_status,
    "tail": cmd_tail,
    "down": cmd_down,
    "devices": cmd_devices,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``streamasr-supervisor``."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # a reader gone early shows here, not at interpreter exit
    except BrokenPipeError:  # `tail | head`: the reader has what it wanted
        return stdout_gone()
    return code


def _dispatch(argv: list[str]) -> int:
    if argv[:1] == ["stream"]:
        from streamasr.supervisor.stream_command import stream_main

        return stream_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s supervisor %(levelname)s %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except RuntimeDirError as exc:  # the environment must change: not worth a retry
        print(f"streamasr: {exc}", file=sys.stderr)
        return EXIT_UNSAFE_DIR
    except StreamAsrError as exc:
        print(f"streamasr: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
