"""Manifests: a good one loads with the right counts; every bad row is reported at once."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from study.imaging import (
    Intensity,
    Lesion,
    ManifestError,
    Origin,
    Sequence,
    load_manifest,
    load_slices,
    normalise,
    read_canonical,
    read_manifest,
    write_canonical_png,
    write_manifest,
)
from study.imaging.errors import ShownPaths, one_line
from study.imaging.load import MAX_IMAGE_PIXELS
from study.imaging.manifest import COLUMNS

HEADER = "path,origin,sequence,lesion,patient_id"
SHA = "ab" * 32


def _manifest(folder: Path, text: str, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_text(text.strip() + "\n")
    return path


def _pictures(folder: Path) -> None:
    write_canonical_png(np.random.default_rng(6).random((64, 48)), folder / "synthetic_0.png")
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8)).save(folder / "raw_8bit.png")


def test_good_manifest_of_real_series_and_generated_pictures(
    shared_data: Path, tmp_path: Path
) -> None:
    _pictures(tmp_path)
    p0 = shared_data / "prostatex" / "ProstateX-0000"
    p1 = shared_data / "prostatex" / "ProstateX-0001"
    path = _manifest(
        tmp_path,
        f"""
Path,Origin,Sequence,Lesion,Patient_ID,slices,slice_index,pair_key,pirads,intensity,seed,generator,checkpoint_sha256
{p0 / "t2w"},Real,t2,yes,ProstateX-0000,,,pair-1,4,,,,
{p0 / "adc"},REAL,adc,No,ProstateX-0000,all,,,,raw,,,
{p1 / "hbv"},real,High-B,,ProstateX-0001,,,,,,,,
{p1 / "t2w"},real,T2W,0,ProstateX-0001,,7,,2,,,,
synthetic_0.png,Synthetic,T2W,1,,,9,pair-1,,Canonical,42,ldm,{SHA.upper()}
raw_8bit.png,synthetic,other,unknown,,,,,,,,,
""",
    )
    calls: list[tuple[int, int]] = []

    slices = load_manifest(path, progress=lambda done, total: calls.append((done, total)))

    assert len(slices) == 10 + 19 + 1 + 1 + 1 + 1
    # The two rows of patient 1 are loaded together.
    assert calls == [(0, 6), (1, 6), (2, 6), (4, 6), (5, 6), (6, 6)]
    by_line: dict[int, list] = {}
    for item in slices:
        by_line.setdefault(item.row.line, []).append(item)
        assert item.canonical.dtype == np.float32
        assert item.canonical.shape == item.shape
        assert item.canonical.min() >= 0.0 and item.canonical.max() <= 1.0
    assert [s.slice_index for s in by_line[2]] == list(range(4, 14))
    # Patient 1's high-b DWI is shown on the slice its T2W row chose, paired with it.
    assert [s.slice_index for s in by_line[4]] == [7]
    assert [s.slice_index for s in by_line[5]] == [7]
    assert by_line[4][0].shape == by_line[5][0].shape == (384, 384)
    assert by_line[4][0].pair_key == by_line[5][0].pair_key
    assert by_line[4][0].pair_key.startswith("ProstateX-0001/1.3.6.1.4.1.14519.")
    t2w = by_line[2][0]
    assert (t2w.shape, t2w.spacing_mm) == ((384, 384), (0.5, 0.5))
    assert by_line[3][0].shape == (128, 84)
    assert t2w.row.origin is Origin.REAL and t2w.row.sequence is Sequence.T2W
    assert (t2w.row.lesion, t2w.row.pirads, t2w.row.pair_key) == (Lesion.YES, 4, "pair-1")
    assert t2w.row.path == (p0 / "t2w").resolve()
    assert by_line[4][0].row.sequence is Sequence.DWI and by_line[4][0].row.lesion is Lesion.UNKNOWN
    expected = normalise(
        load_slices(p1 / "t2w", slices="7:8", max_pixels=MAX_IMAGE_PIXELS)[0].array, Sequence.T2W
    )
    assert np.array_equal(by_line[5][0].canonical, expected)

    (synthetic,) = by_line[6]
    assert synthetic.row.origin is Origin.SYNTHETIC and synthetic.row.patient_id == ""
    assert synthetic.row.intensity is Intensity.CANONICAL
    assert synthetic.row.provenance == {"seed": "42", "generator": "ldm", "checkpoint_sha256": SHA}
    assert synthetic.slice_index == 9  # recorded for a picture, not a selection
    assert np.array_equal(synthetic.canonical, read_canonical(tmp_path / "synthetic_0.png"))
    (raw,) = by_line[7]
    assert raw.row.sequence is Sequence.OTHER and raw.row.intensity is Intensity.RAW
    assert raw.canonical.shape == (6, 8) and raw.spacing_mm == (1.0, 1.0)


def test_relative_paths_resolve_against_the_manifest_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    _pictures(tmp_path / "images")
    path = _manifest(
        tmp_path,
        f"""
{HEADER}
images/raw_8bit.png,synthetic,T2W,0,
./images/../images/synthetic_0.png,synthetic,T2W,1,
""",
    )

    rows = read_manifest(path, allow_absolute=False)

    assert [row.path for row in rows] == [
        tmp_path / "images" / "raw_8bit.png",
        tmp_path / "images" / "synthetic_0.png",
    ]
    assert [row.slices for row in rows] == ["central:10", "central:10"]


def _problems(path: Path, **options: object) -> list[str]:
    with pytest.raises(ManifestError) as error:
        load_manifest(path, **options)
    return str(error.value).splitlines()


def _one_problem(folder: Path, row: str, header: str = HEADER, **options: object) -> str:
    path = _manifest(folder, f"{header}\n{row}")
    (problem,) = _problems(path, **options)
    return problem


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("../../etc/passwd,real,T2W,1,P1", "path leaves the manifest folder"),
        ("img.png,real,flair,1,P1", "unknown sequence 'flair'; use one of 't2w', 't2'"),
        ("img.png,fake,T2W,1,P1", "unknown origin 'fake'; use one of 'real', 'synthetic'"),
        ("img.png,real,T2W,maybe,P1", "unknown lesion 'maybe'; use one of '1', 'yes'"),
        ("img.png,real,T2W,1,", "patient_id is empty; it is required for real images"),
        ("missing.png,real,T2W,1,P1", "does not exist ("),
        ("img.png,real,T2W,1,P1,7", "pirads 7 is out of range: use 1 to 5"),
        ("img.png,real,T2W,1,P1,0", "pirads 0 is out of range: use 1 to 5"),
        ("img.png,real,T2W,1,P1,high", "pirads 'high' is not a whole number"),
    ],
)
def test_bad_row(tmp_path: Path, row: str, problem: str) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "img.png")
    header = HEADER + (",pirads" if row.count(",") == 5 else "")

    message = _one_problem(tmp_path, row, header)

    file = row.split(",")[0]
    assert message.startswith(f"{tmp_path / 'manifest.csv'}: line 2: {file}: ")
    assert problem in message


@pytest.mark.parametrize(
    ("columns", "values", "problem"),
    [
        ("slices", "middle", "slices 'middle' is not understood"),
        ("slices", "4:2", "slices '4:2' is empty"),
        ("slice_index", "-1", "slice_index -1 is out of range: use at least 0"),
        ("intensity", "linear", "unknown intensity 'linear'; use one of 'raw', 'canonical'"),
        ("seed", "x", "seed 'x' is not a whole number"),
        ("steps", "0", "steps 0 is out of range: use at least 1"),
        ("guidance", "strong", "guidance 'strong' is not a number"),
        ("condition_sha256", "abc", "condition_sha256 'abc' is not a 64-digit hex sha256"),
        ("slices,slice_index", "0:3,1", "set either slices or slice_index, not both"),
    ],
)
def test_bad_optional_field(tmp_path: Path, columns: str, values: str, problem: str) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "img.png")

    message = _one_problem(tmp_path, f"img.png,synthetic,T2W,1,,{values}", f"{HEADER},{columns}")

    assert message.startswith(f"{tmp_path / 'manifest.csv'}: line 2: img.png: ")
    assert problem in message


def test_provenance_on_a_real_row_is_refused(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "img.png")

    message = _one_problem(tmp_path, "img.png,real,T2W,1,P1,7", f"{HEADER},seed")

    assert "provenance columns (seed) are for synthetic images only" in message


def test_absolute_paths_only_when_allowed(tmp_path: Path) -> None:
    image = tmp_path / "img.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(image)
    path = _manifest(tmp_path, f"{HEADER}\n{image},synthetic,T2W,1,")

    assert len(read_manifest(path)) == 1
    (problem,) = _problems(path, allow_absolute=False)
    assert problem.startswith(f"{path}: line 2: {image}: absolute paths are not allowed")


def test_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(outside)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "link.png").symlink_to(outside)
    path = _manifest(tmp_path / "manifests", f"{HEADER}\nlink.png,synthetic,T2W,1,")

    (problem,) = _problems(path)

    assert "link.png: path leaves the manifest folder" in problem


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "line 1: the manifest is empty; write a header (path, origin, sequence"),
        (HEADER, "line 1: the manifest has a header but no rows"),
        (
            "path,origin,sequence,patient_id\nx.png,real,T2W,P",
            "line 1: missing required column 'lesion'; the header needs path, origin",
        ),
        (f"{HEADER},pirad\nx.png,real,T2W,1,P,3", "line 1: unknown column 'pirad'; known columns"),
        (f"{HEADER},\nx.png,real,T2W,1,P,", "line 1: column 6 has no name; name it or remove it"),
        (
            f"{HEADER},Path\nx.png,real,T2W,1,P,y.png",
            "line 1: column 'path' appears more than once",
        ),
    ],
)
def test_bad_manifest_shape(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "m.csv"
    path.write_text(text)

    (message,) = _problems(path)

    assert message.startswith(f"{path}: ")
    assert problem in message


def test_wrong_field_count(tmp_path: Path) -> None:
    path = _manifest(tmp_path, f"{HEADER}\na.png,real,T2W,1,P,extra")

    (message,) = _problems(path)

    assert message == (
        f"{path}: line 2: a.png: has 6 fields, the header has 5; quote fields that contain commas"
    )


def test_manifest_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"nowhere\.csv: the manifest does not exist"):
        read_manifest(tmp_path / "nowhere.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(f"{HEADER}\nr\xe9sum\xe9.png,real,T2W,1,P".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin\.csv: the manifest is not UTF-8 text"):
        read_manifest(latin)


def test_byte_order_mark_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "img.png")
    path = tmp_path / "excel.csv"
    path.write_bytes(f"\ufeff{HEADER}\r\n\r\nimg.png,synthetic,T2W,1,\r\n".encode())

    (row,) = read_manifest(path)

    assert row.line == 3


def test_every_problem_is_reported_at_once(shared_data: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "img.png")
    bad_series = shared_data / "prostatex-bad" / "ProstateX-0000-missing-slice" / "hbv"
    path = _manifest(
        tmp_path,
        f"""
{HEADER}
img.png,synthetic,T2W,1,
{bad_series},real,hbv,1,ProstateX-0000
empty.png,synthetic,T2W,1,
img.png,real,T2,1,
../secret.png,synthetic,t2,2,
""",
    )

    problems = _problems(path)

    prefix = f"{path}: line"
    assert all(line.startswith(prefix) for line in problems)
    assert len(problems) == 5
    assert problems[0].startswith(f"{prefix} 3: {bad_series}: uneven slice spacing: a slice is")
    assert (
        problems[1]
        == f"{prefix} 4: {tmp_path / 'empty.png'}: is empty (0 bytes); copy the file again"
    )
    assert (
        problems[2] == f"{prefix} 5: img.png: patient_id is empty; it is required for real images"
    )
    assert problems[3].startswith(f"{prefix} 6: ../secret.png: path leaves the manifest folder")
    assert problems[4].startswith(f"{prefix} 6: ../secret.png: unknown lesion '2'")


def test_canonical_intensity_on_raw_values_is_refused(shared_data: Path, tmp_path: Path) -> None:
    series = shared_data / "prostatex" / "ProstateX-0000" / "adc"
    path = _manifest(tmp_path, f"{HEADER},intensity\n{series},real,ADC,0,P,canonical")

    (problem,) = _problems(path)

    assert problem.startswith(f"{path}: line 2: {series} slice 4: values span 0 .. ")
    assert "canonical images lie in [0, 1]; import it with intensity=raw" in problem


# --- an upload unpacked on the server: named as the user knows it -----------------------------


def test_problems_of_an_uploaded_manifest_name_the_upload_not_the_server_folder(
    tmp_path: Path,
) -> None:
    root = tmp_path / "tmp1234"
    (root / "study" / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "study" / "images" / "ok.png")
    (root / "study" / "images" / "bad.png").write_bytes(b"")
    path = _manifest(
        root / "study",
        f"""
{HEADER}
images/ok.png,real,MRI,1,P1
images/gone.png,real,T2W,1,P1
images/bad.png,real,T2W,1,P1
../../elsewhere.png,real,T2W,1,P1
{tmp_path / "outside.png"},real,T2W,1,P1
""",
    )

    problems = _problems(path, allow_absolute=False, shown=ShownPaths(root, "scans.zip"))

    prefix = "scans.zip: study/manifest.csv: line"
    assert problems == [
        f"{prefix} 2: images/ok.png: unknown sequence 'MRI'; use one of 't2w', 't2', 't2-w', "
        "'t2-weighted', 'adc', 'dwi', 'dw', 'hbv', 'high-b', 'highb', 'other'",
        f"{prefix} 3: images/gone.png: does not exist (study/images/gone.png); check the path",
        f"{prefix} 4: study/images/bad.png: is empty (0 bytes); copy the file again",
        f"{prefix} 5: ../../elsewhere.png: path leaves the manifest folder study; put the file "
        "inside that folder",
        f"{prefix} 6: {tmp_path / 'outside.png'}: absolute paths are not allowed in this "
        "manifest; use a path relative to the manifest folder study",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (b"", "line 1: the manifest is empty; write a header"),
        (f"{HEADER},pirad\nx.png,real,T2W,1,P,3".encode(), "line 1: unknown column 'pirad'"),
        (b"path,\xe9", "the manifest is not UTF-8 text"),
    ],
)
def test_a_bad_uploaded_manifest_is_named_by_the_upload(
    tmp_path: Path, text: bytes, problem: str
) -> None:
    (tmp_path / "manifest.csv").write_bytes(text)

    (message,) = _problems(tmp_path / "manifest.csv", shown=ShownPaths(tmp_path, "list.zip"))

    assert message.startswith(f"list.zip: manifest.csv: {problem}")
    assert str(tmp_path) not in message


def test_shown_paths_rewrite_every_spelling_of_the_folder(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    shown = ShownPaths(tmp_path / "link", "up.zip")
    real, link = tmp_path / "real", tmp_path / "link"

    assert shown.file(real / "a" / "manifest.csv") == "up.zip: a/manifest.csv"
    assert shown.text(f"{link}/a.png and '{real}/b/c.png'") == "a.png and 'b/c.png'"
    assert shown.text(f"outside {real}; or {link}.") == "outside up.zip; or up.zip."
    # A sibling folder whose name starts alike is another folder, left as it is.
    assert shown.text(f"{real}2/x.png") == f"{real}2/x.png"


def test_shown_paths_hide_the_folder_in_a_message_cut_short(tmp_path: Path) -> None:
    shown = ShownPaths(tmp_path / "tmp1234", "up.zip")
    cut = one_line(ValueError(f"cannot open {tmp_path / 'tmp1234' / 'x.raw'}"), limit=30)

    assert cut.endswith("...") and str(tmp_path)[:10] in cut
    assert shown.text(f"({cut})") == f"({cut[: cut.index('/')]}up.zip...)"


def test_a_manifest_error_lists_its_problems_one_per_line(tmp_path: Path) -> None:
    path = _manifest(tmp_path, f"{HEADER}\na.png,real,T2W,1,P\nb.png,real,T2W,1,P")

    with pytest.raises(ManifestError) as error:
        read_manifest(path)

    assert error.value.problems == [
        f"{path}: line 2: a.png: does not exist ({tmp_path / 'a.png'}); check the path",
        f"{path}: line 3: b.png: does not exist ({tmp_path / 'b.png'}); check the path",
    ]
    assert str(error.value) == "\n".join(error.value.problems)


def _row_fields(row: object) -> dict[str, object]:
    """A read ManifestRow as a comparable dict, the line and the resolved path set aside."""
    fields = dict(vars(row))
    del fields["line"], fields["path"]
    return fields


def test_write_manifest_round_trips_every_column(tmp_path: Path) -> None:
    _pictures(tmp_path)
    (tmp_path / "images").mkdir()
    affine = np.diag([0.5, 0.5, 3.0, 1.0])
    volume = np.arange(64, dtype=np.float32).reshape(8, 8, 1)
    nib.save(nib.Nifti1Image(volume, affine), tmp_path / "images" / "b.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 1), np.uint8), affine), tmp_path / "b_mask.nii")
    synthetic = {
        "path": "synthetic_0.png",
        "origin": Origin.SYNTHETIC,
        "sequence": Sequence.T2W,
        "lesion": Lesion.YES,
        "patient_id": "P1",
        "slice_index": np.int64(9),
        "series": "1.2.3",
        "pair_key": "pair-1",
        "pirads": 4,
        "intensity": Intensity.CANONICAL,
        "generator": "ldm, v2",
        "prompt": 'T2W, "lesion"\nof the prostate',
        "seed": 42,
        "checkpoint_sha256": SHA,
        "sampler": "dpmpp",
        "steps": 20,
        "guidance": 3.25,
        "condition_sha256": "cd" * 32,
    }
    real = {
        "path": Path("images") / "b.nii.gz",
        "origin": "real",
        "sequence": "ADC",
        "lesion": False,
        "patient_id": "P2",
        "slices": "all",
        "pirads": None,
        "study_id": "S1",
        "mask": tmp_path / "b_mask.nii",
    }
    assert set(synthetic) | set(real) == set(COLUMNS)
    path = tmp_path / "manifest.csv"

    assert write_manifest(path, iter([synthetic, real])) == path

    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    rows = read_manifest(path)
    assert [r.path for r in rows] == [
        tmp_path / "synthetic_0.png",
        tmp_path / "images" / "b.nii.gz",
    ]
    assert _row_fields(rows[0]) == {
        "origin": Origin.SYNTHETIC,
        "sequence": Sequence.T2W,
        "lesion": Lesion.YES,
        "patient_id": "P1",
        "slices": "central:10",
        "series": "1.2.3",
        "slice_index": 9,
        "pair_key": "pair-1",
        "pirads": 4,
        "intensity": Intensity.CANONICAL,
        "study_id": "",
        "mask": None,
        "slices_given": False,
        "provenance": {
            "generator": "ldm, v2",
            "prompt": 'T2W, "lesion"\nof the prostate',
            "seed": "42",
            "checkpoint_sha256": SHA,
            "sampler": "dpmpp",
            "steps": "20",
            "guidance": "3.25",
            "condition_sha256": "cd" * 32,
        },
    }
    assert _row_fields(rows[1]) == {
        "origin": Origin.REAL,
        "sequence": Sequence.ADC,
        "lesion": Lesion.NO,
        "patient_id": "P2",
        "slices": "all",
        "series": None,
        "slice_index": None,
        "pair_key": "",
        "pirads": None,
        "intensity": Intensity.RAW,
        "provenance": {},
        "study_id": "S1",
        "mask": tmp_path / "b_mask.nii",
        "slices_given": True,
    }
    # `series` names a series of a DICOM folder, which these pictures are not.
    write_manifest(path, [{**synthetic, "series": None}, real])
    loaded = load_manifest(path)
    # The prompt spans two lines; a row is numbered by its last.
    assert [(s.row.line, s.slice_index) for s in loaded] == [(3, 9), (4, 0)]
    assert [(s.lesion, s.lesions) for s in loaded] == [(Lesion.YES, None), (Lesion.NO, ())]
    assert [_row_fields(s.row) for s in loaded] == [
        {**_row_fields(rows[0]), "series": None},
        _row_fields(rows[1]),
    ]
    assert np.array_equal(loaded[0].canonical, read_canonical(tmp_path / "synthetic_0.png"))


def test_write_manifest_header_has_only_the_columns_rows_fill(tmp_path: Path) -> None:
    _pictures(tmp_path)
    rows = [
        {"path": "synthetic_0.png", "origin": "synthetic", "sequence": "T2W", "lesion": None,
         "patient_id": None, "seed": 7, "pirads": None, "intensity": "canonical"},
        {"path": "raw_8bit.png", "origin": "synthetic", "sequence": "other", "lesion": "",
         "patient_id": "", "seed": None, "generator": ""},
    ]  # fmt: skip

    path = write_manifest(tmp_path / "manifest.csv", rows)

    assert path.read_text() == (
        "path,origin,sequence,lesion,patient_id,intensity,seed\n"
        "synthetic_0.png,synthetic,T2W,,,canonical,7\n"
        "raw_8bit.png,synthetic,other,,,,\n"
    )
    read = read_manifest(path)
    assert [(r.lesion, r.patient_id, r.provenance) for r in read] == [
        (Lesion.UNKNOWN, "", {"seed": "7"}),
        (Lesion.UNKNOWN, "", {}),
    ]


@pytest.mark.parametrize("column", ["Path", "patientid", "notes", ""])
def test_write_manifest_refuses_a_column_the_reader_refuses(tmp_path: Path, column: str) -> None:
    good = {"path": "a.png", "origin": "real", "sequence": "T2W", "lesion": 1, "patient_id": "P"}
    path = tmp_path / "manifest.csv"

    with pytest.raises(ManifestError, match=f"row 2: unknown column {column!r}"):
        write_manifest(path, [good, {**good, column: "x"}])

    assert not path.exists()


def test_write_manifest_refuses_no_rows_and_values_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no rows to write"):
        write_manifest(tmp_path / "empty.csv", [])
    with pytest.raises(ManifestError, match="row 1: column 'seed' holds a list"):
        write_manifest(tmp_path / "bad.csv", [{"path": "a.png", "seed": [1]}])
    assert not (tmp_path / "empty.csv").exists() and not (tmp_path / "bad.csv").exists()
