"""Bad input, at volume: the importers fuzzed in process.

Generated and mutated DICOM files and series, NIfTI volumes, PNG pictures, manifests and
uploaded archives go through the app's own import path (`unpack_upload`, then
`import_manifest` into a real database and asset store). For every input:

- only the project's own errors (VTTError, with a message) come out; anything else fails;
- it finishes within TIME_LIMIT_S (a hang fails);
- a failed import leaves the database and the asset store exactly as they were.

Inputs are byte-level mutations (bit flips, interesting values, insertions, deletions,
truncations) of valid seed files made here, and structure-aware generation (headers with
hostile values, manifests with hostile paths and fields). `make fuzz` runs 10,000 of them
(VTT_FUZZ_EXAMPLES); the normal suite runs a fixed slice of 1,000.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import shutil
import signal
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    RLELossless,
)
from sqlalchemy import Engine, delete, select

from study.db import make_engine, migrate, transaction
from study.imaging.errors import VTTError
from study.importer import import_manifest
from study.models import Asset
from study.storage import AssetStore
from study.uploads import UploadError, unpack_upload

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

TIME_LIMIT_S = 2.0
TARGETS = 8
# Small limits keep every input fast; the limits themselves are tested in tests/security.
MAX_PIXELS = 1 << 20
UPLOAD_LIMIT = 1 << 20


def budget() -> settings:
    """This target's share of the active profile's inputs (see conftest.py)."""
    fuzzing = settings.get_current_profile_name() == "fuzz"
    profile = settings.get_profile("fuzz" if fuzzing else "fuzz-slice")
    return settings(profile, max_examples=-(-profile.max_examples // TARGETS))


FUZZ = budget()


class Hang(BaseException):
    """An input that ran past the time limit (a BaseException: no `except Exception` in the
    code under test can turn it into one of its own errors)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum, frame):
        raise Hang(f"the input took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- seeds: valid small files, made here --------------------------------------------------------

AXIAL = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def dicom_bytes(
    frames: np.ndarray,
    *,
    z: float = 0.0,
    instance: int = 1,
    syntax: str = ExplicitVRLittleEndian,
    multiframe: bool = False,
) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = f"1.2.3.4.{instance}"
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.SeriesDescription = "t2_tse_tra"
    ds.Modality = "MR"
    ds.InstanceNumber = instance
    ds.RescaleSlope, ds.RescaleIntercept = 2, -10
    if multiframe:
        ds.NumberOfFrames = len(frames)
        shared, measures, orientation = Dataset(), Dataset(), Dataset()
        measures.PixelSpacing = [0.7, 0.6]
        orientation.ImageOrientationPatient = AXIAL
        shared.PixelMeasuresSequence = DicomSequence([measures])
        shared.PlaneOrientationSequence = DicomSequence([orientation])
        ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
        groups = []
        for k in range(len(frames)):
            plane, group = Dataset(), Dataset()
            plane.ImagePositionPatient = [0.0, 0.0, 3.0 * k]
            group.PlanePositionSequence = DicomSequence([plane])
            groups.append(group)
        ds.PerFrameFunctionalGroupsSequence = DicomSequence(groups)
    else:
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.ImageOrientationPatient = AXIAL
        ds.PixelSpacing = [0.5, 0.5]
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    pixels = np.ascontiguousarray(frames, dtype="<u2")
    ds.PixelData = (pixels.byteswap() if syntax == ExplicitVRBigEndian else pixels).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _pixels(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4000, shape).astype(np.uint16)


DICOM_FILE = dicom_bytes(_pixels((1, 8, 6), 0))
DICOM_MULTIFRAME = dicom_bytes(_pixels((3, 6, 6), 1), multiframe=True)
DICOM_SERIES = [dicom_bytes(_pixels((1, 6, 6), 2 + k), z=2.5 * k, instance=k + 1) for k in range(3)]


def nifti_bytes(volume: np.ndarray) -> bytes:
    affine = np.diag([0.8, 0.7, 3.0, 1.0])
    return nib.Nifti1Image(volume, affine).to_bytes()


NIFTI = nifti_bytes(np.arange(60, dtype=np.int16).reshape(5, 4, 3))
NIFTI_GZ = gzip.compress(NIFTI, mtime=0)
NIFTI_CANONICAL = nifti_bytes(np.linspace(0, 1, 20, dtype=np.float32).reshape(5, 4, 1))


def picture_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


_GRAY = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
PNG_SEEDS = [
    picture_bytes(Image.fromarray(_GRAY)),
    picture_bytes(Image.fromarray(_GRAY.astype(np.uint16) * 250)),
    picture_bytes(Image.fromarray(np.stack([_GRAY] * 3, axis=-1))),
    picture_bytes(Image.fromarray(_GRAY).convert("P")),
]
MANIFEST_COLUMNS = ["path", "origin", "sequence", "lesion", "patient_id", "slices", "intensity"]


def manifest_bytes(rows: list[dict[str, str]], columns: list[str] = MANIFEST_COLUMNS) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c, "") for c in columns})
    return buffer.getvalue().encode()


MANIFEST_SEED = (
    b"path,origin,sequence,lesion,patient_id,slices,series,slice_index,pair_key,pirads,"
    b"intensity,generator,seed,steps,guidance,checkpoint_sha256\n"
    b"ok.png,real,T2W,1,P1,,,,pair-1,4,raw,,,,,\n"
    b"ok.png,synthetic,t2,no,,,,3,,,canonical,ddpm,7,20,4.5," + b"ab" * 32 + b"\n"
    b'"vol.nii",real,ADC,0,"P 2",central:2,,,,,raw,,,,,\n'
)


# --- strategies ---------------------------------------------------------------------------------

INTERESTING_BYTES = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]
INTERESTING_WORDS = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """`seed` after 1 to 8 random byte-level mutations."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            data.extend(draw(st.binary(min_size=1, max_size=8)))
            continue
        at = draw(st.integers(0, len(data) - 1))
        operation = draw(
            st.sampled_from(["flip", "byte", "word", "insert", "delete", "truncate", "repeat"])
        )
        if operation == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "byte":
            data[at] = draw(st.sampled_from(INTERESTING_BYTES))
        elif operation == "word":
            word = draw(st.sampled_from(INTERESTING_WORDS))
            fmt = draw(st.sampled_from(["<H", ">H", "<I", ">I"]))
            data[at : at + struct.calcsize(fmt)] = struct.pack(
                fmt, word & (2 ** (8 * struct.calcsize(fmt)) - 1)
            )
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif operation == "truncate":
            del data[at:]
        else:
            end = min(len(data), at + draw(st.integers(1, 64)))
            data[at:at] = data[at:end] * draw(st.integers(1, 4))
    return bytes(data)


SEQUENCES = st.sampled_from(["T2W", "ADC", "DWI", "other"])
INTENSITIES = st.sampled_from(["raw", "raw", "canonical"])
SLICES = st.sampled_from(["all", "central:2", "central:10", "0:1", "1:3"])


def image_row(path: str, draw: st.DrawFn, *, picture: bool = False) -> dict[str, str]:
    return {
        "path": path,
        "origin": draw(st.sampled_from(["real", "synthetic"])),
        "sequence": draw(SEQUENCES),
        "lesion": draw(st.sampled_from(["0", "1", ""])),
        "patient_id": "P1",
        "slices": "" if picture else draw(SLICES),
        "intensity": draw(INTENSITIES),
    }


@st.composite
def mutated_dicom(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes]:
    kind = draw(st.sampled_from(["file", "multiframe", "series"]))
    if kind == "series":
        files = {f"series/IM{k}.dcm": data for k, data in enumerate(DICOM_SERIES)}
        victim = f"series/IM{draw(st.integers(0, 2))}.dcm"
        files[victim] = draw(mutated(files[victim]))
        path = "series"
    else:
        path = "image.dcm"
        files = {path: draw(mutated(DICOM_FILE if kind == "file" else DICOM_MULTIFRAME))}
    return files, manifest_bytes([image_row(path, draw)])


def ds_text(draw: st.DrawFn, good: list[str]) -> str:
    """A DICOM text value: usually a good one, sometimes garbage."""
    return draw(
        st.one_of(
            st.sampled_from(good),
            st.sampled_from(["", "nan", "inf", "-inf", "1e400", "abc", "-0", "1\\2\\3", " "]),
        )
    )


def set_raw(ds: Dataset, keyword: str, values: list[str]) -> None:
    """Store `values` as the text of `keyword`, unchecked, as a damaged file would hold them
    (pydicom refuses to set invalid numbers, but reads them from files)."""
    tag = Tag(keyword)
    vr = dictionary_VR(tag)
    text = "\\".join(values).encode("latin-1")
    text += b" " * (len(text) % 2)
    ds[tag] = RawDataElement(tag, vr, len(text), text, 0, False, True)


@st.composite
def generated_dicom(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes]:
    """DICOM files whose attributes take hostile values (a series of 1 to 3 files)."""
    files: dict[str, bytes] = {}
    count = draw(st.integers(1, 3))
    for k in range(count):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = f"1.2.3.{k}"
        meta.TransferSyntaxUID = draw(
            st.sampled_from(
                [
                    ExplicitVRLittleEndian,
                    ImplicitVRLittleEndian,
                    ExplicitVRBigEndian,
                    DeflatedExplicitVRLittleEndian,
                    JPEGBaseline8Bit,
                    RLELossless,
                ]
            )
        )
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.SeriesInstanceUID = draw(st.sampled_from(["1.2.3", "1.2.3", "1.2.4", ""]))
        rows = draw(st.sampled_from([0, 1, 4, 6, 7, 4096, 65535]))
        columns = draw(st.sampled_from([0, 1, 4, 6, 5, 4096, 65535]))
        ds.Rows, ds.Columns = rows, columns
        bits = draw(st.sampled_from([16, 16, 8, 1, 12, 32, 64, 0, 7]))
        ds.BitsAllocated = bits
        ds.BitsStored = draw(st.sampled_from([bits, 12, 0, 17, 33]))
        ds.HighBit = draw(st.sampled_from([max(bits - 1, 0), 11, 0, 40]))
        ds.PixelRepresentation = draw(st.sampled_from([0, 1, 2]))
        ds.SamplesPerPixel = draw(st.sampled_from([1, 1, 3, 0]))
        ds.PhotometricInterpretation = draw(
            st.sampled_from(["MONOCHROME2", "MONOCHROME2", "MONOCHROME1", "RGB", "PALETTE COLOR"])
        )
        if draw(st.booleans()):
            set_raw(ds, "NumberOfFrames", [ds_text(draw, ["1", "2", "3", "0", "-1", "1.5"])])
        if draw(st.booleans()):
            set_raw(ds, "InstanceNumber", [ds_text(draw, [str(k), "1", "-5", "99999999999"])])
        if draw(st.booleans()):
            set_raw(
                ds,
                "ImagePositionPatient",
                [
                    ds_text(draw, ["0", str(2.5 * k), "1e300"])
                    for _ in range(draw(st.sampled_from([3, 3, 2, 4])))
                ],
            )
        if draw(st.booleans()):
            set_raw(
                ds,
                "ImageOrientationPatient",
                [ds_text(draw, [str(v), "0"]) for v in AXIAL[: draw(st.sampled_from([6, 6, 5]))]],
            )
        if draw(st.booleans()):
            set_raw(
                ds,
                "PixelSpacing",
                [
                    ds_text(draw, ["0.5", "0", "-1"])
                    for _ in range(draw(st.sampled_from([2, 2, 1, 3])))
                ],
            )
        if draw(st.booleans()):
            set_raw(ds, "RescaleSlope", [ds_text(draw, ["1", "0", "1e308", "-2"])])
            set_raw(ds, "RescaleIntercept", [ds_text(draw, ["0", "-1024", "1e308"])])
        expected = rows * columns * max(bits, 8) // 8
        size = draw(st.sampled_from(["exact", "short", "long", "empty"]))
        length = {"exact": expected, "short": expected // 2, "long": expected + 7, "empty": 0}[size]
        if length <= 4 * MAX_PIXELS:
            ds.PixelData = draw(st.binary(min_size=min(length, 64), max_size=min(length, 64))) * (
                length // 64
            ) + bytes(length % 64)
        buffer = io.BytesIO()
        try:
            ds.save_as(buffer, enforce_file_format=True)
        except Exception:
            # pydicom refuses to write some combinations at all; those cannot reach us.
            continue
        files[f"series/IM{k}.dcm"] = buffer.getvalue()
    path = "series" if files and draw(st.booleans()) else next(iter(files), "series/IM0.dcm")
    if not files:
        files["series/IM0.dcm"] = b""
    return files, manifest_bytes([image_row(path, draw)])


@st.composite
def mutated_nifti(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes]:
    name, seed = draw(
        st.sampled_from(
            [("volume.nii", NIFTI), ("volume.nii.gz", NIFTI_GZ), ("one.nii", NIFTI_CANONICAL)]
        )
    )
    return {name: draw(mutated(seed))}, manifest_bytes([image_row(name, draw)])


@st.composite
def generated_nifti(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes]:
    """NIfTI headers with hostile dimensions, types, spacings, offsets and scalings."""
    header = nib.Nifti1Header()
    dims = draw(st.lists(st.sampled_from([1, 2, 3, 5, 0, -1, 32767]), min_size=7, max_size=7))
    header["dim"] = [draw(st.sampled_from([3, 2, 4, 5, 7, 0, -1, 8, 9])), *dims]
    header["datatype"] = draw(
        st.sampled_from([2, 4, 8, 16, 64, 256, 512, 768, 0, 1, 128, 2304, 1792, 999])
    )
    header["bitpix"] = draw(st.sampled_from([8, 16, 32, 64, 0, 3]))
    weird = st.sampled_from([1.0, 0.0, -1.0, float("nan"), float("inf"), 1e38])
    header["pixdim"] = [draw(weird) for _ in range(8)]
    header["vox_offset"] = draw(
        st.sampled_from([352.0, 0.0, 348.0, 351.0, 1e9, -16.0, float("nan")])
    )
    header["scl_slope"] = draw(weird)
    header["scl_inter"] = draw(weird)
    header["qform_code"] = draw(st.sampled_from([0, 1, 2, 5, -3]))
    header["sform_code"] = draw(st.sampled_from([0, 1, 2, 5, -3]))
    header["quatern_b"] = draw(weird)
    header["srow_x"] = [draw(weird) for _ in range(4)]
    data = header.binaryblock + b"\0" * 4 + draw(st.binary(max_size=512))
    name = draw(st.sampled_from(["volume.nii", "volume.nii.gz"]))
    if name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    return {name: data}, manifest_bytes([image_row(name, draw)])


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@st.composite
def mutated_png(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes]:
    return {"image.png": draw(mutated(draw(st.sampled_from(PNG_SEEDS))))}, manifest_bytes(
        [image_row("image.png", draw, picture=True)]
    )


@st.composite
def generated_png(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes]:
    """PNGs with valid CRCs whose header, palette, transparency and data take hostile values."""
    width = draw(st.sampled_from([1, 6, 8, 0, 1024, 1025, 70000, 2**31 - 1]))
    height = draw(st.sampled_from([1, 6, 8, 0, 1023, 3, 2**31 - 1]))
    depth = draw(st.sampled_from([8, 16, 1, 2, 4, 0, 3, 32]))
    color = draw(st.sampled_from([0, 0, 2, 3, 4, 6, 1, 5]))
    header = struct.pack(
        ">IIBBBBB",
        width,
        height,
        depth,
        color,
        *draw(st.sampled_from([(0, 0, 0), (0, 0, 1), (1, 0, 0), (0, 5, 0)])),
    )
    chunks = [png_chunk(b"IHDR", header)]
    if draw(st.booleans()):
        chunks.append(png_chunk(b"PLTE", draw(st.binary(max_size=24))))
    if draw(st.booleans()):
        chunks.append(png_chunk(b"tRNS", draw(st.binary(max_size=8))))
    if draw(st.booleans()):
        chunks.append(png_chunk(b"tEXt", b"Comment\0" + draw(st.binary(max_size=32))))
    raw_rows = min(height, 64) * (1 + min(width, 64) * max(depth, 8) // 8 * 4)
    payload = draw(st.sampled_from(["exact zeros", "random compressed", "random", "empty", "bomb"]))
    if payload == "exact zeros":
        idat = zlib.compress(bytes(raw_rows))
    elif payload == "random compressed":
        idat = zlib.compress(draw(st.binary(max_size=256)))
    elif payload == "random":
        idat = draw(st.binary(max_size=64))
    elif payload == "bomb":
        idat = zlib.compress(bytes(16 << 20), 9)
    else:
        idat = b""
    chunks.append(png_chunk(b"IDAT", idat))
    if draw(st.booleans()):
        chunks.append(png_chunk(b"IEND", b""))
    return {"image.png": b"\x89PNG\r\n\x1a\n" + b"".join(chunks)}, manifest_bytes(
        [image_row("image.png", draw, picture=True)]
    )


HOSTILE_PATHS = [
    "ok.png",
    "./ok.png",
    "sub/../ok.png",
    "../ok.png",
    "sub/../../ok.png",
    "..",
    ".",
    "",
    " ",
    "/etc/passwd",
    "/etc/hostname",
    "/",
    "/nonexistent/x.png",
    "~/ok.png",
    "C:\\images\\ok.png",
    "\\\\server\\share\\ok.png",
    "file:///etc/passwd",
    "ok\x00.png",
    "ok.png\x00.dcm",
    "a" * 300 + ".png",
    "/".join(["d"] * 2000),
    "图像.png",
    "ok.png\u202e",
    "e\u0301.png",
    "vol.nii",
    "vol.nii/../ok.png",
    "ok.png/",
    "sub",
]
HUGE_NUMBERS = ["9" * 400, "-1", "-" + "9" * 30, "1e309", "nan", "inf", "0x10", "1_000", "٣", "3.0"]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def hostile(values: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(values), st.sampled_from(HUGE_NUMBERS), TEXT)


@st.composite
def generated_manifest(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes, bool]:
    """Manifests whose rows hold hostile paths, numbers and text; sometimes as an upload."""
    columns = ["path", "origin", "sequence", "lesion", "patient_id"]
    optional = [
        "slices", "series", "slice_index", "pair_key", "pirads", "intensity", "generator",
        "prompt", "seed", "steps", "guidance", "checkpoint_sha256", "condition_sha256",
        "study_id", "mask",
    ]  # fmt: skip
    columns += draw(st.lists(st.sampled_from(optional), unique=True, max_size=6))
    if draw(st.integers(0, 9)) == 0:
        columns.append(draw(st.sampled_from(["PATH", "unknown", "", "path"])))
    values = {
        "path": hostile(HOSTILE_PATHS),
        "origin": hostile(["real", "synthetic", "REAL", "Synthetic", "fake"]),
        "sequence": hostile(["T2W", "adc", "hbv", "t2", "DWI", "other", "CT"]),
        "lesion": hostile(["0", "1", "yes", "no", "", "2"]),
        "patient_id": hostile(["P1", "", "P\x001", "x" * 200]),
        "slices": hostile(["all", "central:2", "0:1", "2:1", "central:0", "0:99999999999999"]),
        "slice_index": hostile(["0", "1", "2"]),
        "pirads": hostile(["1", "5", "0", "6"]),
        "intensity": hostile(["raw", "canonical", "CANONICAL", "linear"]),
        "seed": hostile(["0", "42"]),
        "steps": hostile(["20", "0"]),
        "guidance": hostile(["4.5", "-1"]),
        "checkpoint_sha256": hostile(["ab" * 32, "AB" * 32, "ab" * 31]),
        "condition_sha256": hostile(["cd" * 32]),
        "study_id": hostile(["S1", "", "1.2.3"]),
        "mask": hostile(["vol.nii", "vol.nii", "ok.png", "sub/series", "../vol.nii", ""]),
    }
    rows = [{c: draw(values.get(c, TEXT)) for c in columns} for _ in range(draw(st.integers(1, 4)))]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow(columns)
    writer.writerows([row[c] for c in columns] for row in rows)
    files = {
        "ok.png": PNG_SEEDS[0],
        "vol.nii": NIFTI,
        "sub/series/IM0.dcm": DICOM_SERIES[0],
        "sub/series/IM1.dcm": DICOM_SERIES[1],
    }
    return files, buffer.getvalue().encode(), draw(st.booleans())


def zipped_members(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@st.composite
def mutated_upload(draw: st.DrawFn) -> tuple[str, bytes]:
    """Mutated zip archives of a manifest and its images, or hostile member names."""
    members = {
        "manifest.csv": manifest_bytes(
            [
                {"path": "ok.png", "origin": "real", "sequence": "T2W", "lesion": "0",
                 "patient_id": "P1"},
                {"path": "images/vol.nii", "origin": "real", "sequence": "ADC", "lesion": "1",
                 "patient_id": "P2", "slices": "all"},
            ]
        ),
        "ok.png": PNG_SEEDS[1],
        "images/vol.nii": NIFTI,
    }  # fmt: skip
    if draw(st.booleans()):
        name = draw(
            st.sampled_from(
                ["../x.png", "/abs.png", "a/../../x", "images", "ok.png/inner", "manifest.csv",
                 "d/manifest.csv", "images/vol.nii/x", "\\..\\x", "x\x00y", "a" * 300]
            )
        )  # fmt: skip
        members[name] = draw(st.binary(max_size=32))
    method = draw(st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2]))
    archive_bytes = zipped_members(members, method)
    if draw(st.booleans()):
        archive_bytes = draw(mutated(archive_bytes))
    return draw(st.sampled_from(["upload.zip", "upload.ZIP", "manifest.csv"])), archive_bytes


# --- the library under test ---------------------------------------------------------------------


@dataclass
class Library:
    """A database and an asset store holding one asset, and a scratch folder for inputs."""

    engine: Engine
    store: AssetStore
    work: Path
    cases: Iterator[int]

    def state(self) -> tuple[tuple, frozenset[str]]:
        with self.engine.connect() as connection:
            assets = tuple(
                tuple(row)
                for row in connection.execute(
                    select(Asset.id, Asset.source_sha256, Asset.canonical_sha256).order_by(Asset.id)
                )
            )
        root = self.store.root
        files = frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        return assets, files

    def restore(self, state: tuple[tuple, frozenset[str]]) -> None:
        """Undo a successful import, so that every input meets the same library."""
        assets, files = state
        with transaction(self.engine) as session:
            session.execute(delete(Asset).where(Asset.id.not_in([row[0] for row in assets])))
        for path in self.store.root.rglob("*"):
            if path.is_file() and str(path.relative_to(self.store.root)) not in files:
                path.unlink()


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VTT_RENDER_SIZE", "32")
        patch.setenv("VTT_MAX_IMAGE_PIXELS", str(MAX_PIXELS))
        engine = make_engine(f"sqlite:///{root / 'fuzz.sqlite3'}")
        migrate(engine)
        library = Library(engine, AssetStore(root / "assets"), root / "work", itertools.count())
        library.work.mkdir()
        seed = root / "seed"
        seed.mkdir()
        (seed / "seed.png").write_bytes(PNG_SEEDS[1])
        (seed / "manifest.csv").write_bytes(
            manifest_bytes(
                [{"path": "seed.png", "origin": "real", "sequence": "T2W", "lesion": "1",
                  "patient_id": "S"}]
            )
        )  # fmt: skip
        assert import_manifest(engine, seed / "manifest.csv", store=library.store).added == 1
        yield library
        engine.dispose()


def import_input(
    library: Library, files: dict[str, bytes], manifest: bytes, *, allow_absolute: bool = False
) -> VTTError | None:
    """Import one generated input; only VTTErrors may come out, and they change nothing.

    Returns the error, or None when the input was imported (and taken out again)."""
    folder = library.work / f"case-{next(library.cases)}"
    folder.mkdir()
    try:
        for name, data in files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (folder / "manifest.csv").write_bytes(manifest)
        before = library.state()
        try:
            with time_limit(TIME_LIMIT_S):
                import_manifest(
                    library.engine,
                    folder / "manifest.csv",
                    allow_absolute=allow_absolute,
                    store=library.store,
                )
        except VTTError as error:
            assert str(error).strip(), f"{type(error).__name__} without a message"
            assert library.state() == before, "a failed import changed the library"
            return error
        library.restore(before)
        return None
    finally:
        shutil.rmtree(folder)


# --- the fuzz targets ---------------------------------------------------------------------------


@FUZZ
@given(case=mutated_dicom())
def test_mutated_dicom(library, fuzz_counts, case):
    fuzz_counts["dicom (mutated)"] += 1
    import_input(library, *case)


@FUZZ
@given(case=generated_dicom())
def test_generated_dicom(library, fuzz_counts, case):
    fuzz_counts["dicom (generated)"] += 1
    import_input(library, *case)


@FUZZ
@given(case=mutated_nifti())
def test_mutated_nifti(library, fuzz_counts, case):
    fuzz_counts["nifti (mutated)"] += 1
    import_input(library, *case)


@FUZZ
@given(case=generated_nifti())
def test_generated_nifti(library, fuzz_counts, case):
    fuzz_counts["nifti (generated)"] += 1
    import_input(library, *case)


@FUZZ
@given(case=st.one_of(mutated_png(), generated_png()))
def test_png(library, fuzz_counts, case):
    fuzz_counts["png"] += 1
    import_input(library, *case)


@FUZZ
@given(manifest=mutated(MANIFEST_SEED))
def test_mutated_manifest(library, fuzz_counts, manifest):
    fuzz_counts["manifest (mutated)"] += 1
    import_input(library, {"ok.png": PNG_SEEDS[0], "vol.nii": NIFTI}, manifest)


@FUZZ
@given(case=generated_manifest())
def test_generated_manifest(library, fuzz_counts, case):
    fuzz_counts["manifest (generated)"] += 1
    files, manifest, allow_absolute = case
    import_input(library, files, manifest, allow_absolute=allow_absolute)


@FUZZ
@given(upload=mutated_upload())
def test_uploads(library, fuzz_counts, upload):
    fuzz_counts["upload"] += 1
    name, data = upload
    folder = library.work / f"upload-{next(library.cases)}"
    before = library.state()
    try:
        with time_limit(TIME_LIMIT_S):
            manifest = unpack_upload(name, data, folder, max_bytes=UPLOAD_LIMIT)
            import_manifest(library.engine, manifest, allow_absolute=False, store=library.store)
    except UploadError as error:
        assert str(error).strip()
        assert library.state() == before
    except VTTError as error:
        assert str(error).strip()
        assert library.state() == before, "a failed import changed the library"
    else:
        library.restore(before)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # No member escaped the upload folder.
    assert not any(library.work.iterdir())
    escaped = {p.name for p in library.work.parent.iterdir()} - {"work", "seed", "assets"}
    assert all(name.startswith("fuzz.sqlite3") for name in escaped), escaped


# --- what fuzzing found, kept as fixed cases ----------------------------------------------------


def dicom_with(base: bytes = DICOM_FILE, **raw: list[str]) -> bytes:
    """DICOM_FILE with some attributes stored as raw text, as a damaged file holds them (or
    removed, given no values)."""
    ds = dcmread(io.BytesIO(base))
    for keyword, values in raw.items():
        if values:
            set_raw(ds, keyword, values)
        else:
            del ds[keyword]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_without_pixel_value() -> bytes:
    ds = dcmread(io.BytesIO(DICOM_FILE))
    ds.PixelData = None
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_decoding_to_more_values() -> bytes:
    """One 8-bit pixel whose pixel data decode to ten values."""
    ds = dcmread(io.BytesIO(DICOM_FILE))
    ds.Rows = ds.Columns = 1
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = b"\x07" * 10
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def nifti_with(**fields: object) -> bytes:
    image = nib.Nifti1Image.from_bytes(NIFTI)
    header = image.header.copy()
    for name, value in fields.items():
        header[name] = value
    return header.binaryblock + b"\0" * 4 + NIFTI[352:]


def one_row(path: str, **values: str) -> bytes:
    row = {"path": path, "origin": "real", "sequence": "T2W", "lesion": "0", "patient_id": "P1"}
    return manifest_bytes([{**row, **values}], [*row, *values])


FOUND = {
    "unknown transfer syntax": (
        {"image.dcm": DICOM_FILE.replace(b"1.2.840.10008.1.2.1\0", b"0.2.840.10008.1.2.1\0", 1)},
        one_row("image.dcm"),
    ),
    "pixel spacing with an empty value": (
        {"image.dcm": dicom_with(PixelSpacing=["0.5", ""])},
        one_row("image.dcm"),
    ),
    "pixel spacing of one value": (
        {"image.dcm": dicom_with(PixelSpacing=["0.5"])},
        one_row("image.dcm"),
    ),
    "pixel spacing of zero": (
        {"image.dcm": dicom_with(PixelSpacing=["0", "0"])},
        one_row("image.dcm"),
    ),
    "empty pixel data": ({"image.dcm": dicom_without_pixel_value()}, one_row("image.dcm")),
    "empty Rows": ({"image.dcm": dicom_with(Rows=[""])}, one_row("image.dcm")),
    "empty InstanceNumber in a series": (
        {
            "series/IM0.dcm": DICOM_SERIES[0],
            "series/IM1.dcm": dicom_with(
                DICOM_SERIES[1], InstanceNumber=[""], ImagePositionPatient=[]
            ),
        },
        one_row("series", slices="all"),
    ),
    "pixel data decoding to more values than the header says": (
        {"image.dcm": dicom_decoding_to_more_values()},
        one_row("image.dcm"),
    ),
    "nifti with a dimension of 0": (
        {"volume.nii": nifti_with(dim=[3, 0, 1, 3, 1, 1, 1, 1])},
        one_row("volume.nii", slices="all"),
    ),
    "nifti with an affine that cannot be decomposed": (
        {"volume.nii": nifti_with(sform_code=0, qform_code=1, quatern_b=float("nan"))},
        one_row("volume.nii", slices="all"),
    ),
    "nifti with a singular sform": (
        {"volume.nii": nifti_with(sform_code=1, srow_x=[float("nan")] * 4)},
        one_row("volume.nii", slices="all"),
    ),
    "a path too long for the file system": ({}, one_row("9" * 400)),
    "a slice index too big for the database": (
        {"ok.png": PNG_SEEDS[0]},
        one_row("ok.png", slice_index="9" * 40),
    ),
    "a 1 x 70000 strip (a 70000 x 70000 display square)": (
        {"strip.png": b"\x89PNG\r\n\x1a\n"
         + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 70000, 1, 8, 0, 0, 0, 0))
         + png_chunk(b"IDAT", zlib.compress(bytes(70001)))
         + png_chunk(b"IEND", b"")},
        one_row("strip.png"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", FOUND.values(), ids=FOUND.keys())
def test_what_fuzzing_found_is_refused_with_a_message(library, case):
    error = import_input(library, *case)
    assert error is not None, "imported"


def zip_member_offset(archive: bytes, offset: int) -> bytes:
    """`archive` whose first central directory entry points its local header at `offset`."""
    data = bytearray(archive)
    entry = data.find(b"PK\x01\x02")
    data[entry + 42 : entry + 46] = struct.pack("<i", offset)
    return bytes(data)


def nameless_member(archive: bytes) -> bytes:
    """`archive` whose central directory entry "zz" has lost its name."""
    data = bytearray(archive)
    entry = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    assert data[entry + 46 : entry + 48] == b"zz"
    data[entry + 28 : entry + 30] = struct.pack("<H", 0)
    del data[entry + 46 : entry + 48]
    end = data.rfind(b"PK\x05\x06")
    (size,) = struct.unpack("<I", data[end + 12 : end + 16])
    data[end + 12 : end + 16] = struct.pack("<I", size - 2)
    return bytes(data)


UPLOADS_FOUND = {
    "a member without a name": nameless_member(
        zipped_members({"manifest.csv": b"path\n", "zz": b"x"})
    ),
    "a local header before the start of the archive": zip_member_offset(
        zipped_members({"manifest.csv": b"path\n"}), -1
    ),
    "a member that is a file and a folder": zipped_members(
        {"manifest.csv": b"path\n", "a": b"x", "a/b": b"y"}
    ),
}


@pytest.mark.parametrize("archive", UPLOADS_FOUND.values(), ids=UPLOADS_FOUND.keys())
def test_what_fuzzing_found_in_uploads_is_refused_with_a_message(tmp_path, archive):
    with pytest.raises(UploadError):
        unpack_upload("upload.zip", archive, tmp_path / "upload", max_bytes=UPLOAD_LIMIT)
