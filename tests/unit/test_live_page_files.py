"""The live page's files as the gateway serves them: self-contained (the box may be offline),
an inline favicon (no ``/favicon.ico`` 404 in the console), labelled controls, and a
transcript that screen readers announce. What it does in a browser is
``tests/integration/test_gateway_browser.py``."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from streamasr.actors.frontdoors.gateway import STATIC


def _page(name: str) -> str:
    web = resources.files("streamasr.actors.frontdoors").joinpath("web")
    return web.joinpath(name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted({name for name, _ in STATIC.values()}))
def test_nothing_is_loaded_from_elsewhere(name: str) -> None:
    text = _page(name)
    # the only absolute URL is the SVG namespace, which names and loads nothing
    urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"')]*", text)) - {
        "http://www.w3.org/2000/svg"
    }
    assert not urls, urls
    assert "@import" not in text and "import(" not in text


def test_page_has_inline_favicon_labels_and_live_transcript() -> None:
    html = _page("ui.html")
    assert re.search(r'<link rel="icon" href="data:image/svg\+xml,', html)
    assert '<meta name="viewport"' in html
    assert '<label for="level">' in html and '<meter id="level"' in html
    assert re.search(r'<div id="finals" role="log" aria-live="polite"', html)
    assert re.search(r'<p id="conn"[^>]* role="status"', html)
    src = set(re.findall(r'src="([^"]+)"', html))
    assert src <= set(STATIC), src
