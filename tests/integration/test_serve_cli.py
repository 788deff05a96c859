"""``serve`` tells its user where the live page is, and a browser opening the gateway's bare
address is sent there (not the WebSockets library's 426 text)."""

from __future__ import annotations

import urllib.request

import pytest
from conftest import Instance, PipeTail, free_port, stop_pipeline, wait_until

pytestmark = pytest.mark.slow


@pytest.mark.timeout(120)
def test_serve_prints_the_live_page_and_slash_leads_there(instance: Instance) -> None:
    port = free_port()
    proc = instance.popen("serve", "-c", str(instance.config), "--port", str(port))
    err = PipeTail(proc.stderr)
    out = PipeTail(proc.stdout)
    page = f"http://127.0.0.1:{port}/ui"
    try:
        wait_until(
            lambda: f"streamasr: live page {page}\n" in err.text() or proc.poll() is not None,
            90,
            "the live page line",
        )
        assert proc.poll() is None, err.text(wait_s=5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert (r.status, r.url) == (200, page)
            assert "<title>streamasr" in r.read().decode()
    finally:
        stop_pipeline(instance, proc)
    assert out.text(wait_s=5) == ""
