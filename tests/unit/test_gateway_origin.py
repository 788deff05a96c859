"""The gateway's browser-origin rule: its own origin, the allow-list, no Origin at all."""

from __future__ import annotations

import pytest

from streamasr.actors.frontdoors.origin import origin_allowed, same_origin


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:2700", "127.0.0.1:2700", True),
        ("HTTP://LocalHost:2700", "localhost:2700", True),  # scheme and host in any case
        ("http://127.0.0.1:2700/", "127.0.0.1:2700", True),
        ("https://asr.example", "asr.example", True),  # default ports left out ...
        ("https://asr.example", "asr.example:443", True),  # ... or not
        ("http://asr.example:80", "asr.example", True),
        ("http://[::1]:2700", "[::1]:2700", True),
        ("http://127.0.0.1:2701", "127.0.0.1:2700", False),  # another port: another origin
        ("http://evil.example", "127.0.0.1:2700", False),
        ("http://127.0.0.1", "127.0.0.1:2700", False),
        ("https://asr.example", "asr.example:80", False),
        ("null", "127.0.0.1:2700", False),  # sandboxed pages, file://
        ("file://", "127.0.0.1:2700", False),
        ("chrome-extension://abc", "abc", False),
        ("http://127.0.0.1:2700/x", "127.0.0.1:2700", False),
        ("http://user@127.0.0.1:2700", "127.0.0.1:2700", False),
        ("http://127.0.0.1:99999", "127.0.0.1:99999", False),  # bad port
        ("http://127.0.0.1:2700", "", False),  # no Host header
        ("http://127.0.0.1:2700", "127.0.0.1:2700,127.0.0.1:2700", False),  # two Host headers
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


HOST = "127.0.0.1:2700"


@pytest.mark.parametrize(
    ("origins", "allowed", "ok"),
    [
        ([], (), True),  # not a browser: no Origin header
        (["http://127.0.0.1:2700"], (), True),  # the live page the gateway serves
        (["http://evil.example"], (), False),  # default: the gateway's own origin only
        (["http://evil.example"], ("https://app.example",), False),
        (["https://app.example"], ("https://app.example",), True),
        (["http://127.0.0.1:2700"], ("https://app.example",), True),  # own origin still ok
        (["http://evil.example"], ("*",), True),
        (["null"], ("*",), True),
        (["http://127.0.0.1:2700", "http://127.0.0.1:2700"], (), False),  # two Origin headers
    ],
)
def test_origin_allowed(origins: list[str], allowed: tuple[str, ...], ok: bool) -> None:
    assert origin_allowed(origins, HOST, allowed) is ok
