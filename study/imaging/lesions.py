"""Lesions of a label slice: which labels count, whether a slice holds a lesion, and outlines.

A label mask holds one whole number per voxel: 0 for background and a label per structure
(PI-CAI writes the ISUP grade of each lesion's voxels). `LesionRule` says which labels count as
lesion (default: every label > 0; PI-CAI's clinically significant cancer is ISUP >= 2) and how
many voxels of them make a slice positive (default 10, so that a lesion's grazing edge on a
neighbouring slice does not make a reader's truth).

On a positive slice every connected region (8-connected) of one lesion label is a lesion,
described in canonical pixel coordinates (row, col; pixel centres at whole numbers, the slice
as the canonical array holds it): its label, voxel count, area in mm^2, centroid, bounding box
(first row, first col, last row + 1, last col + 1) and outer outline, a closed polygon through
the edges between the lesion's pixels and the others (marching squares at level 0.5,
scikit-image's `find_contours`), first point repeated last.

>>> labels = np.zeros((6, 6), np.uint8)
>>> labels[1:3, 1:4] = 2
>>> (found,) = find_lesions(labels, LesionRule(min_voxels=1), spacing_mm=(0.5, 0.5))
>>> found.label, found.voxels, found.area_mm2, found.centroid, found.bbox
(2, 6, 1.5, (1.5, 2.0), (1, 1, 3, 4))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from study.imaging.errors import ImagingError

DEFAULT_MIN_LESION_VOXELS = 10


@dataclass(frozen=True)
class LesionRule:
    """Which labels are lesion (None: every label > 0) and how many of their voxels make a
    slice positive."""

    min_voxels: int = DEFAULT_MIN_LESION_VOXELS
    labels: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.min_voxels, bool) or not isinstance(self.min_voxels, int):
            raise ImagingError(
                f"min_lesion_voxels {self.min_voxels!r} is not a whole number; use 1 or more"
            )
        if self.min_voxels < 1:
            raise ImagingError(
                f"min_lesion_voxels {self.min_voxels} is out of range; use 1 or more"
            )
        if self.labels is not None and (not self.labels or min(self.labels) < 1):
            raise ImagingError(
                f"lesion labels {sorted(self.labels)} must be whole numbers of 1 or more "
                "(0 is background); leave them out to count every label > 0"
            )

    def lesion_voxels(self, labels: np.ndarray) -> np.ndarray:
        """Which voxels of `labels` hold a lesion label."""
        if self.labels is None:
            return labels > 0
        return np.isin(labels, sorted(self.labels))

    def describe(self) -> str:
        """The lesion labels in words, for messages."""
        if self.labels is None:
            return "any label > 0"
        return (
            "label"
            + (" " if len(self.labels) == 1 else "s ")
            + ", ".join(str(label) for label in sorted(self.labels))
        )


def parse_lesion_labels(text: str) -> frozenset[int] | None:
    """'2,3,4,5' (or '2 3 4 5') as a set of labels; '' as None (every label > 0).

    >>> sorted(parse_lesion_labels("2, 3,4"))
    [2, 3, 4]
    """
    parts = text.replace(",", " ").split()
    if not parts:
        return None
    try:
        labels = frozenset(int(part) for part in parts)
    except ValueError:
        raise ImagingError(
            f"lesion labels {text!r} are not whole numbers; write them like 2,3,4,5"
        ) from None
    LesionRule(labels=labels)
    return labels


@dataclass(frozen=True)
class LesionOutline:
    """One lesion on one slice, in canonical pixel coordinates (row, col)."""

    label: int
    voxels: int
    area_mm2: float
    centroid: tuple[float, float]
    bbox: tuple[int, int, int, int]
    outline: tuple[tuple[float, float], ...]

    def to_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "voxels": self.voxels,
            "area_mm2": self.area_mm2,
            "centroid": list(self.centroid),
            "bbox": list(self.bbox),
            "outline": [list(point) for point in self.outline],
        }


def is_positive(labels: np.ndarray, rule: LesionRule) -> bool:
    """Whether the slice `labels` holds at least `rule.min_voxels` lesion voxels."""
    return int(np.count_nonzero(rule.lesion_voxels(labels))) >= rule.min_voxels


def find_lesions(
    labels: np.ndarray, rule: LesionRule, *, spacing_mm: tuple[float, float]
) -> list[LesionOutline]:
    """Every lesion of the 2D label slice `labels` (label by label, then top to bottom)."""
    pixel_area = float(spacing_mm[0]) * float(spacing_mm[1])
    found = []
    lesion = rule.lesion_voxels(labels)
    for label, regions, region in _regions(labels, np.unique(labels[lesion])):
        row, col = region.centroid
        found.append(
            LesionOutline(
                label=label,
                voxels=int(region.area),
                area_mm2=float(region.area) * pixel_area,
                centroid=(float(row), float(col)),
                bbox=tuple(int(v) for v in region.bbox),  # type: ignore[arg-type]
                outline=_outer_outline(regions == region.label),
            )
        )
    return found


def lesion_regions(labels: np.ndarray, lesion_labels: Iterable[int]) -> list[np.ndarray]:
    """The pixels (boolean masks) of every lesion of `labels` whose label is one of
    `lesion_labels`, in the order `find_lesions` lists them: the n-th region is the n-th
    stored outline of a slice whose outlines were found with those labels."""
    return [regions == region.label for _, regions, region in _regions(labels, lesion_labels)]


def _regions(labels: np.ndarray, lesion_labels: Iterable[int]) -> Iterator[tuple[int, Any, Any]]:
    """(label, labelled regions of that label, one region's properties), label by label, then
    top to bottom (8-connected regions)."""
    # Imported here: scikit-image loads its submodules lazily, but only imports need this.
    from skimage import measure

    for label in sorted({int(v) for v in lesion_labels}):
        regions = measure.label(labels == label, connectivity=2)
        for region in measure.regionprops(regions):
            yield label, regions, region


def _outer_outline(region: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The closed outer boundary of one connected region (holes left out)."""
    from skimage import measure

    # A border of background closes every contour, also of regions touching the edge; and
    # lesion pixels touching at a corner are one lesion (8-connected), so their outline joins
    # them ("high" values fully connected) where marching squares would otherwise part them.
    padded = np.pad(region.astype(np.float32), 1)
    contours = measure.find_contours(padded, 0.5, fully_connected="high")
    outer = max(contours, key=_enclosed_area) - 1.0
    return tuple((float(r), float(c)) for r, c in outer)


def _enclosed_area(contour: np.ndarray) -> float:
    rows, cols = contour[:, 0], contour[:, 1]
    return abs(float(np.dot(rows, np.roll(cols, 1)) - np.dot(cols, np.roll(rows, 1)))) / 2
