"""Import a manifest into the asset library: validate everything, then all or nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from study import settings
from study.db import transaction
from study.imaging.canonical import canonical_to_bytes
from study.imaging.errors import ShownPaths, VTTError, file_problems
from study.imaging.lesions import DEFAULT_MIN_LESION_VOXELS
from study.imaging.manifest import ManifestSlice, load_manifest
from study.imaging.mask import mask_to_bytes
from study.imaging.render import render_png, sha256_bytes
from study.imaging.types import Lesion
from study.models import Asset
from study.storage import AssetStore

Progress = Callable[[str, int, int], None]

# The fields that make an asset's identity; a re-import must agree on all of them.
IDENTITY_FIELDS = (
    "origin",
    "sequence",
    "lesion",
    "pirads",
    "patient_id",
    "slice_index",
    "pair_key",
    "mask_sha256",
)


class ImportConflictError(VTTError):
    """A re-imported source whose metadata differ from what is stored."""


@dataclass(frozen=True)
class ImportResult:
    added: int
    unchanged: int


def asset_fields(item: ManifestSlice) -> dict[str, object]:
    """The identity fields (IDENTITY_FIELDS) of the asset that `item` makes."""
    row = item.row
    return {
        "origin": row.origin,
        "sequence": row.sequence,
        "lesion": None if item.lesion == Lesion.UNKNOWN else int(item.lesion),
        "pirads": row.pirads,
        "patient_id": row.patient_id,
        "slice_index": item.slice_index,
        "pair_key": item.pair_key,
        "mask_sha256": None if item.mask is None else sha256_bytes(mask_to_bytes(item.mask)),
    }


def _describe(item: ManifestSlice) -> str:
    return f"{item.row.path} (line {item.row.line}, slice {item.slice_index})"


def _conflicts(item: ManifestSlice, fields: dict[str, object], existing: Asset) -> str | None:
    differing = [
        f"{name}: stored {getattr(existing, name)!r}, manifest {fields[name]!r}"
        for name in IDENTITY_FIELDS
        if getattr(existing, name) != fields[name]
    ]
    if not differing:
        return None
    return f"{_describe(item)} was imported before with other metadata ({'; '.join(differing)})"


def import_manifest(
    engine: Engine,
    manifest: Path,
    *,
    allow_absolute: bool = True,
    store: AssetStore | None = None,
    progress: Progress | None = None,
    shown: ShownPaths | None = None,
    min_lesion_voxels: int = DEFAULT_MIN_LESION_VOXELS,
    lesion_labels: Iterable[int] | None = None,
) -> ImportResult:
    """Import every slice of `manifest`, or nothing: the database is unchanged on any error.

    `progress(stage, done, total)` is called with stage "load" then "store". Errors list one
    problem per line; with `shown` they name files as the user knows them (see ShownPaths).
    A slice of a row with a mask is a lesion when it holds at least `min_lesion_voxels` voxels
    of `lesion_labels` (None: of any label > 0); see study.imaging.mask.
    """
    store = store or AssetStore()
    slices = load_manifest(
        manifest,
        allow_absolute=allow_absolute,
        progress=(lambda done, total: progress("load", done, total)) if progress else None,
        max_pixels=settings.max_image_pixels(),
        shown=shown,
        min_lesion_voxels=min_lesion_voxels,
        lesion_labels=lesion_labels,
    )
    by_sha: dict[str, tuple[ManifestSlice, dict[str, object]]] = {}
    problems: list[str] = []
    for item in slices:
        fields = asset_fields(item)
        seen = by_sha.get(item.source_sha256)
        if seen is None:
            by_sha[item.source_sha256] = (item, fields)
        elif seen[1] != fields:
            problems.append(f"{_describe(item)} repeats {_describe(seen[0])} with other metadata")
    if problems:
        raise ImportConflictError(file_problems(manifest, problems, shown))

    created: list[Path] = []
    added = 0
    size = settings.render_size()
    try:
        with transaction(engine) as session:
            existing = {
                asset.source_sha256: asset
                for asset in session.scalars(
                    select(Asset).where(Asset.source_sha256.in_(list(by_sha)))
                )
            }
            conflicts = [
                message
                for sha, (item, fields) in by_sha.items()
                if sha in existing and (message := _conflicts(item, fields, existing[sha]))
            ]
            if conflicts:
                raise ImportConflictError(file_problems(manifest, conflicts, shown))
            new = [(sha, pair) for sha, pair in by_sha.items() if sha not in existing]
            for done, (sha, (item, fields)) in enumerate(new, start=1):
                canonical_sha, made = store.put(canonical_to_bytes(item.canonical), ".npy")
                created.extend([made] if made else [])
                display_sha, made = store.put(render_png(item.canonical, size=size), ".png")
                created.extend([made] if made else [])
                if item.mask is not None:
                    _, made = store.put(mask_to_bytes(item.mask), ".npy")
                    created.extend([made] if made else [])
                session.add(
                    Asset(
                        **fields,
                        intensity=item.row.intensity,
                        source_sha256=sha,
                        source_path=str(item.row.path),
                        canonical_sha256=canonical_sha,
                        display_sha256=display_sha,
                        rows=item.shape[0],
                        cols=item.shape[1],
                        spacing_row_mm=item.spacing_mm[0],
                        spacing_col_mm=item.spacing_mm[1],
                        provenance=dict(item.row.provenance),
                        lesions=None
                        if item.lesions is None
                        else [lesion.to_json() for lesion in item.lesions],
                        plane=None if item.plane is None else item.plane.to_json(),
                    )
                )
                added += 1
                if progress:
                    progress("store", done, len(new))
    except BaseException:
        # Files this import created are referenced by nothing once the transaction is gone.
        for path in created:
            path.unlink(missing_ok=True)
        raise
    return ImportResult(added=added, unchanged=len(by_sha) - added)
