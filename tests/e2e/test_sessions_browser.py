"""Sign-ins that survive a reload, and nothing that leaves the app, in headless Chromium against
`streamlit run server.py`.

The defects: a reload (F5) signed everyone out and a bookmarked page said "Page not found";
every browser fetched an icon font from a public font host and was sent the server's path of
app.py.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from viewer_page import settle

from study.db import open_database, transaction
from study.models import Reader
from study.readers import revoke_code
from study.sessions import SESSION_COOKIE

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADMIN_PASSWORD = "app-server-test-password"  # tests/app_server.py sets it


class Traffic:
    """Every request a browser context makes and everything it receives."""

    def __init__(self, context) -> None:
        self.requests: list[str] = []
        self.received: list[str] = []
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("response", self._keep_body)
        context.on("page", self._watch)

    def _keep_body(self, response) -> None:
        try:
            self.received.append(response.body().decode("latin-1"))
        except Exception:  # redirects and aborted requests have no body
            return

    def _watch(self, page) -> None:
        page.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived",
                lambda frame: self.received.append(
                    frame.decode("latin-1") if isinstance(frame, bytes) else frame
                ),
            ),
        )


def new_page(browser):
    context = browser.new_context()
    traffic = Traffic(context)
    page = context.new_page()
    # Generous: the first script run imports the whole app, slow on a busy two-core machine.
    page.set_default_timeout(90_000)
    return context, page, traffic


def session_cookie(context, timeout_s: float = 30) -> dict:
    """The session cookie, once the page's claim has set it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [c for c in context.cookies() if c["name"] == SESSION_COOKIE and c["value"]]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError("the browser got no session cookie")


def test_a_readers_sign_in_survives_reloads_and_new_tabs_until_sign_out_or_revocation(
    seeded_study, app_url, browser
):
    context, page, traffic = new_page(browser)
    page.goto(app_url)
    settle(page)
    page.get_by_role("textbox", name="Access code").fill(seeded_study.code)
    page.get_by_role("button", name="Start reading").click()
    start = page.get_by_role("button", name="Start", exact=True)
    start.wait_for()
    cookie = session_cookie(context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # No script of the page can read it.
    assert SESSION_COOKIE not in page.evaluate("document.cookie")

    start.click()
    page.get_by_text("Case 1 of 4").wait_for()
    page.reload()
    page.get_by_text("Case 1 of 4").wait_for()
    other = context.new_page()
    other.set_default_timeout(90_000)
    other.goto(app_url)
    other.get_by_text("Case 1 of 4").wait_for()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("textbox", name="Access code").wait_for()
    page.wait_for_timeout(1_000)  # the cookie's deletion
    page.reload()
    page.get_by_role("textbox", name="Access code").wait_for()
    # The old cookie, had the browser kept it, signs nobody in either.
    other.reload()
    other.get_by_role("textbox", name="Access code").wait_for()
    context.close()

    # A revoked code ends the browser sessions it started.
    context, page, _ = new_page(browser)
    page.goto(f"{app_url}/?code={seeded_study.code}")
    page.get_by_text("Case 1 of 4").wait_for()
    session_cookie(context)
    engine = open_database()
    with transaction(engine) as session:
        (reader,) = session.scalars(select(Reader.id))
    revoke_code(engine, reader)
    engine.dispose()
    page.reload()
    page.get_by_role("textbox", name="Access code").wait_for()
    context.close()

    origin = app_url.rstrip("/")
    outside = [url for url in traffic.requests if not _same_origin(url, origin)]
    assert not outside, outside


def test_a_coordinators_bookmark_opens_its_page_and_nothing_leaves_the_app(
    seeded_study, app_url, browser
):
    context, page, traffic = new_page(browser)
    # Signed out, the bookmark shows the sign-in; signed in, the page it names.
    page.goto(f"{app_url}/results")
    settle(page)
    # The landing page, not the results page's file run on its own (with a list of every file
    # of pages/ in the sidebar), as Streamlit's older folder convention would have it.
    landing = page.inner_text("body")
    assert "Coordinator or analyst sign-in" in landing and "ui jobs" not in landing
    page.get_by_role("textbox", name="Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Results").wait_for()
    session_cookie(context)
    # A bookmark of the results, opened in a new tab.
    bookmark = context.new_page()
    bookmark.set_default_timeout(90_000)
    bookmark.goto(f"{app_url}/results")
    bookmark.get_by_role("heading", name="Results").wait_for()
    settle(bookmark)
    assert "Page not found" not in bookmark.content()
    bookmark.goto(f"{app_url}/readers")
    bookmark.get_by_role("heading", name="Readers and accounts").wait_for()
    settle(bookmark)
    # Links point where this browser reaches the app (VTT_PUBLIC_URL is unset).
    assert f"Personal links point to {app_url}." in bookmark.inner_text("body")
    received = "\n".join(traffic.received)
    context.close()

    origin = app_url.rstrip("/")
    outside = [url for url in traffic.requests if not _same_origin(url, origin)]
    assert not outside, outside
    # The server's folders are nobody's business: not in a page, a response or a frame.
    assert str(ROOT) not in received
    assert "Results" in received  # the capture saw the pages


def _same_origin(url: str, origin: str) -> bool:
    if url.startswith(("data:", "blob:", "about:")):
        return True
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == origin
