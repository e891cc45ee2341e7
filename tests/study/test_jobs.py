"""Background jobs with a real generator subprocess on a tiny checkpoint trained in the test."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, select, update
from tiny_generator import train_tiny_checkpoint, wait_until_done

import study.jobs
from study.db import alembic_config, transaction
from study.imaging.types import Lesion, Origin, Sequence
from study.jobs import (
    APP_STOPPED,
    GenerateCell,
    JobKind,
    SampleOptions,
    cancel_job,
    get_job,
    list_jobs,
    process_start,
    read_checkpoint,
    recover_jobs,
    submit_generate,
    this_runner,
)
from study.models import Asset, Job, JobState

pytestmark = pytest.mark.slow

FAST = SampleOptions(steps=2, seed=3)
SLOW = SampleOptions(steps=500, seed=0)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def jobs_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    return data_dir


def wait_for_generator(engine, job_id: int, timeout_s: float = 120) -> int:
    """The pid of the job's generator subprocess, once it runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with transaction(engine) as session:
            pid = session.get_one(Job, job_id).pid
        if pid is not None:
            return pid
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} started no generator within {timeout_s} s")


def wait_until_gone(pid: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while process_start(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process_start(pid) is None, f"process {pid} still runs"


def synthetic_assets(engine) -> list[Asset]:
    with transaction(engine) as session:
        return list(session.scalars(select(Asset).where(Asset.origin == Origin.SYNTHETIC)))


def work_folders(data_dir: Path) -> list[Path]:
    root = data_dir / "jobs"
    return sorted(root.iterdir()) if root.is_dir() else []


def stored_files(data_dir: Path) -> list[Path]:
    root = data_dir / "assets"
    return [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else []


def test_the_checkpoint_config_is_read_without_the_generator(tiny_checkpoint):
    info = read_checkpoint(tiny_checkpoint)
    assert (info.preset, info.image_size, info.steps) == ("tiny", 32, 2)
    assert len(info.training_manifest_sha256) == 64 and info.date


def test_a_generate_job_imports_its_images_with_provenance(engine, jobs_env, tiny_checkpoint):
    cells = [GenerateCell(Sequence.T2W, Lesion.YES, 2), GenerateCell(Sequence.ADC, Lesion.NO, 2)]
    job_id = submit_generate(engine, tiny_checkpoint, cells, FAST)
    assert len(work_folders(jobs_env)) == 1
    assert wait_until_done(engine, job_id) == JobState.SUCCEEDED, get_job(engine, job_id).error
    job = get_job(engine, job_id)
    assert job.progress == 1.0 and job.result == {"added": 4, "unchanged": 0}
    assert "device: cpu" in job.log_tail and job.runner_host == socket.gethostname()
    assets = synthetic_assets(engine)
    cells_made = sorted((a.sequence.value, a.lesion) for a in assets)
    assert cells_made == [("ADC", 0), ("ADC", 0), ("T2W", 1), ("T2W", 1)]
    assert {a.provenance["seed"] for a in assets} == {"3", "4", "5", "6"}
    for asset in assets:
        assert asset.provenance["sampler"] == "dpmpp" and "prostate" in asset.provenance["prompt"]
        assert len(asset.provenance["checkpoint_sha256"]) == 64
        assert asset.pair_key.startswith(f"job{job_id}-")
    # The images are in the asset store; the job's work folder is gone.
    assert len(stored_files(jobs_env)) == 8 and work_folders(jobs_env) == []


def test_cancelling_a_job_stops_it_and_imports_nothing(engine, jobs_env, tiny_checkpoint):
    job_id = submit_generate(
        engine, tiny_checkpoint, [GenerateCell(Sequence.T2W, Lesion.NO, 4)], SLOW
    )
    pid = wait_for_generator(engine, job_id)
    cancel_job(engine, job_id)
    job = get_job(engine, job_id)
    assert job.state == JobState.CANCELLED and job.finished_at is not None
    wait_until_gone(pid)
    assert synthetic_assets(engine) == []
    deadline = time.monotonic() + 30
    while work_folders(jobs_env) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert work_folders(jobs_env) == []
    assert get_job(engine, job_id).state == JobState.CANCELLED


def test_cancelling_during_the_import_imports_nothing(
    engine, jobs_env, tiny_checkpoint, monkeypatch
):
    """A cancel that arrives while the images are imported (here: once the first image is
    stored) rolls the import back: no asset, no stored file, the job cancelled."""
    real_import = study.jobs.import_manifest
    job_ids: list[int] = []

    def import_cancelled_midway(bind, manifest, *, progress, **options):
        def cancel_then_report(stage: str, done: int, total: int) -> None:
            if stage == "store" and done == 1:
                cancel_job(engine, job_ids[0])
            progress(stage, done, total)

        return real_import(bind, manifest, progress=cancel_then_report, **options)

    monkeypatch.setattr(study.jobs, "import_manifest", import_cancelled_midway)
    job_ids.append(
        submit_generate(engine, tiny_checkpoint, [GenerateCell(Sequence.T2W, Lesion.YES, 3)], FAST)
    )
    assert wait_until_done(engine, job_ids[0]) == JobState.CANCELLED
    deadline = time.monotonic() + 30
    while work_folders(jobs_env) and time.monotonic() < deadline:
        time.sleep(0.2)
    job = get_job(engine, job_ids[0])
    assert "importing 3 images" in job.log_tail and job.result == {}
    assert synthetic_assets(engine) == [] and stored_files(jobs_env) == []
    assert work_folders(jobs_env) == []


def test_a_queued_job_cancelled_and_a_job_cancelled_by_another_app_server(
    engine, jobs_env, tiny_checkpoint
):
    """With one job slot, a second job waits; cancelling it removes its work folder at once.
    A running job cancelled from another app server (which can only mark it cancelled in the
    database) is stopped by the app process that runs it."""
    cell = [GenerateCell(Sequence.T2W, Lesion.NO, 4)]
    running = submit_generate(engine, tiny_checkpoint, cell, SLOW)
    queued = submit_generate(engine, tiny_checkpoint, cell, FAST)
    assert get_job(engine, queued).state == JobState.QUEUED and len(work_folders(jobs_env)) == 2
    cancel_job(engine, queued)
    assert get_job(engine, queued).state == JobState.CANCELLED
    assert len(work_folders(jobs_env)) == 1
    with pytest.raises(study.jobs.JobError, match="cancelled"):
        cancel_job(engine, queued)

    pid = wait_for_generator(engine, running)
    with transaction(engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == running)
            .values(state=JobState.CANCELLED, finished_at=datetime.now(UTC))
        )
    wait_until_gone(pid)
    deadline = time.monotonic() + 30
    while work_folders(jobs_env) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert work_folders(jobs_env) == [] and synthetic_assets(engine) == []
    assert get_job(engine, running).state == JobState.CANCELLED


def test_a_failed_job_leaves_no_work_folder(engine, jobs_env, tiny_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "unet.safetensors").write_bytes(b"not weights")
    job_id = submit_generate(engine, broken, [GenerateCell(Sequence.T2W, Lesion.NO, 1)], FAST)
    assert wait_until_done(engine, job_id) == JobState.FAILED
    assert "exit status" in get_job(engine, job_id).error
    assert work_folders(jobs_env) == [] and synthetic_assets(engine) == []


def test_a_job_running_when_the_app_stopped_is_failed_at_restart(engine, jobs_env):
    with transaction(engine) as session:
        session.add(Job(kind=JobKind.GENERATE.value, state=JobState.RUNNING, pid=2**22 + 7))
    assert len(recover_jobs(engine)) == 1
    [job] = list_jobs(engine)
    assert job.state == JobState.FAILED and job.error == APP_STOPPED and job.finished_at
    with transaction(engine) as session:
        running = select(func.count()).select_from(Job).where(Job.state == JobState.RUNNING)
        assert session.scalar(running) == 0


def fake_generator() -> subprocess.Popen:
    """A process that looks like a generator (its command line names synth), in its own group."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "synth"], start_new_session=True
    )


def test_recovery_fails_only_this_hosts_jobs_whose_app_process_is_gone(engine, jobs_env):
    """Several app servers share one database: a restarted one fails the running jobs of its own
    host whose app process is gone (stopping their generator), and leaves alone those of app
    processes that still run on its host and those of other hosts."""
    me = this_runner()
    sibling = subprocess.Popen(["sleep", "120"])  # another app process of this host
    gone = subprocess.Popen(["sleep", "120"])  # an app process that has died since
    gone_start = process_start(gone.pid)
    gone.kill()
    gone.wait()
    orphan_generator, foreign_pid = fake_generator(), fake_generator()
    runners = {
        "other host": ("app-server-2.internal", foreign_pid.pid, 1234, foreign_pid.pid),
        "live sibling": (me.host, sibling.pid, process_start(sibling.pid), None),
        "dead app": (me.host, gone.pid, gone_start, orphan_generator.pid),
        "recycled pid": (me.host, me.pid, (me.start or 0) + 1, None),
        "this process, no thread": (me.host, me.pid, me.start, None),
        "before runners were recorded": (None, None, None, None),
    }
    try:
        ids = {}
        with transaction(engine) as session:
            for name, (host, pid, start, generator) in runners.items():
                job = Job(
                    kind=JobKind.GENERATE.value,
                    state=JobState.RUNNING,
                    pid=generator,
                    runner_host=host,
                    runner_pid=pid,
                    runner_start=start,
                )
                session.add(job)
                session.flush()
                ids[name] = job.id
        failed = recover_jobs(engine)
        states = {name: get_job(engine, job_id).state for name, job_id in ids.items()}
        assert states == {
            "other host": JobState.RUNNING,
            "live sibling": JobState.RUNNING,
            "dead app": JobState.FAILED,
            "recycled pid": JobState.FAILED,
            "this process, no thread": JobState.FAILED,
            "before runners were recorded": JobState.FAILED,
        }
        assert sorted(failed) == sorted(ids[name] for name, s in states.items() if s == "failed")
        assert get_job(engine, ids["dead app"]).error == APP_STOPPED
        # The dead app's generator is stopped; the other host's pid, alive here, is not touched.
        assert orphan_generator.wait(timeout=30) == -15
        assert foreign_pid.poll() is None
        # A second start changes nothing.
        assert recover_jobs(engine) == []
    finally:
        for process in (sibling, orphan_generator, foreign_pid):
            process.kill()
            process.wait()


def test_the_runner_columns_migration_keeps_the_jobs(engine, jobs_env):
    """Revision 0002 adds the runner columns to a database at 0001 holding a running job; that
    job (its runner unknown) is failed at the next start; 0002 downgrades again."""
    config = alembic_config(engine)
    command.downgrade(config, "0001")
    columns = {c["name"] for c in sa.inspect(engine).get_columns("jobs")}
    assert "runner_host" not in columns
    jobs_0001 = sa.table(
        "jobs",
        *[sa.column(name) for name in ("kind", "state", "progress", "log_tail", "error", "pid")],
        sa.column("params", sa.JSON),
        sa.column("result", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    with engine.begin() as connection:
        connection.execute(
            jobs_0001.insert().values(
                kind="generate",
                state="running",
                progress=0.5,
                log_tail="",
                error="",
                pid=None,
                params={"images": 4},
                result={},
                created_at=datetime.now(UTC),
            )
        )
    command.upgrade(config, "head")
    [job] = list_jobs(engine)
    assert (job.state, job.progress, job.params, job.runner_host) == (
        JobState.RUNNING,
        0.5,
        {"images": 4},
        None,
    )
    assert recover_jobs(engine) == [job.id]
    assert get_job(engine, job.id).state == JobState.FAILED
    command.downgrade(config, "0001")
    assert "runner_pid" not in {c["name"] for c in sa.inspect(engine).get_columns("jobs")}
    command.upgrade(config, "head")
