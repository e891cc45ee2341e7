"""NIfTI, MetaImage and picture loading; one anatomy gives one display in every format."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from study.imaging import ImagingError, load_slices
from study.imaging.load import MAX_IMAGE_PIXELS

from .conftest import anatomy, radiological

SPACING = (2.0, 3.0, 4.0)  # (x, y, z) mm


def _write_nifti_permuted(volume: np.ndarray, path: Path) -> Path:
    """`volume` (RAS+ voxel order) stored as (k, i flipped, j): a non-canonical affine."""
    n_i = volume.shape[0]
    sx, sy, sz = SPACING
    stored = np.transpose(volume[::-1, :, :], (2, 0, 1))  # stored[a, b, c] = V[n_i-1-b, c, a]
    affine = np.array(
        [
            [0.0, -sx, 0.0, (n_i - 1) * sx],
            [0.0, 0.0, sy, 0.0],
            [sz, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    assert nib.aff2axcodes(affine) == ("S", "L", "A")
    nib.save(nib.Nifti1Image(stored, affine), path)
    return path


def _write_mha_flipped(volume: np.ndarray, path: Path) -> Path:
    """`volume` as MetaImage with x flipped (direction -1): voxel x index == RAS i."""
    n_j = volume.shape[1]
    # array[k, y, x] with LPS x = -x * sx (so x = i) and LPS y = y * sy - (n_j - 1) sy.
    array = np.transpose(volume, (2, 1, 0))[:, ::-1, :]
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing(SPACING)
    image.SetDirection((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    image.SetOrigin((0.0, -(n_j - 1) * SPACING[1], 0.0))
    sitk.WriteImage(image, str(path))
    return path


def test_nifti_reoriented_to_display_orientation(tmp_path: Path) -> None:
    volume = anatomy((5, 4, 3))
    path = _write_nifti_permuted(volume, tmp_path / "volume.nii.gz")

    slices = load_slices(path, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    assert len(slices) == 3
    for k, source in enumerate(slices):
        assert np.array_equal(source.array, radiological(volume, k))
        assert source.spacing_mm == (3.0, 2.0)
        assert source.slice_index == k
    # Anterior (j = 3) at the top, patient right (i = 4) on the left: 100 k + 30 + 4.
    assert slices[1].array[0, 0] == 134.0
    assert slices[1].description == f"{tmp_path.name}/volume.nii.gz slice 1"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert slices[2].source_sha256 == hashlib.sha256(f"{digest}:2".encode()).hexdigest()


def test_every_format_gives_the_same_display(dicom_series, tmp_path: Path) -> None:
    volume = anatomy((6, 5, 4))
    nifti = load_slices(
        _write_nifti_permuted(volume, tmp_path / "v.nii"), slices="all", max_pixels=MAX_IMAGE_PIXELS
    )
    mha = load_slices(
        _write_mha_flipped(volume, tmp_path / "v.mha"), slices="all", max_pixels=MAX_IMAGE_PIXELS
    )
    dicom = load_slices(
        dicom_series("dicom", volume, spacing=SPACING), slices="all", max_pixels=MAX_IMAGE_PIXELS
    )

    for a, b, c in zip(nifti, mha, dicom, strict=True):
        assert np.array_equal(a.array, b.array)
        assert np.array_equal(a.array, c.array)
        assert a.spacing_mm == b.spacing_mm == c.spacing_mm == (3.0, 2.0)


def test_nifti_with_singleton_fourth_dimension_loads(tmp_path: Path) -> None:
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1)
    path = tmp_path / "one_volume.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)

    assert len(load_slices(path, slices="all", max_pixels=MAX_IMAGE_PIXELS)) == 4


def test_2d_nifti_is_one_slice(tmp_path: Path) -> None:
    data = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)  # (i, j)
    path = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.25, 1.0, 1.0])), path)

    (source,) = load_slices(path, max_pixels=MAX_IMAGE_PIXELS)

    assert np.array_equal(source.array, data.T[::-1, ::-1])
    assert source.spacing_mm == (0.25, 0.5)


def test_nifti_scaling_gives_physical_values(tmp_path: Path) -> None:
    image = nib.Nifti1Image(np.array([[[0], [10]]], np.int16), np.eye(4))
    image.header.set_slope_inter(0.5, 100.0)
    path = tmp_path / "scaled.nii"
    nib.save(image, path)

    (source,) = load_slices(path, max_pixels=MAX_IMAGE_PIXELS)

    assert sorted(source.array.ravel().tolist()) == [100.0, 105.0]


def test_metaimage_slices_along_z(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)  # z, y, x
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.6, 0.7, 3.0))
    path = tmp_path / "t2w.mha"
    sitk.WriteImage(image, str(path))

    slices = load_slices(path, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    assert [s.array.tolist() for s in slices] == array.astype(np.float32).tolist()
    assert slices[0].spacing_mm == pytest.approx((0.7, 0.6))


def test_metaimage_identity_covers_header_and_data_file(tmp_path: Path) -> None:
    path = tmp_path / "v.mhd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4), np.uint8)), str(path))
    before = load_slices(path, slices="0:1", max_pixels=MAX_IMAGE_PIXELS)[0]
    raw = tmp_path / "v.raw"
    raw.write_bytes(b"\x01" + raw.read_bytes()[1:])

    after = load_slices(path, slices="0:1", max_pixels=MAX_IMAGE_PIXELS)[0]

    assert after.array[0, 0] == 1.0
    assert after.source_sha256 != before.source_sha256


def test_8_bit_png(tmp_path: Path) -> None:
    values = np.array([[0, 128, 255], [1, 2, 3]], np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(values).save(path)

    (source,) = load_slices(path, max_pixels=MAX_IMAGE_PIXELS)

    assert np.array_equal(source.array, values)
    assert source.array.dtype == np.float32
    assert (source.spacing_mm, source.slice_index) == ((1.0, 1.0), 0)
    assert source.description == f"{tmp_path.name}/a.png"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert source.source_sha256 == hashlib.sha256(f"{digest}:0".encode()).hexdigest()


def test_16_bit_png_and_tiff(tmp_path: Path) -> None:
    values = np.array([[0, 1000, 65535], [7, 300, 40000]], np.uint16)
    for name in ("b.png", "b.tif"):
        Image.fromarray(values).save(tmp_path / name)

        (source,) = load_slices(tmp_path / name, max_pixels=MAX_IMAGE_PIXELS)

        assert np.array_equal(source.array, values), name


def test_jpeg(tmp_path: Path) -> None:
    values = np.tile(np.linspace(0, 255, 32), (16, 1)).astype(np.uint8)
    Image.fromarray(values).save(tmp_path / "c.jpg", quality=100)

    (source,) = load_slices(tmp_path / "c.jpg", max_pixels=MAX_IMAGE_PIXELS)

    assert source.array.shape == (16, 32)
    assert np.abs(source.array - values).max() <= 3


def test_rgb_that_is_gray_is_converted(tmp_path: Path) -> None:
    gray = np.array([[0, 50], [200, 255]], np.uint8)
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "rgb.jpg", quality=95)

    (png,) = load_slices(tmp_path / "rgb.png", max_pixels=MAX_IMAGE_PIXELS)
    (jpeg,) = load_slices(tmp_path / "rgb.jpg", max_pixels=MAX_IMAGE_PIXELS)

    assert np.array_equal(png.array, gray)
    assert jpeg.array.shape == (2, 2)


def test_slice_choice_on_a_picture(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "p.png")

    for spec in ("all", "0:1", "central:10"):
        assert len(load_slices(tmp_path / "p.png", slices=spec, max_pixels=MAX_IMAGE_PIXELS)) == 1
    with pytest.raises(
        ImagingError, match=r"p\.png: slices '1:2' is out of range: the image has 1 slice"
    ):
        load_slices(tmp_path / "p.png", slices="1:2", max_pixels=MAX_IMAGE_PIXELS)
