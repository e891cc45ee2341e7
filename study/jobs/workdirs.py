"""Jobs' work folders, under VTT_DATA_DIR/jobs.

The app makes a job's folder when it submits the job and writes the generator's inputs there
(condition images, training data); the process that runs the job, maybe a worker on another
machine sharing VTT_DATA_DIR, runs the generator in it. An ended job's folder is removed, except
a stopped training run's while it can be resumed (checkpoints live under
VTT_DATA_DIR/checkpoints, never in a work folder).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from study import settings
from study.imaging.canonical import canonical_from_bytes, write_canonical_png
from study.imaging.lesions import LesionRule, is_positive
from study.imaging.manifest import write_manifest
from study.imaging.mask import mask_from_bytes, write_mask_png
from study.imaging.types import Intensity, Origin
from study.jobs.states import JobKind
from study.models import Asset
from study.storage import AssetStore

# The provenance columns that name the generator of a synthetic image.
GENERATOR_COLUMNS = ("generator", "checkpoint_sha256")


def jobs_root() -> Path:
    return settings.data_dir() / "jobs"


def new_work_dir() -> Path:
    """A fresh folder for one job's files (made before the job row, so named apart from it)."""
    root = jobs_root()
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix="job-"))


def write_asset_manifest(assets: list[Asset], folder: Path, store: AssetStore) -> Path:
    """The assets' canonical arrays as 16-bit PNGs with a manifest (intensity canonical), each
    with its lesion mask as a PNG of the same pixels where it has one (masks/, the `mask`
    column: paired synthesis passes it on to the images it makes); a synthetic asset's row
    names its generator (`generator`, `checkpoint_sha256`), so that a check of it can find the
    checkpoint's training patients."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for asset in assets:
        relative = f"images/asset-{asset.id}.png"
        array = canonical_from_bytes(store.read(asset.canonical_sha256, ".npy"))
        write_canonical_png(array, folder / relative)
        mask = None
        if asset.mask_sha256:
            labels = mask_from_bytes(store.read(asset.mask_sha256, ".npy"))
            # The manifest is read with the default lesion rule: an asset imported with other
            # --lesion-labels or --min-lesion-voxels whose mask then says otherwise keeps its
            # truth and goes without its mask.
            if asset.lesion is not None and bool(asset.lesion) == is_positive(labels, LesionRule()):
                mask = f"masks/asset-{asset.id}.png"
                write_mask_png(labels, folder / mask)
        rows.append(
            {
                "path": relative,
                "origin": asset.origin,
                "sequence": asset.sequence,
                "lesion": asset.lesion,
                "patient_id": asset.patient_id,
                "slice_index": asset.slice_index,
                "pair_key": asset.pair_key or f"asset-{asset.id}",
                "intensity": Intensity.CANONICAL,
                "mask": mask,
                **{
                    column: asset.provenance.get(column)
                    for column in GENERATOR_COLUMNS
                    if asset.origin == Origin.SYNTHETIC
                },
            }
        )
    return write_manifest(folder / "manifest.csv", rows)


def has_resume_state(params: dict[str, Any]) -> bool:
    """The checkpoint holds the state to continue from, and the training data are still there."""
    return (Path(params["checkpoint"]) / "resume").is_dir() and Path(params["manifest"]).is_file()


def remove_work_dir(kind: str, params: dict[str, Any], *, succeeded: bool) -> None:
    """Remove an ended job's work folder (its imported or abandoned files); a stopped training
    run keeps it (its training data) while its checkpoint can be resumed."""
    if "folder" not in params:
        return
    folder = Path(params["folder"]).resolve()
    if folder.parent != jobs_root().resolve():
        return
    if kind == JobKind.TRAIN and not succeeded and has_resume_state(params):
        return
    shutil.rmtree(folder, ignore_errors=True)
