"""DICOM loading: the real ProstateX series and generated single-, multi-frame and RLE files."""

from __future__ import annotations

import hashlib
import io
import itertools
import shutil
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut
from pydicom.uid import RLELossless

from study.imaging import ImagingError, load_slices, normalise, render_png
from study.imaging.load import MAX_IMAGE_PIXELS
from study.imaging.types import parse_sequence

from .conftest import (
    PROSTATEX_SERIES,
    WriteDicom,
    anatomy,
    multiframe_dataset,
    png_chunks,
    radiological,
)

# What the headers of ../shared/data/prostatex say (read with pydicom, written down here).
EXPECTED_HEADERS = {
    "t2w": {"rows": 384, "columns": 384, "spacing": (0.5, 0.5)},
    "adc": {"rows": 128, "columns": 84, "spacing": (2.0, 2.0)},
    "hbv": {"rows": 128, "columns": 84, "spacing": (2.0, 2.0)},
}


def _by_position(folder: Path) -> list[tuple[float, Path, pydicom.Dataset]]:
    """The folder's files sorted by position along the slice normal, computed independently."""
    found = []
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        cosines = np.array(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(cosines[:3], cosines[3:])
        found.append((float(normal @ np.array(ds.ImagePositionPatient, dtype=float)), path, ds))
    return sorted(found, key=lambda item: item[0])


@pytest.mark.parametrize("series", PROSTATEX_SERIES)
def test_prostatex_series_load_in_position_order(shared_data: Path, series: str) -> None:
    folder = shared_data / "prostatex" / series
    expected = EXPECTED_HEADERS[folder.name]
    ordered = _by_position(folder)
    first = ordered[0][2]
    assert (first.Rows, first.Columns) == (expected["rows"], expected["columns"])
    assert tuple(float(v) for v in first.PixelSpacing) == expected["spacing"]
    positions = [position for position, _, _ in ordered]
    assert all(b > a for a, b in itertools.pairwise(positions))

    slices = load_slices(folder, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    assert len(slices) == 19
    assert [s.slice_index for s in slices] == list(range(19))
    digest = hashlib.sha256(b"".join(path.read_bytes() for _, path, _ in ordered)).hexdigest()
    for index, (source, (_, _, ds)) in enumerate(zip(slices, ordered, strict=True)):
        assert source.array.dtype == np.float32
        assert source.array.shape == (expected["rows"], expected["columns"])
        assert source.spacing_mm == expected["spacing"]
        assert np.array_equal(source.array, apply_modality_lut(ds.pixel_array, ds))
        assert source.source_sha256 == hashlib.sha256(f"{digest}:{index}".encode()).hexdigest()
        assert source.description == f"{series} slice {index}"


def test_position_order_is_not_file_name_order(shared_data: Path) -> None:
    folder = shared_data / "prostatex" / "ProstateX-0000" / "adc"
    by_name = sorted(folder.iterdir())
    by_position = [path for _, path, _ in _by_position(folder)]
    assert by_position != by_name

    slices = load_slices(folder, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    first_by_position = pydicom.dcmread(by_position[0])
    assert np.array_equal(slices[0].array, first_by_position.pixel_array)
    assert not np.array_equal(slices[0].array, pydicom.dcmread(by_name[0]).pixel_array)


def test_renamed_files_load_identically(shared_data: Path, tmp_path: Path) -> None:
    """File names play no part: shuffled names give the same slices and identities."""
    folder = shared_data / "prostatex" / "ProstateX-0001" / "hbv"
    files = sorted(folder.iterdir())
    names = np.random.default_rng(3).permutation(len(files))
    for path, name in zip(files, names, strict=True):
        shutil.copyfile(path, tmp_path / f"{name:03d}.dcm")

    original = load_slices(folder, slices="all", max_pixels=MAX_IMAGE_PIXELS)
    renamed = load_slices(tmp_path, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    for a, b in zip(original, renamed, strict=True):
        assert np.array_equal(a.array, b.array)
        assert a.source_sha256 == b.source_sha256


def test_default_choice_is_the_ten_central_slices(shared_data: Path) -> None:
    folder = shared_data / "prostatex" / "ProstateX-0000" / "t2w"

    slices = load_slices(folder, max_pixels=MAX_IMAGE_PIXELS)

    assert [s.slice_index for s in slices] == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert slices[5].description == "ProstateX-0000/t2w slice 9"
    assert [s.source_sha256 for s in slices] == [
        s.source_sha256 for s in load_slices(folder, slices="4:14", max_pixels=MAX_IMAGE_PIXELS)
    ]


def test_t2w_series_loads_quickly(shared_data: Path) -> None:
    folder = shared_data / "prostatex" / "ProstateX-0000" / "t2w"
    start = time.perf_counter()

    slices = load_slices(folder, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    # About 0.1 s on a shared 2-core machine; the bound only catches an accidental slow path.
    assert time.perf_counter() - start < 3.0
    assert len(slices) == 19


@pytest.mark.parametrize("series", PROSTATEX_SERIES)
def test_prostatex_middle_slice_renders(shared_data: Path, series: str) -> None:
    folder = shared_data / "prostatex" / series
    (middle,) = load_slices(folder, slices="9:10", max_pixels=MAX_IMAGE_PIXELS)

    png = render_png(normalise(middle.array, parse_sequence(folder.name)), size=256)

    image = Image.open(io.BytesIO(png))
    assert (image.size, image.mode) == ((256, 256), "L")
    assert set(png_chunks(png)) <= {b"IHDR", b"IDAT", b"IEND"}
    assert np.asarray(image).std() > 10


def test_generated_series_sorted_by_position(dicom_series, tmp_path: Path) -> None:
    volume = anatomy((5, 4, 3))
    folder = dicom_series("series", volume, spacing=(2.0, 3.0, 4.0))

    slices = load_slices(folder, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    assert [s.slice_index for s in slices] == [0, 1, 2]
    for k, source in enumerate(slices):
        assert np.array_equal(source.array, radiological(volume, k))
        assert source.spacing_mm == (3.0, 2.0)


def test_modality_lut_is_applied(write_dicom: WriteDicom, tmp_path: Path) -> None:
    stored = np.array([[0, 1], [2, 1000]], dtype=np.uint16)
    path = write_dicom(tmp_path / "ct.dcm", stored, rescale=(0.5, -100.0))

    (source,) = load_slices(path, max_pixels=MAX_IMAGE_PIXELS)

    assert np.array_equal(source.array, [[-100.0, -99.5], [-99.0, 400.0]])
    assert source.array.dtype == np.float32


def test_missing_pixel_spacing_means_one_mm(write_dicom: WriteDicom, tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "a.dcm", np.ones((3, 2), np.uint16), spacing=None)

    assert load_slices(path, max_pixels=MAX_IMAGE_PIXELS)[0].spacing_mm == (1.0, 1.0)


def test_instance_number_orders_slices_without_positions(
    write_dicom: WriteDicom, tmp_path: Path
) -> None:
    for instance in (3, 1, 2):
        write_dicom(
            tmp_path / f"f{4 - instance}.dcm",
            np.full((2, 2), instance, np.uint16),
            position=None,
            orientation=None,
            instance=instance,
        )

    slices = load_slices(tmp_path, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    assert [float(s.array[0, 0]) for s in slices] == [1.0, 2.0, 3.0]


def test_multiframe_frames_sorted_by_position_with_frame_rescale(tmp_path: Path) -> None:
    frames = np.stack([np.full((3, 4), value, np.uint16) for value in (30, 10, 20)])
    positions = [(0.0, 0.0, 5.0), (0.0, 0.0, -5.0), (0.0, 0.0, 0.0)]
    path = tmp_path / "enhanced.dcm"
    multiframe_dataset(frames, positions).save_as(path, enforce_file_format=True)

    slices = load_slices(path, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    # Frames by position: 10 (-5 mm), 20 (0 mm), 30 (5 mm); rescale 2 x - 10.
    assert [float(s.array[0, 0]) for s in slices] == [10.0, 30.0, 50.0]
    assert all(s.spacing_mm == (0.7, 0.6) for s in slices)
    assert slices[0].description == f"{tmp_path.name}/enhanced.dcm slice 0"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert slices[2].source_sha256 == hashlib.sha256(f"{digest}:2".encode()).hexdigest()


def test_rle_lossless_series_decodes(dicom_series, tmp_path: Path) -> None:
    volume = anatomy((6, 5, 3))
    folder = dicom_series("plain", volume)
    compressed = tmp_path / "rle"
    compressed.mkdir()
    for path in folder.iterdir():
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless)
        ds.save_as(compressed / path.name, enforce_file_format=True)
    assert pydicom.dcmread(next(compressed.iterdir())).file_meta.TransferSyntaxUID == RLELossless

    slices = load_slices(compressed, slices="all", max_pixels=MAX_IMAGE_PIXELS)

    for k, source in enumerate(slices):
        assert np.array_equal(source.array, radiological(volume, k))


def _two_series(write_dicom: WriteDicom, folder: Path) -> None:
    for k in range(3):
        write_dicom(
            folder / f"t2_{k}.dcm",
            np.full((4, 4), k, np.uint16),
            position=(0, 0, 3.0 * k),
            series_uid="1.2.3.1",
            description="t2_tse_tra",
            instance=k + 1,
        )
        write_dicom(
            folder / f"adc_{k}.dcm",
            np.full((2, 2), 100 + k, np.uint16),
            position=(0, 0, 3.0 * k),
            series_uid="1.2.3.2",
            description="ep2d_diff_ADC",
            instance=k + 1,
        )


def test_folder_with_two_series_needs_series(write_dicom: WriteDicom, tmp_path: Path) -> None:
    _two_series(write_dicom, tmp_path)

    with pytest.raises(ImagingError) as error:
        load_slices(tmp_path, max_pixels=MAX_IMAGE_PIXELS)

    message = str(error.value)
    assert str(tmp_path) in message
    assert "holds 2 series; set 'series'" in message
    assert "1.2.3.1 ('t2_tse_tra'): 3 files" in message
    assert "1.2.3.2 ('ep2d_diff_ADC'): 3 files" in message


def test_series_chosen_by_uid_or_description(write_dicom: WriteDicom, tmp_path: Path) -> None:
    _two_series(write_dicom, tmp_path)

    by_uid = load_slices(tmp_path, series="1.2.3.2", slices="all", max_pixels=MAX_IMAGE_PIXELS)
    by_description = load_slices(
        tmp_path, series="EP2D_DIFF_adc", slices="all", max_pixels=MAX_IMAGE_PIXELS
    )

    assert [float(s.array[0, 0]) for s in by_uid] == [100.0, 101.0, 102.0]
    assert [s.source_sha256 for s in by_description] == [s.source_sha256 for s in by_uid]


def test_unknown_series_is_refused(write_dicom: WriteDicom, tmp_path: Path) -> None:
    _two_series(write_dicom, tmp_path)

    with pytest.raises(ImagingError, match=r"series 'dwi' matches no series; found 1\.2\.3\.1"):
        load_slices(tmp_path, series="dwi", max_pixels=MAX_IMAGE_PIXELS)
