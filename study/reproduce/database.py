"""The reproduction in the database: its images imported, and its seed-protocol study.

The study draws only this run's images: the held-out patients' real slices and the synthetic
images of this run's generator (`RunPool`), whatever else the database holds (the demo, earlier
runs, other imports). It is created once per name: running again finds it by name, and a study
of that name built from other images is refused rather than changed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from tqdm import tqdm

from study import settings
from study.db import transaction
from study.design import (
    PoolFilter,
    create_study,
    largest_fitting_cases,
    open_study,
    seed_protocol_plan,
    study_composition,
)
from study.imaging.types import Origin
from study.importer import import_manifest
from study.models import Asset, Study, StudyStatus
from study.reproduce.errors import ReproduceError
from study.reproduce.sizes import STUDY_CASES

# Each block's cases split exactly in halves (origin) of halves (lesion).
CASE_STEP = 4
ACTOR = "python -m study reproduce"


@dataclass(frozen=True)
class RunPool(PoolFilter):
    """The assets one reproduction may draw: real ones of the held-out patients (`patients`),
    synthetic ones made by its checkpoint. PoolFilter tells images apart by patient only; the
    synthetic images of every generator have no patient, so the checkpoint tells them apart."""

    checkpoint_sha256: str = ""

    def admits(self, asset: Asset) -> bool:
        if asset.origin == Origin.REAL:
            return super().admits(asset)
        made_here = (asset.provenance or {}).get("checkpoint_sha256") == self.checkpoint_sha256
        return made_here and (not self.known_lesion_only or asset.lesion is not None)


def run_pool(heldout: tuple[str, ...], checkpoint_sha256: str) -> RunPool:
    return RunPool(
        patients=frozenset(heldout), known_lesion_only=True, checkpoint_sha256=checkpoint_sha256
    )


def database_identity() -> str:
    """The configured database and asset folder, as a stage's option (a password hidden)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url()).render_as_string(hide_password=True)
    return f"{url} (assets in {settings.data_dir() / 'assets'})"


def import_images(engine: Engine, manifests: Mapping[str, Path]) -> dict[str, dict[str, int]]:
    """Import each manifest (all or nothing, a no-op for what is there already)."""
    return {label: _import(engine, label, manifest) for label, manifest in manifests.items()}


def _import(engine: Engine, label: str, manifest: Path) -> dict[str, int]:
    bars: dict[str, tqdm] = {}

    def progress(step: str, done: int, total: int) -> None:
        if step not in bars:
            what = "reading" if step == "load" else "storing"
            bars[step] = tqdm(total=total, desc=f"{what} {label}", unit="item", file=sys.stderr)
        bars[step].n = done
        bars[step].refresh()

    try:
        result = import_manifest(engine, manifest, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    return {"added": result.added, "unchanged": result.unchanged}


def images_present(engine: Engine, pool: RunPool, expected: Mapping[str, int]) -> bool:
    """Whether the database still holds the run's images (none, in a new database)."""
    with transaction(engine) as session:
        real = session.scalar(
            select(func.count())
            .select_from(Asset)
            .where(Asset.origin == Origin.REAL, Asset.patient_id.in_(sorted(pool.patients)))
        )
        synthetic = sum(
            1
            for provenance in session.scalars(
                select(Asset.provenance).where(Asset.origin == Origin.SYNTHETIC)
            )
            if (provenance or {}).get("checkpoint_sha256") == pool.checkpoint_sha256
        )
    return (real or 0) >= expected["real"] and synthetic >= expected["synthetic"]


def study_key(pool: RunPool, seed: int) -> str:
    """What the study was built from, recorded in its settings: a study of the same name is
    this run's when the key matches."""
    document = {
        "heldout": sorted(pool.patients),
        "checkpoint_sha256": pool.checkpoint_sha256,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def seed_study(
    engine: Engine, *, name: str, seed: int, pool: RunPool, description: str
) -> dict[str, Any]:
    """The open seed-protocol study of this run's images, created if need be: 32 cases per
    block, or the most the pool gives (a multiple of 4)."""
    key = study_key(pool, seed)
    with transaction(engine) as session:
        found = session.scalar(select(Study).where(Study.name == name))
        existing = None if found is None else (found.id, found.status, found.settings or {})
    if existing is not None:
        study_id, status, study_settings = existing
        if study_settings.get("reproduce", {}).get("key") != key:
            raise ReproduceError(
                f"a study named '{name}' exists already, built from other images (another "
                "reproduction, or by hand): pass --study-name with a new name"
            )
        if status == StudyStatus.DRAFT:
            open_study(engine, study_id, actor=ACTOR)
        cases = int(study_settings["reproduce"]["cases_per_block"])
    else:
        plan = seed_protocol_plan(name, seed=seed, cases=STUDY_CASES)
        cases = largest_fitting_cases(engine, plan.blocks, pool, cap=STUDY_CASES, step=CASE_STEP)
        if cases == 0:
            raise ReproduceError(
                f"the held-out real images and this run's synthetic images cannot give even "
                f"{CASE_STEP} cases to each block of the seed protocol (T2W, ADC, T2W-DWI "
                "pairs; half synthetic, half with lesions): hold out more patients with lesions"
            )
        plan = replace(
            seed_protocol_plan(name, seed=seed, cases=cases),
            pool=pool,
            description=description,
            settings={"reproduce": {"key": key, "cases_per_block": cases}},
        )
        study_id = create_study(engine, plan)
        open_study(engine, study_id, actor=ACTOR, note=description)
    with transaction(engine) as session:
        status = session.get_one(Study, study_id).status
    return {
        "id": study_id,
        "name": name,
        "status": str(status),
        "cases_per_block": cases,
        "asked_per_block": STUDY_CASES,
        "composition": study_composition(engine, study_id),
    }


def study_present(engine: Engine, study: Mapping[str, Any]) -> bool:
    """Whether the study a run made is still in the database (not in a new one)."""
    with transaction(engine) as session:
        found = session.get(Study, int(study["id"]))
        return found is not None and found.name == study["name"]
