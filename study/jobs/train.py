"""Train jobs: a new checkpoint trained on imported assets (`python -m synth train`, run by
`study.jobs.runner`), resuming a stopped run, a dry run that times it, and its loss curve."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from study import settings
from study.db import transaction
from study.design import PoolFilter
from study.imaging.types import Lesion, Sequence
from study.jobs.checkpoints import checkpoints_dir, job_device
from study.jobs.processes import run_generator
from study.jobs.queue import get_job, list_jobs, submit
from study.jobs.states import JobError, JobKind, JobView
from study.jobs.workdirs import has_resume_state, new_work_dir, write_asset_manifest
from study.models import Asset, JobState
from study.storage import AssetStore
from synth.contract import TrainRequest, TrainSettings

CHECKPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class TrainingSelection:
    """Which imported assets to train on. Empty sets mean no restriction."""

    sequences: frozenset[Sequence] = frozenset()
    lesions: frozenset[Lesion] = frozenset()
    pool: PoolFilter = field(default_factory=PoolFilter)

    def admits(self, asset: Asset) -> bool:
        lesion = Lesion.UNKNOWN if asset.lesion is None else Lesion(str(asset.lesion))
        return (
            self.pool.admits(asset)
            and (not self.sequences or asset.sequence in self.sequences)
            and (not self.lesions or lesion in self.lesions)
        )


def selected_assets(engine: Engine, selection: TrainingSelection) -> list[Asset]:
    with transaction(engine) as session:
        return [a for a in session.scalars(select(Asset).order_by(Asset.id)) if selection.admits(a)]


def submit_training(
    engine: Engine,
    name: str,
    selection: TrainingSelection,
    training: TrainSettings,
    *,
    store: AssetStore | None = None,
) -> int:
    """Queue training of a new checkpoint VTT_DATA_DIR/checkpoints/`name` with the settings
    `training`; returns the job id."""
    if not CHECKPOINT_NAME.match(name):
        raise JobError(
            f"checkpoint name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    out = checkpoints_dir() / name
    if out.exists():
        raise JobError(f"a checkpoint named {name!r} exists already: choose another name")
    assets = selected_assets(engine, selection)
    if not assets:
        raise JobError("no imported asset matches the filters: there is nothing to train on")
    if training.mask_channel and not any(asset.mask_sha256 for asset in assets):
        raise JobError(
            "the lesion-mask condition needs lesion masks, and none of the chosen assets has "
            "one: import images with a mask column, or train without the condition"
        )
    work = new_work_dir()
    manifest = write_asset_manifest(assets, work / "training", store or AssetStore())
    request = TrainRequest.from_settings(training, manifest=manifest, out=out, progress="jsonl")
    params = {
        "folder": str(work),
        "name": name,
        "checkpoint": str(out),
        "manifest": str(manifest),
        "images": len(assets),
        "request": request.to_json(),
    }
    return submit(engine, JobKind.TRAIN, params)


def can_resume(job: JobView) -> bool:
    """A stopped training run whose checkpoint folder holds the state to continue from."""
    return (
        job.kind == JobKind.TRAIN
        and job.state in (JobState.FAILED, JobState.CANCELLED)
        and has_resume_state(job.params)
    )


def resume_training(engine: Engine, job_id: int) -> int:
    """Queue a job that continues a stopped training run (`synth train --resume`)."""
    job = get_job(engine, job_id)
    if not can_resume(job):
        raise JobError(f"job {job_id} is not a stopped training run with a saved state")
    for other in list_jobs(engine, JobKind.TRAIN, limit=None):
        if other.active and other.params["checkpoint"] == job.params["checkpoint"]:
            raise JobError(f"job {other.id} is training this checkpoint already")
    if "request" not in job.params:
        raise JobError(f"job {job_id} was started by an older version of the app: train anew")
    request = TrainRequest.from_json(job.params["request"])
    return submit(
        engine, JobKind.TRAIN, job.params | {"request": replace(request, resume=True).to_json()}
    )


@dataclass(frozen=True)
class TrainingEstimate:
    device: str
    seconds_per_step: float
    total_s: float


def estimate_training(
    engine: Engine,
    selection: TrainingSelection,
    training: TrainSettings,
    *,
    store: AssetStore | None = None,
) -> TrainingEstimate:
    """Time a 3-step dry run of the same training in this process (setup excluded) and scale
    to all steps."""
    assets = selected_assets(engine, selection)
    if not assets:
        raise JobError("no imported asset matches the filters: there is nothing to train on")
    device = job_device()
    settings.data_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir()) as folder:
        manifest = write_asset_manifest(assets, Path(folder) / "data", store or AssetStore())
        # Every step logged (its time), none saved but the last, no time limit.
        dry_run = replace(training, steps=3, log_every=1, save_every=3, max_minutes=None)
        request = TrainRequest.from_settings(
            dry_run, manifest=manifest, out=Path(folder) / "checkpoint", device=device
        )
        run_generator(request, Path(folder), "dry run")
        loss = training_loss(Path(folder) / "checkpoint")
    elapsed = loss["elapsed_s"].to_list()
    per_step = (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)
    return TrainingEstimate(device, per_step, per_step * training.steps)


def training_loss(checkpoint: Path | str) -> pd.DataFrame:
    """DIR/loss.csv of a training run (step, loss, lr, elapsed_s); empty before the first log."""
    path = Path(checkpoint) / "loss.csv"
    columns = ["step", "loss", "lr", "elapsed_s"]
    if not path.is_file():
        return pd.DataFrame(columns=columns)
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        # The trainer may be half-way through writing a line.
        return pd.DataFrame(columns=columns)
