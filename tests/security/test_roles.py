"""Nobody in where they don't belong: every page file guards itself, and each role's navigation
lists only its own pages.

The pages are discovered, not listed: every `st.Page` of app.py and every file in pages/ (but
the shared helpers). A new page that forgets `ui.require(...)` fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from study.readers import create_analyst, revoke_code, sign_in_with_code

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PAGES = ROOT / "pages"
# Shared code in pages/, not a screen.
NOT_PAGES = {"__init__.py", "ui.py", "ui_jobs.py"}
# The landing page (open to all) and the reader's own reading page.
READING_PAGES = {"home.py", "read.py"}


def navigation_pages() -> set[str]:
    """The file names of every `st.Page("pages/<file>", ...)` in app.py."""
    found = set()
    for node in ast.walk(ast.parse(APP.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "Page"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(Path(node.args[0].value).name)
    return found


def page_files() -> list[str]:
    on_disk = {p.name for p in PAGES.glob("*.py")} - NOT_PAGES
    return sorted(on_disk | navigation_pages())


GUARDED_PAGES = sorted(set(page_files()) - READING_PAGES)


def leaves(block: Block) -> list:
    out = []
    for child in block.children.values():
        out.extend(leaves(child) if isinstance(child, Block) else [child])
    return out


def assert_refused(app: AppTest, page: str, who: str) -> None:
    assert not app.exception, f"{page} raised for {who}: {app.exception}"
    shown = leaves(app.main) + leaves(app.sidebar)
    kinds = sorted({element.type for element in shown})
    assert app.error, f"{page} shows no error to {who}"
    assert kinds == ["error"], (
        f"{page} shows {kinds} to {who}; a page must call ui.require(...) before it shows anything"
    )


def run_page(page: str, state: dict[str, object]) -> AppTest:
    app = AppTest.from_file(str(PAGES / page), default_timeout=60)
    for key, value in state.items():
        app.session_state[key] = value
    return app.run()


def in_navigation(app: AppTest, page: str) -> bool:
    """Whether app.py's navigation (for the session `app` ran with) lists `page`."""
    try:
        app.switch_page(str(PAGES / page))
    except ValueError as error:
        assert "Could not find a navigation page" in str(error)
        return False
    return True


@pytest.fixture
def reader_state(app_engine, reading_study) -> dict[str, object]:
    _, code = reading_study()
    return {"role": "reader", "reader_id": sign_in_with_code(app_engine, code)}


@pytest.fixture
def sessions(app_engine, reader_state) -> dict[str, dict[str, object]]:
    from study.auth import check_account

    username = "analyst-a"
    password = create_analyst(app_engine, username)
    analyst = check_account(app_engine, username, password)
    return {
        "anonymous": {},
        "reader": reader_state,
        "analyst": {"role": "analyst", "account_id": analyst.id},
        "coordinator": {"role": "coordinator", "account_id": 1},
    }


def test_the_pages_are_discovered():
    pages = page_files()
    assert {"import_assets.py", "library.py", "studies.py", "readers.py", "progress.py"} <= set(
        GUARDED_PAGES
    )
    assert {"blinding_audit.py", "machine.py"} <= set(GUARDED_PAGES)
    missing = sorted(name for name in navigation_pages() if not (PAGES / name).is_file())
    assert not missing, f"app.py lists pages that do not exist: {missing}"
    assert not set(pages) & NOT_PAGES


@pytest.mark.parametrize("page", GUARDED_PAGES)
def test_a_page_run_directly_refuses_an_anonymous_visitor(page, app_engine):
    assert_refused(run_page(page, {}), page, "anonymous")


@pytest.mark.parametrize("page", GUARDED_PAGES)
def test_a_page_run_directly_refuses_a_reader(page, reader_state):
    assert_refused(run_page(page, reader_state), page, "a reader")


@pytest.mark.parametrize("who", ["anonymous", "reader", "analyst", "coordinator"])
def test_each_role_sees_only_its_pages_and_every_other_page_refuses_it(who, sessions):
    state = sessions[who]
    app = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in state.items():
        app.session_state[key] = value
    app.run()
    assert not app.exception, app.exception
    listed = {page for page in page_files() if in_navigation(app, page)}
    if who == "anonymous":
        assert listed == {"home.py"}
    if who == "reader":
        assert "read.py" in listed and listed <= READING_PAGES, listed
    if who == "analyst":
        # Read-only in the app: the results, the exports and the machine's checks.
        assert listed == {"results.py", "exports.py", "machine.py", "home.py"}, listed
    if who == "coordinator":
        assert {"blinding_audit.py", "machine.py"} <= listed
        assert "read.py" not in listed
    # The landing page is open to all; every other page not listed must refuse (read.py too).
    for page in sorted(set(page_files()) - listed - {"home.py"}):
        assert_refused(run_page(page, state), page, who)
    for page in sorted(listed - READING_PAGES):
        opened = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in state.items():
            opened.session_state[key] = value
        opened.run()
        opened.switch_page(str(PAGES / page)).run()
        assert not opened.exception, f"{page} fails for {who}: {opened.exception}"
        assert not any("sign in with the right role" in e.value for e in opened.error), page


def test_a_reader_whose_code_is_revoked_is_signed_out_of_the_reading_page(app_engine, reader_state):
    revoke_code(app_engine, reader_state["reader_id"])
    app = run_page("read.py", reader_state)
    assert not app.exception, app.exception
    assert any("no longer valid" in e.value for e in app.error)
    assert "role" not in app.session_state and "reader_id" not in app.session_state
    assert {element.type for element in leaves(app.main)} == {"error"}
