"""Jobs run by a worker in another process, as on a GPU machine: the app queues them in Redis
(VTT_JOB_BROKER) through its service functions, and `python -m study worker`, sharing the
database and VTT_DATA_DIR, runs the generator and imports the images. Debian's redis-server
runs for the test on a free port, persisting nothing; SQLite and PostgreSQL databases alike."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from app_server import free_port
from sqlalchemy import Engine
from tiny_generator import (
    stored_files,
    synthetic_assets,
    train_tiny_checkpoint,
    wait_for_generator,
    wait_for_no_work_folders,
    wait_until_done,
    wait_until_gone,
)

import study.jobs.queue
import study.jobs.states
from study.db import open_database, transaction
from study.imaging.types import Lesion, Sequence
from study.jobs import (
    RUNNER_SILENT,
    RUNNER_STOPPED,
    GenerateCell,
    SampleOptions,
    cancel_job,
    get_job,
    list_jobs,
    submit_generate,
)
from study.jobs.engine import job_queue
from study.models import Job, JobState

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = Path(shutil.which("redis-server") or "/usr/bin/redis-server")
FAST = SampleOptions(steps=2, seed=3)
SLOW = SampleOptions(steps=500, seed=0)


@pytest.fixture(scope="module")
def redis_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """Debian's redis-server on a free port of this machine, saving nothing to disk; skips
    where it is missing, except under CI=true (tests/conftest.py's `require`)."""
    suite = request.config.pluginmanager.get_plugin(str(ROOT / "tests" / "conftest.py"))
    suite.require(REDIS_SERVER.is_file(), f"{REDIS_SERVER} is missing (make redis installs it)")
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    with (folder / "redis.log").open("w") as log:
        server = subprocess.Popen(
            [
                *(str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(folder)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    folder / "redis.log"
                ).read_text()
                time.sleep(0.1)
        yield url
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app(
    request: pytest.FixtureRequest, redis_url: str, data_dir: Path, tmp_path: Path, monkeypatch
) -> Iterator[Engine]:
    """The app's side: its database (a SQLite file or a PostgreSQL schema, which the worker
    opens too) and VTT_JOB_BROKER naming the Redis, emptied for the test."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("VTT_DATABASE_URL", url)
    monkeypatch.setenv("VTT_JOB_BROKER", redis_url)
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    engine = open_database(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def checkpoint(tiny_checkpoint: Path, data_dir: Path) -> Path:
    """The tiny checkpoint in the shared folder, where app and worker both find it."""
    return Path(shutil.copytree(tiny_checkpoint, data_dir / "checkpoints" / "tiny"))


class Worker:
    """`python -m study worker` in a process of its own, with the test's settings."""

    def __init__(self, log: Path) -> None:
        self.log = log
        with log.open("a") as stream:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "study", "worker", "--workers", "1"],
                cwd=ROOT,
                env=os.environ | {"VTT_DEVICE": "cpu"},
                stdout=stream,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


@pytest.fixture
def workers(app: Engine, tmp_path: Path) -> Iterator[list[Worker]]:
    """A list to start workers into; every one still running is stopped at the end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def start_worker(workers: list[Worker], tmp_path: Path) -> Worker:
    worker = Worker(tmp_path / f"worker-{len(workers)}.log")
    workers.append(worker)
    return worker


def test_a_worker_runs_a_job_the_app_submitted(app, checkpoint, workers, data_dir, tmp_path):
    worker = start_worker(workers, tmp_path)
    cells = [GenerateCell(Sequence.T2W, Lesion.YES, 2), GenerateCell(Sequence.ADC, Lesion.NO, 1)]
    job_id = submit_generate(app, checkpoint, cells, FAST)
    state = wait_until_done(app, job_id)
    assert state == JobState.SUCCEEDED, get_job(app, job_id).error + worker.output()
    job = get_job(app, job_id)
    assert job.progress == 1.0 and job.result == {"added": 3, "unchanged": 0}
    assert "device: cpu" in job.log_tail and '"event": "progress"' in job.log_tail
    assert "importing 3 images" in job.log_tail
    with transaction(app) as session:
        row = session.get_one(Job, job_id)
        # The worker ran it, not this process, and wrote its heartbeat as it ran.
        assert row.runner_pid == worker.process.pid
        assert row.heartbeat_at is not None and row.started_at is not None
    assets = synthetic_assets(app)
    assert sorted((a.sequence.value, a.lesion) for a in assets) == [
        ("ADC", 0),
        ("T2W", 1),
        ("T2W", 1),
    ]
    assert {a.provenance["seed"] for a in assets} == {"3", "4", "5"}
    for asset in assets:
        assert asset.provenance["steps"] == "2" and "prostate" in asset.provenance["prompt"]
        assert len(asset.provenance["checkpoint_sha256"]) == 64
    # Canonical array and display render of each, in the shared asset store.
    assert len(stored_files(data_dir)) == 6
    wait_for_no_work_folders(data_dir)


def test_a_job_cancelled_in_the_app_stops_on_the_worker_and_imports_nothing(
    app, checkpoint, workers, data_dir, tmp_path, monkeypatch
):
    """The app runs on another machine than the worker (here: says it does), so only the
    worker can stop the generator: it sees the cancel in the database. A job cancelled while
    it waited is never started."""
    monkeypatch.setattr(study.jobs.queue, "gethostname", lambda: "app-server.elsewhere")
    worker = start_worker(workers, tmp_path)
    cell = [GenerateCell(Sequence.T2W, Lesion.NO, 4)]
    running = submit_generate(app, checkpoint, cell, SLOW)
    waiting = submit_generate(app, checkpoint, cell, FAST)
    pid = wait_for_generator(app, running)
    assert get_job(app, waiting).state == JobState.QUEUED
    cancel_job(app, waiting)
    cancel_job(app, running)
    assert get_job(app, running).state == JobState.CANCELLED
    wait_until_gone(pid)
    wait_for_no_work_folders(data_dir)
    assert synthetic_assets(app) == [] and stored_files(data_dir) == []
    # The waiting job's task leaves the queue once the worker is free, and starts nothing.
    huey = job_queue(app).huey
    deadline = time.monotonic() + 30
    while huey.pending_count() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert huey.pending_count() == 0, worker.output()
    time.sleep(1)
    job = get_job(app, waiting)
    assert job.state == JobState.CANCELLED and job.started_at is None and job.runner_host is None
    assert worker.process.poll() is None, worker.output()


def test_a_stopped_or_dead_worker_has_its_job_failed(
    app, checkpoint, workers, data_dir, tmp_path, monkeypatch
):
    """SIGTERM: the worker fails the job it runs and stops its generator before it exits.
    SIGKILL: nothing runs to tell; its heartbeat stops, and listing the jobs fails the job
    once the heartbeat is older than the timeout (shortened here)."""
    cell = [GenerateCell(Sequence.T2W, Lesion.NO, 4)]
    worker = start_worker(workers, tmp_path)
    job_id = submit_generate(app, checkpoint, cell, SLOW)
    pid = wait_for_generator(app, job_id)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=60) == 0, worker.output()
    job = get_job(app, job_id)
    assert (job.state, job.error) == (JobState.FAILED, RUNNER_STOPPED), worker.output()
    wait_until_gone(pid)
    wait_for_no_work_folders(data_dir)

    monkeypatch.setattr(study.jobs.states, "HEARTBEAT_TIMEOUT_S", 10.0)
    worker = start_worker(workers, tmp_path)
    job_id = submit_generate(app, checkpoint, cell, SLOW)
    pid = wait_for_generator(app, job_id)
    worker.process.send_signal(signal.SIGKILL)
    worker.process.wait(timeout=10)
    killed_at = time.monotonic()
    assert get_job(app, job_id).state == JobState.RUNNING
    deadline = killed_at + 60
    while (job := next(j for j in list_jobs(app) if j.id == job_id)).active:
        assert time.monotonic() < deadline, "the dead worker's job is still running"
        time.sleep(0.5)
    assert (job.state, job.error) == (JobState.FAILED, RUNNER_SILENT)
    # Failed only once its heartbeat had stopped for the timeout, less one beat at most.
    assert time.monotonic() - killed_at >= 10.0 - study.jobs.states.HEARTBEAT_S
    # The orphaned generator's output went nowhere: it stopped at its next line.
    wait_until_gone(pid)
    wait_for_no_work_folders(data_dir)
    assert synthetic_assets(app) == []
