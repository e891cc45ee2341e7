"""Lesion marks in headless Chromium: a reader clicks each lesion in the viewer, rates and
deletes marks with the keyboard, submits with Enter, and the marks are stored in the image's own
pixels and scored against the outlines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from app_server import served_study
from PIL import Image
from sqlalchemy import select
from viewer_page import settle, viewer_frame

from study.db import open_database, transaction
from study.design import SingleBlock, StudyPlan
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


@pytest.fixture
def marks_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data_dir = tmp_path / "instance"
    monkeypatch.setenv("VTT_DATA_DIR", str(data_dir))
    monkeypatch.delenv("VTT_DATABASE_URL", raising=False)
    sources = tmp_path / "sources"
    sources.mkdir()
    rng = np.random.default_rng(8)
    rows = ["path,origin,sequence,lesion,patient_id,mask"]
    for i in range(4):
        image = (rng.random((SIZE, SIZE)) * 30000 + 10000).astype(np.uint16)
        labels = np.zeros((SIZE, SIZE), np.uint8)
        if i % 2 == 0:
            labels[10:14, 10:14] = 1
            image[10:14, 10:14] = 60000
        Image.fromarray(image).save(sources / f"image-{i}.png")
        Image.fromarray(labels).save(sources / f"mask-{i}.png")
        rows.append(f"image-{i}.png,real,T2W,,PATIENT-{i},mask-{i}.png")
    (sources / "manifest.csv").write_text("\n".join(rows) + "\n")
    engine = open_database()
    import_manifest(engine, sources / "manifest.csv", min_lesion_voxels=1)
    plan = StudyPlan(
        "Marks study",
        TEMPLATES["Lesion localisation"],
        (SingleBlock(Sequence.T2W, 4, synthetic_share=0.0),),
        settings={"localisation_tolerance_px": 1.0},
    )
    log = tmp_path / "streamlit.log"
    with served_study(engine, plan, "marker", data_dir, log) as (study_id, code, url):
        yield study_id, code, url


def test_a_reader_marks_lesions_with_mouse_and_keyboard(marks_study, browser):
    study_id, code, url = marks_study
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(90_000)
    page.goto(f"{url}/?code={code}")
    page.get_by_role("button", name="Start", exact=True).click()
    u, v = to_display(*LESION_CENTRE, ViewportShape(SIZE, SIZE))
    for number in range(1, 5):
        page.get_by_text(f"Case {number} of 4").wait_for()
        settle(page)
        frame = viewer_frame(page)
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
