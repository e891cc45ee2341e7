"""Background jobs with a real generator subprocess on a tiny checkpoint trained in the test."""

from __future__ import annotations

import json
import pickle
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, select, update
from tiny_generator import (
    stored_files,
    synthetic_assets,
    train_tiny_checkpoint,
    wait_for_generator,
    wait_for_no_work_folders,
    wait_until_done,
    wait_until_gone,
    work_folders,
)

import study.jobs
import study.jobs.runner
import study.jobs.states
from study.db import alembic_config, transaction
from study.imaging.types import Lesion, Sequence
from study.jobs import (
    RUNNER_SILENT,
    RUNNER_STOPPED,
    GenerateCell,
    JobKind,
    SampleOptions,
    cancel_job,
    get_job,
    list_jobs,
    process_start,
    recover_jobs,
    start_consumer,
    stop_consumer,
    submit_generate,
    this_runner,
)
from study.jobs.engine import job_queue
from study.models import Job, JobState
from synth.contract import read_checkpoint_info

pytestmark = pytest.mark.slow

FAST = SampleOptions(steps=2, seed=3)
SLOW = SampleOptions(steps=500, seed=0)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def jobs_env(engine, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app's own queue in `data_dir`, run by this process's threads against `engine`."""
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    monkeypatch.delenv("VTT_JOB_BROKER", raising=False)
    assert start_consumer(engine)
    yield data_dir
    stop_consumer()


def heartbeat(engine, job_id: int) -> datetime:
    with transaction(engine) as session:
        beat = session.get_one(Job, job_id).heartbeat_at
    assert beat is not None
    return beat


def test_the_checkpoint_config_is_read_without_the_generator(tiny_checkpoint):
    info = read_checkpoint_info(tiny_checkpoint)
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
    # Its runner writes a heartbeat every few seconds while it runs.
    first = heartbeat(engine, job_id)
    deadline = time.monotonic() + 30
    while heartbeat(engine, job_id) == first and time.monotonic() < deadline:
        time.sleep(0.2)
    assert heartbeat(engine, job_id) > first
    cancel_job(engine, job_id)
    job = get_job(engine, job_id)
    assert job.state == JobState.CANCELLED and job.finished_at is not None
    wait_until_gone(pid)
    assert synthetic_assets(engine) == []
    wait_for_no_work_folders(jobs_env)
    assert get_job(engine, job_id).state == JobState.CANCELLED


def test_cancelling_during_the_import_imports_nothing(
    engine, jobs_env, tiny_checkpoint, monkeypatch
):
    """A cancel that arrives while the images are imported (here: once the first image is
    stored) rolls the import back: no asset, no stored file, the job cancelled."""
    real_import = study.jobs.runner.import_manifest
    job_ids: list[int] = []

    def import_cancelled_midway(bind, manifest, *, progress, **options):
        def cancel_then_report(stage: str, done: int, total: int) -> None:
            if stage == "store" and done == 1:
                cancel_job(engine, job_ids[0])
            progress(stage, done, total)

        return real_import(bind, manifest, progress=cancel_then_report, **options)

    monkeypatch.setattr(study.jobs.runner, "import_manifest", import_cancelled_midway)
    job_ids.append(
        submit_generate(engine, tiny_checkpoint, [GenerateCell(Sequence.T2W, Lesion.YES, 3)], FAST)
    )
    assert wait_until_done(engine, job_ids[0]) == JobState.CANCELLED
    wait_for_no_work_folders(jobs_env)
    job = get_job(engine, job_ids[0])
    assert "importing 3 images" in job.log_tail and job.result == {}
    assert synthetic_assets(engine) == [] and stored_files(jobs_env) == []


def test_a_queued_job_cancelled_and_a_job_cancelled_by_another_app_server(
    engine, jobs_env, tiny_checkpoint
):
    """With one job slot, a second job waits; cancelling it removes its work folder at once,
    and its task, run later, does nothing. A running job cancelled from another app server
    (which can only mark it cancelled in the database) is stopped by the process that runs
    it."""
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
    wait_for_no_work_folders(jobs_env)
    assert synthetic_assets(engine) == []
    assert get_job(engine, running).state == JobState.CANCELLED
    # The cancelled job's task leaves the queue once the slot is free, and starts nothing.
    huey = job_queue(engine).huey
    deadline = time.monotonic() + 30
    while huey.pending_count() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert huey.pending_count() == 0
    time.sleep(1)
    job = get_job(engine, queued)
    assert job.state == JobState.CANCELLED and job.started_at is None and job.runner_host is None


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
    assert job.state == JobState.FAILED and job.error == RUNNER_STOPPED and job.finished_at
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
        assert get_job(engine, ids["dead app"]).error == RUNNER_STOPPED
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


def test_a_job_whose_runner_went_silent_is_failed_when_jobs_are_listed(engine, jobs_env):
    """A worker on another machine may die unseen: a running job whose heartbeat is older than
    the timeout is failed (its work folder removed) when jobs are listed or fetched, and at
    start-up; a job whose heartbeat is fresh runs on."""
    now = datetime.now(UTC)
    old = now - timedelta(seconds=study.jobs.states.HEARTBEAT_TIMEOUT_S + 30)
    folder = jobs_env / "jobs" / "job-silent"
    folder.mkdir(parents=True)
    runs = {
        "silent": {"heartbeat_at": old, "started_at": old},
        "fresh": {"heartbeat_at": now, "started_at": old},
        "claimed before heartbeats (0003)": {"heartbeat_at": None, "started_at": old},
    }
    ids = {}
    with transaction(engine) as session:
        for name, times in runs.items():
            job = Job(
                kind=JobKind.GENERATE.value,
                state=JobState.RUNNING,
                params={"folder": str(folder)} if name == "silent" else {},
                runner_host="gpu-worker-7.internal",
                runner_pid=4242,
                runner_start=1,
                **times,
            )
            session.add(job)
            session.flush()
            ids[name] = job.id
    states = {job.id: job for job in list_jobs(engine)}
    assert {name: states[job_id].state for name, job_id in ids.items()} == {
        "silent": JobState.FAILED,
        "fresh": JobState.RUNNING,
        "claimed before heartbeats (0003)": JobState.FAILED,
    }
    assert states[ids["silent"]].error == RUNNER_SILENT and states[ids["silent"]].finished_at
    assert not folder.exists()
    # The fresh one goes silent too: fetching it, or a start, fails it.
    with transaction(engine) as session:
        session.get_one(Job, ids["fresh"]).heartbeat_at = old
    assert get_job(engine, ids["fresh"]).state == JobState.FAILED
    assert recover_jobs(engine) == []


def test_a_job_the_broker_cannot_take_is_failed(engine, jobs_env, tiny_checkpoint, monkeypatch):
    """With VTT_JOB_BROKER naming a Redis that does not answer, submitting says so and leaves a
    failed job (and no work folder), not one queued forever."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free: nothing listens there
    monkeypatch.setenv("VTT_JOB_BROKER", f"redis://127.0.0.1:{port}/0")
    with pytest.raises(study.jobs.JobError, match="could not be queued"):
        submit_generate(engine, tiny_checkpoint, [GenerateCell(Sequence.T2W, Lesion.NO, 1)], FAST)
    [job] = list_jobs(engine)
    assert job.state == JobState.FAILED and "could not be queued" in job.error
    assert work_folders(jobs_env) == []


def test_the_broker_setting_decides_who_runs_the_jobs(engine, data_dir, monkeypatch):
    monkeypatch.setenv("VTT_JOB_BROKER", "redis://127.0.0.1:6379/0")
    # Workers run the jobs: the app starts no threads of its own.
    assert not start_consumer(engine) and study.jobs.remote_workers()
    monkeypatch.setenv("VTT_JOB_BROKER", "amqp://127.0.0.1")
    with pytest.raises(study.jobs.JobError, match="redis://host:port/db"):
        start_consumer(engine)
    monkeypatch.setenv("VTT_JOB_BROKER", "")
    with pytest.raises(study.jobs.JobError, match="VTT_JOB_BROKER is empty"):
        study.jobs.serve(engine, 1)


def test_the_heartbeat_migration(engine, jobs_env):
    """Revision 0004 adds the heartbeat column, keeping the jobs; it downgrades again."""
    with transaction(engine) as session:
        session.add(Job(kind=JobKind.TRAIN.value, state=JobState.SUCCEEDED, progress=1.0))
    config = alembic_config(engine)
    command.downgrade(config, "0003")
    assert "heartbeat_at" not in {c["name"] for c in sa.inspect(engine).get_columns("jobs")}
    command.upgrade(config, "head")
    [job] = list_jobs(engine)
    assert (job.kind, job.state, job.progress) == ("train", JobState.SUCCEEDED, 1.0)


def test_queue_messages_are_json_so_the_broker_cannot_run_code(engine, data_dir):
    """A message names the task and the job's id, as JSON; a pickled object written to the
    queue (anyone who can write to a Redis broker could) is refused, not unpickled."""
    queue = job_queue(engine)
    queue.run(7)
    message = queue.huey.storage.dequeue()
    assert json.loads(message)["args"] == [7]
    assert queue.huey.deserialize_task(message).args == (7,)
    marker = data_dir / "unpickled"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    with pytest.raises(ValueError):
        queue.huey.deserialize_task(pickle.dumps(Payload()))
    assert not marker.exists()
