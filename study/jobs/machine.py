"""Machine evaluation jobs of a study: the realism checks (`python -m synth evaluate`) and the
augmentation experiment (`python -m synth augment`) on the study's real and synthetic images.

A job's work folder holds the two manifests (the assets' canonical arrays, written from the
asset store as the generate and train jobs write their inputs) and `generators/`, a link to
every checkpoint the app knows: `augment` looks up there the checkpoint that made each
synthetic image (by its sha256) and refuses a fold that would test a patient it was trained on.
The runner (`study.jobs.runner`) runs the request and keeps its `--json` object as the job's
result, which the Machine evaluation page shows beside the readers' results.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from study.db import transaction
from study.imaging.types import Origin
from study.jobs.checkpoints import list_checkpoints
from study.jobs.queue import list_jobs, submit
from study.jobs.states import JobError, JobKind, JobView
from study.jobs.workdirs import new_work_dir, write_asset_manifest
from study.models import Asset, Case, CaseAsset, JobState, Study
from study.storage import AssetStore
from synth.contract import AugmentRequest, EvaluateRequest, Request

MACHINE_KINDS = (JobKind.EVALUATE, JobKind.AUGMENT)
# The job's inputs, relative to its work folder (where the check runs).
REAL_MANIFEST = Path("real") / "manifest.csv"
SYNTHETIC_MANIFEST = Path("synthetic") / "manifest.csv"
GENERATORS = Path("generators")


@dataclass(frozen=True)
class StudyImages:
    """The assets of a study's analysed cases, real and synthetic."""

    real: list[Asset]
    synthetic: list[Asset]

    @property
    def patients(self) -> int:
        return len({asset.patient_id for asset in self.real})


def study_images(engine: Engine, study_id: int) -> StudyImages:
    """The real and synthetic images of a study's cases; practice cases are left out, as their
    readings are (the machine is compared with the readings)."""
    with transaction(engine) as session:
        if session.get(Study, study_id) is None:
            raise JobError(f"there is no study with id {study_id}")
        shown = (
            select(CaseAsset.asset_id)
            .join(Case, Case.id == CaseAsset.case_id)
            .where(Case.study_id == study_id, Case.practice.is_(False))
        )
        assets = list(session.scalars(select(Asset).where(Asset.id.in_(shown)).order_by(Asset.id)))
    return StudyImages(
        real=[a for a in assets if a.origin == Origin.REAL],
        synthetic=[a for a in assets if a.origin == Origin.SYNTHETIC],
    )


def submit_evaluation(
    engine: Engine, study_id: int, *, store: AssetStore | None = None, **options: Any
) -> int:
    """Queue `synth evaluate` on a study's images with `options` (EvaluateRequest's: folds,
    epochs, seed, ...); returns the job id."""

    def request() -> Request:
        return EvaluateRequest(
            real=REAL_MANIFEST,
            synthetic=SYNTHETIC_MANIFEST,
            json=True,
            progress="jsonl",
            **options,
        )

    return _submit(engine, JobKind.EVALUATE, study_id, request, store)


def submit_augmentation(
    engine: Engine, study_id: int, *, store: AssetStore | None = None, **options: Any
) -> int:
    """Queue `synth augment` on a study's images with `options` (AugmentRequest's: folds,
    repeats, quick, allow_unrecorded, ...); returns the job id."""

    def request() -> Request:
        return AugmentRequest(
            real=REAL_MANIFEST,
            synthetic=SYNTHETIC_MANIFEST,
            generators=GENERATORS,
            json=True,
            progress="jsonl",
            **options,
        )

    return _submit(engine, JobKind.AUGMENT, study_id, request, store)


def _submit(
    engine: Engine,
    kind: JobKind,
    study_id: int,
    make_request: Callable[[], Request],
    store: AssetStore | None,
) -> int:
    images = study_images(engine, study_id)
    if not images.real or not images.synthetic:
        raise JobError(
            f"the study has {len(images.real)} real and {len(images.synthetic)} synthetic "
            "images: a machine check compares the two"
        )
    # Made (and its options checked) before anything is written.
    request = make_request()
    work = new_work_dir()
    try:
        store = store or AssetStore()
        write_asset_manifest(images.real, work / REAL_MANIFEST.parent, store)
        write_asset_manifest(images.synthetic, work / SYNTHETIC_MANIFEST.parent, store)
        link_checkpoints(work / GENERATORS)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    params = {
        "folder": str(work),
        "study_id": study_id,
        "request": request.to_json(),
        "images": {"real": len(images.real), "synthetic": len(images.synthetic)},
    }
    return submit(engine, kind, params)


def link_checkpoints(folder: Path) -> None:
    """A link in `folder` to each checkpoint the app knows (the bundled ones and those under
    VTT_DATA_DIR), named by its number and folder."""
    folder.mkdir(parents=True)
    for number, info in enumerate(list_checkpoints()):
        (folder / f"{number}-{info.path.name}").symlink_to(
            info.path.resolve(), target_is_directory=True
        )


def machine_jobs(engine: Engine, study_id: int, *, limit: int = 10) -> list[JobView]:
    """The newest evaluate and augment jobs of a study."""
    found = [
        job
        for kind in MACHINE_KINDS
        for job in list_jobs(engine, kind, limit=None)
        if job.params.get("study_id") == study_id
    ]
    return sorted(found, key=lambda job: job.id, reverse=True)[:limit]


def latest_result(engine: Engine, study_id: int, kind: JobKind) -> JobView | None:
    """The newest job of `kind` on a study that succeeded; None when none has."""
    succeeded = [
        job
        for job in list_jobs(engine, kind, limit=None)
        if job.params.get("study_id") == study_id and job.state == JobState.SUCCEEDED
    ]
    return succeeded[0] if succeeded else None
