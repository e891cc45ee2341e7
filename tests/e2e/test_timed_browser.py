"""Timed exposure in headless Chromium: each image is on the screen for its exposure, within a
frame, then a mask replaces it; the duration is measured here, from the canvas itself, and the
browser's own report of it is stored; a reload shows the mask only."""

from __future__ import annotations

import itertools
from pathlib import Path
from statistics import median

import numpy as np
import pytest
from app_server import served_study
from pictures import Picture, write_pictures
from sqlalchemy import select
from viewer_page import settle, start_reading, viewer_frame

from study.db import open_database, transaction
from study.design import SingleBlock, StudyPlan
from study.exposure import Exposure
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Assignment
from study.questions import TEMPLATES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXPOSURE_MS = 500
# Every animation frame: its timestamp and a checksum of the middle of the first canvas, for
# two minutes (the observer runs in the viewer's frame, after it).
OBSERVE = """() => {
    window.observed = [];
    const tick = (timestamp) => {
        // The viewer's current canvas (a new case brings new ones).
        const canvas = document.querySelector("canvas");
        const middle = Math.floor(canvas.width / 2);
        const data = canvas.getContext("2d").getImageData(middle - 12, middle - 12, 24, 24).data;
        let sum = 0;
        let black = true;
        for (let i = 0; i < data.length; i += 4) {
            sum = (sum * 31 + data[i]) >>> 0;
            black = black && data[i] === 0;
        }
        window.observed.push([timestamp, sum, black]);
        if (timestamp - window.observed[0][0] < 120000) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
}"""


@pytest.fixture
def timed_study(tmp_path: Path, instance_dir: Path):
    sources = tmp_path / "sources"
    sources.mkdir()
    rng = np.random.default_rng(3)
    pictures = []
    for i in range(4):
        image = (rng.random((32, 32)) * 50000 + 10000).astype(np.uint16)
        real = i % 2 == 1
        patient, origin = (f"PATIENT-{i}", "real") if real else ("", "synthetic")
        pictures.append(Picture(f"image-{i}", image, patient, origin=origin))
    engine = open_database()
    import_manifest(engine, write_pictures(sources, pictures))
    plan = StudyPlan(
        "Timed study",
        TEMPLATES["Timed exposure (HYPE)"],
        (SingleBlock(Sequence.T2W, 2, lesion_share=None, exposure=Exposure(ms=EXPOSURE_MS)),),
    )
    log = tmp_path / "streamlit.log"
    with served_study(engine, plan, "timed reader", instance_dir, log) as (_, code, url):
        yield code, url


def masked(frame) -> None:
    frame.wait_for_function("window.vttViewer.timing()?.phase === 'masked'", timeout=30_000)


def check_frames(observed: list[list], start: float, end: float) -> float:
    """Check the viewer's exposure against the canvas, frame by frame; the median frame.

    The observer sees the image from the viewer's first frame of it (or the next, when it runs
    first in a frame), and the mask likewise; the viewer masked in the first frame at least the
    exposure, less half of that frame's length, after the first; and where the frames came at
    the display's pace throughout, the image was shown for the exposure within one frame."""
    times = [timestamp for timestamp, _, _ in observed]
    sums = [total for _, total, _ in observed]
    waiting = next(i for i, (_, _, black) in enumerate(observed) if black)
    first = next(i for i in range(waiting, len(sums)) if not observed[i][2])
    last = next(i for i in range(first, len(sums)) if sums[i] != sums[first])
    assert sums[first] not in sums[last:], "the image came back after the mask"
    shown_from, masked_at = times.index(start), times.index(end)
    assert first - shown_from == last - masked_at in (0, 1)
    for j in range(shown_from + 1, masked_at + 1):
        due = times[j] - start >= EXPOSURE_MS - (times[j] - times[j - 1]) / 2
        assert due == (j == masked_at), (j, times[shown_from : masked_at + 1])
    frame = median(b - a for a, b in itertools.pairwise(times))
    longest = max(b - a for a, b in itertools.pairwise(times[shown_from : masked_at + 1]))
    if longest <= 1.5 * frame:
        assert abs(end - start - EXPOSURE_MS) <= frame, (end - start, frame)
    return frame


def test_each_image_is_shown_for_its_exposure_then_masked(timed_study, browser):
    code, url = timed_study
    page = start_reading(browser, url, code, width=1200)
    page.get_by_text("Case 1 of 2").wait_for()
    frame = viewer_frame(page, 1)
    masked(frame)
    settle(page)
    # The second case comes into the same viewer: watch its canvas from before it arrives.
    frame.evaluate(OBSERVE)
    page.keyboard.press("R")
    page.keyboard.press("Enter")
    page.get_by_text("Case 2 of 2").wait_for()
    # The page shows the case's number before the viewer holds it (with the first one masked).
    frame = viewer_frame(page, 2)
    masked(frame)
    # Where the observer runs before the viewer in a frame, it sees the mask in the next one.
    frame.wait_for_function("window.observed.at(-1)[0] > window.vttViewer.timing().last")
    timing = frame.evaluate("window.vttViewer.timing()")
    frame_ms = check_frames(frame.evaluate("window.observed"), timing["start"], timing["last"])
    assert timing["shownMs"] == timing["last"] - timing["start"]
    settle(page)
    # A reload brings the case back without its image: the mask at once.
    page.reload()
    page.get_by_text("Case 2 of 2").wait_for()
    frame = viewer_frame(page)
    assert frame.evaluate("window.vttViewer.timing().phase") == "masked"
    settle(page)
    page.keyboard.press("S")
    page.keyboard.press("Enter")
    page.get_by_text("Thank you").wait_for()
    page.close()

    engine = open_database()
    with transaction(engine) as session:
        rows = session.execute(
            select(Assignment.exposure_ms, Assignment.shown_ms).order_by(Assignment.position)
        ).all()
    engine.dispose()
    assert [exposure for exposure, _ in rows] == [EXPOSURE_MS, EXPOSURE_MS]
    # Never shorter than the exposure less half a frame (longer only where frames were late).
    for _, stored in rows:
        assert stored >= EXPOSURE_MS - frame_ms / 2 - 0.5
    assert rows[1][1] == pytest.approx(timing["shownMs"])
