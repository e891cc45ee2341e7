"""Helpers for job tests: a tiny generator checkpoint (a 32-pixel 'tiny' model trained for 2
steps on a 2-patient phantom, made through the generator's command line, as the app's jobs use
it), and waiting for a job to end.

Importable from every test folder (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from study.jobs import get_job
from study.models import JobState


def synth(*args: str, cwd: Path) -> None:
    """Run `python -m synth ARGS` in `cwd`; fail the test with its output when it fails."""
    finished = subprocess.run(
        [sys.executable, "-m", "synth", *args], cwd=cwd, capture_output=True, text=True
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
