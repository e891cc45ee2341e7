"""Lesion masks: each slice's truth from a label volume, and every mask that cannot be trusted
refused with its file named."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from study.imaging import ManifestError, load_manifest
from study.imaging.errors import ImagingError, ShownPaths
from study.imaging.manifest import write_manifest
from study.imaging.mask import mask_from_bytes, mask_to_bytes
from study.imaging.types import Lesion, Sequence

from .conftest import CUBE_T2W, dicom_dataset, physical_points

AFFINE = np.diag([0.5, 0.5, 3.0, 1.0])
SHAPE = (16, 16, 4)


def image(folder: Path, name: str = "t2w.nii.gz", affine: np.ndarray = AFFINE) -> Path:
    values = np.random.default_rng(1).random(SHAPE).astype(np.float32) * 400
    nib.save(nib.Nifti1Image(values, affine), folder / name)
    return folder / name


def mask(folder: Path, labels: np.ndarray, name: str = "mask.nii.gz", **options) -> Path:
    affine = options.get("affine", AFFINE)
    nib.save(nib.Nifti1Image(labels, affine), folder / name)
    return folder / name


def lesions_on(slices: dict[int, tuple[int, int]], label: int = 1) -> np.ndarray:
    """A label volume with a side x side square of `label` on each slice given as side."""
    labels = np.zeros(SHAPE, np.uint8)
    for k, (side, at) in slices.items():
        labels[at : at + side, at : at + side, k] = label
    return labels


def manifest(folder: Path, *rows: dict[str, object]) -> Path:
    base = {"origin": "real", "sequence": "T2W", "lesion": "", "patient_id": "P1", "slices": "all"}
    return write_manifest(folder / "manifest.csv", [{**base, **r} for r in rows])


def test_each_slice_takes_its_truth_from_the_mask(tmp_path):
    # 16 voxels on slice 1, 9 on slice 2 (below the default of 10), none on slices 0 and 3.
    labels = lesions_on({1: (4, 2), 2: (3, 9)})
    path = manifest(tmp_path, {"path": image(tmp_path).name, "mask": mask(tmp_path, labels).name})
    loaded = load_manifest(path)
    assert [s.lesion for s in loaded] == [Lesion.NO, Lesion.YES, Lesion.NO, Lesion.NO]
    assert [len(s.lesions) for s in loaded] == [0, 1, 0, 0]
    (found,) = loaded[1].lesions
    assert (found.label, found.voxels, found.area_mm2) == (1, 16, 4.0)
    # The mask slice lies on the canonical pixels: the lesion's pixels are its 16 ones.
    assert loaded[1].mask.shape == loaded[1].canonical.shape == (16, 16)
    rows, cols = np.nonzero(loaded[1].mask)
    assert len(rows) == 16 and found.bbox == (
        rows.min(),
        cols.min(),
        rows.max() + 1,
        cols.max() + 1,
    )
    assert found.centroid == (rows.mean(), cols.mean())
    assert found.outline[0] == found.outline[-1] and len(found.outline) > 4
    assert [s.lesion for s in load_manifest(path, min_lesion_voxels=9)][2] == Lesion.YES


def test_lesion_labels_pick_which_labels_count(tmp_path):
    labels = lesions_on({1: (4, 2)}, label=1) + lesions_on({2: (4, 2)}, label=3)
    path = manifest(tmp_path, {"path": image(tmp_path).name, "mask": mask(tmp_path, labels).name})
    assert [s.lesion for s in load_manifest(path)][1:3] == [Lesion.YES, Lesion.YES]
    picked = load_manifest(path, lesion_labels=[2, 3, 4, 5])
    assert [s.lesion for s in picked] == [Lesion.NO, Lesion.NO, Lesion.YES, Lesion.NO]
    assert [lesion.label for lesion in picked[2].lesions] == [3]
    # The stored mask keeps every label; only the truth depends on which count.
    assert set(np.unique(picked[1].mask)) == {0, 1}
    with pytest.raises(ImagingError, match=r"lesion labels \[0, 2\] must be whole"):
        load_manifest(path, lesion_labels=[0, 2])
    with pytest.raises(ImagingError, match="min_lesion_voxels 0 is out of range"):
        load_manifest(path, min_lesion_voxels=0)


@pytest.mark.parametrize("lesion", ["", "0"])
def test_an_all_zero_mask_means_no_lesion_on_any_slice(tmp_path, lesion):
    labels = np.zeros(SHAPE, np.uint8)
    path = manifest(
        tmp_path,
        {"path": image(tmp_path).name, "mask": mask(tmp_path, labels).name, "lesion": lesion},
    )
    loaded = load_manifest(path)
    assert [(s.lesion, s.lesions) for s in loaded] == [(Lesion.NO, ())] * 4
    assert all(s.mask is not None and not s.mask.any() for s in loaded)


def test_a_mask_on_another_grid_is_resampled_by_nearest_neighbour(cube_patient, tmp_path):
    # The mask lies on the ADC's coarse grid, turned by 15 degrees; the T2W slices lie at
    # z = -13.5 + 3 k and take the label of the nearest ADC slice (z = -16 + 4 j), which is in
    # the cube (|z| <= 6) for k = 3..6.
    path = manifest(tmp_path, {"path": "t2w.mha", "mask": "mask.mha"})
    loaded = load_manifest(path)
    assert [k for k, s in enumerate(loaded) if s.lesion == Lesion.YES] == [3, 4, 5, 6]
    points = physical_points(CUBE_T2W["shape"], CUBE_T2W["origin"], CUBE_T2W["spacing"])
    for k in (3, 4, 5, 6):
        labels = loaded[k].mask
        assert set(np.unique(labels)) == {0, 2}
        # Nearest neighbour moves a face by at most half an ADC voxel's diagonal (1.5 mm).
        deep = (np.abs(points[k] - (0.0, 1.0, points[k][0, 0, 2])) <= 4.5).all(axis=-1)
        far = (np.abs(points[k] - (0.0, 1.0, points[k][0, 0, 2])) >= 7.5).any(axis=-1)
        assert (labels[deep] == 2).all() and (labels[far] == 0).all()
        (found,) = loaded[k].lesions
        # The cube's centre (0, 1) mm is pixel (row 32, col 32) of the T2W slice.
        assert found.label == 2 and np.allclose(found.centroid, (32, 32), atol=1.5)
        assert 100 < found.area_mm2 < 250


# --- refused masks --------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / name).write_bytes(data)
    return tmp_path / name


BAD_MASKS = {
    "unreadable": (
        lambda d: _write(d, "mask.nii.gz", b"not a nifti file at all"),
        "",
        "mask.nii.gz: cannot be read as NIfTI",
    ),
    "not labels": (
        lambda d: mask(d, np.full(SHAPE, 0.5, np.float32)),
        "",
        "mask.nii.gz: the mask holds values that are not labels (whole numbers >= 0), e.g. 0.5",
    ),
    "empty but lesion 1": (
        lambda d: mask(d, np.zeros(SHAPE, np.uint8)),
        "1",
        "mask.nii.gz: the mask is empty (no voxel of any label > 0), but lesion is 1",
    ),
    "every voxel labelled": (
        lambda d: mask(d, np.ones(SHAPE, np.uint8)),
        "",
        "mask.nii.gz: the mask labels every voxel (none is 0)",
    ),
    "another place in the patient": (
        lambda d: mask(
            d, lesions_on({1: (4, 2)}), affine=AFFINE + np.array([[0, 0, 0, 500]] + [[0] * 4] * 3)
        ),
        "",
        "mask.nii.gz: the mask lies elsewhere in the patient than",
    ),
    "slices it does not reach": (
        lambda d: mask(d, lesions_on({1: (4, 2)})[:, :, :2]),
        "",
        "mask.nii.gz: the mask does not reach slices 2, 3 of",
    ),
    "a DICOM segmentation": (
        lambda d: _segmentation(d),
        "",
        "seg.dcm: is a DICOM Segmentation (SEG), which is not read",
    ),
    "missing": (lambda d: d / "gone.nii.gz", "", "gone.nii.gz: mask does not exist"),
}


def _segmentation(folder: Path) -> Path:
    ds = dicom_dataset(np.zeros((4, 4), np.uint16))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    ds.save_as(folder / "seg.dcm", enforce_file_format=True)
    return folder / "seg.dcm"


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_a_mask_that_cannot_be_trusted_is_refused_naming_it(tmp_path, case):
    make, lesion, expected = BAD_MASKS[case]
    bad = make(tmp_path)
    path = manifest(tmp_path, {"path": image(tmp_path).name, "mask": bad.name, "lesion": lesion})
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    (problem,) = error.value.problems
    assert problem.startswith(f"{path}: line 2: "), problem
    assert expected in problem, problem


def test_lesion_and_mask_that_disagree_are_refused_naming_row_and_slices(tmp_path):
    labels = lesions_on({1: (4, 2), 2: (4, 2)})
    t2w, masked = image(tmp_path), mask(tmp_path, labels)
    path = manifest(
        tmp_path,
        {"path": t2w.name, "mask": masked.name, "lesion": "1"},
        {"path": t2w.name, "mask": masked.name, "lesion": "0", "slices": "1:3", "patient_id": "P2"},
    )
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert error.value.problems == [
        f"{path}: line 2: {t2w}: lesion is 1, but its mask {masked} has fewer than 10 voxels of "
        "any label > 0 on slices 0, 3; leave lesion empty to take each slice's truth from the "
        "mask",
        f"{path}: line 3: {t2w}: lesion is 0, but its mask {masked} has at least 10 voxels of "
        "any label > 0 on slices 1, 2; leave lesion empty to take each slice's truth from the "
        "mask",
    ]


def test_a_picture_row_takes_its_truth_from_a_2d_mask_of_its_pixels(tmp_path):
    Image.fromarray(np.zeros((16, 12), np.uint8)).save(tmp_path / "slice.png")
    labels = np.zeros((16, 12), np.uint16)
    labels[3:7, 5:9] = 2
    Image.fromarray(labels).save(tmp_path / "slice-mask.png")
    empty = tmp_path / "empty-mask.png"
    Image.fromarray(np.zeros((16, 12), np.uint8)).save(empty)
    path = manifest(
        tmp_path,
        {"path": "slice.png", "mask": "slice-mask.png", "slices": ""},
        {"path": "slice.png", "mask": empty.name, "slices": "", "lesion": "0"},
    )
    lesion, healthy = load_manifest(path)
    assert (lesion.lesion, healthy.lesion) == (Lesion.YES, Lesion.NO)
    assert np.array_equal(lesion.mask, labels) and not healthy.mask.any()
    (found,) = lesion.lesions
    assert (found.label, found.voxels) == (2, 16)


def test_a_picture_rows_mask_of_other_pixels_or_disagreeing_is_refused(tmp_path):
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "slice.png")
    volume = mask(tmp_path, lesions_on({1: (4, 2)}))
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(small)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(empty)
    path = manifest(
        tmp_path,
        {"path": "slice.png", "mask": volume.name, "slices": ""},
        {"path": "slice.png", "mask": small.name, "slices": ""},
        {"path": "slice.png", "mask": empty.name, "slices": "", "lesion": "1"},
    )
    with pytest.raises(ManifestError) as error:
        load_manifest(path)
    assert error.value.problems == [
        f"{path}: line 2: {volume}: the mask has 4 slices; a 2D mask has one slice",
        f"{path}: line 3: {small}: the mask is 16 x 8 pixels, but {tmp_path / 'slice.png'} is "
        "16 x 16; the mask of a 2D picture labels its pixels one for one",
        f"{path}: line 4: {empty}: the mask is empty (no voxel of any label > 0), but lesion is "
        "1; give the lesion's mask, or set lesion to 0 or leave it empty",
    ]


def test_a_mask_outside_an_upload_is_refused_naming_the_upload(tmp_path):
    image(tmp_path)
    path = manifest(tmp_path, {"path": "t2w.nii.gz", "mask": "../mask.nii.gz"})
    with pytest.raises(ManifestError) as error:
        load_manifest(path, allow_absolute=False, shown=ShownPaths(tmp_path, "scans.zip"))
    assert error.value.problems == [
        "scans.zip: manifest.csv: line 2: ../mask.nii.gz: mask path leaves the manifest folder "
        "scans.zip; put the file inside that folder"
    ]


def test_an_adc_shown_on_t2w_slices_takes_its_mask_on_those_slices(cube_patient, tmp_path):
    path = manifest(
        tmp_path,
        {"path": "t2w.mha"},
        {"path": "adc.mha", "sequence": "ADC", "mask": "mask.mha", "slices": ""},
    )
    loaded = load_manifest(path)
    adc = [s for s in loaded if s.row.sequence == Sequence.ADC]
    assert [k for k, s in enumerate(adc) if s.lesion == Lesion.YES] == [3, 4, 5, 6]
    assert all(s.mask.shape == s.canonical.shape == (64, 64) for s in adc)
    t2w = [s for s in loaded if s.row.sequence == Sequence.T2W]
    assert all(s.mask is None and s.lesion == Lesion.UNKNOWN for s in t2w)


def test_stored_masks_round_trip_and_damage_is_named():
    labels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert np.array_equal(mask_from_bytes(mask_to_bytes(labels)), labels)
    assert mask_to_bytes(labels) == mask_to_bytes(labels.copy())
    with pytest.raises(ImagingError, match="not a 2D array of unsigned labels"):
        mask_to_bytes(labels.astype(np.float32))
    with pytest.raises(ImagingError, match="stored mask cannot be read"):
        mask_from_bytes(b"junk")
