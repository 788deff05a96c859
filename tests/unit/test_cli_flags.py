"""Flags that stand in for a config file: ``--model`` (up, serve) and ``--wyoming-host``."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from streamasr.supervisor import cli
from streamasr.supervisor.config import Config


def _serve_config(monkeypatch: pytest.MonkeyPatch, *argv: str) -> Config:
    """The config ``serve ARGV`` would run (the run itself is not started)."""
    seen: list[Config] = []

    def run(args: argparse.Namespace, cfg: Config) -> int:
        seen.append(cfg)
        return 0

    monkeypatch.setattr(cli, "_run", run)
    args = cli._parser().parse_args(["serve", *argv])
    assert cli.cmd_serve(args) == 0
    return seen[0]


def test_up_model_flag_sets_the_accurate_model() -> None:
    args = cli._parser().parse_args(["up", "--source", "a.wav", "--model", "/models/small"])
    assert cli._load_config(args).refine.model == "/models/small"
    plain = cli._parser().parse_args(["up", "--source", "a.wav"])
    assert cli._load_config(plain).refine.model == "base"


def test_serve_wyoming_host_alone_enables_wyoming_on_its_default_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _serve_config(monkeypatch, "--wyoming-host", "0.0.0.0", "--model", "tiny.en")
    assert (cfg.wyoming.enabled, cfg.wyoming.host, cfg.wyoming.port) == (True, "0.0.0.0", 10300)
    assert cfg.refine.model == "tiny.en"
    assert cfg.gateway.enabled


def test_serve_without_wyoming_flags_leaves_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg: Any = _serve_config(monkeypatch, "--port", "2799")
    assert not cfg.wyoming.enabled and cfg.gateway.port == 2799
    cfg = _serve_config(monkeypatch, "--wyoming-port", "10555")
    assert (cfg.wyoming.enabled, cfg.wyoming.host, cfg.wyoming.port) == (True, "127.0.0.1", 10555)
