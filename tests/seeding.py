"""Assets for reading tests: tiny generated images stored like imported ones, or bare rows.

Importable from every test folder (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from study.db import transaction
from study.imaging.canonical import canonical_to_bytes
from study.imaging.render import render_png
from study.imaging.types import Intensity, Origin, Sequence
from study.models import Asset
from study.storage import AssetStore


@dataclass(frozen=True)
class AssetRow:
    sequence: Sequence
    origin: Origin
    lesion: int | None
    patient_id: str = ""
    pair_key: str = ""


def grid(sequences: Iterable[Sequence], per_cell: int, *, patients: int = 4) -> list[AssetRow]:
    """`per_cell` assets of every sequence x origin x lesion (0/1) cell."""
    rows = []
    for sequence in sequences:
        for origin in (Origin.REAL, Origin.SYNTHETIC):
            for lesion in (0, 1):
                for i in range(per_cell):
                    rows.append(AssetRow(sequence, origin, lesion, f"P{i % patients}"))
    return rows


def pairs(count: int, origin: Origin, lesion: int, *, prefix: str = "") -> list[AssetRow]:
    """`count` T2W + DWI pairs sharing a pair key."""
    rows = []
    for i in range(count):
        key = f"{prefix}{origin.value}-{lesion}-{i}"
        for sequence in (Sequence.T2W, Sequence.DWI):
            rows.append(AssetRow(sequence, origin, lesion, f"P{i}", key))
    return rows


def add_assets(
    engine: Engine, rows: Iterable[AssetRow], *, store: AssetStore | None = None, size: int = 32
) -> list[int]:
    """Insert assets; with a store, each gets a distinct generated image stored like an import's.

    Returns the new asset ids in the order of `rows`.
    """
    assets = []
    with transaction(engine) as session:
        start = len(session.query(Asset.id).all())
        for i, row in enumerate(rows, start=start):
            source = hashlib.sha256(f"source-{i}".encode()).hexdigest()
            if store is not None:
                image = np.random.default_rng(i).random((size, size), dtype=np.float32)
                canonical, _ = store.put(canonical_to_bytes(image), ".npy")
                display, _ = store.put(render_png(image, size=size), ".png")
            else:
                canonical = hashlib.sha256(f"canonical-{i}".encode()).hexdigest()
                display = hashlib.sha256(f"display-{i}".encode()).hexdigest()
            asset = Asset(
                origin=row.origin,
                sequence=row.sequence,
                lesion=row.lesion,
                patient_id=row.patient_id,
                pair_key=row.pair_key,
                intensity=Intensity.CANONICAL,
                source_sha256=source,
                source_path=f"/images/{row.patient_id or 'gen'}-{i}.png",
                canonical_sha256=canonical,
                display_sha256=display,
                rows=size,
                cols=size,
                spacing_row_mm=1.0,
                spacing_col_mm=1.0,
            )
            session.add(asset)
            assets.append(asset)
        session.flush()
        return [asset.id for asset in assets]
