"""Lesion masks as ground truth: a manifest row's label volume, checked and fitted to its slices.

A mask is a label volume (labels as in lesions.py) in NIfTI, MetaImage or a DICOM series of
label images; DICOM SEG files are refused with a hint (pydicom reads their frames but not the
segments' geometry; convert them to NIfTI or MHA). It is checked against the grid of the slices
its row imports (the image's own, or the T2W volume's for ADC and DWI shown on its slices): on
the same grid it is taken as it is; on another it is resampled onto that grid with nearest
neighbour in physical space (geometry.py), so that the labels line up with the canonical image.

A 2D picture row (PNG, JPEG, TIFF) says nothing of where it lies in the patient, so its mask is
a 2D label image of the same pixels, taken one for one: a picture (8- or 16-bit grayscale) or a
volume of one slice (`picture_mask_truth`).

Each imported slice is positive when it holds at least `LesionRule.min_voxels` voxels of lesion
labels. Without `lesion` in the row, that is the slice's truth; with `lesion` 1 or 0, every
imported slice must agree, or the row is refused naming the slices. An all-zero mask is the
truth "no lesion on any slice" (PI-CAI writes one for every patient without a lesion); it is
refused only when `lesion` says 1. Refused too, each naming the file: a mask that cannot be
read, holds values that are not labels (whole numbers >= 0), labels every voxel, does not say
where its voxels lie, or misses some or all of the imported slices.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from study.imaging.errors import ImagingError, one_line
from study.imaging.geometry import Grid, coverage, resample, uncovered_slices
from study.imaging.lesions import LesionOutline, LesionRule, find_lesions, is_positive
from study.imaging.load import Volume, is_picture, load_slices, load_volume
from study.imaging.types import Lesion


@dataclass(frozen=True)
class SliceTruth:
    """The truth of one imported slice from its row's mask."""

    lesion: Lesion
    # The slice's labels on the canonical image's pixels (unsigned integers).
    labels: np.ndarray
    lesions: tuple[LesionOutline, ...]


def read_mask(path: Path, *, max_pixels: int) -> Volume:
    """The label volume at `path`, its values checked to be labels (unsigned integers)."""
    mask = load_volume(path, max_pixels=max_pixels)
    return Volume(mask.path, _labels(path, mask.array), mask.spacing_mm, mask.grid, mask.digest)


def read_mask_2d(path: Path, *, max_pixels: int) -> np.ndarray:
    """The 2D label image at `path`: a picture, or a volume of one slice; labels checked."""
    if is_picture(path):
        (source,) = load_slices(path, max_pixels=max_pixels)
        return _labels(path, source.array)
    labels = read_mask(path, max_pixels=max_pixels).array
    if labels.shape[0] != 1:
        raise ImagingError(
            f"{path}: the mask has {labels.shape[0]} slices; a 2D mask has one slice"
        )
    return labels[0]


def _labels(path: Path, values: np.ndarray) -> np.ndarray:
    """`values` as unsigned labels; ImagingError naming `path` when they are not labels."""
    whole = np.isfinite(values) & (values >= 0) & (values == np.round(values))
    if not whole.all():
        example = values[~whole].flat[0]
        raise ImagingError(
            f"{path}: the mask holds values that are not labels (whole numbers >= 0), e.g. "
            f"{example:g}; a mask labels each voxel 0 (background) or with a lesion label: is "
            "this an image or a probability map?"
        )
    top = float(values.max())
    dtype = np.uint8 if top <= 0xFF else np.uint16 if top <= 0xFFFF else np.uint32
    return values.astype(dtype)


def _check_mask(mask_path: Path, labels: np.ndarray, lesion: Lesion, rule: LesionRule) -> None:
    """Refuse a mask that labels everything, or holds no lesion where the row says 1."""
    if labels.all():
        raise ImagingError(
            f"{mask_path}: the mask labels every voxel (none is 0); a mask marks lesions on a "
            "background of 0: is this the image instead of its mask?"
        )
    if lesion == Lesion.YES and not rule.lesion_voxels(labels).any():
        raise ImagingError(
            f"{mask_path}: the mask is empty (no voxel of {rule.describe()}), but lesion is 1; "
            "give the lesion's mask, or set lesion to 0 or leave it empty"
        )


def picture_mask_truth(
    mask_path: Path,
    *,
    image: Path,
    lesion: Lesion,
    shape: tuple[int, int],
    spacing_mm: tuple[float, float],
    rule: LesionRule,
    max_pixels: int,
) -> SliceTruth:
    """The truth of the 2D picture `image` (`shape` pixels) from its 2D mask at `mask_path`;
    `lesion` is the row's own column."""
    labels = read_mask_2d(mask_path, max_pixels=max_pixels)
    if labels.shape != shape:
        raise ImagingError(
            f"{mask_path}: the mask is {labels.shape[1]} x {labels.shape[0]} pixels, but "
            f"{image} is {shape[1]} x {shape[0]}; the mask of a 2D picture labels its pixels "
            "one for one"
        )
    _check_mask(mask_path, labels, lesion, rule)
    positive = is_positive(labels, rule)
    if lesion != Lesion.UNKNOWN and (lesion == Lesion.YES) != positive:
        has = "fewer than" if lesion == Lesion.YES else "at least"
        raise ImagingError(
            f"{image}: lesion is {lesion.value}, but its mask {mask_path} has {has} "
            f"{rule.min_voxels} pixels of {rule.describe()}; leave lesion empty to take the "
            "truth from the mask"
        )
    found = find_lesions(labels, rule, spacing_mm=spacing_mm) if positive else []
    return SliceTruth(Lesion.YES if positive else Lesion.NO, labels, tuple(found))


def mask_truth(
    mask_path: Path,
    *,
    image: Path,
    lesion: Lesion,
    grid: Grid | None,
    indices: list[int],
    spacing_mm: tuple[float, float],
    rule: LesionRule,
    max_pixels: int,
) -> list[SliceTruth]:
    """The truth of slices `indices` (consecutive) of `grid`, on which the row of `image`
    imports its slices, from the mask at `mask_path`; `lesion` is the row's own column."""
    mask = read_mask(mask_path, max_pixels=max_pixels)
    _check_mask(mask_path, mask.array, lesion, rule)
    fitted = _fit(mask, grid, indices, image)
    truths = []
    for labels_on_slice in fitted:
        positive = is_positive(labels_on_slice, rule)
        found = find_lesions(labels_on_slice, rule, spacing_mm=spacing_mm) if positive else []
        truths.append(
            SliceTruth(Lesion.YES if positive else Lesion.NO, labels_on_slice, tuple(found))
        )
    disagree = [
        i
        for i, truth in zip(indices, truths, strict=True)
        if lesion != Lesion.UNKNOWN and truth.lesion != lesion
    ]
    if disagree:
        has = "fewer than" if lesion == Lesion.YES else "at least"
        raise ImagingError(
            f"{image}: lesion is {lesion.value}, but its mask {mask_path} has {has} "
            f"{rule.min_voxels} voxels of {rule.describe()} on slice"
            f"{'s' if len(disagree) > 1 else ''} {', '.join(map(str, disagree))}; leave lesion "
            "empty to take each slice's truth from the mask"
        )
    return truths


def _fit(mask: Volume, grid: Grid | None, indices: list[int], image: Path) -> np.ndarray:
    """The mask's labels on slices `indices` of `grid`: (slices, rows, cols)."""
    if grid is None:
        raise ImagingError(
            f"{image}: does not say where its voxels lie (positions or orientation are "
            f"missing), so its mask {mask.path} cannot be checked against it; export the image "
            "with its geometry"
        )
    if mask.grid is None:
        raise ImagingError(
            f"{mask.path}: the mask does not say where its voxels lie, so it cannot be checked "
            f"against {image}; write it with the image's geometry (origin, spacing, direction)"
        )
    first, stop = indices[0], indices[-1] + 1
    if mask.grid.matches(grid):
        return mask.array[first:stop]
    target = grid.take(first, stop)
    covered = coverage(mask.grid, target) > 0
    if not covered.any():
        raise ImagingError(
            f"{mask.path}: the mask lies elsewhere in the patient than {image}: it covers none "
            f"of the imported slices (mask: {_describe(mask.grid)}; image: {_describe(grid)}); "
            "is it another patient's, or written without the image's geometry?"
        )
    missing = uncovered_slices(indices, covered)
    if missing:
        raise ImagingError(
            f"{mask.path}: the mask does not reach {missing} of {image}, whose truth is then "
            "unknown; give a mask that covers them, or choose other slices"
        )
    return resample(mask.array, mask.grid, target, nearest=True)


def _describe(grid: Grid) -> str:
    n_k, n_r, n_c = grid.shape
    sx, sy, sz = grid.spacing
    x, y, z = grid.origin
    return (
        f"{n_c} x {n_r} x {n_k} voxels of {sx:.3g} x {sy:.3g} x {sz:.3g} mm from "
        f"({x:.1f}, {y:.1f}, {z:.1f}) mm"
    )


def write_mask_png(labels: np.ndarray, path: Path) -> Path:
    """A 2D label slice as a lossless PNG (8-bit, 16-bit where a label exceeds 255), the mask
    of a 2D picture row (`picture_mask_truth`); returns `path`."""
    values = np.asarray(labels)
    if values.ndim != 2 or values.dtype.kind not in "ub" or values.max(initial=0) > 0xFFFF:
        raise ImagingError(
            f"cannot write a mask of {values.dtype} and shape {values.shape} as a PNG: it is "
            "not a 2D array of labels from 0 to 65535"
        )
    dtype = np.uint8 if values.max(initial=0) <= 0xFF else np.uint16
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(dtype)).save(path, format="PNG")
    return path


def mask_to_bytes(labels: np.ndarray) -> bytes:
    """A 2D label slice as .npy bytes (unsigned integers, C order), deterministically."""
    values = np.ascontiguousarray(labels)
    if values.ndim != 2 or values.dtype.kind != "u":
        raise ImagingError(
            f"cannot store a mask of {values.dtype} and shape {values.shape}: "
            "it is not a 2D array of unsigned labels"
        )
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


def mask_from_bytes(data: bytes) -> np.ndarray:
    """The label slice that `mask_to_bytes` stored."""
    try:
        values = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ImagingError(f"stored mask cannot be read ({one_line(e)}); it is damaged") from e
    if values.ndim != 2 or values.dtype.kind != "u":
        raise ImagingError(
            f"stored mask is {values.dtype} of shape {values.shape}, not a 2D label array"
        )
    return values
