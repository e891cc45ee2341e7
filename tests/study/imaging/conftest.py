"""Generated imaging fixtures, written to tmp_path at test time (never downloaded)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

PROSTATEX_SERIES = [f"ProstateX-000{p}/{s}" for p in (0, 1) for s in ("t2w", "adc", "hbv")]
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

WriteDicom = Callable[..., Path]


def png_chunks(png: bytes) -> list[bytes]:
    """Chunk types of a PNG stream, parsed independently of the code under test."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        types.append(png[offset + 4 : offset + 8])
        offset += 12 + length
    assert offset == len(png)
    return types


def png_with_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height 8-bit gray pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def dicom_dataset(
    array: np.ndarray,
    *,
    position: Iterable[float] | None = (0.0, 0.0, 0.0),
    orientation: Iterable[float] | None = AXIAL,
    spacing: tuple[float, float] | None = (0.5, 0.5),
    series_uid: str = "1.2.826.0.1.3680043.10.1",
    description: str = "t2_tse_tra",
    instance: int | None = 1,
    rescale: tuple[float, float] | None = None,
) -> Dataset:
    """A single-frame MR image holding `array` (uint16) with the given geometry."""
    sop_uid = f"{series_uid}.{instance or 0}"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "MR"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.0"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesDescription = description
    if instance is not None:
        ds.InstanceNumber = instance
    if position is not None:
        ds.ImagePositionPatient = [float(v) for v in position]
    if orientation is not None:
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    _set_pixels(ds, array[np.newaxis])
    return ds


def _set_pixels(ds: Dataset, frames: np.ndarray) -> None:
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(frames, dtype="<u2").tobytes()


def multiframe_dataset(
    frames: np.ndarray,
    positions: list[tuple[float, float, float]],
    *,
    spacing: tuple[float, float] = (0.7, 0.6),
    rescale: tuple[float, float] = (2.0, -10.0),
) -> Dataset:
    """An enhanced MR file: geometry and rescale in the functional groups, as scanners write."""
    ds = dicom_dataset(frames[0], position=None, orientation=None, spacing=None, instance=1)
    ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR_IMAGE_STORAGE
    ds.SOPClassUID = ENHANCED_MR_IMAGE_STORAGE
    ds.NumberOfFrames = len(frames)
    measures, orientation, transform = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing = list(spacing)
    orientation.ImageOrientationPatient = list(AXIAL)
    transform.RescaleSlope, transform.RescaleIntercept = rescale
    transform.RescaleType = "US"
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for position in positions:
        plane, group = Dataset(), Dataset()
        plane.ImagePositionPatient = list(position)
        group.PlanePositionSequence = DicomSequence([plane])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    _set_pixels(ds, frames)
    return ds


@pytest.fixture
def write_dicom() -> WriteDicom:
    """write_dicom(path, array, **dicom_dataset options) -> path, a DICOM Part 10 file."""

    def write(path: Path, array: np.ndarray, **options: object) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        dicom_dataset(array, **options).save_as(path, enforce_file_format=True)
        return path

    return write


def anatomy(shape: tuple[int, int, int] = (5, 4, 3)) -> np.ndarray:
    """A volume in RAS+ voxel order (i: left->right, j: posterior->anterior, k: inferior->
    superior) whose every voxel value tells its position: 100 k + 10 j + i."""
    i, j, k = np.indices(shape)
    return (100 * k + 10 * j + i).astype(np.float32)


def radiological(volume: np.ndarray, k: int) -> np.ndarray:
    """Axial slice k of a RAS+ volume as an axial DICOM slice stores it (LPS): rows anterior
    -> posterior, columns patient right -> left. Written out index by index, on purpose."""
    n_i, n_j, _ = volume.shape
    out = np.empty((n_j, n_i), dtype=volume.dtype)
    for row in range(n_j):
        for col in range(n_i):
            out[row, col] = volume[n_i - 1 - col, n_j - 1 - row, k]
    return out


@pytest.fixture
def dicom_series(write_dicom: WriteDicom, tmp_path: Path) -> Callable[..., Path]:
    """dicom_series(name, volume, spacing=(sx, sy, sz), positions=None) -> folder.

    Writes the RAS+ `volume` as axial DICOM slices in LPS, with file names in a scrambled
    order, so that only the positions can order them.
    """

    def write(
        name: str,
        volume: np.ndarray,
        spacing: tuple[float, float, float] = (2.0, 3.0, 4.0),
        positions: list[float] | None = None,
        **options: object,
    ) -> Path:
        folder = tmp_path / name
        n_i, n_j, n_k = volume.shape
        sx, sy, sz = spacing
        heights = positions if positions is not None else [k * sz for k in range(n_k)]
        scrambled = np.random.default_rng(7).permutation(n_k)
        for k in range(n_k):
            write_dicom(
                folder / f"IM{scrambled[k]:04d}.dcm",
                radiological(volume, k),
                position=(-(n_i - 1) * sx, -(n_j - 1) * sy, heights[k]),
                spacing=(sy, sx),
                instance=int(scrambled[k]) + 1,
                **options,
            )
        return folder

    return write


def write_mha(
    path: Path,
    array: np.ndarray,
    *,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
) -> Path:
    """Write `array` (z, y, x) as a MetaImage with the given geometry (LPS, mm), via SimpleITK."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection([float(v) for v in direction])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


def physical_points(
    shape: tuple[int, int, int],
    origin: tuple[float, float, float],
    spacing: tuple[float, float, float],
) -> np.ndarray:
    """(z, y, x, 3): the patient coordinates of every voxel centre of an axis-aligned grid."""
    k, r, c = np.indices(shape, dtype=np.float64)
    return np.stack(
        [origin[0] + c * spacing[0], origin[1] + r * spacing[1], origin[2] + k * spacing[2]],
        axis=-1,
    )


# A patient of known geometry: a fine axial T2W grid, and a coarse ADC grid turned by 15 degrees
# about z, both around a cube |x| <= 6, |y - 1| <= 6, |z| <= 6 mm of ADC 1500 x 10^-6 mm^2/s.
CUBE_T2W = {"origin": (-16.0, -15.0, -13.5), "spacing": (0.5, 0.5, 3.0), "shape": (10, 64, 64)}
CUBE_ADC_SPACING = (2.0, 2.0, 4.0)
CUBE_ADC_SHAPE = (9, 22, 22)
_TURN = np.radians(15.0)
CUBE_ADC_DIRECTION = (
    *(np.cos(_TURN), -np.sin(_TURN), 0.0),
    *(np.sin(_TURN), np.cos(_TURN), 0.0),
    *(0.0, 0.0, 1.0),
)


def in_cube(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Which points (..., 3) lie inside the cube shrunk by `margin` mm on every side."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    half = 6.0 - margin
    return (abs(x) <= half) & (abs(y - 1.0) <= half) & (abs(z) <= half)


@pytest.fixture
def cube_patient(tmp_path: Path) -> dict[str, Path]:
    """t2w.mha, adc.mha and mask.mha (label 2 in the cube, on the ADC grid) in tmp_path."""
    t2w = np.random.default_rng(3).random(CUBE_T2W["shape"]).astype(np.float32) * 500
    write_mha(tmp_path / "t2w.mha", t2w, origin=CUBE_T2W["origin"], spacing=CUBE_T2W["spacing"])
    turn = np.reshape(CUBE_ADC_DIRECTION, (3, 3))
    half_extent = (np.array(CUBE_ADC_SHAPE[::-1]) - 1) * np.array(CUBE_ADC_SPACING) / 2
    origin = np.array([0.0, 1.0, 0.0]) - turn @ half_extent
    k, r, c = np.indices(CUBE_ADC_SHAPE, dtype=np.float64)
    index = np.stack([c, r, k], axis=-1) * np.array(CUBE_ADC_SPACING)
    centres = origin + index @ turn.T
    inside = in_cube(centres)
    geometry = {
        "origin": tuple(origin),
        "spacing": CUBE_ADC_SPACING,
        "direction": CUBE_ADC_DIRECTION,
    }
    adc = np.where(inside, 1500.0, 0.0).astype(np.float32)
    write_mha(tmp_path / "adc.mha", adc, **geometry)
    write_mha(tmp_path / "mask.mha", inside.astype(np.uint8) * 2, **geometry)
    return {name: tmp_path / f"{name}.mha" for name in ("t2w", "adc", "mask")}
