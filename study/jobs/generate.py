"""Generate jobs: synthetic images per sequence and lesion status, or DWI/ADC images paired
with imported T2W ones, and a preview made at once.

A generate job holds the generator's sample requests, one per cell (`python -m synth sample`,
run by `study.jobs.runner`), each writing to its own part of the job's work folder; the runner
imports what they made, with its provenance.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from study import settings
from study.db import transaction
from study.imaging.canonical import read_canonical
from study.imaging.manifest import load_manifest
from study.imaging.render import render_png
from study.imaging.types import Lesion, Sequence
from study.jobs.checkpoints import check_checkpoint, job_device
from study.jobs.processes import run_generator
from study.jobs.queue import submit
from study.jobs.states import JobError, JobKind
from study.jobs.workdirs import new_work_dir, write_asset_manifest
from study.library import asset_counts
from study.models import Asset
from study.storage import AssetStore
from synth.contract import (
    AUTO_LESION_MASK,
    DEFAULT_SAMPLING,
    PROMPT_TEMPLATE,
    LesionMasks,
    Sampler,
    SampleRequest,
    option_spec,
    prompt_for,
    read_checkpoint_info,
)


@dataclass(frozen=True)
class GenerateCell:
    """How many images of one sequence and lesion status to generate."""

    sequence: Sequence
    lesion: Lesion
    n: int


@dataclass(frozen=True)
class SampleOptions:
    """What the Generate page chooses for every cell: the prompt template (filled in per cell),
    the sampling, the first seed (each cell's images take the next ones), and, for checkpoints
    with the lesion-mask channel, whether single images get `auto` lesion masks (cells of
    unknown lesion status get none; paired images take their T2W assets' masks)."""

    prompt_template: str = PROMPT_TEMPLATE
    sampler: Sampler = DEFAULT_SAMPLING.sampler
    steps: int = DEFAULT_SAMPLING.steps
    guidance: float = DEFAULT_SAMPLING.guidance
    seed: int = option_spec(SampleRequest, "seed").default
    lesion_masks: LesionMasks = "none"


def match_real_pool(engine: Engine) -> list[GenerateCell]:
    """As many synthetic images as there are real ones in each sequence and lesion cell."""
    counts = asset_counts(engine)
    real = counts[counts["origin"] == "real"]
    lesion = {"yes": Lesion.YES, "no": Lesion.NO, "unknown": Lesion.UNKNOWN}
    return [
        GenerateCell(Sequence(row.sequence), lesion[row.lesion], int(row.assets))
        for row in real.itertuples()
    ]


def _sample_request(
    checkpoint: Path,
    options: SampleOptions,
    cell: GenerateCell,
    seed: int,
    out: Path,
    condition_manifest: Path | None = None,
) -> SampleRequest:
    """The generator's request for one cell; `out` and `condition_manifest` relative to the
    job's folder, where the generator runs."""
    auto = (
        options.lesion_masks == AUTO_LESION_MASK
        and condition_manifest is None
        and cell.lesion != Lesion.UNKNOWN
    )
    return SampleRequest(
        checkpoint=checkpoint,
        prompt=prompt_for(cell.sequence, cell.lesion, options.prompt_template),
        n=cell.n,
        out=out,
        seed=seed,
        sampler=options.sampler,
        steps=options.steps,
        guidance=options.guidance,
        condition_manifest=condition_manifest,
        sequence=cell.sequence,
        lesion=cell.lesion,
        lesion_mask=AUTO_LESION_MASK if auto else None,
        progress="jsonl",
    )


def _part(index: int) -> Path:
    """The folder of a generate job's `index`-th run, relative to the job's folder."""
    return Path(f"part-{index}")


def _condition_folder(lesion: Lesion) -> Path:
    """The folder of a paired job's T2W conditions of one lesion status, relative to the job's."""
    return Path(f"condition-{lesion.value or 'unknown'}")


def submit_generate(
    engine: Engine,
    checkpoint: Path,
    cells: Iterable[GenerateCell],
    options: SampleOptions = SampleOptions(),
) -> int:
    """Queue a job that generates each cell's images and imports them; returns its id."""
    check_checkpoint(checkpoint)
    check_lesion_masks(checkpoint, options)
    runs: list[tuple[SampleRequest, int]] = []
    seed = options.seed
    for cell in cells:
        if cell.n > 0:
            request = _sample_request(checkpoint, options, cell, seed, _part(len(runs)))
            runs.append((request, cell.n))
            seed += cell.n
    if not runs:
        raise JobError("nothing to generate: ask for at least one image")
    return submit(engine, JobKind.GENERATE, _generate_params(checkpoint, runs, new_work_dir()))


def check_lesion_masks(checkpoint: Path, options: SampleOptions) -> None:
    """JobError when lesion masks are asked of a checkpoint without the mask channel."""
    if options.lesion_masks != "none" and not read_checkpoint_info(checkpoint).mask_channel:
        raise JobError(
            f"{checkpoint}: this checkpoint has no lesion-mask channel (trained without "
            "--mask-channel): choose lesion masks 'none'"
        )


def _generate_params(
    checkpoint: Path, runs: list[tuple[SampleRequest, int]], folder: Path
) -> dict[str, Any]:
    """A generate job: its folder, and each run's request with the images it makes."""
    return {
        "folder": str(folder),
        "checkpoint": str(checkpoint),
        "runs": [{"request": request.to_json(), "images": images} for request, images in runs],
        "images": sum(images for _, images in runs),
    }


def submit_paired(
    engine: Engine,
    checkpoint: Path,
    t2w_asset_ids: Iterable[int],
    sequences: Iterable[Sequence],
    options: SampleOptions = SampleOptions(),
    *,
    store: AssetStore | None = None,
) -> int:
    """Queue a job that makes the DWI/ADC image matching each chosen T2W asset (same pair key)."""
    check_checkpoint(checkpoint)
    wanted = sorted(set(t2w_asset_ids))
    targets = [Sequence(s) for s in dict.fromkeys(sequences)]
    if not wanted or not targets:
        raise JobError("paired synthesis needs T2W assets and at least one of DWI or ADC")
    if Sequence.T2W in targets:
        raise JobError("paired synthesis makes DWI or ADC images from T2W ones, not T2W")
    with transaction(engine) as session:
        assets = list(session.scalars(select(Asset).where(Asset.id.in_(wanted))))
    if len(assets) != len(wanted) or any(a.sequence != Sequence.T2W for a in assets):
        raise JobError("paired synthesis conditions on imported T2W assets only")
    by_lesion: dict[Lesion, list[Asset]] = {}
    for asset in assets:
        lesion = Lesion.UNKNOWN if asset.lesion is None else Lesion(str(asset.lesion))
        by_lesion.setdefault(lesion, []).append(asset)
    # Every request is made (and checked) before anything is written.
    runs: list[tuple[SampleRequest, int]] = []
    seed = options.seed
    for lesion, group in by_lesion.items():
        condition = _condition_folder(lesion) / "manifest.csv"
        for sequence in targets:
            cell = GenerateCell(sequence, lesion, 1)
            request = _sample_request(checkpoint, options, cell, seed, _part(len(runs)), condition)
            runs.append((request, len(group)))
            seed += len(group)
    work = new_work_dir()
    store = store or AssetStore()
    conditions: dict[str, str] = {}
    for lesion, group in by_lesion.items():
        manifest = write_asset_manifest(group, work / _condition_folder(lesion), store)
        conditions |= _condition_sources(manifest, group)
    params = _generate_params(checkpoint, runs, work)
    params["conditions"] = conditions
    return submit(engine, JobKind.GENERATE, params)


def _condition_sources(manifest: Path, assets: list[Asset]) -> dict[str, str]:
    """The source sha256 the generator records for each row of a condition manifest (written
    by `write_asset_manifest`), mapped to the source sha256 of the asset it shows."""
    by_file = {f"asset-{asset.id}.png": asset.source_sha256 for asset in assets}
    return {
        item.source_sha256: by_file[item.row.path.name]
        for item in load_manifest(
            manifest, allow_absolute=False, max_pixels=settings.max_image_pixels()
        )
    }


def t2w_assets(engine: Engine) -> list[tuple[int, str]]:
    """Imported T2W assets that paired synthesis can condition on: (id, label to choose by)."""
    lesion = {1: "lesion", 0: "no lesion", None: "lesion unknown"}
    with transaction(engine) as session:
        assets = session.scalars(
            select(Asset).where(Asset.sequence == Sequence.T2W).order_by(Asset.id)
        )
        return [
            (
                a.id,
                f"#{a.id} {a.origin.value} {a.patient_id or '-'} slice {a.slice_index} "
                f"({lesion[a.lesion]})",
            )
            for a in assets
        ]


def preview_samples(
    checkpoint: Path, cell: GenerateCell, options: SampleOptions, *, n: int = 2
) -> list[bytes]:
    """Generate `n` images in this process, now (nothing is imported); their display PNGs."""
    check_checkpoint(checkpoint)
    check_lesion_masks(checkpoint, options)
    preview = Path("preview")
    request = _sample_request(checkpoint, options, replace(cell, n=n), options.seed, preview)
    settings.data_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir()) as folder:
        run_generator(replace(request, device=job_device()), Path(folder), "preview")
        images = sorted((Path(folder) / preview / "images").glob("*.png"))
        return [
            render_png(
                read_canonical(path, max_pixels=settings.max_image_pixels()),
                size=settings.render_size(),
            )
            for path in images
        ]
