"""The coordinator's Generate page, through app.py (Streamlit AppTest), with a tiny checkpoint."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from test_app_import import signed_in_coordinator

from study.db import transaction
from study.imaging.types import Origin
from study.models import Asset, Job, JobState

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-pixel 'tiny' model trained for 2 steps on a 2-patient phantom."""
    folder = tmp_path_factory.mktemp("tiny")
    for command in [
        "phantom --out phantom --patients 2 --seed 1 --size 64 --slices 3",
        "train --manifest phantom/manifest.csv --out checkpoint --model tiny --size 32 "
        "--steps 2 --batch 4 --device cpu",
    ]:
        subprocess.run([sys.executable, "-m", "synth", *command.split()], cwd=folder, check=True)
    return folder / "checkpoint"


def wait_for_job(engine, timeout_s: float = 300) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with transaction(engine) as session:
            job = session.scalars(select(Job)).one_or_none()
            if job is not None and job.state not in (JobState.QUEUED, JobState.RUNNING):
                return job
        time.sleep(0.5)
    raise AssertionError(f"the job did not finish within {timeout_s} s")


def test_coordinator_generates_four_images_in_the_background(
    app_engine, admin_password, data_dir, tiny_checkpoint, monkeypatch
):
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    shutil.copytree(tiny_checkpoint, data_dir / "checkpoints" / "tiny")
    app: AppTest = signed_in_coordinator(admin_password)
    app.switch_page("pages/generate.py").run()
    assert not app.exception, app.exception
    assert "training steps" in app.caption[0].value
    app.number_input(key="gen-steps").set_value(2)
    app.number_input(key="gen-T2W-1").set_value(4).run()
    next(b for b in app.button if b.label == "Start generating").click().run()
    assert not app.exception, app.exception
    assert any("queued" in s.value for s in app.success)
    job = wait_for_job(app_engine)
    assert job.state == JobState.SUCCEEDED, job.error
    app.run()
    assert any("added 4 assets" in s.value for s in app.success)
    with transaction(app_engine) as session:
        assets = list(session.scalars(select(Asset).where(Asset.origin == Origin.SYNTHETIC)))
    assert len(assets) == 4 and all(a.provenance["steps"] == "2" for a in assets)
