"""Pictures for import tests: 16-bit PNGs, each with an optional lesion mask (a label PNG of
the same pixels), and the manifest that lists them.

Importable from every test folder (tests/ is on sys.path through tests/conftest.py).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Picture:
    """One T2W picture: `name` (the file is `name.png`, its mask `name-mask.png`), its pixels,
    its lesion labels (None: no mask), and its manifest fields; `lesion` empty where the mask
    gives it."""

    name: str
    image: np.ndarray
    patient_id: str
    labels: np.ndarray | None = None
    origin: str = "real"
    lesion: str = ""
    slice_index: int | None = None


def square_lesion(size: int, top: int, side: int = 4) -> np.ndarray:
    """Labels of a `size` x `size` picture: one lesion (label 1), rows and cols top..top+side-1."""
    labels = np.zeros((size, size), np.uint8)
    labels[top : top + side, top : top + side] = 1
    return labels


def write_pictures(folder: Path, pictures: Sequence[Picture]) -> Path:
    """Every picture (and mask) as PNGs in `folder`, and `folder/manifest.csv` listing them in
    order: the manifest's path. The mask and slice_index columns are written when used."""
    columns = ["path", "origin", "sequence", "lesion", "patient_id"]
    masks = any(picture.labels is not None for picture in pictures)
    slices = any(picture.slice_index is not None for picture in pictures)
    columns += ["mask"] * masks + ["slice_index"] * slices
    rows = []
    for picture in pictures:
        Image.fromarray(picture.image).save(folder / f"{picture.name}.png")
        row = {
            "path": f"{picture.name}.png",
            "origin": picture.origin,
            "sequence": "T2W",
            "lesion": picture.lesion,
            "patient_id": picture.patient_id,
        }
        if picture.labels is not None:
            Image.fromarray(picture.labels).save(folder / f"{picture.name}-mask.png")
            row["mask"] = f"{picture.name}-mask.png"
        if slices:
            row["slice_index"] = "" if picture.slice_index is None else str(picture.slice_index)
        rows.append(row)
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return manifest
