"""The generator checkpoints jobs can use, and the device the generator runs on here."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

from study import settings
from study.jobs.states import JobError
from synth.contract import CHECKPOINT_CONFIG, CheckpointInfo, read_checkpoint_info

DEMO_CHECKPOINT = Path(__file__).resolve().parents[2] / "data" / "demo" / "checkpoint"
# The demo generator's few-step student (`python -m synth distill`): the fast choice on a CPU.
DEMO_STUDENT = DEMO_CHECKPOINT.parent / "student"


@functools.cache
def _cuda_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return probe.stdout.strip() == "True"


def job_device() -> str:
    """The device the generator uses in this process's jobs: VTT_DEVICE, or with 'auto' cuda
    when the generator's torch sees one.

    The check runs once per process, in a subprocess (the app itself never loads torch). A
    worker checks its own machine: the device is chosen where the job runs.
    """
    wanted = settings.get("VTT_DEVICE").strip().lower()
    if wanted not in {"auto", "cpu", "cuda"}:
        raise JobError(f"VTT_DEVICE is {wanted!r}; use auto, cpu or cuda")
    if wanted != "auto":
        return wanted
    return "cuda" if _cuda_available() else "cpu"


def checkpoints_dir() -> Path:
    return settings.data_dir() / "checkpoints"


def list_checkpoints() -> list[CheckpointInfo]:
    """The bundled demo checkpoint and its student (when present) and every checkpoint under
    VTT_DATA_DIR."""
    found = []
    if (DEMO_CHECKPOINT / CHECKPOINT_CONFIG).is_file():
        found.append(read_checkpoint_info(DEMO_CHECKPOINT, "demo (bundled)"))
    if (DEMO_STUDENT / CHECKPOINT_CONFIG).is_file():
        found.append(read_checkpoint_info(DEMO_STUDENT, "demo student (bundled; fast on a CPU)"))
    if checkpoints_dir().is_dir():
        found.extend(
            read_checkpoint_info(folder)
            for folder in sorted(checkpoints_dir().iterdir())
            if (folder / CHECKPOINT_CONFIG).is_file()
        )
    return found


def check_checkpoint(checkpoint: Path) -> None:
    if not (checkpoint / CHECKPOINT_CONFIG).is_file():
        raise JobError(f"{checkpoint} is not a checkpoint (it has no {CHECKPOINT_CONFIG})")
