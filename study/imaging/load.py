"""Load 2D slices, in physical values, from DICOM, NIfTI, MetaImage and 2D picture files.

Every loader returns slices in the same display orientation, so that real and synthetic images
(and images of different formats) look alike to readers:

- DICOM: pixels as stored (rows along the column direction cosine), slices sorted by
  ImagePositionPatient projected on the slice normal (row x column cosines), never by file name.
- NIfTI: reoriented to RAS+ (`nib.as_closest_canonical`); axial slices along the third axis,
  transposed and flipped so rows run anterior -> posterior and columns patient right -> left,
  which is how an axial DICOM slice in LPS is stored.
- MetaImage (.mha/.mhd, PI-CAI): reoriented to LPS (`sitk.DICOMOrient`); slices along z.
- PNG, JPEG, TIFF: one 2D slice, 8- or 16-bit grayscale.

In all volumes slice 0 is the most inferior (lowest position along the normal) slice.
`load_volume` returns a whole volume with where its voxels lie in the patient (geometry.Grid,
from ImagePositionPatient/ImageOrientationPatient, the NIfTI affine, or the MetaImage header),
for masks and paired sequences to be resampled onto it; `load_slices` the slices one chooses.

The pixel count is checked against a limit before any pixel data is decoded (a tiny compressed
file can claim gigapixels), and every refusal names the file and says what to do.

>>> chosen = load_slices(  # doctest: +SKIP
...     Path("P-0000/t2w"), slices="9:11", max_pixels=MAX_IMAGE_PIXELS
... )
>>> [s.description for s in chosen]  # doctest: +SKIP
['P-0000/t2w slice 9', 'P-0000/t2w slice 10']
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut

from study.imaging.errors import ImagingError, one_line
from study.imaging.geometry import Grid

# The default of the app's VTT_MAX_IMAGE_PIXELS. This package reads no settings: the app passes
# its setting, and `load_manifest` and `read_canonical` fall back to this limit for callers that
# have no settings of their own (the generator's command line).
MAX_IMAGE_PIXELS = 50_000_000
NIFTI_SUFFIXES = (".nii", ".nii.gz")
METAIMAGE_SUFFIXES = (".mha", ".mhd")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SUPPORTED = "a DICOM folder or file, .nii, .nii.gz, .mha, .mhd, .png, .jpg, .jpeg, .tif, .tiff"

# Consecutive slice positions may differ from the median spacing by this fraction before the
# series is called incomplete (a missing slice doubles one gap: +100%).
GAP_TOLERANCE = 0.5
# Orientation cosines of slices in one series agree to scanner float precision.
ORIENTATION_TOLERANCE = 1e-3
# Two positions closer than this (mm) are the same slice.
SAME_POSITION_MM = 1e-3
# RGB pictures whose channels differ by at most this many levels are gray (JPEG chroma rounding).
GRAY_TOLERANCE = 2

_SPEC = re.compile(r"(?:all|(\d+):(\d+)|central:(\d+))")


@dataclass(frozen=True)
class SourceSlice:
    """One 2D slice of a source file, in physical values, ready to normalise."""

    array: np.ndarray
    spacing_mm: tuple[float, float]
    slice_index: int
    source_sha256: str
    description: str


def validate_slice_spec(spec: str) -> str:
    """`spec` in canonical form ('all', 'a:b' or 'central:N'), or ImagingError.

    >>> validate_slice_spec(" Central:10 ")
    'central:10'
    """
    text = spec.strip().lower().replace(" ", "")
    match = _SPEC.fullmatch(text)
    if match is None:
        raise ImagingError(
            f"slices {spec!r} is not understood: use 'all', 'a:b' (0-based, end excluded) "
            "or 'central:N'"
        )
    start, stop, central = match.groups()
    if start is not None and int(start) >= int(stop):
        raise ImagingError(f"slices {spec!r} is empty: in 'a:b' the end b must exceed a")
    if central is not None and int(central) == 0:
        raise ImagingError(f"slices {spec!r} chooses no slice: use 'central:N' with N >= 1")
    return text


def parse_slice_choice(spec: str, n_slices: int) -> list[int]:
    """The 0-based slice indices that `spec` chooses from a volume of `n_slices` slices.

    'central:N' takes all slices of a volume with fewer than N.

    >>> parse_slice_choice("central:10", 19)
    [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    >>> parse_slice_choice("2:4", 19)
    [2, 3]
    """
    text = validate_slice_spec(spec)
    if text == "all":
        return list(range(n_slices))
    match = _SPEC.fullmatch(text)
    assert match is not None
    start, stop, central = match.groups()
    if central is not None:
        count = min(int(central), n_slices)
        first = (n_slices - count) // 2
        return list(range(first, first + count))
    if int(stop) > n_slices:
        raise ImagingError(
            f"slices {spec!r} is out of range: the image has {n_slices} "
            f"slice{'s' if n_slices != 1 else ''} (valid 'a:b' have 0 <= a < b <= {n_slices})"
        )
    return list(range(int(start), int(stop)))


@dataclass(frozen=True)
class Volume:
    """A whole volume in physical values, (slices, rows, cols) in the display orientation of
    every loader (slice 0 the most inferior), with where its voxels lie in the patient.

    `grid` is None when the file does not say (a DICOM series without positions, a degenerate
    affine); `study_uid` is the DICOM StudyInstanceUID, empty for other formats.
    """

    path: Path
    array: np.ndarray
    spacing_mm: tuple[float, float]
    grid: Grid | None
    digest: str
    study_uid: str = ""

    def slices(self, spec: str) -> list[SourceSlice]:
        """The slices that `spec` chooses, as `load_slices` returns them."""
        return _volume_slices(self.path, self.array, self.spacing_mm, spec, self.digest)


def load_slices(
    path: Path,
    *,
    slices: str = "central:10",
    series: str | None = None,
    max_pixels: int,
) -> list[SourceSlice]:
    """The chosen axial slices of the image, series or volume at `path`.

    `series` (SeriesInstanceUID or SeriesDescription) picks one series of a DICOM folder that
    holds several. `max_pixels` bounds pixels per slice times slices of the whole file or
    series (the app passes VTT_MAX_IMAGE_PIXELS).
    """
    _choose_slices(path, slices, None)
    if not path.exists():
        raise ImagingError(f"{path}: does not exist; check the path")
    if is_picture(path):
        if series:
            raise _series_not_dicom(path, series)
        _choose_slices(path, slices, 1)
        data = _read_bytes(path)
        array, _ = _picture_values(path, data, max_pixels)
        digest = hashlib.sha256(data).hexdigest()
        return [SourceSlice(array, (1.0, 1.0), 0, slice_sha256(digest, 0), _short_name(path))]
    return load_volume(path, series=series, max_pixels=max_pixels).slices(slices)


def load_volume(path: Path, *, series: str | None = None, max_pixels: int) -> Volume:
    """The whole volume or DICOM series at `path` (see `load_slices` for the arguments).

    2D pictures are refused: they do not say where they lie in the patient.
    """
    if not path.exists():
        raise ImagingError(f"{path}: does not exist; check the path")
    name = path.name.lower()
    if _is_dicom(path):
        return _load_dicom(path, series, max_pixels)
    if series:
        raise _series_not_dicom(path, series)
    if name.endswith(NIFTI_SUFFIXES):
        return _load_nifti(path, max_pixels)
    if name.endswith(METAIMAGE_SUFFIXES):
        return _load_metaimage(path, max_pixels)
    if name.endswith(PICTURE_SUFFIXES):
        raise ImagingError(
            f"{path}: is a 2D picture, which does not say where it lies in the patient; use a "
            "NIfTI, MetaImage or DICOM volume"
        )
    raise ImagingError(f"{path}: unsupported file type; use {SUPPORTED}")


def is_picture(path: Path) -> bool:
    """Whether `path` is read as a 2D picture (PNG, JPEG, TIFF) rather than a volume."""
    return path.name.lower().endswith(PICTURE_SUFFIXES) and not _is_dicom(path)


def _is_dicom(path: Path) -> bool:
    name = path.name.lower()
    return path.is_dir() or name.endswith((".dcm", ".dicom", ".ima")) or _has_dicom_marker(path)


def _series_not_dicom(path: Path, series: str) -> ImagingError:
    return ImagingError(
        f"{path}: 'series' ({series!r}) applies only to DICOM folders; leave it empty"
    )


# --- shared helpers ---------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImagingError(f"{path}: cannot be read ({e.strerror})") from e
    if not data:
        raise ImagingError(f"{path}: is empty (0 bytes); copy the file again")
    return data


def _require_content(path: Path) -> None:
    if path.stat().st_size == 0:
        raise ImagingError(f"{path}: is empty (0 bytes); copy the file again")


def _has_dicom_marker(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(132)[128:] == b"DICM"


def _choose_slices(path: Path, spec: str, n_slices: int | None) -> list[int]:
    """`parse_slice_choice` (only the syntax while `n_slices` is None), naming the file."""
    try:
        if n_slices is None:
            validate_slice_spec(spec)
            return []
        return parse_slice_choice(spec, n_slices)
    except ImagingError as e:
        raise ImagingError(f"{path}: {e}") from e


def slice_sha256(source_digest: str, index: int) -> str:
    """The identity of slice `index` of the source whose bytes hash to `source_digest`."""
    return hashlib.sha256(f"{source_digest}:{index}".encode()).hexdigest()


def _short_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _check_pixel_limit(path: Path, n_pixels: int, limit: int, shape: str) -> None:
    if n_pixels > limit:
        raise ImagingError(
            f"{path}: {shape} is {n_pixels:,} pixels, over the limit of {limit:,} "
            "(VTT_MAX_IMAGE_PIXELS); refused before decoding. Raise the limit if the image "
            "is genuine."
        )


def _check_slice_shape(path: Path, rows: int, cols: int, limit: int) -> None:
    """Refuse slices without pixels, and slices whose square display canvas (the longer side
    squared, see render.py) would exceed the pixel limit: a 1 x 10^6 strip passes the pixel
    count but would be padded to 10^12 pixels."""
    if rows < 1 or cols < 1:
        raise ImagingError(f"{path}: slices of {rows} x {cols} pixels hold no pixels")
    side = max(rows, cols)
    if side * side > limit:
        raise ImagingError(
            f"{path}: slices of {rows} x {cols} pixels are padded to a {side} x {side} square "
            f"for display ({side * side:,} pixels), over the limit of {limit:,} "
            "(VTT_MAX_IMAGE_PIXELS); refused before decoding. Crop the image to a less extreme "
            "aspect ratio."
        )


def _hash_files(paths: Iterable[Path]) -> str:
    hasher = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
    return hasher.hexdigest()


def _volume_slices(
    path: Path, volume: np.ndarray, spacing: tuple[float, float], spec: str, digest: str
) -> list[SourceSlice]:
    """Slices of `volume` (slices, rows, cols) chosen by `spec`."""
    chosen = _choose_slices(path, spec, volume.shape[0])
    return [
        SourceSlice(
            np.ascontiguousarray(volume[i], dtype=np.float32),
            spacing,
            i,
            slice_sha256(digest, i),
            f"{_short_name(path)} slice {i}",
        )
        for i in chosen
    ]


# --- DICOM --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _DicomFile:
    path: Path
    data: bytes
    ds: Dataset

    @property
    def frames(self) -> int:
        return int(self.ds.get("NumberOfFrames") or 1)


def _read_dicom_file(path: Path) -> _DicomFile:
    data = _read_bytes(path)
    if data[128:132] != b"DICM":
        raise ImagingError(
            f"{path}: is not a DICOM file (no 'DICM' marker at byte 128); remove it from the "
            "folder, or export it again as DICOM (Part 10) if it is one"
        )
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        # pydicom converts values on first access; convert them all here, inside this guard,
        # so that a damaged value is refused as such instead of failing somewhere later.
        for _ in ds.iterall():
            pass
    except Exception as e:  # pydicom raises many types on damaged input; all mean the same here
        raise ImagingError(
            f"{path}: cannot be read as DICOM ({one_line(e)}); the file is damaged or "
            "truncated: copy it again"
        ) from e
    if ds.get("PixelData") is None:
        raise ImagingError(
            f"{path}: DICOM file without pixel data: it is no image (a DICOMDIR, report, ...) "
            "or it was cut short; remove it from the folder or copy it again"
        )
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is not None and not syntax.is_transfer_syntax:
        raise ImagingError(
            f"{path}: transfer syntax {str(syntax)!r} is unknown; the file is damaged: copy it "
            "again"
        )
    for keyword in ("Rows", "Columns", "BitsAllocated", "SamplesPerPixel", "NumberOfFrames"):
        value = ds.get(keyword)
        if keyword in ds and not (isinstance(value, int) and value >= 0):
            raise ImagingError(
                f"{path}: {keyword} {value!r} is not a whole number >= 0; the file is damaged: "
                "export it again"
            )
    return _DicomFile(path, data, ds)


def _dicom_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    # Hidden files (.DS_Store and the like) are file-system clutter, never part of a series.
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        folders = sorted(p.name for p in path.iterdir() if p.is_dir())
        hint = f"; it holds folders ({', '.join(folders)}): point at one of them" if folders else ""
        raise ImagingError(f"{path}: folder holds no DICOM files{hint}")
    return files


def _series_label(ds: Dataset) -> str:
    return f"{ds.get('SeriesInstanceUID', '')} ({ds.get('SeriesDescription', '')!r})"


def _choose_series(path: Path, files: list[_DicomFile], series: str | None) -> list[_DicomFile]:
    groups: dict[str, list[_DicomFile]] = {}
    for f in files:
        groups.setdefault(str(f.ds.get("SeriesInstanceUID", "")), []).append(f)
    found = "; ".join(
        f"{_series_label(groups[uid][0].ds)}: {len(groups[uid])} files" for uid in sorted(groups)
    )
    if series:
        wanted = series.strip()
        matches = [
            g
            for uid, g in groups.items()
            if uid == wanted
            or str(g[0].ds.get("SeriesDescription", "")).strip().lower() == wanted.lower()
        ]
        if len(matches) == 1:
            return matches[0]
        problem = "matches several series" if matches else "matches no series"
        raise ImagingError(
            f"{path}: series {series!r} {problem}; found {found}. Set 'series' to the "
            "SeriesInstanceUID (or a unique SeriesDescription) of one"
        )
    if len(groups) > 1:
        raise ImagingError(
            f"{path}: folder holds {len(groups)} series; set 'series' to the "
            f"SeriesInstanceUID or SeriesDescription of one: {found}"
        )
    return next(iter(groups.values()))


def _functional_group_value(ds: Dataset, frame: int, sequence: str, keyword: str) -> object:
    """A value of an enhanced multi-frame functional group: per-frame first, then shared."""
    candidates = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        candidates.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        candidates.append(shared[0])
    for groups in candidates:
        items = groups.get(sequence)
        if items and keyword in items[0]:
            return items[0][keyword].value
    return None


def _rescale_source(ds: Dataset, frame: int) -> Dataset:
    """The dataset holding the modality LUT of `frame` (enhanced files keep it per frame)."""
    if "ModalityLUTSequence" in ds or "RescaleSlope" in ds:
        return ds
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    for groups in [
        *([per_frame[frame]] if per_frame is not None and frame < len(per_frame) else []),
        *([shared[0]] if shared else []),
    ]:
        items = groups.get("PixelValueTransformationSequence")
        if items and "RescaleSlope" in items[0]:
            return items[0]
    return ds


def _pixel_spacing(f: _DicomFile) -> tuple[float, float]:
    spacing = f.ds.get("PixelSpacing") or _functional_group_value(
        f.ds, 0, "PixelMeasuresSequence", "PixelSpacing"
    )
    if not spacing:
        return (1.0, 1.0)
    values = _as_vector(spacing, 2)
    if values is None or not (values > 0).all():
        raise ImagingError(
            f"{f.path}: PixelSpacing {spacing!r} is not two positive numbers (mm between rows, "
            "between columns); the file is damaged: export it again"
        )
    return (float(values[0]), float(values[1]))


def _check_image_module(files: list[_DicomFile]) -> None:
    first = files[0]
    for f in files:
        ds = f.ds
        missing = [k for k in ("Rows", "Columns", "BitsAllocated") if k not in ds]
        if missing:
            raise ImagingError(
                f"{f.path}: DICOM image without {', '.join(missing)}; the file is damaged: "
                "export it again"
            )
        if not (ds.Rows and ds.Columns):
            raise ImagingError(
                f"{f.path}: DICOM image of {ds.Rows} x {ds.Columns} pixels holds no pixels; the "
                "file is damaged: export it again"
            )
        if int(ds.get("SamplesPerPixel", 1)) != 1:
            raise ImagingError(
                f"{f.path}: colour DICOM ({ds.get('PhotometricInterpretation')}); reader "
                "studies need grayscale images"
            )
        if ds.get("PhotometricInterpretation", "MONOCHROME2") != "MONOCHROME2":
            raise ImagingError(
                f"{f.path}: photometric interpretation {ds.PhotometricInterpretation} is not "
                "supported; convert the series to MONOCHROME2"
            )
        if (ds.get("Rows"), ds.get("Columns")) != (first.ds.get("Rows"), first.ds.get("Columns")):
            raise ImagingError(
                f"{f.path}: matrix {ds.get('Rows')} x {ds.get('Columns')} differs from "
                f"{first.path.name} ({first.ds.get('Rows')} x {first.ds.get('Columns')}); "
                "a series must have one matrix size"
            )
        if _pixel_spacing(f) != _pixel_spacing(first):
            raise ImagingError(
                f"{f.path}: pixel spacing {_pixel_spacing(f)} differs from {first.path.name} "
                f"({_pixel_spacing(first)}); a series must have one pixel spacing"
            )


def _check_pixel_data_length(f: _DicomFile) -> None:
    """Refuse uncompressed pixel data shorter than the header says (a truncated copy)."""
    ds = f.ds
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is None or syntax.is_compressed:
        return
    pixels = int(ds.Rows) * int(ds.Columns) * f.frames * int(ds.get("SamplesPerPixel", 1))
    expected = math.ceil(pixels * int(ds.BitsAllocated) / 8)
    actual = len(ds.PixelData)
    if actual < expected:
        raise ImagingError(
            f"{f.path}: pixel data is truncated ({actual:,} of {expected:,} bytes); the file "
            "was cut short: copy it again"
        )


def _decode(f: _DicomFile) -> np.ndarray:
    """Pixel data of `f` in physical values (modality LUT applied), (frames, rows, cols)."""
    _check_pixel_data_length(f)
    ds = f.ds
    try:
        stored = ds.pixel_array
    except Exception as e:  # decoders raise many types; the cause is kept in the chain
        syntax = ds.file_meta.get("TransferSyntaxUID")
        name = getattr(syntax, "name", syntax)
        raise ImagingError(
            f"{f.path}: pixel data cannot be decoded ({one_line(e)}); transfer syntax {name}: "
            "decompress the file (e.g. dcmdjpeg) or install a pydicom decoder plugin"
        ) from e
    shape = (f.frames, int(ds.Rows), int(ds.Columns))
    if stored.size != math.prod(shape):
        raise ImagingError(
            f"{f.path}: pixel data decode to {stored.size:,} values, but the header describes "
            f"{' x '.join(map(str, shape))} (frames x rows x columns); the file is damaged"
        )
    stored = stored.reshape(shape)
    return np.stack(
        [
            np.asarray(apply_modality_lut(frame, _rescale_source(ds, i)), dtype=np.float32)
            for i, frame in enumerate(stored)
        ]
    )


def _instance_number(ds: Dataset) -> int | None:
    """InstanceNumber, or None when it is missing, empty or not a whole number."""
    value = ds.get("InstanceNumber")
    return int(value) if isinstance(value, int) else None


def _as_vector(value: object, size: int) -> np.ndarray | None:
    """`value` as `size` finite numbers, or None (missing, wrong length or not numbers)."""
    if value is None:
        return None
    try:
        vector = np.array([float(v) for v in value], dtype=np.float64)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return vector if vector.shape == (size,) and np.isfinite(vector).all() else None


def _order_by_position(
    label: Path,
    names: list[str],
    orientations: list[np.ndarray | None],
    positions: list[np.ndarray | None],
    fallback: list[int | None],
) -> list[int]:
    """Indices that sort the slices along their normal; refuses gaps and duplicates."""
    n = len(names)
    if n == 1:
        return [0]
    if all(o is not None for o in orientations) and all(p is not None for p in positions):
        first = orientations[0]
        for name, orientation in zip(names, orientations, strict=True):
            if not np.allclose(orientation, first, atol=ORIENTATION_TOLERANCE):
                raise ImagingError(
                    f"{label}: {name} has another ImageOrientationPatient than {names[0]}; "
                    "a series must be one stack of parallel slices"
                )
        normal = np.cross(first[:3], first[3:])
        along = np.array([float(np.dot(normal, p)) for p in positions])
        order = [int(i) for i in np.argsort(along, kind="stable")]
        _check_spacing(label, [names[i] for i in order], along[order])
        return order
    if all(number is not None for number in fallback) and len(set(fallback)) == n:
        return sorted(range(n), key=lambda i: fallback[i])
    raise ImagingError(
        f"{label}: cannot order the slices: ImagePositionPatient/ImageOrientationPatient or "
        "unique InstanceNumbers are missing; export the series with them"
    )


def _check_spacing(label: Path, names: list[str], along: np.ndarray) -> None:
    gaps = np.diff(along)
    for k, gap in enumerate(gaps):
        if gap < SAME_POSITION_MM:
            raise ImagingError(
                f"{label}: {names[k]} and {names[k + 1]} lie at the same position "
                f"({along[k]:.2f} mm along the slice normal); the folder holds repeated "
                "slices or several acquisitions: keep one"
            )
    if len(gaps) < 2:
        return
    median = float(np.median(gaps))
    problems = []
    for k, gap in enumerate(gaps):
        if abs(gap - median) > GAP_TOLERANCE * median:
            kind = "a slice is missing" if gap > median else "an extra slice"
            problems.append(
                f"{kind}: positions jump from {along[k]:.2f} mm to {along[k + 1]:.2f} mm "
                f"({gap:.2f} mm, between sorted slices {k} and {k + 1}, {names[k]} and "
                f"{names[k + 1]})"
            )
    if problems:
        raise ImagingError(
            f"{label}: uneven slice spacing: {'; '.join(problems)}; "
            f"the other slices are {median:.2f} mm apart. Export the complete series again"
        )


def _load_dicom(path: Path, series: str | None, limit: int) -> Volume:
    files = _choose_series(path, [_read_dicom_file(p) for p in _dicom_files(path)], series)
    if files[0].ds.get("SOPClassUID") == SEGMENTATION_STORAGE:
        raise ImagingError(
            f"{path}: is a DICOM Segmentation (SEG), which is not read: its frames hold segments "
            "on positions of their own. Convert it to a NIfTI or MHA label volume (e.g. with "
            "dcmqi's segimage2itkimage or highdicom)"
        )
    total = sum(int(f.ds.get("Rows", 0)) * int(f.ds.get("Columns", 0)) * f.frames for f in files)
    count = f"{len(files)} file{'s' if len(files) != 1 else ''}"
    _check_pixel_limit(path, total, limit, f"the series ({count})")
    _check_image_module(files)
    _check_slice_shape(path, int(files[0].ds.Rows), int(files[0].ds.Columns), limit)
    spacing = _pixel_spacing(files[0])
    study_uid = str(files[0].ds.get("StudyInstanceUID", "") or "")
    if len(files) == 1 and files[0].frames > 1:
        return _load_multiframe(path, files[0], spacing, study_uid)
    several = [f.path.name for f in files if f.frames > 1]
    if several:
        raise ImagingError(
            f"{path}: series mixes {len(several)} multi-frame files ({', '.join(several)}) "
            "with others; import each multi-frame file on its own"
        )
    orientations = [_as_vector(f.ds.get("ImageOrientationPatient"), 6) for f in files]
    positions = [_as_vector(f.ds.get("ImagePositionPatient"), 3) for f in files]
    order = _order_by_position(
        path,
        [f.path.name for f in files],
        orientations,
        positions,
        [_instance_number(f.ds) for f in files],
    )
    ordered = [files[i] for i in order]
    hasher = hashlib.sha256()
    for f in ordered:
        hasher.update(f.data)
    volume = np.concatenate([_decode(f) for f in ordered])
    grid = _dicom_grid(
        volume.shape,
        orientations[0],
        [positions[i] for i in order],
        spacing,
        _slice_thickness(files[0].ds),
    )
    return Volume(path, volume, spacing, grid, hasher.hexdigest(), study_uid)


def _load_multiframe(
    path: Path, f: _DicomFile, spacing: tuple[float, float], study_uid: str
) -> Volume:
    ds = f.ds
    frames = range(f.frames)
    orientation = ds.get("ImageOrientationPatient")
    orientations = [
        _as_vector(
            _functional_group_value(ds, i, "PlaneOrientationSequence", "ImageOrientationPatient")
            or orientation,
            6,
        )
        for i in frames
    ]
    positions = [
        _as_vector(
            _functional_group_value(ds, i, "PlanePositionSequence", "ImagePositionPatient"), 3
        )
        for i in frames
    ]
    order = _order_by_position(
        f.path,
        [f"frame {i + 1}" for i in frames],
        orientations,
        positions,
        # Without positions the stored frame order is the only order there is.
        list(frames),
    )
    volume = _decode(f)[order]
    thickness = _slice_thickness(ds) or _as_number(
        _functional_group_value(ds, 0, "PixelMeasuresSequence", "SliceThickness")
    )
    grid = _dicom_grid(
        volume.shape, orientations[0], [positions[i] for i in order], spacing, thickness
    )
    return Volume(path, volume, spacing, grid, hashlib.sha256(f.data).hexdigest(), study_uid)


def _as_number(value: object) -> float | None:
    """`value` as a positive finite number, or None."""
    vector = _as_vector([value], 1) if value is not None else None
    return float(vector[0]) if vector is not None and vector[0] > 0 else None


def _slice_thickness(ds: Dataset) -> float | None:
    return _as_number(ds.get("SpacingBetweenSlices")) or _as_number(ds.get("SliceThickness"))


def _dicom_grid(
    shape: tuple[int, ...],
    orientation: np.ndarray | None,
    positions: list[np.ndarray | None],
    spacing: tuple[float, float],
    thickness: float | None,
) -> Grid | None:
    """Where the voxels of a sorted series lie, or None when its files do not say.

    ImageOrientationPatient holds the direction along a row (of increasing column) and then
    down a column; PixelSpacing the distance between rows, then between columns.
    """
    if orientation is None or any(p is None for p in positions):
        return None
    along_row, along_column = orientation[:3], orientation[3:]
    first, last = positions[0], positions[-1]
    assert first is not None and last is not None
    if len(positions) > 1:
        # The mean step between sorted slices: exact, since _check_spacing refused uneven gaps.
        slice_step = (last - first) / (len(positions) - 1)
    else:
        slice_step = np.cross(along_row, along_column) * (thickness or 1.0)
    return Grid.from_steps(
        shape, first, along_row * spacing[1], along_column * spacing[0], slice_step
    )


# --- NIfTI --------------------------------------------------------------------------------------


def _load_nifti(path: Path, limit: int) -> Volume:
    _require_content(path)
    try:
        image = nib.load(path)
        shape = tuple(int(d) for d in image.shape)
    except Exception as e:  # nibabel raises many types on damaged headers
        raise ImagingError(
            f"{path}: cannot be read as NIfTI ({one_line(e)}); the file is damaged"
        ) from e
    if len(shape) < 2 or any(d != 1 for d in shape[3:]):
        raise ImagingError(
            f"{path}: is a {len(shape)}D NIfTI of shape {shape}; only 2D and 3D images are "
            "supported (a 4th dimension of size 1 is accepted): split it into 3D volumes, "
            "e.g. one per time point or b-value"
        )
    spatial = (*shape, 1)[:3]
    _check_pixel_limit(
        path, math.prod(spatial), limit, f"the volume ({' x '.join(map(str, spatial))})"
    )
    _check_slice_shape(path, spatial[1], spatial[0], limit)
    if spatial[2] < 1:
        raise ImagingError(f"{path}: the volume {shape} holds no slices")
    try:
        data = np.asarray(image.get_fdata(dtype=np.float32)).reshape(spatial)
    except Exception as e:
        raise ImagingError(
            f"{path}: voxel data cannot be read ({one_line(e)}); the file is truncated or damaged"
        ) from e
    try:
        canonical = nib.as_closest_canonical(nib.Nifti1Image(data, image.affine))
        zooms = canonical.header.get_zooms()[:3]
    except Exception as e:  # a degenerate affine fails in nibabel or numpy.linalg
        raise ImagingError(
            f"{path}: the orientation (affine) cannot be used ({one_line(e)}); the header is "
            "damaged: write the file again"
        ) from e
    # RAS+: axis 0 runs to the patient's right, axis 1 anterior. Rows anterior -> posterior and
    # columns right -> left match an axial DICOM slice as stored (LPS), so formats look alike.
    volume = np.transpose(np.asarray(canonical.dataobj), (2, 1, 0))[:, ::-1, ::-1]
    spacing = (float(zooms[1]), float(zooms[0]))
    grid = _nifti_grid(volume.shape, canonical.affine)
    return Volume(path, volume, spacing, grid, _hash_files([path]))


def _nifti_grid(shape: tuple[int, ...], affine: np.ndarray) -> Grid | None:
    """Where the voxels of the display volume lie: voxel [k, r, c] is voxel (n_i - 1 - c,
    n_j - 1 - r, k) of the RAS+ image, whose affine maps to RAS; LPS flips x and y."""
    n_j, n_i = shape[1], shape[2]
    to_lps = np.diag([-1.0, -1.0, 1.0])
    linear, offset = to_lps @ affine[:3, :3], to_lps @ affine[:3, 3]
    origin = linear @ np.array([n_i - 1, n_j - 1, 0.0]) + offset
    return Grid.from_steps(shape, origin, -linear[:, 0], -linear[:, 1], linear[:, 2])


# --- MetaImage ----------------------------------------------------------------------------------


def _metaimage_parts(path: Path) -> list[Path]:
    """The header and its data file: both make the image's identity."""
    if path.name.lower().endswith(".mha"):
        return [path]
    header = _read_bytes(path).decode("latin-1")
    match = re.search(r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", header, re.MULTILINE)
    if match is None:
        raise ImagingError(f"{path}: MetaImage header has no ElementDataFile; the file is damaged")
    value = match.group(1)
    if value == "LOCAL":
        return [path]
    if value.startswith("LIST") or "%" in value or " " in value:
        raise ImagingError(
            f"{path}: MetaImage with several data files ({value}); convert it to one .mha file"
        )
    return [path, path.parent / value]


def _load_metaimage(path: Path, limit: int) -> Volume:
    # Imported here: SimpleITK is large and only MetaImage files need it.
    import SimpleITK as sitk

    _require_content(path)
    parts = _metaimage_parts(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as e:
        raise ImagingError(
            f"{path}: cannot be read as MetaImage ({one_line(e)}); the file is damaged"
        ) from e
    size = tuple(int(d) for d in reader.GetSize())
    if reader.GetNumberOfComponents() != 1:
        raise ImagingError(
            f"{path}: has {reader.GetNumberOfComponents()} components per pixel (colour or "
            "vector image); reader studies need one grayscale value per pixel"
        )
    if len(size) < 2 or any(d != 1 for d in size[3:]):
        raise ImagingError(
            f"{path}: is a {len(size)}D MetaImage of size {size}; only 2D and 3D images are "
            "supported: split it into 3D volumes"
        )
    spatial = (*size, 1)[:3]
    _check_pixel_limit(
        path, math.prod(spatial), limit, f"the volume ({' x '.join(map(str, spatial))})"
    )
    _check_slice_shape(path, spatial[1], spatial[0], limit)
    if spatial[2] < 1:
        raise ImagingError(f"{path}: the volume {size} holds no slices")
    try:
        image = reader.Execute()
    except RuntimeError as e:
        raise ImagingError(
            f"{path}: voxel data cannot be read ({one_line(e)}); the file is truncated or damaged"
        ) from e
    if image.GetDimension() == 4:
        image = sitk.Extract(image, [*size[:3], 0], [0, 0, 0, 0])
    if image.GetDimension() == 3:
        # LPS: rows run anterior -> posterior, columns right -> left, like stored DICOM.
        image = sitk.DICOMOrient(image, "LPS")
        volume = sitk.GetArrayFromImage(image).astype(np.float32)
        steps = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
        origin = image.GetOrigin()
    else:
        volume = sitk.GetArrayFromImage(image).astype(np.float32)[np.newaxis]
        # A 2D image lies in the plane z = 0, one millimetre thick.
        steps = np.eye(3)
        steps[:2, :2] = np.reshape(image.GetDirection(), (2, 2)) * np.asarray(image.GetSpacing())
        origin = (*image.GetOrigin(), 0.0)
    grid = Grid.from_steps(volume.shape, origin, steps[:, 0], steps[:, 1], steps[:, 2])
    sx, sy = image.GetSpacing()[:2]
    return Volume(path, volume, (float(sy), float(sx)), grid, _hash_files(parts))


# --- pictures -----------------------------------------------------------------------------------


def read_picture(path: Path, *, max_pixels: int) -> tuple[np.ndarray, float]:
    """A grayscale PNG, JPEG or TIFF as float32 values, with its full-scale value.

    Full scale is 255 for 8-bit pictures, 65535 for 16-bit ones and 1.0 for float or bilevel
    ones. RGB pictures whose channels agree (within GRAY_TOLERANCE levels) are taken as gray;
    real colour and transparency are refused. `max_pixels` bounds the picture's pixels.
    """
    return _picture_values(path, _read_bytes(path), max_pixels)


def _picture_values(path: Path, data: bytes, limit: int) -> tuple[np.ndarray, float]:
    try:
        with Image.open(io.BytesIO(data), formats=("PNG", "JPEG", "TIFF")) as image:
            width, height = image.size
            _check_pixel_limit(path, width * height, limit, f"the image ({width} x {height})")
            _check_slice_shape(path, height, width, limit)
            if getattr(image, "n_frames", 1) > 1:
                raise ImagingError(f"{path}: has {image.n_frames} pages; save one image per file")
            image.load()
            return _gray_values(path, image)
    except Image.DecompressionBombError as e:
        # Pillow's own guard fires at open, before our limit could be checked.
        raise ImagingError(
            f"{path}: claims more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels, over "
            f"Pillow's decompression-bomb limit (and the limit of {limit:,}); refused before "
            "decoding"
        ) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImagingError(
            f"{path}: cannot be read as a PNG, JPEG or TIFF picture ({one_line(e)}); the file is "
            "damaged or of another type"
        ) from e


def _gray_values(path: Path, image: Image.Image) -> tuple[np.ndarray, float]:
    mode = image.mode
    if mode == "L":
        return np.asarray(image, dtype=np.float32), 255.0
    if mode in ("P", "PA", "LA", "RGB", "RGBA"):
        rgba = np.asarray(image.convert("RGBA"))
        if (rgba[..., 3] != 255).any():
            raise ImagingError(f"{path}: has transparent pixels; save it without an alpha channel")
        channels = rgba[..., :3]
        spread = int((channels.max(axis=-1) - channels.min(axis=-1)).max())
        if spread > GRAY_TOLERANCE:
            raise ImagingError(
                f"{path}: is a colour image (channels differ by up to {spread} levels); reader "
                "studies need grayscale: convert it to grayscale if the colour carries nothing"
            )
        return channels.mean(axis=-1, dtype=np.float32), 255.0
    if mode.startswith("I;16"):
        return np.asarray(image).astype(np.float32), 65535.0
    if mode == "I":
        values = np.asarray(image)
        # Pillow opens some 16-bit files as 32-bit "I"; wider values are not a 16-bit picture.
        if values.min() < 0 or values.max() > 65535:
            raise ImagingError(
                f"{path}: 32-bit integer values outside 0..65535; save it as 8- or 16-bit"
            )
        return values.astype(np.float32), 65535.0
    if mode in ("F", "1"):
        return np.asarray(image, dtype=np.float32), 1.0
    raise ImagingError(
        f"{path}: picture mode {mode} is not grayscale; save it as 8- or 16-bit grayscale"
    )
