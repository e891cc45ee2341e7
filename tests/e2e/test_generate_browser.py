"""A coordinator generates images in headless Chromium against `streamlit run app.py`: signs
in, asks the Generate page for two images of a tiny checkpoint, sees the background job finish,
and finds the images in the asset library (and the database)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_server import AppServer
from sqlalchemy import select
from test_reading_browser import settle
from tiny_generator import train_tiny_checkpoint

from study.db import open_database, transaction
from study.imaging.types import Origin, Sequence
from study.models import Asset

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "app-server-test-password"  # what AppServer gives the app


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder but for the tiny checkpoint under checkpoints/."""
    folder = tmp_path / "instance"
    train_tiny_checkpoint(tmp_path)
    shutil.copytree(tmp_path / "checkpoint", folder / "checkpoints" / "tiny")
    monkeypatch.setenv("VTT_DATA_DIR", str(folder))
    monkeypatch.delenv("VTT_DATABASE_URL", raising=False)
    return folder


@pytest.fixture
def app_url(data_dir: Path, tmp_path: Path) -> Iterator[str]:
    env = {"VTT_DATA_DIR": str(data_dir), "VTT_DEVICE": "cpu"}
    server = AppServer(env, tmp_path / "streamlit.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def test_coordinator_generates_images_into_the_library(data_dir, app_url, browser):
    context = browser.new_context()
    # Generous: the first script run imports the whole app, slow on a busy two-core machine.
    context.set_default_timeout(90_000)
    page = context.new_page()
    page.goto(app_url)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as coordinator.").wait_for()

    page.get_by_role("link", name="Generate images").click()
    page.get_by_text("The generator runs on cpu").wait_for()
    settle(page)
    for label, value in (("Steps", "2"), ("T2W with lesion", "2")):
        field = page.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        settle(page)
    page.get_by_role("button", name="Start generating").click()
    page.get_by_text("is queued; it runs in the background").wait_for()
    # The jobs panel refreshes by itself until the job has imported its images.
    page.get_by_text("added 2 assets to the library").wait_for(timeout=240_000)

    page.get_by_role("link", name="Asset library").click()
    metric = page.get_by_test_id("stMetricValue").first
    metric.wait_for()
    assert metric.inner_text().strip() == "2"
    context.close()

    engine = open_database()
    with transaction(engine) as session:
        assets = session.scalars(select(Asset)).all()
        assert [(a.origin, a.sequence, a.lesion) for a in assets] == [
            (Origin.SYNTHETIC, Sequence.T2W, 1)
        ] * 2
        assert all(a.provenance["steps"] == "2" and a.provenance["generator"] for a in assets)
    engine.dispose()
    # The job's work folder is gone once its images are in the library.
    assert not any((data_dir / "jobs").iterdir())
