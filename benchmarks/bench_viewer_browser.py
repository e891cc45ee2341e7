"""The reading room's viewer in headless Chromium: from an input to the frame that shows its
result, and from "Submit and next" to the next case shown in the viewer.

1. Input to painted frame, on the viewer alone (tests/e2e/viewer_harness.py: two linked stacks
   of 24 slices of 256 x 256 samples, the size of a paired volume case) in a 1400 x 1000
   window: `--inputs` pointer moves of a left drag (window/level), then as many wheel notches
   (slices, alternately down and up). Each time runs from the input event's timestamp (when the
   browser made the event) to the animation frame after the viewer painted its result (that
   frame's callbacks run once the painted frame has been handed on). One input at a time: the
   next is sent once the last one's frame is timed.
2. Submit to next case, on the app as `make run` serves it, seeded as bench_reading_browser
   does (`--readers` readers, `--cases` cases, half of every reader's cases answered): from the
   press on "Submit and next" to the first animation frame where the next case's number is
   shown, the script run is over and the viewer has painted the next case's pixels.

    .venv/bin/python -m benchmarks.bench_viewer_browser [--inputs 200] [--submits 40]
        [--readers 100] [--cases 5000]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.bench_reading_browser import (
    CHROMIUM,
    MARK_PRESS,
    SETTLED,
    case_number,
    free_port,
    seeded_database,
    start_app,
    summary,
)

HARNESS = "tests/e2e/viewer_harness.py"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# In the viewer's frame: the timestamp of the last input and when its handlers began; for every
# input whose result has been painted, its latency (to the frame after the paint) and the
# viewer's own share (from its handlers to the end of the paint).
TIME_INPUTS = """() => {
    window.vttLatencies = [];
    window.vttViewerShares = [];
    let input = null;
    const mark = (event) => { input = {at: event.timeStamp, handled: performance.now()}; };
    window.addEventListener("pointermove", mark, {capture: true});
    window.addEventListener("wheel", mark, {capture: true});
    window.addEventListener("vtt:painted", () => {
        if (input === null) return;
        const since = input;
        input = null;
        window.vttViewerShares.push(performance.now() - since.handled);
        requestAnimationFrame(() => window.vttLatencies.push(performance.now() - since.at));
    });
}"""
# In the page, on every animation frame: the ms since the press once case `next` is shown, the
# script run is over and the viewer has painted a case it had not shown at the press.
SHOWN_IN_VIEWER = """([next, casesAtPress]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const frame = document.querySelector('iframe[src*="/component/"]');
    const viewer = frame && frame.contentWindow && frame.contentWindow.vttViewer;
    const shown = window.vttPressedAt !== null
        && app !== null && app.getAttribute("data-test-script-state") === "notRunning"
        && document.body.innerText.includes(`Case ${next} of `)
        && viewer && viewer.stats.cases > casesAtPress
        && frame.contentWindow.vttPaintedCases >= viewer.stats.cases;
    return shown ? performance.now() - window.vttPressedAt : null;
}"""
# In the viewer's frame: how many cases it had painted when it last painted.
COUNT_PAINTED_CASES = """() => {
    window.vttPaintedCases = 0;
    window.addEventListener("vtt:painted", () => {
        window.vttPaintedCases = window.vttViewer.stats.cases;
    });
}"""


def viewer_frame(page):
    page.wait_for_selector('iframe[src*="/component/"]')
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for frame in page.frames:
            if "/component/" in frame.url and frame.evaluate("!!window.vttViewer"):
                return frame
        time.sleep(0.05)
    raise RuntimeError("the viewer did not start")


def wait_for_samples(frame, count: int) -> None:
    frame.wait_for_function(f"window.vttLatencies.length >= {count}", polling="raf")


def input_latencies(browser, url: str, inputs: int) -> dict[str, list[float]]:
    """Latencies and the viewer's shares of them, in ms, of drags and wheel notches on the
    viewer harness."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(url)
    frame = viewer_frame(page)
    frame.wait_for_function("window.vttViewer.stats.paints > 0")
    frame.evaluate(TIME_INPUTS)
    box = frame.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(inputs):
        # Small steps back and forth: the window changes with every move and stays in range.
        step = 3 if (i // 20) % 2 == 0 else -3
        x += step
        page.mouse.move(x, y + (i % 2))
        wait_for_samples(frame, i + 1)
    page.mouse.up()
    taken = "[window.vttLatencies.splice(0), window.vttViewerShares.splice(0)]"
    drag, drag_share = frame.evaluate(taken)
    for i in range(inputs):
        page.mouse.wheel(0, 100 if i % 2 == 0 else -100)
        wait_for_samples(frame, i + 1)
    wheel, wheel_share = frame.evaluate(taken)
    page.close()
    return {"drag": drag, "drag share": drag_share, "wheel": wheel, "wheel share": wheel_share}


def next_case_times(browser, url: str, code: str, submits: int) -> list[float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{url}/?code={code}")
    page.get_by_role("button", name="Start", exact=True).click()
    page.get_by_text(re.compile(r"Case \d+ of \d+")).first.wait_for()
    page.wait_for_selector(SETTLED)
    frame = viewer_frame(page)
    frame.evaluate(COUNT_PAINTED_CASES)
    frame.wait_for_function("window.vttViewer.stats.paints > 0")
    times = []
    for _ in range(submits):
        number = case_number(page)
        page.get_by_text("Synthetic", exact=True).click()
        page.get_by_text("No", exact=True).click()
        page.wait_for_selector(SETTLED)
        cases = frame.evaluate("window.vttViewer.stats.cases")
        page.evaluate(MARK_PRESS)
        page.get_by_role("button", name="Submit and next").click()
        shown = page.wait_for_function(SHOWN_IN_VIEWER, arg=[number + 1, cases], polling="raf")
        times.append(shown.json_value())
    page.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--submits", type=int, default=40)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--cases", type=int, default=5000)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (make browser installs it): nothing measured")
        return

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        code = seeded_database(data_dir, args.readers, args.cases)
        harness_port, app_port = free_port(), free_port()
        harness = start_app(data_dir, harness_port, script=HARNESS)
        app = start_app(data_dir, app_port)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                inputs = input_latencies(browser, f"http://127.0.0.1:{harness_port}", args.inputs)
                submits = next_case_times(
                    browser, f"http://127.0.0.1:{app_port}", code, args.submits
                )
                browser.close()
        finally:
            for server in (harness, app):
                server.terminate()
                server.wait(timeout=30)

    print("viewer, headless Chromium, 2 x 24 slices of 256 px (target p95 <= 50 ms):")
    for kind, what in (("drag", "drag (window/level)"), ("wheel", "wheel (slice)")):
        print(
            f"  {what}: input -> painted frame n={len(inputs[kind])} {summary(inputs[kind])}; "
            f"the viewer's share (handlers to painted) {summary(inputs[kind + ' share'])}"
        )
    print(
        f"viewer: submit -> next case painted, {args.readers} readers, {args.cases} cases, "
        f"n={len(submits)} (target p95 <= 150 ms): {summary(submits)}"
    )


if __name__ == "__main__":
    main()
