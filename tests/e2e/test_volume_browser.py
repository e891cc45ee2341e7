"""A study of volumes read to the end in headless Chromium with the mouse wheel and the keyboard
only: each case a T2W and an ADC stack of five slices, scrolled together, answered by keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_server import served_study
from sqlalchemy import func, select
from viewer_page import start_reading, viewer_frame

from study.db import open_database, transaction
from study.design import StudyPlan, VolumeBlock
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Answer
from study.questions import TEMPLATES
from synth.phantom import write_phantom

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CASES = 4
SLICES = 5


@pytest.fixture
def volume_study(tmp_path: Path, instance_dir: Path):
    engine = open_database()
    manifest = write_phantom(tmp_path / "real", patients=4, seed=31, size=64, slices=8)
    import_manifest(engine, manifest)
    plan = StudyPlan(
        "Volumes",
        TEMPLATES["Volumes"],
        (
            VolumeBlock(
                (Sequence.T2W, Sequence.ADC),
                cases=CASES,
                slices=SLICES,
                synthetic_share=0.0,
                lesion_share=None,
            ),
        ),
    )
    log = tmp_path / "streamlit.log"
    with served_study(engine, plan, "volume reader", instance_dir, log) as (_, code, url):
        yield code, url


def test_a_reader_scrolls_and_answers_a_volume_study(volume_study, browser):
    code, url = volume_study
    page = start_reading(browser, url, code, width=1400)
    for number in range(1, CASES + 1):
        page.get_by_text(f"Case {number} of {CASES}").wait_for()
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        frame = viewer_frame(page, number)
        slice_text = frame.locator(".overlay.slice")
        # Both stacks open on their middle slice and scroll together.
        assert slice_text.all_inner_texts() == [f"slice 3 / {SLICES}"] * 2
        box = frame.locator("canvas").first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 120)
        frame.wait_for_function("window.vttViewer.view.slice === 3")
        assert slice_text.all_inner_texts() == [f"slice 4 / {SLICES}"] * 2
        page.keyboard.press("Home")
        frame.wait_for_function("window.vttViewer.view.slice === 0")
        page.keyboard.press("PageDown")
        frame.wait_for_function(f"window.vttViewer.view.slice === {SLICES - 1}")
        # Real or synthetic, realism 4, confidence 5, lesion no: keys only.
        for key in ("r", "4", "5", "n"):
            page.keyboard.press(key)
        page.keyboard.press("Enter")
    page.get_by_text("Thank you").wait_for()
    page.close()
    engine = open_database()
    with transaction(engine) as session:
        answers = session.scalar(select(func.count()).select_from(Answer))
    engine.dispose()
    assert answers == CASES * 4
