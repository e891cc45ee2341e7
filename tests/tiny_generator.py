"""Helpers for job tests: a tiny generator checkpoint (a 32-pixel 'tiny' model trained for 2
steps on a 2-patient phantom, made through the generator's command line, as the app's jobs use
it), waiting for a job's generator and for a job to end, and what a job left behind.

Importable from every test folder (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from study.db import transaction
from study.imaging.types import Origin
from study.jobs import get_job, process_start
from study.models import Asset, Job, JobState


def synth(*args: str, cwd: Path) -> None:
    """Run `python -m synth ARGS` in `cwd`, PyTorch on one thread (two threads slow each other
    down several times while the suite's other worker is busy); fail the test with its output
    when it fails."""
    finished = subprocess.run(
        [sys.executable, "-m", "synth", *args],
        cwd=cwd,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr


def train_tiny_checkpoint(folder: Path) -> Path:
    """Train the tiny checkpoint in `folder`; returns its folder (`folder`/checkpoint)."""
    phantom = "phantom --out phantom --patients 2 --seed 1 --size 64"
    synth(*f"{phantom} --slices 3".split(), cwd=folder)
    train = "train --manifest phantom/manifest.csv --out checkpoint --model tiny --size 32"
    synth(*f"{train} --steps 2 --batch 4 --device cpu".split(), cwd=folder)
    return folder / "checkpoint"


def wait_until_done(engine, job_id: int, timeout_s: float = 300) -> JobState:
    """The state a job ends in; fails the test when it is still active after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = get_job(engine, job_id)
        if not job.active:
            return job.state
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {get_job(engine, job_id).state} after {timeout_s}s")


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


def wait_for_no_work_folders(data_dir: Path, timeout_s: float = 30) -> None:
    """Until the jobs' work folders are gone (their runner removes them as the jobs end)."""
    deadline = time.monotonic() + timeout_s
    while work_folders(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert work_folders(data_dir) == []


def stored_files(data_dir: Path) -> list[Path]:
    root = data_dir / "assets"
    return [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else []
