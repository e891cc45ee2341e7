"""Lesion marks in headless Chromium: a reader clicks each lesion in the viewer, rates and
deletes marks with the keyboard, submits with Enter, and the marks are stored in the image's own
pixels and scored against the outlines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_server import served_study
from pictures import Picture, square_lesion, write_pictures
from sqlalchemy import select
from viewer_page import settle, start_reading, viewer_frame

from study.db import open_database, transaction
from study.design import SingleBlock, StudyPlan, VolumeBlock
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.localisation_study import localisation_tables
from study.marks import ViewportShape, load_marks, to_display
from study.models import Answer, Assignment, Case
from study.questions import TEMPLATES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZE = 32
# Every lesion covers rows and columns 10..13 of its 32 x 32 image (cases 0 and 2).
LESION_CENTRE = (11.5, 11.5)


def served_marks_study(engine, block, instance_dir: Path, log: Path):
    """A one-block study asking for lesion marks (1 px tolerance), served; yields (the study's
    id, the reader's code, the app's URL)."""
    plan = StudyPlan(
        "Marks study",
        TEMPLATES["Lesion localisation"],
        (block,),
        settings={"localisation_tolerance_px": 1.0},
    )
    with served_study(engine, plan, "marker", instance_dir, log) as served:
        yield served


@pytest.fixture
def marks_study(tmp_path: Path, instance_dir: Path):
    sources = tmp_path / "sources"
    sources.mkdir()
    rng = np.random.default_rng(8)
    pictures = []
    for i in range(4):
        image = (rng.random((SIZE, SIZE)) * 30000 + 10000).astype(np.uint16)
        labels = square_lesion(SIZE, 10) if i % 2 == 0 else np.zeros((SIZE, SIZE), np.uint8)
        image[labels > 0] = 60000
        pictures.append(Picture(f"image-{i}", image, f"PATIENT-{i}", labels))
    engine = open_database()
    import_manifest(engine, write_pictures(sources, pictures), min_lesion_voxels=1)
    block = SingleBlock(Sequence.T2W, 4, synthetic_share=0.0)
    yield from served_marks_study(engine, block, instance_dir, tmp_path / "streamlit.log")


def test_a_reader_marks_lesions_with_mouse_and_keyboard(marks_study, browser):
    study_id, code, url = marks_study
    page = start_reading(browser, url, code)
    u, v = to_display(*LESION_CENTRE, ViewportShape(SIZE, SIZE))
    for number in range(1, 5):
        page.get_by_text(f"Case {number} of 4").wait_for()
        settle(page)
        frame = viewer_frame(page, number)
        box = frame.locator("canvas").first.bounding_box()
        canvas = page.frame_locator("iframe").first.locator("canvas").first
        target = canvas.bounding_box()
        assert target == box
        # A click (not a drag) marks; the window stays as it was.
        window = frame.evaluate("({...window.vttViewer.view})")
        page.mouse.click(box["x"] + u * box["width"], box["y"] + v * box["height"])
        # The middle of the scale until the reader rates it.
        page.get_by_text("1 mark(s) placed (rated 3).").wait_for()
        settle(page)
        after = frame.evaluate("({...window.vttViewer.view})")
        assert (after["center"], after["width"]) == (window["center"], window["width"])
        if number == 4:
            # The last case: the mark is deleted again, and the case submitted without one.
            page.keyboard.press("Delete")
            page.get_by_text("0 mark(s) placed.").wait_for()
            settle(page)
            page.keyboard.press("Enter")
        else:
            # A quick reader rates and goes on at once, while the app is still taking the
            # rating: Enter waits for it rather than being lost, and on the first case a second
            # Enter does not answer the next case too.
            page.keyboard.press(str(number + 1))
            page.keyboard.press("Enter")
            if number == 1:
                page.keyboard.press("Enter")
    page.get_by_text("Thank you").wait_for()
    page.close()

    engine = open_database()
    with transaction(engine) as session:
        stored = session.execute(
            select(Assignment.position, Answer.value, Case.lesion)
            .join(Answer, Answer.case_id == Assignment.case_id)
            .join(Case, Case.id == Answer.case_id)
            .order_by(Assignment.position)
        ).all()
    marks = [load_marks(value, scale=5) for _, value, _ in stored]
    lesions = [lesion for _, _, lesion in stored]
    assert [len(m) for m in marks] == [1, 1, 1, 0]
    assert [m[0].rating for m in marks[:3]] == [2, 3, 4]
    for (mark,) in marks[:3]:
        assert mark.viewport == "T2W" and mark.slice == 0
        assert (mark.row, mark.col) == pytest.approx(LESION_CENTRE, abs=0.6)
    tables = localisation_tables(engine, study_id)
    engine.dispose()
    # A mark on a case with a lesion localises it; on a case without, it does not.
    expected = ["LL" if lesion else "NL" for lesion in lesions[:3]]
    assert sorted(tables.marks["kind"]) == sorted(expected)
    assert len(tables.read) == 4


@pytest.fixture
def volume_marks_study(tmp_path: Path, instance_dir: Path):
    """Two real T2W stacks of three slices with masks: STACK-0's lesion (rows and cols 10..13)
    on its last slice only, STACK-1 without one."""
    sources = tmp_path / "sources"
    sources.mkdir()
    rng = np.random.default_rng(9)
    pictures = []
    for patient in range(2):
        for index in range(3):
            image = (rng.random((SIZE, SIZE)) * 30000 + 10000).astype(np.uint16)
            labels = np.zeros((SIZE, SIZE), np.uint8)
            if patient == 0 and index == 2:
                labels = square_lesion(SIZE, 10)
                image[labels > 0] = 60000
            name = f"stack-{patient}-{index}"
            pictures.append(Picture(name, image, f"STACK-{patient}", labels, slice_index=index))
    engine = open_database()
    import_manifest(engine, write_pictures(sources, pictures), min_lesion_voxels=1)
    block = VolumeBlock((Sequence.T2W,), cases=2, slices=None, synthetic_share=0.0)
    yield from served_marks_study(engine, block, instance_dir, tmp_path / "streamlit.log")


def test_a_reader_scrolls_to_the_lesion_slice_and_marks_it(volume_marks_study, browser):
    study_id, code, url = volume_marks_study
    page = start_reading(browser, url, code)
    u, v = to_display(*LESION_CENTRE, ViewportShape(SIZE, SIZE))
    for number in (1, 2):
        page.get_by_text(f"Case {number} of 2").wait_for()
        settle(page)
        frame = viewer_frame(page, number)
        box = frame.locator("canvas").first.bounding_box()
        # Every case: one notch of the wheel to the last slice, a mark at the lesion's place.
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 120)
        frame.wait_for_function("window.vttViewer.view.slice === 2")
        page.mouse.click(box["x"] + u * box["width"], box["y"] + v * box["height"])
        page.get_by_text("1 mark(s) placed (rated 3).").wait_for()
        # The mark belongs to the slice it was placed on.
        assert frame.evaluate("window.vttViewer.marks()") == [
            {"viewport": 0, "slice": 2, "u": pytest.approx(u), "v": pytest.approx(v), "rating": 3}
        ]
        settle(page)
        page.keyboard.press("Enter")
    page.get_by_text("Thank you").wait_for()
    page.close()

    engine = open_database()
    with transaction(engine) as session:
        stored = session.execute(
            select(Case.lesion, Answer.value).join(Answer, Answer.case_id == Case.id)
        ).all()
    tables = localisation_tables(engine, study_id)
    engine.dispose()
    for _, value in stored:
        (mark,) = load_marks(value, scale=5)
        assert (mark.viewport, mark.slice, mark.rating) == ("T2W", 2, 3)
        assert (mark.row, mark.col) == pytest.approx(LESION_CENTRE, abs=0.6)
    # The mark on the lesion's slice localises it; on the stack without one it is an NL.
    scored = tables.marks.merge(tables.truth, on=["treatment", "case"])
    assert sorted(zip(scored["lesions"], scored["kind"], strict=True)) == [
        (0, "NL"),
        (1, "LL"),
    ]
