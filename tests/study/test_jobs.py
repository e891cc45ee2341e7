"""Background jobs with a real generator subprocess on a tiny checkpoint trained in the test."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from study.db import transaction
from study.imaging.types import Lesion, Origin, Sequence
from study.jobs import (
    APP_STOPPED,
    GenerateCell,
    JobKind,
    SampleOptions,
    cancel_job,
    get_job,
    list_jobs,
    read_checkpoint,
    recover_jobs,
    submit_generate,
)
from study.models import Asset, Job, JobState

pytestmark = pytest.mark.slow

FAST = SampleOptions(steps=2, seed=3)


def synth(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "synth", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-pixel 'tiny' model trained for 2 steps on a 2-patient phantom."""
    folder = tmp_path_factory.mktemp("tiny")
    synth(
        *[
            "phantom",
            "--out",
            "phantom",
            "--patients",
            "2",
            "--seed",
            "1",
            "--size",
            "64",
            "--slices",
            "3",
        ],
        cwd=folder,
    )
    train = "train --manifest phantom/manifest.csv --out checkpoint --model tiny --size 32"
    synth(*f"{train} --steps 2 --batch 4 --device cpu".split(), cwd=folder)
    return folder / "checkpoint"


@pytest.fixture
def jobs_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    return data_dir


def wait_until_done(engine, job_id: int, timeout_s: float = 300) -> JobState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = get_job(engine, job_id)
        if not job.active:
            return job.state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {get_job(engine, job_id).state} after {timeout_s}s")


def synthetic_assets(engine) -> list[Asset]:
    with transaction(engine) as session:
        return list(session.scalars(select(Asset).where(Asset.origin == Origin.SYNTHETIC)))


def test_the_checkpoint_config_is_read_without_the_generator(tiny_checkpoint):
    info = read_checkpoint(tiny_checkpoint)
    assert (info.preset, info.image_size, info.steps) == ("tiny", 32, 2)
    assert len(info.training_manifest_sha256) == 64 and info.date


def test_a_generate_job_imports_its_images_with_provenance(engine, jobs_env, tiny_checkpoint):
    cells = [GenerateCell(Sequence.T2W, Lesion.YES, 2), GenerateCell(Sequence.ADC, Lesion.NO, 2)]
    job_id = submit_generate(engine, tiny_checkpoint, cells, FAST)
    assert wait_until_done(engine, job_id) == JobState.SUCCEEDED, get_job(engine, job_id).error
    job = get_job(engine, job_id)
    assert job.progress == 1.0 and job.result["added"] == 4 and "device: cpu" in job.log_tail
    assets = synthetic_assets(engine)
    cells_made = sorted((a.sequence.value, a.lesion) for a in assets)
    assert cells_made == [("ADC", 0), ("ADC", 0), ("T2W", 1), ("T2W", 1)]
    assert {a.provenance["seed"] for a in assets} == {"3", "4", "5", "6"}
    for asset in assets:
        assert asset.provenance["sampler"] == "dpmpp" and "prostate" in asset.provenance["prompt"]
        assert len(asset.provenance["checkpoint_sha256"]) == 64
        assert asset.pair_key.startswith(f"job{job_id}-")


def test_cancelling_a_job_stops_it_and_imports_nothing(engine, jobs_env, tiny_checkpoint):
    slow = SampleOptions(steps=500, seed=0)
    job_id = submit_generate(
        engine, tiny_checkpoint, [GenerateCell(Sequence.T2W, Lesion.NO, 4)], slow
    )
    deadline = time.monotonic() + 120
    while get_job(engine, job_id).state == JobState.RUNNING and time.monotonic() < deadline:
        with transaction(engine) as session:
            if session.get_one(Job, job_id).pid is not None:
                break
        time.sleep(0.2)
    cancel_job(engine, job_id)
    time.sleep(2)
    job = get_job(engine, job_id)
    assert job.state == JobState.CANCELLED and job.finished_at is not None
    with transaction(engine) as session:
        pid = session.get_one(Job, job_id).pid
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert (
        not Path(f"/proc/{pid}/cmdline").exists()
        or b"synth" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    assert synthetic_assets(engine) == []


def test_a_job_running_when_the_app_stopped_is_failed_at_restart(engine, jobs_env):
    with transaction(engine) as session:
        session.add(Job(kind=JobKind.GENERATE.value, state=JobState.RUNNING, pid=2**22 + 7))
    assert len(recover_jobs(engine)) == 1
    [job] = list_jobs(engine)
    assert job.state == JobState.FAILED and job.error == APP_STOPPED and job.finished_at
    with transaction(engine) as session:
        running = select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING)
        assert session.scalar(running) == 0
