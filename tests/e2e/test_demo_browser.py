"""The demo read to the end in headless Chromium with the keyboard only: the app on a fresh data
folder prepares the demo, a visitor signs in with its public code, and every case is answered
with the keys shown on its choices (the first of each question), Enter going on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from app_server import AppServer
from viewer_page import viewer_frame

from study.demo import DEMO_CODE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROGRESS = re.compile(r"^(Practice case|Case) \d+ of \d+$")
SETTLED = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# The key of the first choice of every question of the case's form, in order.
FIRST_KEYS = """() => [
    ...document.querySelectorAll('[data-testid="stForm"] [data-testid="stRadio"]'),
].map((group) => group.querySelector('[data-testid="stRadioCaption"]'))
    .map((caption) => (caption ? caption.innerText.trim() : ""))"""


@pytest.fixture
def demo_url(tmp_path: Path):
    server = AppServer(
        {"VTT_DATA_DIR": str(tmp_path / "instance"), "VTT_SEED_DEMO": "1"}, tmp_path / "app.log"
    )
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_a_visitor_reads_the_demo_with_the_keyboard(demo_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(90_000)
    page.goto(f"{demo_url}/?code={DEMO_CODE}")
    # The app prepares the demo when it starts on an empty data folder (the tests turn that
    # off for every other app they start).
    page.get_by_text("You start with 2 practice case(s)").wait_for(timeout=180_000)
    page.get_by_role("button", name="Start", exact=True).click()
    answered = 0
    for _ in range(80):
        page.wait_for_selector(SETTLED)
        if page.get_by_text("Thank you").is_visible():
            break
        if page.get_by_role("button", name="Next case").is_visible():
            page.keyboard.press("Enter")  # past the feedback of a practice case
            page.wait_for_timeout(300)
            continue
        case = page.get_by_text(PROGRESS).first.inner_text()
        # The keyboard is the viewer's: a key pressed before it has started is lost (as for a
        # reader who answers before the image is there).
        viewer_frame(page)
        keys = page.evaluate(FIRST_KEYS)
        if not keys:
            page.wait_for_timeout(200)  # the case's form is still being drawn
            continue
        assert all(keys), f"a choice without a key on {case}"
        for key in keys:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "(before) => !document.body.innerText.includes(before)", arg=case, timeout=60_000
        )
        answered += 1
    assert page.get_by_text("Thank you").is_visible()
    assert answered == 2 + 20  # the practice cases, then the demo's cases
    page.close()
