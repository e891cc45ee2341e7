"""Every bad input is refused with an ImagingError naming the file and the problem."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from study.imaging import ImagingError, ManifestError, load_manifest, load_slices
from study.imaging.errors import ShownPaths
from study.imaging.load import MAX_IMAGE_PIXELS

from .conftest import dicom_dataset, png_with_header_only

# A builder writes one bad input into the folder it is given and returns (what to load,
# load_slices options, the file the message must name).
Case = tuple[Path, dict, Path]
Builder = Callable[[Path], Case]


def _dicom_bytes(
    array: np.ndarray | None = None, edit: dict | None = None, **options: object
) -> bytes:
    """An 8 x 8 DICOM file; `edit` overwrites attributes after the pixels are set."""
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8) if array is None else array
    ds = dicom_dataset(pixels, **options)
    for keyword, value in (edit or {}).items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _single(name: str, data: Callable[[], bytes], **options: object) -> Builder:
    def build(folder: Path) -> Case:
        path = _write(folder / name, data())
        return path, dict(options), path

    return build


def _in_series(name: str, data: Callable[[], bytes]) -> Builder:
    """A bad file among good slices of a DICOM folder."""

    def build(folder: Path) -> Case:
        for k in range(3):
            _write(folder / f"slice{k}.dcm", _dicom_bytes(position=(0, 0, 3.0 * k), instance=k + 1))
        return folder, {}, _write(folder / name, data())

    return build


def _series(slices: list[dict], culprit: str = "") -> Builder:
    """A DICOM folder of slices made with the given dicom_dataset options."""

    def build(folder: Path) -> Case:
        for k, options in enumerate(slices):
            _write(folder / f"s{k}.dcm", _dicom_bytes(**{"instance": k + 1, **options}))
        return folder, {}, folder / culprit if culprit else folder

    return build


def _nifti(shape: tuple[int, ...]) -> Builder:
    def build(folder: Path) -> Case:
        path = folder / "volume.nii"
        nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), path)
        return path, {}, path

    return build


def _nifti_truncated(folder: Path) -> Case:
    path = folder / "cut.nii"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), path)
    path.write_bytes(path.read_bytes()[:1000])
    return path, {}, path


def _nifti_header_claiming(shape: tuple[int, int, int]) -> Builder:
    def build(folder: Path) -> Case:
        header = nib.Nifti1Header()
        header.set_data_shape(shape)
        header.set_data_dtype(np.uint8)
        buffer = io.BytesIO()
        header.write_to(buffer)
        path = _write(folder / "huge.nii", buffer.getvalue() + b"\0" * 64)
        return path, {}, path

    return build


def _metaimage_header(size: str) -> Builder:
    def build(folder: Path) -> Case:
        header = (
            f"ObjectType = Image\nNDims = {len(size.split())}\nDimSize = {size}\n"
            "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n"
        )
        path = _write(folder / "huge.mha", header.encode() + b"\0" * 64)
        return path, {}, path

    return build


def _picture(name: str, array: np.ndarray, **save: object) -> Builder:
    def build(folder: Path) -> Case:
        path = folder / name
        Image.fromarray(array).save(path, **save)
        return path, {}, path

    return build


def _multipage_tiff(folder: Path) -> Case:
    path = folder / "stack.tif"
    pages = [Image.fromarray(np.full((4, 4), v, np.uint8)) for v in (1, 2)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path, {}, path


def _large_constant_png(folder: Path) -> Case:
    """A real 7100 x 7100 PNG (50.4 Mpx, over the default limit) that compresses to ~50 kB."""
    path = folder / "constant.png"
    Image.new("L", (7100, 7100), 0).save(path, compress_level=1)
    return path, {}, path


def _folder_of_folders(folder: Path) -> Case:
    for name in ("t2w", "adc"):
        (folder / name).mkdir()
    return folder, {}, folder


def _empty_folder(folder: Path) -> Case:
    return folder, {}, folder


GOOD_PNG = np.zeros((4, 4), np.uint8)
COLOUR = np.zeros((4, 4, 3), np.uint8)
COLOUR[..., 0] = 200
TRANSPARENT = np.full((4, 4, 4), 100, np.uint8)
TRANSPARENT[0, 0, 3] = 0

CASES: dict[str, tuple[Builder, str]] = {
    "zero-byte dicom": (_single("a.dcm", lambda: b""), r"is empty \(0 bytes\)"),
    "zero-byte png": (_single("a.png", lambda: b""), r"is empty \(0 bytes\)"),
    "zero-byte nifti": (_single("a.nii.gz", lambda: b""), r"is empty \(0 bytes\)"),
    "zero-byte metaimage": (_single("a.mha", lambda: b""), r"is empty \(0 bytes\)"),
    "zero-byte file in a series": (_in_series("z.dcm", lambda: b""), r"is empty \(0 bytes\)"),
    "truncated dicom pixel data": (
        _single("cut.dcm", lambda: _dicom_bytes()[:-100]),
        r"pixel data is truncated \(28 of 128 bytes\); the file was cut short",
    ),
    "dicom cut in its header": (
        _single("cut.dcm", lambda: _dicom_bytes()[:650]),
        "cannot be read as DICOM",
    ),
    "dicom cut before its pixel data": (
        _single("cut.dcm", lambda: _dicom_bytes()[:500]),
        "DICOM file without pixel data",
    ),
    "text named .dcm": (
        _single("notes.dcm", lambda: b"patient list\n" * 20),
        r"is not a DICOM file \(no 'DICM' marker at byte 128\)",
    ),
    "text file in a series": (
        _in_series("README.txt", lambda: b"exported by a PACS\n"),
        "is not a DICOM file",
    ),
    "4D NIfTI": (
        _nifti((2, 2, 2, 3)),
        r"is a 4D NIfTI of shape \(2, 2, 2, 3\); only 2D and 3D.*split it into 3D volumes",
    ),
    "truncated NIfTI": (_nifti_truncated, "voxel data cannot be read"),
    "NIfTI header over the pixel limit": (
        _nifti_header_claiming((10000, 10000, 10)),
        r"the volume \(10000 x 10000 x 10\) is 1,000,000,000 pixels, over the limit of 50,000,000",
    ),
    "MetaImage header over the pixel limit": (
        _metaimage_header("10000 10000 10"),
        r"is 1,000,000,000 pixels, over the limit of 50,000,000 \(VTT_MAX_IMAGE_PIXELS\)",
    ),
    "4D MetaImage": (_metaimage_header("2 2 2 3"), r"is a 4D MetaImage of size \(2, 2, 2, 3\)"),
    "DICOM header over the pixel limit": (
        _single("big.dcm", lambda: _dicom_bytes(edit={"Rows": 60000, "Columns": 60000})),
        r"the series \(1 file\) is 3,600,000,000 pixels, over the limit of 50,000,000",
    ),
    "PNG header over the pixel limit": (
        _single("bomb.png", lambda: png_with_header_only(8000, 8000)),
        r"the image \(8000 x 8000\) is 64,000,000 pixels, over the limit of 50,000,000.*"
        "refused before decoding",
    ),
    "PNG header over Pillow's bomb limit": (
        _single("bomb.png", lambda: png_with_header_only(100_000, 100_000)),
        "over Pillow's decompression-bomb limit",
    ),
    "real constant PNG over the pixel limit": (
        _large_constant_png,
        r"the image \(7100 x 7100\) is 50,410,000 pixels, over the limit of 50,000,000",
    ),
    "tiny PNG over a small limit": (
        _single("tiny.png", lambda: png_with_header_only(4, 4), max_pixels=10),
        r"is 16 pixels, over the limit of 10",
    ),
    "colour PNG": (
        _picture("colour.png", COLOUR),
        r"is a colour image \(channels differ by up to 200",
    ),
    "transparent PNG": (_picture("alpha.png", TRANSPARENT), "has transparent pixels"),
    "multi-page TIFF": (_multipage_tiff, "has 2 pages; save one image per file"),
    "unknown file type": (
        _single("scan.txt", lambda: b"hello"),
        r"unsupported file type; use a DICOM folder or file, \.nii",
    ),
    "empty folder": (_empty_folder, "folder holds no DICOM files"),
    "folder of folders": (_folder_of_folders, r"it holds folders \(adc, t2w\): point at one"),
    "duplicate positions": (
        _series([{"position": (0, 0, 0)}, {"position": (0, 0, 0)}, {"position": (0, 0, 3)}]),
        r"s0\.dcm and s1\.dcm lie at the same position \(0\.00 mm",
    ),
    "missing slice": (
        _series([{"position": (0, 0, 3.0 * k)} for k in (0, 1, 2, 4, 5)]),
        r"a slice is missing: positions jump from 6\.00 mm to 12\.00 mm \(6\.00 mm, between "
        r"sorted slices 2 and 3, s2\.dcm and s3\.dcm\); the other slices are 3\.00 mm apart",
    ),
    "mixed orientations": (
        _series(
            [{"position": (0, 0, 0)}, {"position": (0, 0, 3), "orientation": (0, 1, 0, 0, 0, 1)}]
        ),
        "s1.dcm has another ImageOrientationPatient than s0.dcm",
    ),
    "mixed matrix sizes": (
        _series(
            [
                {"position": (0, 0, 0)},
                {"position": (0, 0, 3), "array": np.zeros((4, 4), np.uint16)},
            ],
            culprit="s1.dcm",
        ),
        r"matrix 4 x 4 differs from s0\.dcm \(8 x 8\)",
    ),
    "MONOCHROME1": (
        _single("inv.dcm", lambda: _dicom_bytes(edit={"PhotometricInterpretation": "MONOCHROME1"})),
        "photometric interpretation MONOCHROME1 is not supported",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VTT_MAX_IMAGE_PIXELS", raising=False)
    build, problem = CASES[case]
    target, options, culprit = build(tmp_path)

    with pytest.raises(ImagingError, match=problem) as error:
        load_slices(target, **{"max_pixels": MAX_IMAGE_PIXELS, **options})

    assert str(error.value).startswith(f"{culprit}: ")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_in_an_upload_is_named_inside_it(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VTT_MAX_IMAGE_PIXELS", raising=False)
    build, problem = CASES[case]
    # As the import page unpacks an upload: into a folder the user never sees.
    root = tmp_path / "tmpunpacked"
    (root / "data").mkdir(parents=True)
    target, options, culprit = build(root / "data")
    manifest = root / "manifest.csv"
    manifest.write_text(
        f"path,origin,sequence,lesion,patient_id\n{target.relative_to(root)},real,T2W,0,P1\n"
    )

    with pytest.raises(ManifestError) as error:
        load_manifest(manifest, shown=ShownPaths(root, "scans.zip"), **options)

    (message,) = error.value.problems
    assert message.startswith(f"scans.zip: manifest.csv: line 2: {culprit.relative_to(root)}: ")
    assert re.search(problem, message)
    assert "tmpunpacked" not in message and str(tmp_path) not in message


def test_missing_slice_of_the_shared_series(shared_data: Path) -> None:
    folder = shared_data / "prostatex-bad" / "ProstateX-0000-missing-slice" / "hbv"

    with pytest.raises(ImagingError) as error:
        load_slices(folder, max_pixels=MAX_IMAGE_PIXELS)

    message = str(error.value)
    assert message.startswith(f"{folder}: uneven slice spacing: a slice is missing")
    assert "ProstateX-0000-missing-slice/hbv" in message
    assert "positions jump from -15.88 mm to -9.88 mm (6.00 mm" in message
    assert "the other slices are 3.00 mm apart" in message


def test_non_existent_path(tmp_path: Path) -> None:
    with pytest.raises(ImagingError, match=r"nowhere\.nii: does not exist; check the path"):
        load_slices(tmp_path / "nowhere.nii", max_pixels=MAX_IMAGE_PIXELS)


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("middle", r"slices 'middle' is not understood: use 'all', 'a:b'"),
        ("5:2", r"slices '5:2' is empty"),
        ("central:0", r"slices 'central:0' chooses no slice"),
        ("-1:3", r"slices '-1:3' is not understood"),
        ("0:30", r"slices '0:30' is out of range: the image has 19 slices"),
    ],
)
def test_bad_slice_choice(spec: str, problem: str, shared_data: Path) -> None:
    folder = shared_data / "prostatex" / "ProstateX-0000" / "adc"

    with pytest.raises(ImagingError, match=problem) as error:
        load_slices(folder, slices=spec, max_pixels=MAX_IMAGE_PIXELS)

    assert str(error.value).startswith(f"{folder}: slices ")


def test_series_on_a_picture_is_refused(tmp_path: Path) -> None:
    Image.fromarray(GOOD_PNG).save(tmp_path / "p.png")

    with pytest.raises(ImagingError, match=r"p\.png: 'series' \('t2'\) applies only to DICOM"):
        load_slices(tmp_path / "p.png", series="t2", max_pixels=MAX_IMAGE_PIXELS)
