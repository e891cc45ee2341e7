"""The reading room's viewer in headless Chromium: window/level by dragging, slices by the wheel
and the keys, zoom and pan, every viewport linked (on two generated stacks); then a reader reads
the seeded study to the end with the mouse and the keyboard only, and everything the viewer
received is pixel samples of one length, opaque ids and the page's keys: no file, patient,
hash or origin."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from app_server import AppServer
from sqlalchemy import select, update
from viewer_page import settle, viewer_frame

from study.db import open_database, transaction
from study.models import Answer, Asset, Assignment, Case, Question, Study
from study.viewer_payload import slice_samples

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HARNESS = "tests/e2e/viewer_harness.py"
# Runs in every frame before its own scripts. The viewer's frame keeps, in the page (which
# outlives any one frame), what it is sent (the render messages' arguments, bytes as latin-1
# text); the page keeps what a frame sends it.
CAPTURE = """
if (window === window.top) window.__received = [];
window.addEventListener("message", (event) => {
    const data = event.data;
    if (!data || typeof data !== "object") return;
    if (data.type === "streamlit:render") {
        const json = {}, bytes = {};
        for (const [name, value] of Object.entries(data.args)) {
            if (value instanceof Uint8Array) {
                let text = "";
                for (let i = 0; i < value.length; i += 8192) {
                    text += String.fromCharCode(...value.subarray(i, i + 8192));
                }
                bytes[name] = text;
            } else {
                json[name] = value;
            }
        }
        window.top.__received.push(JSON.stringify({json, bytes}));
    } else if (data.isStreamlitMessage) {
        window.top.__received.push(JSON.stringify({sent: JSON.stringify(data)}));
    }
}, true);
"""
# The gray level (red channel) at a point of a viewport's canvas, given in fractions of its side.
GRAY_AT = """([index, fx, fy]) => {
    const canvas = document.querySelectorAll("canvas")[index];
    const x = Math.floor(canvas.width * fx), y = Math.floor(canvas.height * fy);
    return canvas.getContext("2d").getImageData(x, y, 1, 1).data[0];
}"""
# A box around a promise (Playwright would wait for a bare one) that resolves true on the frame
# after the viewer's next paint, false when none comes in 10 s.
PAINTED = """() => ({painted: new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 10000);
    window.addEventListener("vtt:painted", () => requestAnimationFrame(() => {
        clearTimeout(timer);
        resolve(true);
    }), {once: true});
})})"""


def window_gray(value: float, center: float, width: float) -> int:
    """The gray level the viewer paints for a canonical value: its sample (the payload's
    rounding), then the viewer's lookup table (frontend/viewer.js buildLut), step by step."""
    sample = int(np.frombuffer(slice_samples(np.full((1, 1), value, np.float32), 1), "<u2")[0])
    scale = 255 / (width * 65535)
    offset = (-(center - width / 2) / width) * 255 + 0.5
    return max(0, min(255, math.floor(sample * scale + offset)))


def act(page, frame, action) -> None:
    """Do `action` (mouse or keys) and wait until the viewer has painted its result."""
    painted = frame.evaluate_handle(PAINTED)
    action()
    assert frame.evaluate("(box) => box.painted", painted), "the viewer did not paint"


@pytest.fixture
def harness_url(tmp_path: Path):
    server = AppServer({}, tmp_path / "harness.log", script=HARNESS)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_window_slices_zoom_and_pan_on_linked_stacks(harness_url, browser):
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.set_default_timeout(60_000)
    page.goto(harness_url)
    frame = viewer_frame(page)
    canvases = frame.locator("canvas")
    assert canvases.count() == 2
    box = canvases.nth(0).bounding_box()
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def center_grays() -> list[int]:
        return [frame.evaluate(GRAY_AT, [i, 0.5, 0.5]) for i in range(2)]

    # Full range, the middle slice of 24 (index 11): its square holds 11 / 23.
    slice_text = frame.locator(".slice")
    assert slice_text.all_inner_texts() == ["slice 12 / 24"] * 2
    assert center_grays() == [window_gray(11 / 23, 0.5, 1.0)] * 2

    # The wheel and the keys scroll both stacks.
    page.mouse.move(*middle)
    act(page, frame, lambda: page.mouse.wheel(0, 100))
    assert slice_text.all_inner_texts() == ["slice 13 / 24"] * 2
    assert center_grays() == [window_gray(12 / 23, 0.5, 1.0)] * 2
    act(page, frame, lambda: page.keyboard.press("ArrowDown"))
    act(page, frame, lambda: page.keyboard.press("PageUp"))
    assert slice_text.all_inner_texts() == ["slice 9 / 24"] * 2
    assert center_grays() == [window_gray(8 / 23, 0.5, 1.0)] * 2

    # Dragging left and up narrows the window and lowers the level, in both viewports; the
    # painted gray levels are the window rule applied to the samples.
    def drag() -> None:
        page.mouse.down()
        page.mouse.move(middle[0] - box["width"] * 0.5, middle[1] - box["width"] * 0.15, steps=8)
        page.mouse.up()

    act(page, frame, drag)
    view = frame.evaluate("({...window.vttViewer.view})")
    assert view["width"] == pytest.approx(0.5, abs=0.01)
    assert view["center"] == pytest.approx(0.35, abs=0.01)
    expected = window_gray(8 / 23, view["center"], view["width"])
    assert 100 < expected < 155
    assert center_grays() == [expected] * 2
    # The ramps: T2W's left edge (value ~0.03) and ADC's (~0.97) under the same window.
    left = [frame.evaluate(GRAY_AT, [i, 0.02, 0.1]) for i in range(2)]
    assert left[0] == 0 and left[1] == 255

    # Ctrl + wheel zooms about the cursor, shift + drag pans: both viewports follow.
    corner = (box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    under_cursor = [frame.evaluate(GRAY_AT, [i, 0.25, 0.25]) for i in range(2)]
    assert under_cursor[0] < under_cursor[1]  # the ramps run opposite ways
    page.mouse.move(*corner)
    page.keyboard.down("Control")
    act(page, frame, lambda: page.mouse.wheel(0, -350))
    page.keyboard.up("Control")
    view = frame.evaluate("({...window.vttViewer.view})")
    assert view["zoom"] == pytest.approx(2.01, abs=0.01)
    # The point under the cursor stayed put: (-0.25 - pan) / zoom is the same before and after,
    # and so is its gray level (up to the interpolation at another scale).
    assert (-0.25 - view["panX"]) / view["zoom"] == pytest.approx(-0.25, abs=0.002)
    assert [frame.evaluate(GRAY_AT, [i, 0.25, 0.25]) for i in range(2)] == pytest.approx(
        under_cursor, abs=2
    )
    page.keyboard.down("Shift")

    def pan() -> None:
        page.mouse.down()
        page.mouse.move(corner[0] + box["width"] * 0.1, corner[1], steps=4)
        page.mouse.up()

    act(page, frame, pan)
    page.keyboard.up("Shift")
    panned = frame.evaluate("({...window.vttViewer.view})")
    assert panned["panX"] == pytest.approx(view["panX"] + 0.1, abs=0.01)
    assert (panned["center"], panned["width"]) == (view["center"], view["width"])

    # I inverts; a double-click resets window, zoom and pan (the slice stays).
    before = center_grays()
    act(page, frame, lambda: page.keyboard.press("i"))
    # (Up to 1: the canvas interpolates between the table's levels at this zoom.)
    assert center_grays() == pytest.approx([255 - gray for gray in before], abs=1)
    act(page, frame, lambda: page.mouse.dblclick(*middle))
    view = frame.evaluate("({...window.vttViewer.view})")
    assert (view["center"], view["width"], view["zoom"], view["invert"]) == (0.5, 1, 1, False)
    assert slice_text.all_inner_texts() == ["slice 9 / 24"] * 2
    assert center_grays() == [window_gray(8 / 23, 0.5, 1.0)] * 2
    # The stacks were decoded once, however often the viewer painted.
    assert frame.evaluate("window.vttViewer.stats.cases") == 1


def answers_by_position(engine) -> dict[int, dict[str, str]]:
    with transaction(engine) as session:
        rows = session.execute(
            select(Assignment.position, Question.kind, Answer.value, Answer.revision)
            .join(Answer, (Answer.case_id == Assignment.case_id))
            .join(Question, Question.id == Answer.question_id)
        ).all()
    answers: dict[int, dict[str, str]] = {}
    for position, kind, value, revision in rows:
        assert revision == 1
        answers.setdefault(position, {})[kind] = value
    return answers


def test_reader_reads_the_study_with_mouse_and_keyboard_and_the_viewer_gets_only_pixels(
    seeded_study, app_url, browser
):
    engine = open_database()
    with transaction(engine) as session:
        session.execute(update(Study).values(allow_revisit=True))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(90_000)
    context.add_init_script(CAPTURE)
    page = context.new_page()
    page.goto(f"{app_url}/?code={seeded_study.code}")
    page.get_by_role("button", name="Start", exact=True).click()

    def case_shown(number: int):
        page.get_by_text(f"Case {number} of 4").wait_for()
        settle(page)
        return viewer_frame(page)

    def checked() -> list[str]:
        return page.locator('[data-testid="stRadioOption"]:has(input:checked)').all_inner_texts()

    frame = case_shown(1)
    # The keys are shown on the choices.
    assert page.locator('[data-testid="stRadioCaption"]').all_inner_texts() == [
        "R",
        "S",
        "Y",
        "N",
    ]
    # Dragging the image changes its window: the painted pixels change.
    box = frame.locator("canvas").first.bounding_box()
    before = frame.evaluate(GRAY_AT, [0, 0.5, 0.5])
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    def drag() -> None:
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 4, box["y"] + box["height"] * 0.7, steps=6)
        page.mouse.up()

    act(page, frame, drag)
    assert frame.evaluate("window.vttViewer.view.width") < 0.8
    assert frame.evaluate(GRAY_AT, [0, 0.5, 0.5]) != before
    page.keyboard.press("s")
    page.keyboard.press("y")
    assert checked() == ["Synthetic", "Yes"]
    page.keyboard.press("Enter")

    # A required answer missing: Enter submits nothing and says what is missing.
    case_shown(2)
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    page.get_by_text("Please answer: Suspected cancerous lesion").wait_for()
    assert page.get_by_text("Case 2 of 4").is_visible()
    page.keyboard.press("n")
    page.keyboard.press("Enter")

    # B goes back (the study allows it), with the answers given; Enter goes on again.
    case_shown(3)
    page.keyboard.press("b")
    case_shown(2)
    assert checked() == ["Real", "No"]
    page.keyboard.press("Enter")

    # The mouse on the choices and the simple viewer's switch; the keyboard does the rest.
    case_shown(3)
    page.get_by_text("Synthetic", exact=True).click()
    page.get_by_text("Simple viewer", exact=True).click()
    settle(page)
    page.locator('[data-testid="stImage"] img').first.wait_for()
    assert page.locator("iframe").count() == 1  # the keyboard stays, the viewer goes
    page.keyboard.press("y")
    page.keyboard.press("Enter")
    page.get_by_text("Case 4 of 4").wait_for()
    settle(page)
    page.get_by_text("Simple viewer", exact=True).click()
    frame = case_shown(4)
    page.keyboard.press("r")
    page.keyboard.press("n")
    page.keyboard.press("Enter")
    page.get_by_text("Thank you").wait_for()

    assert answers_by_position(engine) == {
        0: {"real_or_synthetic": "synthetic", "lesion_present": "yes"},
        1: {"real_or_synthetic": "real", "lesion_present": "no"},
        2: {"real_or_synthetic": "synthetic", "lesion_present": "yes"},
        3: {"real_or_synthetic": "real", "lesion_present": "no"},
    }

    # Everything the viewer's frames were sent, and what they sent the page.
    received = [json.loads(message) for message in page.evaluate("window.__received")]
    renders = [m for m in received if "json" in m and m["json"].get("mode") == "viewer"]
    sent = [m["sent"] for m in received if "sent" in m]
    context.close()
    with transaction(engine) as session:
        origins = dict(session.execute(select(Case.public_id, Case.origin)).all())
        assets = session.scalars(select(Asset)).all()
    engine.dispose()

    assert {m["json"]["case"] for m in renders} == set(origins)
    for message in renders:
        assert set(message["json"]) == {
            "mode",
            "case",
            "side",
            "labels",
            "slices",
            "keys",
            "actions",
            "key",
            "default",
        }
        assert set(message["bytes"]) == {"pixels_0"}
        assert message["json"]["labels"] == ["T2W"] and message["json"]["slices"] == [1]
    # One length for real and synthetic cases alike: 256 x 256 samples of 2 bytes.
    lengths = {(origins[m["json"]["case"]], len(m["bytes"]["pixels_0"])) for m in renders}
    assert lengths == {("real", 2 * 256 * 256), ("synthetic", 2 * 256 * 256)}
    assert any('"streamlit:componentReady"' in message for message in sent)

    arguments = "\n".join(json.dumps(m["json"]) for m in received if "json" in m)
    everything = arguments + "\n" + "\n".join(sent)
    everything += "\n".join(text for m in renders for text in m["bytes"].values())
    secrets = [s for a in assets for s in (a.source_sha256, a.canonical_sha256, a.display_sha256)]
    secrets += [path.name for path in seeded_study.source_files]
    secrets += [path.stem for path in seeded_study.source_files]
    secrets += list(seeded_study.patient_ids)
    assert not [secret for secret in secrets if secret in everything]
    assert not re.search(r"real|synth|patient|\.png|sha", arguments + "\n".join(sent), re.I)
