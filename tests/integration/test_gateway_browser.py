"""The live page in headless Chromium: fake microphone (a conversation WAV) -> /ui -> finals.

Skipped when Debian's ``chromium``/``chromedriver`` or the ``selenium`` package is absent.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from conftest import Instance, cut_conversation, wer_of
from test_gateway import start_gateway

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

pytestmark = pytest.mark.timeout(180)


def test_ui_records_fake_microphone_and_shows_finals(instance: Instance, tmp_path: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(
            "chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    wav, refs = cut_conversation("conversation1", 3, tmp_path / "three.wav")
    gw = start_gateway(instance)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--window-size=1000,1200",
    ):  # fmt: skip
        opts.add_argument(flag)
    service = webdriver.ChromeService(executable_path=DRIVER)
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        driver.get(f"{gw.http}/ui")
        driver.find_element("id", "rec").click()
        deadline = time.monotonic() + 60
        finals: list[str] = []
        while time.monotonic() < deadline:
            rows = driver.find_elements("css selector", "#finals .final:not(.provisional)")
            finals = [r.text.rsplit("]", 1)[-1].strip() for r in rows]
            if len(finals) >= len(refs):
                break
            time.sleep(0.2)
        assert "actor" in driver.find_element("id", "state").text  # status feed rendered
        driver.save_screenshot(str(tmp_path / "gateway_ui.png"))
        shutil.copy(tmp_path / "gateway_ui.png", "/tmp/gateway_ui.png")
    finally:
        driver.quit()
        gw.stop()
    assert len(finals) >= len(refs), finals
    assert wer_of([r.text for r in refs], finals[: len(refs)]) <= 0.3, finals
