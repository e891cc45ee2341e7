"""A tiny generator checkpoint for job tests: a 32-pixel 'tiny' model trained for 2 steps on a
2-patient phantom, made through the generator's command line (as the app's jobs use it).

Importable from every test folder (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


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
