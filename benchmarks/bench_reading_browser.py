"""From "Submit and next" to the next case fully shown, in a real browser, on a large database.

The app runs as `streamlit run server.py` (SQLite in a temporary data directory seeded like
`bench_reading`: `--readers` readers, `--cases` cases, half of every reader's cases answered);
headless Chromium signs one reader in, switches to the simple viewer (server-rendered PNGs;
bench_viewer_browser times the viewer) and submits `--submits` cases. Each time runs from the
click to the next case's number on screen, the script run over and every image loaded.

Two clocks: the page's own (from the press of the mouse button on "Submit and next" to the first
animation frame that shows the next case; the reader's wait), and the driver's (from Playwright's
`click()` call, which first waits for the button to be visible and stable, to the moment it has
seen the next case shown; what earlier versions of this benchmark reported).

    .venv/bin/python -m benchmarks.bench_reading_browser [--readers 100] [--cases 5000]
        [--submits 40]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from benchmarks.bench_reading import seed
from study.db import make_engine, migrate
from study.readers import issue_new_code
from study.storage import AssetStore

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
SETTLED = '[data-testid="stApp"][data-test-script-state="notRunning"]'
# Before each submit: remember when the next press of a mouse button happens, in page time.
MARK_PRESS = """() => {
    window.vttPressedAt = null;
    document.addEventListener(
        "pointerdown", () => { window.vttPressedAt = performance.now(); },
        {capture: true, once: true},
    );
}"""
# Checked on every animation frame: the ms since the press once case `next` is fully shown.
SHOWN_SINCE_PRESS = """(next) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const shown = window.vttPressedAt !== null
        && app !== null && app.getAttribute("data-test-script-state") === "notRunning"
        && document.body.innerText.includes(`Case ${next} of `)
        && Array.from(document.images).every(image => image.complete);
    return shown ? performance.now() - window.vttPressedAt : null;
}"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(data_dir: Path, port: int, script: str = "server.py") -> subprocess.Popen:
    env = {**os.environ, "VTT_DATA_DIR": str(data_dir), "VTT_SEED_DEMO": "0"}
    env.pop("VTT_DATABASE_URL", None)
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port)]
    # The options `make run` starts the app with.
    options = {
        "server.headless": "true",
        "server.fileWatcherType": "none",
        "client.toolbarMode": "minimal",
        "browser.gatherUsageStats": "false",
    }
    server = subprocess.Popen(
        [*command, *(f"--{key}={value}" for key, value in options.items())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("the app did not start within 120 s")


def case_number(page) -> int:
    match = re.search(r"Case (\d+) of \d+", page.inner_text("body"))
    if match is None:
        raise RuntimeError("no 'Case k of n' on the reading page")
    return int(match.group(1))


def summary(timings: list[float]) -> str:
    return (
        f"median={statistics.median(timings):.0f} ms "
        f"p95={float(np.percentile(timings, 95)):.0f} ms max={max(timings):.0f} ms"
    )


def seeded_database(data_dir: Path, readers: int, cases: int) -> str:
    """An SQLite database in `data_dir` seeded like `bench_reading`; the first reader's code."""
    engine = make_engine(f"sqlite:///{data_dir / 'vtt.sqlite3'}")
    migrate(engine)
    reader = seed(engine, AssetStore(data_dir / "assets"), readers, cases)[0]
    code = issue_new_code(engine, reader).code
    engine.dispose()
    return code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--submits", type=int, default=40)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (make browser installs it): nothing measured")
        return

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        code = seeded_database(data_dir, args.readers, args.cases)
        port = free_port()
        server = start_app(data_dir, port)
        in_page: list[float] = []
        driver: list[float] = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(120_000)
                page.goto(f"http://127.0.0.1:{port}/?code={code}")
                page.get_by_role("button", name="Start", exact=True).click()
                page.get_by_text(re.compile(r"Case \d+ of \d+")).first.wait_for()
                page.wait_for_selector(SETTLED)
                # The simple viewer's PNGs (bench_viewer_browser times the viewer).
                page.get_by_text("Simple viewer", exact=True).click()
                page.wait_for_selector(SETTLED)
                for _ in range(args.submits):
                    number = case_number(page)
                    page.get_by_text("Synthetic", exact=True).click()
                    page.get_by_text("No", exact=True).click()
                    page.wait_for_selector(SETTLED)
                    page.evaluate(MARK_PRESS)
                    started = time.perf_counter()
                    page.get_by_role("button", name="Submit and next").click()
                    shown = page.wait_for_function(SHOWN_SINCE_PRESS, arg=number + 1, polling="raf")
                    driver.append((time.perf_counter() - started) * 1000)
                    in_page.append(shown.json_value())
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(
        f"browser: submit -> next case shown, {args.readers} readers, {args.cases} cases, "
        f"n={len(in_page)} (target p95 <= 300 ms): in the page {summary(in_page)}; "
        f"as the driver sees it {summary(driver)}"
    )


if __name__ == "__main__":
    main()
