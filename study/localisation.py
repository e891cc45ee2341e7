"""Scoring lesion marks against the truth: lesion and non-lesion localisations.

A mark is a lesion localisation (LL) of a lesion when it lies within the tolerance of that
lesion's pixels: its distance to the nearest point of the lesion (each pixel a square around
its centre, so a mark inside the outline has distance 0) is at most the tolerance, measured in
mm when the pixel spacing is known and in pixels otherwise. This is the lesion's outline
dilated by the tolerance. Every other mark is a non-lesion localisation (NL).

Two marks on one lesion count once: the higher-rated one is its LL (the first placed, on a tie)
and the others are NLs, as in FROC practice (Chakraborty, "Observer Performance Methods for
Diagnostic Imaging", 2017, ch. 12: one LL per lesion). A mark within the tolerance of two
lesions localises the nearest one not yet localised by a higher-rated mark.

Marks are placed in the canonical coordinates of the viewport they were placed on; a case's
lesions are those of its reference image (`LesionTruth`). A viewport whose image has another
size (a paired ADC slice not resampled onto its T2W) is mapped onto the reference grid by the
ratio of sizes, pixel edges to pixel edges.

In a volume case a lesion is a stack of regions, one per slice it reaches (regions of one label
that touch from slice to slice, 26-connected, `volume_lesions`), and a mark localises it when it
lies within the tolerance of the lesion's region on the slice it was placed on (in the plane of
that slice: the tolerance does not reach into the neighbouring slices). The sequences of a
volume case are stacks of one length on the same slices (study.design), so a mark on any
viewport's slice k is on the reference stack's slice k. Two marks on one lesion, on one slice
or on two, count once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from study.marks import Mark


class Localisation(StrEnum):
    LESION = "LL"
    NON_LESION = "NL"


@dataclass(frozen=True)
class LesionTruth:
    """The lesions of one case: one boolean mask per lesion on the reference image's grid
    (rows, cols), or on the reference stack's (slices, rows, cols) in a volume case; its pixel
    spacing (None when unknown: tolerances are then in pixels), and the size of each viewport's
    image (rows, cols) for mapping marks onto that grid."""

    regions: tuple[np.ndarray, ...]
    spacing_mm: tuple[float, float] | None
    viewport_shapes: dict[str, tuple[int, int]]

    @property
    def shape(self) -> tuple[int, int]:
        return self.regions[0].shape[-2:] if self.regions else (0, 0)


@dataclass(frozen=True)
class ScoredMark:
    mark: Mark
    kind: Localisation
    # 1-based, in the order of the case's lesions; None for an NL.
    lesion: int | None
    # Distance to the nearest lesion (mm or px, as the tolerance); inf without lesions.
    distance: float


def distance_to_region(
    row: float, col: float, region: np.ndarray, spacing: tuple[float, float]
) -> float:
    """Distance from (row, col) to the nearest point of the region's pixel squares, in the
    units of `spacing` (row and column step).

    >>> region = np.zeros((5, 5), bool)
    >>> region[2, 2] = True
    >>> distance_to_region(2.3, 2.0, region, (1.0, 1.0))
    0.0
    >>> distance_to_region(2.0, 4.5, region, (1.0, 2.0))
    4.0
    """
    rows, cols = np.nonzero(region)
    if rows.size == 0:
        return float("inf")
    d_row = np.maximum(np.abs(rows - row) - 0.5, 0.0) * spacing[0]
    d_col = np.maximum(np.abs(cols - col) - 0.5, 0.0) * spacing[1]
    return float(np.sqrt(d_row**2 + d_col**2).min())


def volume_lesions(slices: Sequence[Sequence[tuple[int, np.ndarray]]]) -> list[np.ndarray]:
    """The lesions of a stack, from each slice's lesions as (label, region) pairs: the regions
    of one label that touch from slice to slice (26-connected, as a slice's regions are
    8-connected) are one lesion, a (slices, rows, cols) mask; ordered by label, then by the
    first voxel in slice, row, col order.

    >>> a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    >>> a[0, 0] = b[1, 1] = True
    >>> [int(lesion.sum()) for lesion in volume_lesions([[(1, a)], [(1, b)], []])]
    [2]
    >>> len(volume_lesions([[(1, a)], [], [(1, a)]]))
    2
    """
    from skimage import measure

    shape = next((region.shape for found in slices for _, region in found), None)
    if shape is None:
        return []
    by_label: dict[int, np.ndarray] = {}
    for index, found in enumerate(slices):
        for label, region in found:
            stack = by_label.setdefault(label, np.zeros((len(slices), *shape), bool))
            stack[index] |= region
    lesions = []
    for label in sorted(by_label):
        components = measure.label(by_label[label], connectivity=3)
        lesions.extend(components == number for number in range(1, int(components.max()) + 1))
    return lesions


def _on_reference(mark: Mark, truth: LesionTruth) -> tuple[float, float]:
    rows, cols = truth.viewport_shapes.get(mark.viewport, truth.shape)
    ref_rows, ref_cols = truth.shape
    return (
        (mark.row + 0.5) * ref_rows / rows - 0.5,
        (mark.col + 0.5) * ref_cols / cols - 0.5,
    )


def _distance(
    mark: Mark, truth: LesionTruth, region: np.ndarray, spacing: tuple[float, float]
) -> float:
    """From the mark to the region: in the plane, on the mark's slice of a volume's lesion."""
    row, col = _on_reference(mark, truth)
    if region.ndim == 2:
        return distance_to_region(row, col, region, spacing)
    if mark.slice >= region.shape[0]:
        return float("inf")
    return distance_to_region(row, col, region[mark.slice], spacing)


def score_marks(marks: Sequence[Mark], truth: LesionTruth, *, tolerance: float) -> list[ScoredMark]:
    """Each of `marks` as LL (with its lesion) or NL, in the order given.

    `tolerance` is in mm when `truth.spacing_mm` is known, else in pixels; it must be >= 0.
    """
    if tolerance < 0:
        raise ValueError(f"the localisation tolerance must be 0 or more, not {tolerance}")
    spacing = truth.spacing_mm or (1.0, 1.0)
    distances = np.full((len(marks), len(truth.regions)), np.inf)
    for i, mark in enumerate(marks):
        for j, region in enumerate(truth.regions):
            distances[i, j] = _distance(mark, truth, region, spacing)
    # Highest rating first; on a tie the mark placed first.
    order = sorted(range(len(marks)), key=lambda i: (-marks[i].rating, i))
    taken: dict[int, int] = {}
    lesion_of: dict[int, int] = {}
    for i in order:
        for j in np.argsort(distances[i], kind="stable") if truth.regions else []:
            if distances[i, j] > tolerance:
                break
            if int(j) not in taken:
                taken[int(j)] = i
                lesion_of[i] = int(j)
                break
    scored = []
    for i, mark in enumerate(marks):
        nearest = float(distances[i].min()) if truth.regions else float("inf")
        if i in lesion_of:
            scored.append(ScoredMark(mark, Localisation.LESION, lesion_of[i] + 1, nearest))
        else:
            scored.append(ScoredMark(mark, Localisation.NON_LESION, None, nearest))
    return scored
