"""The reading room's viewer in a Playwright page, for the browser tests."""

from __future__ import annotations


def viewer_frame(page, cases: int | None = None):
    """The viewer component's frame once it has painted (AssertionError after 10 s), and, given
    `cases`, once it has received that many cases: the page shows the next case's number and
    finishes its run before the viewer has taken the case in (marks placed or keys pressed
    meanwhile would go to the case before)."""
    page.wait_for_selector("iframe")
    ready = "window.vttViewer?.stats.paints > 0"
    if cases is not None:
        ready += f" && window.vttViewer.stats.cases === {cases}"
    for _ in range(200):
        frames = [f for f in page.frames if "/component/" in f.url]
        if frames and frames[0].evaluate(ready):
            return frames[0]
        page.wait_for_timeout(50)
    raise AssertionError(f"the viewer never painted (case {cases})")


def settle(page) -> None:
    """Wait until the script run (or fragment run) is over and no element is stale."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')")


def start_reading(browser, url: str, code: str, *, width: int = 1300):
    """A new page (width x 900) signed in with the reader's code, past the Start button."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(90_000)
    page.goto(f"{url}/?code={code}")
    page.get_by_role("button", name="Start", exact=True).click()
    return page
