"""Helpers of the reliability tests: open studies with many readers, app servers started by
`streamlit run app.py` that a test may kill, and a reader's steps in the browser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seeding import add_assets, grid
from sqlalchemy import Engine, select

from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.models import Assignment, Case
from study.questions import TEMPLATES
from study.readers import add_reader
from study.storage import AssetStore

ROOT = Path(__file__).resolve().parents[2]
FOUR_QUESTIONS = TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"]


@dataclass(frozen=True)
class OpenStudy:
    study_id: int
    codes: dict[int, str]  # reader id -> access code
    orders: dict[int, list[str]]  # reader id -> public ids of their cases, in reading order


def open_reading_study(
    engine: Engine,
    *,
    readers: int,
    cases: int,
    allow_revisit: bool = False,
    store: AssetStore | None = None,
    name: str = "Reliability study",
) -> OpenStudy:
    """An open study of `cases` T2W singles (half synthetic) asking four questions, with
    `readers` readers; with a store, every asset has real image files."""
    add_assets(engine, grid([Sequence.T2W], (cases + 3) // 4 + 1), store=store)
    plan = StudyPlan(
        name,
        FOUR_QUESTIONS,
        (SingleBlock(Sequence.T2W, cases, lesion_share=None),),
        allow_revisit=allow_revisit,
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    issued = [add_reader(engine, study_id, f"reader {i:02d}") for i in range(readers)]
    with transaction(engine) as session:
        orders = {
            code.reader_id: list(
                session.scalars(
                    select(Case.public_id)
                    .join(Assignment, Assignment.case_id == Case.id)
                    .where(Assignment.reader_id == code.reader_id)
                    .order_by(Assignment.position)
                )
            )
            for code in issued
        }
    return OpenStudy(study_id, {code.reader_id: code.code for code in issued}, orders)


def settle(page) -> None:
    """Wait until the script run (or fragment run) is over and no element is stale."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')")


def open_app(browser, url: str):
    """A new browser context's page on the app's landing page (its script run may go on)."""
    page = browser.new_context().new_page()
    # Generous: the first script run imports the whole app, slow on a busy two-core machine.
    page.set_default_timeout(90_000)
    page.goto(url)
    return page


def sign_in(page, code: str) -> None:
    """Type the access code on the landing page, as a reader whose link is lost would."""
    page.get_by_label("Access code", exact=True).fill(code)
    page.get_by_role("button", name="Start reading").click()


def start_reading(page) -> None:
    """Past the instructions (shown only until the reader has pressed Start once)."""
    start = page.get_by_role("button", name="Start", exact=True)
    progress = page.get_by_text("Case 1 of")
    start.or_(progress).first.wait_for()
    settle(page)
    if start.is_visible():
        start.click()


def fill_case(page) -> None:
    """Answer the four questions of the shown case (without submitting)."""
    page.get_by_text("Synthetic", exact=True).click()
    page.get_by_text("No", exact=True).click()
    # The third option of each rating ("3"; its caption, the key, is "3" too).
    for radio in page.get_by_role("radiogroup").all()[2:]:
        radio.locator('[data-testid="stRadioOption"]').nth(2).click()


def read_cases(page, first: int, last: int, of: int) -> None:
    """Answer and submit cases `first`..`last` (1-based), each confirmed by the next one shown."""
    for number in range(first, last + 1):
        page.get_by_text(f"Case {number} of {of}", exact=True).wait_for()
        settle(page)
        fill_case(page)
        page.get_by_role("button", name="Submit and next").click()
        following = (
            page.get_by_text(f"Case {number + 1} of {of}", exact=True)
            if number < of
            else page.get_by_text("Thank you")
        )
        following.wait_for()
