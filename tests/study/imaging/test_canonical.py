"""Canonical arrays: 16-bit PNG and .npy round trips, generator outputs read back exactly."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from study.imaging import (
    ImagingError,
    canonical_from_bytes,
    canonical_to_bytes,
    read_canonical,
    write_canonical_png,
)

from .conftest import png_chunks


def test_png_round_trip_is_bit_exact(tmp_path: Path) -> None:
    levels = np.random.default_rng(4).integers(0, 65536, (33, 47))
    canonical = levels.astype(np.float32) / np.float32(65535)
    path = tmp_path / "synthetic.png"

    write_canonical_png(canonical, path)

    assert np.array_equal(read_canonical(path), canonical)
    assert np.array_equal(np.asarray(Image.open(path)), levels)
    png = path.read_bytes()
    # IHDR: bit depth 16, colour type 0 (grayscale); nothing but image chunks.
    assert struct.unpack(">IIBB", png[16:26]) == (47, 33, 16, 0)
    assert set(png_chunks(png)) == {b"IHDR", b"IDAT", b"IEND"}


def test_png_writing_is_deterministic_and_rounds(tmp_path: Path) -> None:
    canonical = np.array([[-0.2, 0.0, 0.5, 1.0, 1.3]], np.float32)

    write_canonical_png(canonical, tmp_path / "a.png")
    write_canonical_png(canonical.copy(), tmp_path / "b.png")

    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    # Clipped to [0, 1]; 0.5 * 65535 = 32767.5 rounds half up.
    assert np.asarray(Image.open(tmp_path / "a.png")).tolist() == [[0, 0, 32768, 65535, 65535]]


def test_bytes_round_trip_is_bit_exact() -> None:
    canonical = np.random.default_rng(5).random((64, 48), dtype=np.float32)
    canonical[0, :3] = [0.0, np.float32(1e-40), np.nextafter(np.float32(1), np.float32(0))]

    data = canonical_to_bytes(canonical)

    restored = canonical_from_bytes(data)
    assert restored.dtype == np.float32
    assert restored.tobytes() == canonical.tobytes()
    assert canonical_to_bytes(np.asfortranarray(canonical)) == data


def test_bad_stored_bytes_are_refused() -> None:
    with pytest.raises(ImagingError, match="stored canonical array cannot be read"):
        canonical_from_bytes(b"not an npy file")
    with pytest.raises(ImagingError, match="is int64 of shape"):
        canonical_from_bytes(_npy(np.zeros((2, 2), np.int64)))
    with pytest.raises(ImagingError, match="not 2D"):
        canonical_to_bytes(np.zeros((2, 2, 2), np.float32))


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_8_bit_png_is_divided_by_255(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 51, 255]], np.uint8)).save(tmp_path / "g.png")

    assert read_canonical(tmp_path / "g.png").tolist() == [[0.0, np.float32(0.2), 1.0]]


def test_float_nifti_is_read_like_any_volume_and_clipped(tmp_path: Path) -> None:
    data = np.array([[-0.05, 0.5], [0.25, 1.05]], np.float32)  # (i, j)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "flat.nii.gz")
    nib.save(nib.Nifti1Image(data[..., np.newaxis], np.eye(4)), tmp_path / "one.nii")

    flat = read_canonical(tmp_path / "flat.nii.gz")

    # Display orientation: rows anterior (j high) first, columns patient right (i high) first.
    assert flat.tolist() == [[1.0, 0.5], [0.25, 0.0]]
    assert np.array_equal(read_canonical(tmp_path / "one.nii"), flat)


def test_canonical_reading_refuses_what_is_not_canonical(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 3), np.float32), np.eye(4)), tmp_path / "v.nii")
    nib.save(nib.Nifti1Image(np.full((2, 2), 800.0, np.float32), np.eye(4)), tmp_path / "r.nii")

    with pytest.raises(ImagingError, match=r"v\.nii: holds 3 slices; a canonical image file"):
        read_canonical(tmp_path / "v.nii")
    with pytest.raises(ImagingError, match=r"r\.nii: values span 800 \.\. 800, but canonical"):
        read_canonical(tmp_path / "r.nii")
    with pytest.raises(ImagingError, match="cannot write an array of shape"):
        write_canonical_png(np.zeros(3), tmp_path / "x.png")
