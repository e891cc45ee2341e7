"""The coordinator's Train page, through app.py (Streamlit AppTest): training on filtered real
assets with the tiny preset and its loss curve, the CPU duration estimate, and a run resumed
after the app process that ran it died."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from seeding import AssetRow, add_assets
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest
from test_app_import import APP, labelled, signed_in_coordinator
from tiny_generator import wait_until_done

from study.db import transaction
from study.imaging.types import Origin, Sequence
from study.jobs import (
    RUNNER_STOPPED,
    get_job,
    list_jobs,
    process_start,
    stop_consumer,
    training_loss,
)
from study.models import Job, JobState
from study.storage import AssetStore

pytestmark = pytest.mark.slow


@pytest.fixture
def library(app_engine, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Imported images (32 px): real T2W of patients P0-P3, real DWI, synthetic T2W. The
    threads that the app's start-up starts in this process to run jobs end with the test. The
    generators that the jobs start train on one PyTorch thread: two slow each other down
    several times while the suite's other worker is busy."""
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("VTT_JOB_BROKER", raising=False)
    rows = [AssetRow(Sequence.T2W, Origin.REAL, i % 2, f"P{i}") for i in range(4)]
    rows += [AssetRow(Sequence.DWI, Origin.REAL, 0, f"P{i}") for i in range(2)]
    rows += [AssetRow(Sequence.T2W, Origin.SYNTHETIC, 1, "") for _ in range(2)]
    yield add_assets(app_engine, rows, store=AssetStore(data_dir / "assets"))
    stop_consumer()


def train_page(password: str) -> AppTest:
    app = signed_in_coordinator(password)
    app.switch_page("pages/train.py").run()
    assert not app.exception, app.exception
    return app


def tiny_settings(app: AppTest, *, steps: int) -> None:
    app.selectbox(key="train-preset").set_value("tiny")
    app.selectbox(key="train-size").set_value(32)
    app.number_input(key="train-steps").set_value(steps)
    app.number_input(key="train-batch").set_value(2)
    app.number_input(key="train-log-every").set_value(1)


def test_training_on_filtered_real_assets_shows_its_loss_and_its_checkpoint(
    library, app_engine, admin_password, data_dir
):
    app = train_page(admin_password)
    assert any("6 assets match" in c.value for c in app.caption)  # the real ones by default
    app.multiselect(key="train-sequences").set_value([Sequence.T2W])
    app.multiselect(key="train-exclude").set_value(["P3"]).run()
    assert any("3 assets match" in c.value for c in app.caption)
    tiny_settings(app, steps=4)
    labelled(app, "Checkpoint name").set_value("app-tiny").run()
    next(b for b in app.button if b.label == "Start training").click().run()
    assert not app.exception, app.exception
    assert any("queued" in s.value for s in app.success)
    [job] = list_jobs(app_engine)
    assert job.params["images"] == 3 and job.params["request"]["model"] == "tiny"
    state = wait_until_done(app_engine, job.id)
    assert state == JobState.SUCCEEDED, get_job(app_engine, job.id).error
    checkpoint = data_dir / "checkpoints" / "app-tiny"
    assert get_job(app_engine, job.id).result == {"checkpoint": str(checkpoint), "steps": 4}

    app.run()
    assert not app.exception, app.exception
    [chart] = app.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert figure["layout"]["yaxis"]["title"]["text"] == "loss"
    assert training_loss(checkpoint)["step"].tolist() == [1, 2, 3, 4]
    # The training data were written for the job only; its work folder is gone.
    assert not any((data_dir / "jobs").iterdir())

    app.switch_page("pages/generate.py").run()
    assert not app.exception, app.exception
    choice = next(s for s in app.selectbox if s.label == "Checkpoint")
    choice.select_index(choice.options.index("app-tiny")).run()
    assert not app.exception, app.exception
    assert "tiny model, 32 px, 4 training steps" in app.caption[0].value


def test_the_page_estimates_the_cpu_duration_before_training(
    library, app_engine, admin_password, data_dir
):
    app = train_page(admin_password)
    assert any("Jobs run on **cpu**" in c.value for c in app.caption)
    tiny_settings(app, steps=500)
    next(b for b in app.button if b.label.startswith("Estimate the duration")).click().run()
    assert not app.exception, app.exception
    [estimate] = [i.value for i in app.info if "per step on the CPU" in i.value]
    seconds_per_step = float(estimate.split(" s per step")[0])
    assert seconds_per_step > 0 and "for 500 steps" in estimate
    # A dry run only: no job, no checkpoint, nothing left behind.
    with transaction(app_engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert not (data_dir / "checkpoints").exists()
    assert not [path for path in data_dir.iterdir() if path.name.startswith("tmp")]


# An app process: its start-up starts the threads that run jobs from its queue.
OLD_APP = """
import time
from study.jobs import TrainingSelection, submit_training
from study.startup import prepare
from synth.contract import TrainSettings

training = TrainSettings(steps=30, batch=2, model="tiny", size=32, save_every=5, log_every=1)
submit_training(prepare(), "resumable", TrainingSelection(), training)
time.sleep(600)
"""


def test_a_training_run_resumes_after_the_app_restarts(
    library, app_engine, admin_password, data_dir
):
    """An app process starts training and dies (SIGKILL) after the run saved its state; the
    restarted app marks the job failed, keeps what resuming needs, and resumes the run where
    it stopped, to the requested steps."""
    old_app = subprocess.Popen([sys.executable, "-c", OLD_APP], cwd=Path(APP).parent)
    checkpoint = data_dir / "checkpoints" / "resumable"
    deadline = time.monotonic() + 180
    while not ((checkpoint / "resume").is_dir() and len(training_loss(checkpoint)) >= 5):
        assert old_app.poll() is None and time.monotonic() < deadline, "no saved state"
        time.sleep(0.1)
    os.kill(old_app.pid, signal.SIGKILL)
    old_app.wait()
    [stopped] = list_jobs(app_engine)
    assert stopped.state == JobState.RUNNING and len(training_loss(checkpoint)) < 30

    # The app starts again (a new process would run ui.engine() afresh, as AppTest does here).
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    stopped = get_job(app_engine, stopped.id)
    assert stopped.state == JobState.FAILED and stopped.error == RUNNER_STOPPED
    with transaction(app_engine) as session:
        generator = session.get_one(Job, stopped.id).pid
    deadline = time.monotonic() + 30
    while generator is not None and process_start(generator) is not None:
        assert time.monotonic() < deadline, "the dead app's generator still runs"
        time.sleep(0.2)
    # The run's training data are kept: it can be resumed.
    assert Path(stopped.params["manifest"]).is_file()

    app = train_page(admin_password)
    assert any(RUNNER_STOPPED in e.value for e in app.error)
    next(b for b in app.button if b.key == f"resume-{stopped.id}").click().run()
    assert not app.exception, app.exception
    resumed = next(job for job in list_jobs(app_engine) if job.id != stopped.id)
    assert resumed.params["request"]["resume"] is True
    assert wait_until_done(app_engine, resumed.id) == JobState.SUCCEEDED, get_job(
        app_engine, resumed.id
    ).error
    assert get_job(app_engine, resumed.id).result["steps"] == 30
    events = [
        json.loads(line)
        for line in get_job(app_engine, resumed.id).log_tail.splitlines()
        if line.startswith('{"event": "progress"')
    ]
    # It continued from the saved state: its first step is not step 1.
    assert events and events[0]["done"] > 1 and events[-1]["done"] == 30
    loss = training_loss(checkpoint)
    assert loss["step"].tolist() == list(range(1, 31))
    assert pd.Series(loss["elapsed_s"]).is_monotonic_increasing
    # Done: the work folder goes (the runner removes it right after it writes the job's end)
    # and neither job offers to resume any more.
    deadline = time.monotonic() + 10
    while Path(stopped.params["folder"]).exists():
        assert time.monotonic() < deadline, "the finished run's work folder is still there"
        time.sleep(0.1)
    app.run()
    assert not [b for b in app.button if (b.key or "").startswith("resume-")]


def test_with_a_broker_the_page_says_workers_run_the_jobs(
    library, app_engine, admin_password, monkeypatch
):
    """With VTT_JOB_BROKER the jobs run on the workers' machines: no device of this one is
    promised, and no dry run here pretends to time them."""
    monkeypatch.setenv("VTT_JOB_BROKER", "redis://127.0.0.1:6379/0")
    app = train_page(admin_password)
    assert any("workers' machines" in c.value for c in app.caption)
    assert not [b for b in app.button if b.label.startswith("Estimate the duration")]


def test_the_lesion_mask_condition_is_asked_for_and_needs_masks(
    library, app_engine, admin_password
):
    app = train_page(admin_password)
    tiny_settings(app, steps=2)
    app.checkbox(key="train-mask-channel").check()
    app.number_input(key="train-mask-dropout").set_value(0.5)
    labelled(app, "Checkpoint name").set_value("masked").run()
    next(b for b in app.button if b.label == "Start training").click().run()
    assert not app.exception, app.exception
    # The library's images were imported without masks: nothing is queued, and the page says
    # why (training with masks is tested in tests/synth/test_lesion_mask.py).
    assert any("none of the chosen assets has one" in e.value for e in app.error)
    assert list_jobs(app_engine) == []
