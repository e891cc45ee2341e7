"""Paired sequences of real data: ADC and DWI shown on the slices of their patient's T2W volume.

Acquisitions of one prostate differ in grid (ProstateX: T2W 384 x 384 at 0.5 mm, ADC and DWI
128 x 84 at 2 mm), so slice k of one is not slice k of another. The manifest groups the real
volume rows that give no `pair_key` of their own by patient and study (`patient_id`, and the
row's `study_id`, else the DICOM StudyInstanceUID, else none). In a group with one T2W row:

- the T2W row's `slices` (or `slice_index`) choose the slices of the whole group;
- each ADC and DWI volume is resampled onto those T2W slices in physical space (SimpleITK,
  linear interpolation, 0 where the volume does not reach), so that its slice lies in the
  T2W slice's plane with the T2W slice's pixel grid; masks follow with nearest neighbour;
- every slice of the group gets the pair key `<patient_id>/<study>/<T2W slice index>`, which
  the paired blocks of a study draw by.

A resampled slice is an image of its own: its source sha256 hashes the volume, the T2W volume
and the slice index together, so it never collides with a slice of the volume on its own grid.

>>> pair_key("ProstateX-0000", "", 9)
'ProstateX-0000//9'
"""

from __future__ import annotations

import hashlib

import numpy as np

from study.imaging.errors import ImagingError
from study.imaging.geometry import coverage, resample, uncovered_slices
from study.imaging.load import Volume
from study.imaging.types import Sequence

# Sequences shown on the T2W slices of their patient and study.
PAIRED_SEQUENCES = frozenset({Sequence.ADC, Sequence.DWI})
# The width of the database's pair_key column.
MAX_PAIR_KEY = 128


def study_of(given: str, volume: Volume) -> str:
    """The study a row belongs to: its `study_id` column, else its DICOM StudyInstanceUID."""
    return given or volume.study_uid


def pair_key(patient_id: str, study: str, index: int) -> str:
    """The pair key of T2W slice `index` of a patient and study (hashed where it would not fit
    the database's column)."""
    key = f"{patient_id}/{study}/{index}"
    if len(key) <= MAX_PAIR_KEY:
        return key
    digest = hashlib.sha256(f"{patient_id}/{study}".encode()).hexdigest()
    return f"{digest}/{index}"


def resampled_sha256(digest: str, reference_digest: str, index: int) -> str:
    """The identity of a volume's slice resampled onto slice `index` of another volume."""
    return hashlib.sha256(f"{digest}:on:{reference_digest}:{index}".encode()).hexdigest()


def resample_onto(volume: Volume, reference: Volume, indices: list[int]) -> np.ndarray:
    """`volume` on slices `indices` (consecutive) of the T2W volume `reference`."""
    for which in (volume, reference):
        if which.grid is None:
            raise ImagingError(
                f"{which.path}: does not say where its voxels lie (positions or orientation "
                f"are missing), so {volume.path} cannot be shown on the slices of "
                f"{reference.path}; set pair_key on the rows to pair them by hand"
            )
    assert volume.grid is not None and reference.grid is not None
    target = reference.grid.take(indices[0], indices[-1] + 1)
    covered = coverage(volume.grid, target) > 0
    missing = uncovered_slices(indices, covered)
    if missing:
        raise ImagingError(
            f"{volume.path}: does not reach {missing} of the T2W volume {reference.path}, on "
            "whose slices it is shown; choose T2W slices that both cover (its row's 'slices')"
        )
    return resample(volume.array, volume.grid, target, nearest=False)
