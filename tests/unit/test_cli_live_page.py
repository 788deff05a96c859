"""The live page address that ``serve`` (and ``up`` with a gateway) prints."""

from __future__ import annotations

import pytest

from streamasr.supervisor import cli
from streamasr.supervisor import config as config_mod
from streamasr.supervisor.config import Config


@pytest.mark.parametrize(
    ("gateway", "page"),
    [
        ({}, ""),  # no gateway
        ({"enabled": True}, "http://127.0.0.1:2700/ui"),
        ({"enabled": True, "host": "0.0.0.0", "port": 8080}, "http://127.0.0.1:8080/ui"),
        ({"enabled": True, "host": "::"}, "http://[::1]:2700/ui"),
        ({"enabled": True, "host": "fe80::1"}, "http://[fe80::1]:2700/ui"),
        (
            {"enabled": True, "host": "asr.local", "tls_cert": "c.pem", "tls_key": "k.pem"},
            "https://asr.local:2700/ui",
        ),
        ({"enabled": True, "port": 0}, ""),  # chosen at start: not known here
    ],
)
def test_live_page(gateway: dict[str, object], page: str) -> None:
    cfg = config_mod.replace(Config(), "gateway", **gateway) if gateway else Config()
    assert cli._live_page(cfg) == page
