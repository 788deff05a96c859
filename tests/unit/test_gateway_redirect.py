"""A browser opening the gateway's address (``GET /``, no WebSocket upgrade) is sent to the
live page ``/ui`` instead of the WebSockets library's 426 text; WebSocket clients of ``/``
(the Vosk and classic protocols) are left alone."""

from __future__ import annotations

from websockets.datastructures import Headers
from websockets.http11 import Request

from streamasr.actors.frontdoors.gateway import browser_redirect


def _get(path: str, **headers: str) -> Request:
    return Request(path, Headers({"Host": "127.0.0.1:2700", **headers}))


def test_a_browser_on_slash_goes_to_the_live_page() -> None:
    res = browser_redirect(_get("/"))
    assert res is not None
    assert (res.status_code, res.headers["Location"]) == (302, "/ui")


def test_the_query_is_kept() -> None:
    res = browser_redirect(_get("/?token=s3cret"))
    assert res is not None and res.headers["Location"] == "/ui?token=s3cret"


def test_websocket_clients_and_other_paths_are_left_alone() -> None:
    assert browser_redirect(_get("/", Upgrade="websocket", Connection="Upgrade")) is None
    assert browser_redirect(_get("/", Upgrade="WebSocket", Connection="Upgrade")) is None
    assert browser_redirect(_get("/v1/stream")) is None
    assert browser_redirect(_get("/ui")) is None
