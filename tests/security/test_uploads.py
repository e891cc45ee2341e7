"""Oversized uploads and images are refused with a message before they are decoded: upload bytes
and zip members (by their declared sizes, and by what they really unpack to), traversal out of
the upload folder, and image headers that claim more pixels than VTT_MAX_IMAGE_PIXELS."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image, ImageFile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.imaging import load
from study.imaging.errors import ImagingError, ManifestError
from study.imaging.load import load_slices
from study.importer import import_manifest
from study.models import Asset
from study.storage import AssetStore
from study.uploads import UploadError, unpack_upload

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1 << 20
MANIFEST = b"path,origin,sequence,lesion,patient_id\nimage.png,real,T2W,0,P1\n"


def png(width: int = 16, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(width * height, dtype=np.uint8).reshape(height, width)).save(
        buffer, format="PNG"
    )
    return buffer.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def lying_about_size(archive: bytes, member: str, declared: int) -> bytes:
    """`archive` whose headers claim `member` unpacks to `declared` bytes (a disguised bomb)."""
    data = bytearray(archive)
    name = member.encode()
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            header_end = start + (30 if signature == b"PK\x03\x04" else 46)
            if data[header_end : header_end + len(name)] == name:
                data[start + offset : start + offset + 4] = struct.pack("<I", declared)
            start += 4
    return bytes(data)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_an_upload_over_the_byte_limit_is_refused_unread(tmp_path):
    target = tmp_path / "upload"
    with pytest.raises(UploadError, match=r"over the upload limit of 1048576"):
        unpack_upload("big.zip", b"\0" * (LIMIT + 1), target, max_bytes=LIMIT)
    assert not files_under(tmp_path)


def test_a_zip_bomb_is_refused_by_its_declared_size_before_anything_is_extracted(tmp_path):
    bomb = zipped({"manifest.csv": MANIFEST, "image.png": b"\0" * (64 * LIMIT)})
    assert len(bomb) < LIMIT // 4  # small on the wire, 64 MiB unpacked
    target = tmp_path / "upload"
    with pytest.raises(UploadError, match=r"unpacks to \d+ bytes, over the upload limit"):
        unpack_upload("bomb.zip", bomb, target, max_bytes=LIMIT)
    assert not files_under(tmp_path)


def test_a_zip_bomb_that_understates_its_size_is_cut_off_and_refused(tmp_path):
    bomb = lying_about_size(
        zipped({"manifest.csv": MANIFEST, "image.png": b"\0" * (64 * LIMIT)}), "image.png", 100
    )
    target = tmp_path / "upload"
    with pytest.raises(UploadError, match=r"image\.png.*cannot be unpacked"):
        unpack_upload("bomb.zip", bomb, target, max_bytes=LIMIT)
    assert sum(p.stat().st_size for p in files_under(tmp_path)) <= LIMIT


@pytest.mark.parametrize(
    "name", ["../escape.png", "sub/../../escape.png", "/tmp/absolute.png", "a/../../../etc/x"]
)
def test_members_that_would_leave_the_upload_folder_are_refused(tmp_path, name):
    target = tmp_path / "upload"
    archive = zipped({"manifest.csv": MANIFEST, name: png()})
    with pytest.raises(UploadError, match="would leave the upload"):
        unpack_upload("evil.zip", archive, target, max_bytes=LIMIT)
    assert not files_under(tmp_path)


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("x.zip", b"PK\x03\x04 not really", "not a readable zip"),
        ("x.exe", b"MZ", "upload a manifest .csv or a .zip"),
        ("x.zip", zipped({"a.png": png()}), r"exactly one manifest.csv \(found 0\)"),
        (
            "x.zip",
            zipped({"manifest.csv": MANIFEST, "b/manifest.csv": MANIFEST}),
            r"exactly one manifest.csv \(found 2\)",
        ),
    ],
)
def test_other_bad_uploads_are_refused_with_a_message(tmp_path, name, data, problem):
    with pytest.raises(UploadError, match=problem):
        unpack_upload(name, data, tmp_path / "upload", max_bytes=LIMIT)


def test_an_uploaded_manifest_may_not_name_files_outside_the_upload(engine, tmp_path, data_dir):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png())
    rows = [f"{outside},real,T2W,0,P1", "../outside.png,real,T2W,0,P1", "image.png,real,T2W,0,P1"]
    archive = zipped(
        {
            "manifest.csv": ("path,origin,sequence,lesion,patient_id\n" + "\n".join(rows)).encode(),
            "image.png": png(),
        }
    )
    manifest = unpack_upload("u.zip", archive, tmp_path / "upload", max_bytes=LIMIT)
    store = AssetStore(data_dir / "assets")
    with pytest.raises(ManifestError) as refused:
        import_manifest(engine, manifest, allow_absolute=False, store=store)
    message = str(refused.value)
    assert "line 2" in message and "absolute paths are not allowed" in message
    assert "line 3" in message and "leaves the manifest folder" in message
    assert "line 4" not in message
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert not files_under(data_dir)


def nifti_bytes(values: np.ndarray) -> bytes:
    return nib.Nifti1Image(values, np.diag([0.5, 0.5, 3.0, 1.0])).to_bytes()


def test_an_uploaded_manifest_may_not_name_masks_outside_the_upload(engine, tmp_path, data_dir):
    outside = tmp_path / "outside.nii"
    outside.write_bytes(nifti_bytes(np.zeros((8, 8, 2), np.uint8)))
    header = "path,origin,sequence,lesion,patient_id,mask"
    rows = [f"scan.nii,real,T2W,,P1,{outside}", "scan.nii,real,T2W,,P2,../outside.nii"]
    archive = zipped(
        {
            "manifest.csv": "\n".join([header, *rows]).encode(),
            "scan.nii": nifti_bytes(np.ones((8, 8, 2), np.float32)),
        }
    )
    manifest = unpack_upload("u.zip", archive, tmp_path / "upload", max_bytes=LIMIT)
    with pytest.raises(ManifestError) as refused:
        import_manifest(engine, manifest, allow_absolute=False, store=AssetStore(data_dir))
    assert [problem.split(": ", 2)[2] for problem in refused.value.problems] == [
        f"{outside}: mask absolute paths are not allowed in this manifest; use a path relative "
        f"to the manifest folder {manifest.parent}",
        f"../outside.nii: mask path leaves the manifest folder {manifest.parent}; put the file "
        "inside that folder",
    ]
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert not files_under(data_dir)


@pytest.fixture
def never_decoded(monkeypatch):
    """Fail the test if any pixel data is decoded."""

    def refuse(*args, **kwargs):
        raise AssertionError("pixel data was decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(load, "_decode", refuse)
    monkeypatch.setattr(nib.Nifti1Image, "get_fdata", refuse)


def png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


HUGE_PNG = png_header_claiming(9000, 9000)


def dicom_claiming(path: Path, rows: int, columns: int, frames: int | None) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = "1.2.3"
    ds.Rows, ds.Columns = rows, columns
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = b"\0\0" * 16
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def assert_refused_for_size(path: Path, limit: int) -> str:
    with pytest.raises(ImagingError) as refused:
        load_slices(path, slices="all", max_pixels=limit)
    message = str(refused.value)
    assert "VTT_MAX_IMAGE_PIXELS" in message and "refused before decoding" in message
    assert str(path) in message
    return message


def test_a_png_claiming_too_many_pixels_is_refused_before_decoding(tmp_path, never_decoded):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_claiming(5000, 4000))
    message = assert_refused_for_size(path, 1_000_000)
    assert "20,000,000 pixels" in message


def test_a_strip_whose_display_square_is_too_big_is_refused_before_decoding(
    tmp_path, never_decoded
):
    # 5,000 pixels pass the count, but the display render pads to a 5000 x 5000 square.
    path = tmp_path / "strip.png"
    path.write_bytes(png_header_claiming(5000, 1))
    message = assert_refused_for_size(path, 1_000_000)
    assert "5000 x 5000 square" in message and "aspect ratio" in message


def test_a_png_beyond_pillows_own_bomb_limit_is_refused_too(tmp_path, never_decoded):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_claiming(60000, 60000))
    with pytest.raises(ImagingError, match="refused before decoding"):
        load_slices(path, max_pixels=1_000_000)


def test_a_multiframe_dicom_over_the_limit_is_refused_before_decoding(tmp_path, never_decoded):
    path = dicom_claiming(tmp_path / "mf.dcm", 1024, 1024, 64)
    message = assert_refused_for_size(path, 50_000_000)
    assert f"{1024 * 1024 * 64:,} pixels" in message


def test_a_dicom_series_over_the_limit_in_total_is_refused_before_decoding(tmp_path, never_decoded):
    for i in range(3):
        dicom_claiming(tmp_path / "series" / f"IM{i}.dcm", 1000, 1000, None)
    message = assert_refused_for_size(tmp_path / "series", 2_500_000)
    assert "3 files" in message and "3,000,000 pixels" in message


def test_a_nifti_header_over_the_limit_is_refused_before_decoding(tmp_path, never_decoded):
    header = nib.Nifti1Header()
    header.set_data_shape((2000, 2000, 100))
    header.set_data_dtype(np.int16)
    path = tmp_path / "huge.nii"
    path.write_bytes(header.binaryblock + b"\0" * (352 - len(header.binaryblock)) + b"\0" * 64)
    assert_refused_for_size(path, 50_000_000)


def test_a_mask_over_the_limit_is_refused_before_decoding(engine, tmp_path):
    # The header claims 400 million voxels and 64 bytes follow: decoding would fail otherwise.
    header = nib.Nifti1Header()
    header.set_data_shape((2000, 2000, 100))
    header.set_data_dtype(np.uint8)
    mask = tmp_path / "huge_mask.nii"
    mask.write_bytes(header.binaryblock + b"\0" * (352 - len(header.binaryblock)) + b"\0" * 64)
    (tmp_path / "scan.nii").write_bytes(nifti_bytes(np.ones((8, 8, 2), np.float32)))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,origin,sequence,lesion,patient_id,mask\nscan.nii,real,T2W,,P1,huge_mask.nii\n"
    )
    with pytest.raises(ManifestError, match=r"huge_mask\.nii: the volume .* over the limit"):
        import_manifest(engine, manifest, store=AssetStore(tmp_path / "assets"))


def test_an_oversized_image_inside_an_upload_imports_nothing(engine, tmp_path, data_dir):
    archive = zipped({"manifest.csv": MANIFEST, "image.png": HUGE_PNG})
    manifest = unpack_upload("u.zip", archive, tmp_path / "upload", max_bytes=LIMIT)
    with pytest.raises(ManifestError, match="VTT_MAX_IMAGE_PIXELS"):
        import_manifest(engine, manifest, allow_absolute=False, store=AssetStore(data_dir))
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("big.zip", b"\0" * (LIMIT + 1), "over the upload limit"),
        ("bomb.zip", zipped({"manifest.csv": MANIFEST, "image.png": b"\0" * 8 * LIMIT}), "unpacks"),
        (
            "liar.zip",
            lying_about_size(
                zipped({"manifest.csv": MANIFEST, "image.png": b"\0" * 8 * LIMIT}), "image.png", 10
            ),
            "image.png",
        ),
        ("huge.zip", zipped({"manifest.csv": MANIFEST, "image.png": HUGE_PNG}),
         "VTT_MAX_IMAGE_PIXELS"),
    ],
    ids=["bytes", "declared bomb", "disguised bomb", "huge image"],
)  # fmt: skip
def test_the_import_page_refuses_bad_uploads_with_a_message(
    app_engine, data_dir, monkeypatch, name, data, problem
):
    monkeypatch.setenv("VTT_MAX_UPLOAD_MB", "1")
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    app.session_state["role"] = "coordinator"
    app.run()
    app.switch_page(str(ROOT / "pages" / "import_assets.py")).run()
    app.file_uploader[0].set_value((name, data, "application/zip")).run()
    next(b for b in app.button if b.label == "Import upload").click().run()
    assert not app.exception, app.exception
    message = " ".join(e.value for e in app.error)
    assert "Nothing was imported" in message and problem in message
    # The upload is named as sent, never by the folder it was unpacked into on the server.
    assert name in message and str(data_dir) not in message
    with transaction(app_engine) as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 0
    # Nothing is left behind: no unpacked upload, no stored asset, only the database (and the
    # job queue's, which the app makes at start).
    kept = ("vtt.sqlite3", "job-queue.sqlite3")
    assert not [p for p in files_under(data_dir) if not p.name.startswith(kept)]
