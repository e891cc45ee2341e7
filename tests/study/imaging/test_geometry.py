"""Where the voxels lie: every loader's grid agrees with SimpleITK's own reading of the file."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from study.imaging.load import MAX_IMAGE_PIXELS, load_volume

from .conftest import PROSTATEX_SERIES, write_mha


def grid_of_sitk(image) -> tuple[np.ndarray, np.ndarray]:
    """(origin, steps: columns are the steps along x, y, z) of a SimpleITK image."""
    steps = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    return np.asarray(image.GetOrigin()), steps


def assert_same_grid(volume, image) -> None:
    import SimpleITK as sitk

    origin, steps = grid_of_sitk(image)
    assert volume.grid is not None
    assert np.allclose(volume.grid.origin, origin, atol=1e-4)
    assert np.allclose(volume.grid.steps(), steps, atol=1e-5)
    assert volume.grid.shape == volume.array.shape
    assert np.array_equal(volume.array, sitk.GetArrayFromImage(image).astype(np.float32))


@pytest.mark.parametrize("series", PROSTATEX_SERIES)
def test_dicom_series_grids_are_where_simpleitk_puts_them(shared_data: Path, series: str):
    import SimpleITK as sitk

    folder = shared_data / "prostatex" / series
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    volume = load_volume(folder, max_pixels=MAX_IMAGE_PIXELS)
    assert_same_grid(volume, reader.Execute())
    assert volume.study_uid.startswith("1.3.6.1.4.1.14519.5.2.1.7311.5101.")


def test_an_oblique_nifti_grid_is_where_simpleitk_puts_it(tmp_path: Path):
    import SimpleITK as sitk

    turn = np.radians(20.0)
    cos, sin = np.cos(turn), np.sin(turn)
    rotation = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([-0.7, 0.6, 2.5])
    affine[:3, 3] = (10.0, -20.0, 30.0)
    values = np.random.default_rng(0).random((7, 5, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(values, affine), tmp_path / "oblique.nii.gz")
    volume = load_volume(tmp_path / "oblique.nii.gz", max_pixels=MAX_IMAGE_PIXELS)
    image = sitk.DICOMOrient(sitk.ReadImage(str(tmp_path / "oblique.nii.gz")), "LPS")
    assert_same_grid(volume, image)


def test_a_metaimage_grid_is_its_header(tmp_path: Path):
    import SimpleITK as sitk

    write_mha(
        tmp_path / "v.mha",
        np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        origin=(1.0, 2.0, 3.0),
        spacing=(0.5, 0.75, 4.0),
    )
    volume = load_volume(tmp_path / "v.mha", max_pixels=MAX_IMAGE_PIXELS)
    assert_same_grid(volume, sitk.ReadImage(str(tmp_path / "v.mha")))
    assert volume.grid.plane(1).to_json() == {
        "origin_mm": [1.0, 2.0, 7.0],
        "row_step_mm": [0.0, 0.75, 0.0],
        "col_step_mm": [0.5, 0.0, 0.0],
    }


def test_a_dicom_series_without_positions_has_no_grid(write_dicom, tmp_path: Path):
    for i in range(3):
        write_dicom(tmp_path / "s" / f"{i}.dcm", np.full((4, 4), i, np.uint16), position=None,
                    instance=i + 1)  # fmt: skip
    volume = load_volume(tmp_path / "s", max_pixels=MAX_IMAGE_PIXELS)
    assert volume.grid is None and volume.array.shape == (3, 4, 4)
