"""Take the README's screenshots of the reading room (docs/img/reading_room*.png).

Run: `.venv/bin/python docs/make_reading_room_screenshots.py` (needs Debian's Chromium, `make
browser`). It seeds the demo into a temporary data directory, serves the app as `make run` does,
and reads the demo study in headless Chromium (1400 x 900) with the keyboard, as a visitor with
the public code: the first study case (reading_room.png), the first paired T2W-DWI case after a
window/level drag (reading_room_paired.png) and the score at the end
(reading_room_score.png). A stack being scrolled comes from docs/viewer_volume_page.py, a
phantom patient's T2W and DWI volumes (reading_room_volume.png).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

# `python docs/...` puts docs/ on the path, not the repository's root (benchmarks/ is not an
# installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_reading_browser import CHROMIUM, SETTLED, free_port, start_app
from study.db import make_engine, migrate
from study.demo import seed_demo
from study.storage import AssetStore

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
VOLUME_PAGE = "docs/viewer_volume_page.py"
WINDOW = {"width": 1400, "height": 900}
# Every answer key a demo case may ask for: a letter of each choice and a rating for each scale.
KEYS = ("s", "y", "4", "4")


def viewer_frame(page):
    page.wait_for_selector('iframe[src*="/component/"]')
    for _ in range(400):
        for frame in page.frames:
            if "/component/" in frame.url and frame.evaluate(
                "!!window.vttViewer && window.vttViewer.stats.paints > 0"
            ):
                return frame
        page.wait_for_timeout(50)
    raise RuntimeError("the viewer did not paint")


def drag(page, frame, dx: float, dy: float) -> None:
    box = frame.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx * box["width"], y + dy * box["width"], steps=8)
    page.mouse.up()


def read_demo(page, url: str) -> None:
    page.goto(f"{url}/?code=demo")
    page.get_by_role("button", name="Start", exact=True).click()
    paired_shown = False
    while True:
        page.get_by_text(
            re.compile(r"(Practice case|Case) \d+ of \d+|Thank you|Feedback")
        ).first.wait_for()
        page.wait_for_selector(SETTLED)
        text = page.inner_text("body")
        if "Thank you" in text:
            break
        if "Feedback" in text and "Next case" in text:
            page.keyboard.press("Enter")
            page.wait_for_timeout(300)
            continue
        frame = viewer_frame(page)
        viewports = frame.locator("canvas").count()
        if re.search(r"\bCase 1 of", text):
            page.screenshot(path=OUT / "reading_room.png")
        if viewports == 2 and not paired_shown:
            drag(page, frame, -0.15, -0.05)
            page.wait_for_timeout(200)
            page.screenshot(path=OUT / "reading_room_paired.png")
            paired_shown = True
        for key in KEYS:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
    button = page.get_by_role("button", name="See my score")
    if button.count():
        button.click()
    page.get_by_text("Your score").wait_for()
    page.wait_for_selector(SETTLED)
    page.wait_for_timeout(1000)
    page.screenshot(path=OUT / "reading_room_score.png", full_page=True)


def scroll_volume(page, url: str) -> None:
    page.goto(url)
    frame = viewer_frame(page)
    box = frame.locator("canvas").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(3):
        page.mouse.wheel(0, 100)
        page.wait_for_timeout(100)
    drag(page, frame, -0.1, 0.0)
    page.wait_for_timeout(300)
    page.screenshot(path=OUT / "reading_room_volume.png")


def main() -> None:
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make browser` installs it")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        engine = make_engine(f"sqlite:///{data_dir / 'vtt.sqlite3'}")
        migrate(engine)
        seed_demo(engine, store=AssetStore(data_dir / "assets"))
        engine.dispose()
        app_port, volume_port = free_port(), free_port()
        servers = [start_app(data_dir, app_port), start_app(data_dir, volume_port, VOLUME_PAGE)]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport=WINDOW)
                page.set_default_timeout(120_000)
                read_demo(page, f"http://127.0.0.1:{app_port}")
                scroll_volume(page, f"http://127.0.0.1:{volume_port}")
                browser.close()
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=30)
    for path in sorted(OUT.glob("reading_room*.png")):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
