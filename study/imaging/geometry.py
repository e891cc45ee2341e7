"""Where the voxels of a volume lie in the patient, and resampling one volume onto another's.

Coordinates are DICOM patient coordinates: millimetres, x to the patient's left, y posterior,
z superior (LPS), whatever the file format. A `Grid` describes a volume array of shape (slices,
rows, cols) as the loaders return it (load.py): the centre of voxel [k, r, c] lies at

    origin + c * col_step + r * row_step + k * slice_step

which is SimpleITK's convention with index (x, y, z) = (c, r, k), so a grid is the geometry of
a SimpleITK image and resampling is SimpleITK's, in physical space: each voxel of the target grid
takes the value the source volume has at that voxel's centre (linear interpolation for images,
nearest neighbour for label masks), and 0 where the source does not reach. A source covers the
points within half a voxel of its outermost voxel centres.

>>> grid = Grid.from_steps((1, 2, 2), (0, 0, 0), (0.5, 0, 0), (0, 0.5, 0), (0, 0, 3))
>>> grid.point(0, 1, 1).tolist()
[0.5, 0.5, 0.0]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from study.imaging.errors import ImagingError, one_line

if TYPE_CHECKING:
    import SimpleITK as sitk

# Two grids whose voxel centres lie within this distance of each other (mm) are the same grid.
SAME_GRID_MM = 1e-3
# Axes closer to parallel than this (|det| of the unit axis vectors) make no grid.
MIN_AXIS_DETERMINANT = 1e-3

Vector = tuple[float, float, float]


@dataclass(frozen=True)
class Plane:
    """Where the pixels of one 2D slice lie: the centre of pixel [0, 0] and the steps (mm
    vectors) from one row, and one column, to the next."""

    origin: Vector
    row_step: Vector
    col_step: Vector

    def to_json(self) -> dict[str, list[float]]:
        return {
            "origin_mm": list(self.origin),
            "row_step_mm": list(self.row_step),
            "col_step_mm": list(self.col_step),
        }


@dataclass(frozen=True)
class Grid:
    """The voxel centres of a (slices, rows, cols) volume in patient space (LPS, mm)."""

    shape: tuple[int, int, int]
    origin: Vector
    col_step: Vector
    row_step: Vector
    slice_step: Vector

    @classmethod
    def from_steps(
        cls,
        shape: Iterable[int],
        origin: Iterable[float],
        col_step: Iterable[float],
        row_step: Iterable[float],
        slice_step: Iterable[float],
    ) -> Grid | None:
        """The grid, or None when the numbers make none (not finite, a zero step, or axes
        nearly parallel): such a file does not say where its voxels lie."""
        vectors = [np.asarray(list(v), dtype=np.float64) for v in (origin, col_step, row_step)]
        vectors.append(np.asarray(list(slice_step), dtype=np.float64))
        if any(v.shape != (3,) or not np.isfinite(v).all() for v in vectors):
            return None
        steps = np.stack(vectors[1:], axis=1)
        lengths = np.linalg.norm(steps, axis=0)
        if not (lengths > 0).all():
            return None
        if abs(float(np.linalg.det(steps / lengths))) < MIN_AXIS_DETERMINANT:
            return None
        size = tuple(int(n) for n in shape)
        if len(size) != 3 or min(size) < 1:
            return None
        origin_v, col_v, row_v, slice_v = (_vector(v) for v in vectors)
        return cls((size[0], size[1], size[2]), origin_v, col_v, row_v, slice_v)

    @property
    def spacing(self) -> Vector:
        """Millimetres between neighbouring columns, rows and slices."""
        return _vector(np.linalg.norm(self.steps(), axis=0))

    def steps(self) -> np.ndarray:
        """3 x 3: its columns are the steps (mm vectors) along columns, rows and slices."""
        return np.array([self.col_step, self.row_step, self.slice_step], dtype=np.float64).T

    def point(self, k: float, r: float, c: float) -> np.ndarray:
        """The patient coordinates of (continuous) voxel [k, r, c]."""
        return np.asarray(self.origin) + self.steps() @ np.array([c, r, k], dtype=np.float64)

    def plane(self, k: int) -> Plane:
        """The plane of slice `k`."""
        return Plane(_vector(self.point(k, 0, 0)), self.row_step, self.col_step)

    def take(self, start: int, stop: int) -> Grid:
        """The grid of slices start..stop-1 (end excluded)."""
        return Grid(
            (stop - start, self.shape[1], self.shape[2]),
            _vector(self.point(start, 0, 0)),
            self.col_step,
            self.row_step,
            self.slice_step,
        )

    def matches(self, other: Grid, tolerance_mm: float = SAME_GRID_MM) -> bool:
        """Whether both grids have the same shape and every voxel centre within `tolerance_mm`."""
        if self.shape != other.shape:
            return False
        # The centres are affine in the index, so the farthest apart are at the corners.
        n_k, n_r, n_c = (n - 1 for n in self.shape)
        corners = [(k, r, c) for k in (0, n_k) for r in (0, n_r) for c in (0, n_c)]
        return all(
            float(np.linalg.norm(self.point(*v) - other.point(*v))) <= tolerance_mm for v in corners
        )


def resample(array: np.ndarray, grid: Grid, onto: Grid, *, nearest: bool) -> np.ndarray:
    """The volume `array` (on `grid`) resampled onto the voxels of `onto`, 0 where it does not
    reach; nearest neighbour for label masks, linear interpolation otherwise. Keeps the dtype."""
    # Imported here: SimpleITK is large and only resampling and MetaImage files need it.
    import SimpleITK as sitk

    if array.shape != grid.shape:
        raise ImagingError(f"an array of shape {array.shape} does not fit a grid of {grid.shape}")
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    try:
        source = _with_geometry(sitk.GetImageFromArray(np.ascontiguousarray(array)), grid)
        reference = _with_geometry(sitk.Image(list(onto.shape[::-1]), sitk.sitkUInt8), onto)
        out = sitk.Resample(source, reference, sitk.Transform(), interpolator, 0.0)
    except RuntimeError as e:  # ITK refuses geometry it cannot invert
        raise ImagingError(f"cannot resample: {one_line(e)}") from e
    return sitk.GetArrayFromImage(out).astype(array.dtype, copy=False)


def coverage(grid: Grid, onto: Grid) -> np.ndarray:
    """Per slice of `onto`, the fraction of its voxel centres that volume `grid` covers."""
    inside = resample(np.ones(grid.shape, np.uint8), grid, onto, nearest=True)
    return inside.reshape(inside.shape[0], -1).mean(axis=1)


def uncovered_slices(indices: Iterable[int], covered: Iterable[bool]) -> str | None:
    """The slices of `indices` that `covered` (per slice, in order) marks uncovered, in words
    ("slice 3", "slices 3, 4"); None when every slice is covered.

    >>> uncovered_slices([2, 3, 4], [True, False, False])
    'slices 3, 4'
    """
    missing = [index for index, inside in zip(indices, covered, strict=True) if not inside]
    if not missing:
        return None
    return f"slice{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}"


def _vector(values: Iterable[float]) -> Vector:
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def _with_geometry(image: sitk.Image, grid: Grid) -> sitk.Image:
    spacing = grid.spacing
    image.SetOrigin(grid.origin)
    image.SetSpacing(spacing)
    image.SetDirection([float(v) for v in (grid.steps() / np.array(spacing)).ravel()])
    return image
