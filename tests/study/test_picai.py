"""`python -m study prepare-picai`: the PI-CAI layout (written by the phantom) and ProstateX
DICOM folders to a manifest and a summary; every refusal names its file and writes nothing."""

from __future__ import annotations

import csv
import doctest
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import study.picai
from study.cli import main
from synth.phantom import make_patient
from synth.phantom.picai import picai_case, write_picai
from synth.phantom.writer import has_lesion, patient_seed

ROOT = Path(__file__).resolve().parents[2]
SEED, PATIENTS, SIZE, SLICES = 3, 6, 128, 10
EXPERT = Path("csPCa_lesion_delineations/human_expert/resampled")
SEQUENCES = (("t2w", "T2W"), ("adc", "ADC"), ("hbv", "DWI"))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six phantom patients in the PI-CAI layout: PH3-0001 holds an ISUP 2 lesion, PH3-0003
    an ISUP 3 one, PH3-0005 an ISUP 1 lesion (visible, not delineated), the others none."""
    return write_picai(
        tmp_path_factory.mktemp("picai") / "cohort",
        patients=PATIENTS,
        seed=SEED,
        size=SIZE,
        slices=SLICES,
    )


@pytest.fixture
def copy(cohort: Path, tmp_path: Path) -> Path:
    """A copy of the cohort to damage."""
    return Path(shutil.copytree(cohort, tmp_path / "cohort"))


def lesion_slices(index: int) -> tuple[tuple[int, ...], int | None]:
    """The slices on which patient `index` shows its lesion, and the lesion's ISUP grade."""
    patient = make_patient(
        patient_seed(SEED, index), size=SIZE, n_slices=SLICES, lesion=has_lesion(SEED, index, 0.5)
    )
    return patient.lesion_slices, picai_case(SEED, index, patient).isup


def prepare(capsys: pytest.CaptureFixture[str], *arguments: object) -> tuple[int, str, str]:
    """`python -m study prepare-picai ARGUMENTS` in this process: (exit code, stdout, stderr)."""
    code = main(["prepare-picai", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def prepare_cohort(
    capsys: pytest.CaptureFixture[str], folder: Path, *arguments: object, out: Path | None = None
) -> tuple[int, str, str]:
    layout = ["--images", folder / "images", "--labels", folder / "labels"]
    return prepare(capsys, *layout, "--out", folder if out is None else out, *arguments)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def refused(result: tuple[int, str, str], *lines: str) -> None:
    """Exit 1, nothing on stdout, and exactly `lines` on stderr (the first after "error: ")."""
    code, out, err = result
    assert code == 1 and out == ""
    assert messages(err) == [f"error: {lines[0]}", *lines[1:]]


def messages(err: str) -> list[str]:
    """The lines of stderr but the progress bar's."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith("reading")]


# The cohort as it is


def test_prepares_a_manifest_of_every_study_with_its_mask(capsys, cohort, tmp_path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = prepare_cohort(capsys, cohort, out=out)
    assert code == 0, stderr
    assert "reading" in stderr, "progress goes to stderr"
    expected_lesion_slices = sum(
        len(slices) for slices, isup in map(lesion_slices, range(PATIENTS)) if (isup or 0) >= 2
    )
    assert expected_lesion_slices == 6
    assert stdout.splitlines() == [
        f"6 patients, 6 studies: 18 rows in {out / 'manifest.csv'}",
        "sequence    slices  lesion slices",
        "T2W             60              6",
        "ADC             60              6",
        "DWI             60              6",
    ]
    with (out / "manifest.csv").open(encoding="utf-8") as handle:
        assert handle.readline() == "path,origin,sequence,lesion,patient_id,slices,study_id,mask\n"
    rows = read_rows(out / "manifest.csv")
    expected = []
    for index in range(PATIENTS):
        patient, study = f"PH3-{index + 1:04d}", str(1_000_001 + index)
        label = cohort / "labels" / EXPERT / f"{patient}_{study}.nii.gz"
        for kind, sequence in SEQUENCES:
            expected.append(
                {
                    # Outside --out, so absolute: the reader refuses relative paths that leave
                    # the manifest's folder.
                    "path": str(cohort / "images" / patient / f"{patient}_{study}_{kind}.mha"),
                    "origin": "real",
                    "sequence": sequence,
                    "lesion": "",
                    "patient_id": patient,
                    "slices": "central:10",
                    "study_id": study,
                    "mask": str(label),
                }
            )
    assert rows == expected


def test_paths_inside_out_are_relative(capsys, copy) -> None:
    code, _, stderr = prepare_cohort(capsys, copy)
    assert code == 0, stderr
    rows = read_rows(copy / "manifest.csv")
    assert rows[0]["path"] == "images/PH3-0001/PH3-0001_1000001_t2w.mha"
    assert rows[2]["path"] == "images/PH3-0001/PH3-0001_1000001_hbv.mha"
    assert rows[0]["mask"] == f"labels/{EXPERT.as_posix()}/PH3-0001_1000001.nii.gz"


def test_json_summary(capsys, cohort, tmp_path) -> None:
    code, stdout, _ = prepare_cohort(capsys, cohort, "--json", out=tmp_path / "out")
    assert code == 0
    counts = {"slices": 60, "lesion_slices": 6}
    assert json.loads(stdout) == {
        "manifest": str(tmp_path / "out" / "manifest.csv"),
        "patients": 6,
        "studies": 6,
        "rows": 18,
        "sequences": {"T2W": counts, "ADC": counts, "DWI": counts},
        "skipped": {},
        "marksheet": str(cohort / "labels" / "clinical_information" / "marksheet.csv"),
        "marksheet_other_studies": 0,
        "disagreements": [],
        # The lesions of PH3-0001 and PH3-0003 on three slices each (PH3-0005's ISUP 1 lesion
        # is not delineated).
        "by_patient": {
            f"PH3-{k:04d}": {"slices": 10, "lesion_slices": 3 if k in (1, 3) else 0}
            for k in range(1, 7)
        },
    }


def summary(capsys, cohort: Path, out: Path, *arguments: object) -> dict:
    code, stdout, stderr = prepare_cohort(capsys, cohort, "--json", *arguments, out=out)
    assert code == 0, stderr
    return json.loads(stdout)


def test_lesion_labels_min_voxels_and_slices_choose_what_counts(capsys, cohort, tmp_path) -> None:
    """PH3-0001 (ISUP 2) shows its lesion on slices 6-8 with 35, 40 and 33 voxels, PH3-0003
    (ISUP 3) on slices 2-4 with 25, 39 and 29; PH3-0005's ISUP 1 lesion is in no label."""
    assert [lesion_slices(i) for i in (0, 2, 4)] == [((6, 7, 8), 2), ((2, 3, 4), 3), ((4,), 1)]

    def lesions(name: str, *arguments: object) -> tuple[int, int]:
        found = summary(capsys, cohort, tmp_path / name, *arguments)["sequences"]["ADC"]
        return found["slices"], found["lesion_slices"]

    assert lesions("isup3", "--lesion-labels", "3,4,5") == (60, 3)
    assert lesions("isup2", "--lesion-labels", "2") == (60, 3)
    assert lesions("voxels", "--min-lesion-voxels", 30) == (60, 4)
    assert lesions("one", "--min-lesion-voxels", 1) == (60, 6)
    assert lesions("central4", "--slices", "central:4") == (24, 3)  # slices 3-6
    assert lesions("first", "--slices", "0:3") == (18, 1)
    rows = read_rows(tmp_path / "first" / "manifest.csv")
    assert {row["slices"] for row in rows} == {"0:3"}


def test_ai_labels_are_ones(capsys, cohort, tmp_path) -> None:
    ai = summary(capsys, cohort, tmp_path / "ai", "--labels-subdir", "AI/Bosma22a")
    assert ai["sequences"]["T2W"] == {"slices": 60, "lesion_slices": 6}
    rows = read_rows(tmp_path / "ai" / "manifest.csv")
    assert rows[0]["mask"].endswith("AI/Bosma22a/PH3-0001_1000001.nii.gz")
    ai_graded = ["--labels-subdir", "AI/Bosma22a", "--lesion-labels", "2,3,4,5"]
    graded = summary(capsys, cohort, tmp_path / "ai2", *ai_graded)
    assert graded["sequences"]["T2W"]["lesion_slices"] == 0


def test_the_manifest_imports_with_lesions_from_the_masks(engine, capsys, cohort, tmp_path):
    from sqlalchemy import select

    from study.db import transaction
    from study.importer import import_manifest
    from study.models import Asset
    from study.storage import AssetStore

    out = tmp_path / "out"
    assert prepare_cohort(capsys, cohort, out=out)[0] == 0
    result = import_manifest(engine, out / "manifest.csv", store=AssetStore(tmp_path / "assets"))
    assert (result.added, result.unchanged) == (PATIENTS * 3 * SLICES, 0)
    with transaction(engine) as session:
        assets = session.scalars(select(Asset)).all()
        found = {(a.patient_id, str(a.sequence), a.slice_index): a.lesion for a in assets}
    for index in range(PATIENTS):
        slices, isup = lesion_slices(index)
        shown = set(slices) if (isup or 0) >= 2 else set()
        for sequence in ("T2W", "ADC", "DWI"):
            assert {k: found[(f"PH3-{index + 1:04d}", sequence, k)] for k in range(SLICES)} == {
                k: int(k in shown) for k in range(SLICES)
            }, (index, sequence)


# Incomplete studies: refused, or listed and left out


def test_a_missing_sequence_is_refused_or_skipped(capsys, copy, tmp_path) -> None:
    adc = copy / "images" / "PH3-0002" / "PH3-0002_1000002_adc.mha"
    adc.unlink()
    out = tmp_path / "out"
    refused(
        prepare_cohort(capsys, copy, out=out),
        f"{adc}: does not exist, so study PH3-0002_1000002 has no ADC; pass --skip-incomplete "
        "to leave such studies out",
    )
    assert not out.exists(), "nothing written"

    code, stdout, _ = prepare_cohort(capsys, copy, "--skip-incomplete", out=out)
    assert code == 0
    assert stdout.splitlines() == [
        f"5 patients, 5 studies: 15 rows in {out / 'manifest.csv'}",
        "sequence    slices  lesion slices",
        "T2W             50              6",
        "ADC             50              6",
        "DWI             50              6",
        "skipped 1 incomplete study:",
        f"  PH3-0002_1000002: {adc}: does not exist, so study PH3-0002_1000002 has no ADC",
    ]
    assert "PH3-0002" not in (out / "manifest.csv").read_text()


def test_a_missing_label_is_refused_or_skipped(capsys, copy, tmp_path) -> None:
    label = copy / "labels" / EXPERT / "PH3-0003_1000003.nii.gz"
    label.unlink()
    out = tmp_path / "out"
    refused(
        prepare_cohort(capsys, copy, out=out),
        f"{label}: does not exist, so study PH3-0003_1000003 has no lesion label; pass "
        "--skip-incomplete to leave such studies out",
    )
    assert not out.exists()
    found = summary(capsys, copy, out, "--skip-incomplete")
    assert found["studies"] == 5 and found["sequences"]["DWI"] == {"slices": 50, "lesion_slices": 3}
    assert list(found["skipped"]) == ["PH3-0003_1000003"]


def test_every_incomplete_study_is_named_and_none_left_is_refused(capsys, copy, tmp_path):
    for path in (copy / "labels" / EXPERT).iterdir():
        path.unlink()
    code, _, err = prepare_cohort(capsys, copy, out=tmp_path / "out")
    assert code == 1 and len(messages(err)) == PATIENTS
    code, _, err = prepare_cohort(capsys, copy, "--skip-incomplete", out=tmp_path / "out")
    assert code == 1
    assert messages(err)[0] == (
        f"error: {copy / 'images'}: none of its 6 studies is complete, so there is nothing to "
        "prepare:"
    )
    assert not (tmp_path / "out").exists()


def test_a_study_missing_from_the_marksheet_is_incomplete(capsys, copy, tmp_path) -> None:
    marksheet = copy / "labels" / "clinical_information" / "marksheet.csv"
    lines = marksheet.read_text().splitlines(keepends=True)
    marksheet.write_text("".join(line for line in lines if not line.startswith("PH3-0004,")))
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{marksheet}: has no row for study PH3-0004_1000004; pass --skip-incomplete to leave "
        "such studies out",
    )
    assert summary(capsys, copy, tmp_path / "out", "--skip-incomplete")["studies"] == 5


# The marksheet


def test_marksheet_rows_of_other_studies_are_ignored_and_counted(capsys, copy, tmp_path) -> None:
    """The public marksheet lists the 1500 studies of all five folds; a fold holds 300."""
    marksheet = copy / "labels" / "clinical_information" / "marksheet.csv"
    with marksheet.open("a", encoding="utf-8") as handle:
        handle.write("10000,1000000,2019-07-02,74,7.7,,55,MRBx,0+0,0,0,NO,RUMC\n")
        handle.write("10001,1000001,2016-05-27,64,8.7,0.09,102,,,,0,NO,RUMC\n")
    out = tmp_path / "out"
    code, stdout, _ = prepare_cohort(capsys, copy, out=out)
    assert code == 0
    assert stdout.splitlines()[-1] == (
        f"{marksheet}: 2 rows for studies not among the images, ignored"
    )
    assert summary(capsys, copy, tmp_path / "json", "--json")["marksheet_other_studies"] == 2


def test_disagreements_of_marksheet_and_labels_are_listed(capsys, copy, tmp_path) -> None:
    marksheet = copy / "labels" / "clinical_information" / "marksheet.csv"
    text = marksheet.read_text()
    text = text.replace(",2,2,YES,PHANTOM", ",2,2,NO,PHANTOM")  # PH3-0001
    text = text.replace(",0,NO,PHANTOM", ",0,YES,PHANTOM", 1)  # PH3-0002
    marksheet.write_text(text)
    code, stdout, _ = prepare_cohort(capsys, copy, out=tmp_path / "out")
    assert code == 0
    assert stdout.splitlines()[-3:] == [
        "the marksheet and the labels disagree on 2 studies:",
        "  PH3-0001_1000001: case_csPCa is NO, but its label holds a lesion",
        "  PH3-0002_1000002: case_csPCa is YES, but its label holds no lesion",
    ]


def test_a_marksheet_without_its_columns_is_refused(capsys, copy, tmp_path) -> None:
    marksheet = copy / "labels" / "clinical_information" / "marksheet.csv"
    marksheet.write_text("patient,study\nPH3-0001,1000001\n")
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{marksheet}: line 1: no column patient_id or study_id; a PI-CAI marksheet has "
        "patient_id, study_id, ..., case_csPCa",
    )


def test_a_marksheet_with_a_bad_case_cspca_is_refused(capsys, copy, tmp_path) -> None:
    marksheet = copy / "labels" / "clinical_information" / "marksheet.csv"
    marksheet.write_text(marksheet.read_text().replace(",0,NO,PHANTOM", ",0,maybe,PHANTOM", 1))
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{marksheet}: line 3: case_csPCa 'maybe' is neither YES nor NO",
    )


def test_without_a_marksheet_nothing_is_checked_against_it(capsys, copy, tmp_path) -> None:
    (copy / "labels" / "clinical_information" / "marksheet.csv").unlink()
    found = summary(capsys, copy, tmp_path / "out")
    assert found["marksheet"] is None and found["studies"] == 6


# Files that cannot be used: refused, whatever the options


def test_an_unreadable_image_is_refused_even_when_skipping(capsys, copy, tmp_path) -> None:
    hbv = copy / "images" / "PH3-0005" / "PH3-0005_1000005_hbv.mha"
    hbv.write_bytes(b"not a MetaImage at all")
    code, out, err = prepare_cohort(capsys, copy, "--skip-incomplete", out=tmp_path / "out")
    assert code == 1 and out == ""
    (line,) = messages(err)
    assert line.startswith(f"error: {hbv}: cannot be read as MetaImage (")
    assert line.endswith("); the file is damaged")
    assert not (tmp_path / "out").exists()


def test_a_label_that_misses_the_t2w_is_refused(capsys, copy, tmp_path) -> None:
    """A label in another geometry is resampled onto the T2W, as the importer does; one that
    does not reach the chosen slices leaves their truth unknown."""
    label = copy / "labels" / EXPERT / "PH3-0002_1000002.nii.gz"
    sitk.WriteImage(sitk.Image([32, 32, SLICES], sitk.sitkUInt8), str(label))
    t2w = copy / "images" / "PH3-0002" / "PH3-0002_1000002_t2w.mha"
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{label}: the mask does not reach slices 0, 1, 2, 3, 4, 7, 8, 9 of {t2w}, whose truth "
        "is then unknown; give a mask that covers them, or choose other slices",
    )


def test_a_label_on_another_grid_is_resampled(capsys, copy, tmp_path) -> None:
    """PI-CAI's original (not resampled) delineations lie on other grids; the importer fits
    them to the T2W with nearest neighbour, and so does the count."""
    label = copy / "labels" / EXPERT / "PH3-0001_1000001.nii.gz"
    image = sitk.ReadImage(str(label))
    finer = sitk.Resample(
        image,
        [2 * n for n in image.GetSize()[:2]] + [image.GetSize()[2]],
        sitk.Transform(),
        sitk.sitkNearestNeighbor,
        image.GetOrigin(),
        [image.GetSpacing()[0] / 2, image.GetSpacing()[1] / 2, image.GetSpacing()[2]],
        image.GetDirection(),
    )
    sitk.WriteImage(finer, str(label))
    assert summary(capsys, copy, tmp_path / "out")["sequences"]["T2W"]["lesion_slices"] == 6


def test_an_image_in_another_patients_folder_is_refused(capsys, copy, tmp_path) -> None:
    t2w = copy / "images" / "PH3-0002" / "PH3-0001_1000001_t2w.mha"
    shutil.copy(copy / "images" / "PH3-0001" / "PH3-0001_1000001_t2w.mha", t2w)
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{t2w}: belongs to patient PH3-0001, not to the folder's PH3-0002; move it into "
        f"{copy / 'images' / 'PH3-0001'}",
    )


def test_a_missing_labels_subdir_is_refused(capsys, cohort, tmp_path) -> None:
    missing = cohort / "labels" / "csPCa_lesion_delineations" / "AI" / "Saha"
    refused(
        prepare_cohort(capsys, cohort, "--labels-subdir", "AI/Saha", out=tmp_path / "out"),
        f"{missing}: does not exist; --labels names the picai_labels folder (holding "
        "csPCa_lesion_delineations/) and --labels-subdir one of its label sets, e.g. "
        "human_expert/resampled or AI/Bosma22a",
    )


def test_an_empty_images_folder_is_refused(capsys, cohort, tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(
        prepare(capsys, "--images", empty, "--labels", cohort / "labels", "--out", tmp_path / "o"),
        f"{empty}: holds no patient folders (<patient_id>/ holding .mha files); --images names "
        "the folder that holds them",
    )
    nowhere = tmp_path / "nope"
    refused(
        prepare(capsys, "--images", nowhere, "--labels", cohort / "labels", "--out", tmp_path),
        f"{nowhere}: is not a folder; --images names the patients' folder",
    )


def test_a_patient_folder_without_images_is_incomplete(capsys, copy, tmp_path) -> None:
    stray = copy / "images" / "PH3-0099"
    stray.mkdir()
    (stray / "notes.txt").write_text("to do")
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{stray}: holds no PH3-0099_<study_id>_t2w.mha, _adc.mha or _hbv.mha; pass "
        "--skip-incomplete to leave such studies out",
    )


def test_labels_are_required_for_picai(capsys, cohort, tmp_path) -> None:
    refused(
        prepare(capsys, "--images", cohort / "images", "--out", tmp_path / "out"),
        "--labels is required for PI-CAI: name the picai_labels folder",
    )


def test_an_existing_manifest_is_not_overwritten(capsys, copy) -> None:
    manifest = copy / "manifest.csv"
    manifest.write_text("mine")
    refused(
        prepare_cohort(capsys, copy),
        f"{manifest}: already exists; choose another --out (nothing is overwritten)",
    )
    assert manifest.read_text() == "mine"


def test_a_bad_slice_choice_is_refused(capsys, cohort, tmp_path) -> None:
    refused(
        prepare_cohort(capsys, cohort, "--slices", "middle", out=tmp_path / "out"),
        "--slices: slices 'middle' is not understood: use 'all', 'a:b' (0-based, end excluded) "
        "or 'central:N'",
    )


def test_slices_beyond_the_t2w_are_refused_naming_it(capsys, cohort, tmp_path) -> None:
    code, _, err = prepare_cohort(capsys, cohort, "--slices", "5:12", out=tmp_path / "out")
    t2w = cohort / "images" / "PH3-0001" / "PH3-0001_1000001_t2w.mha"
    assert code == 1 and messages(err)[0] == (
        f"error: {t2w}: --slices slices '5:12' is out of range: the image has 10 slices "
        "(valid 'a:b' have 0 <= a < b <= 10)"
    )
    assert len(messages(err)) == PATIENTS


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--lesion-labels", "0,2"], "lesion labels [0, 2] must be whole numbers of 1 or more"),
        (["--lesion-labels", "two"], "lesion labels 'two' are not whole numbers"),
        (["--min-lesion-voxels", "0"], "0 is out of range; use 1 or more"),
    ],
)
def test_bad_lesion_options_are_refused_by_the_parser(
    capsys, cohort, tmp_path, arguments, message
) -> None:
    with pytest.raises(SystemExit) as exit_:
        prepare_cohort(capsys, cohort, *arguments, out=tmp_path / "out")
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_lesion_options_default_to_the_importers() -> None:
    from study.imaging.commandline import MIN_LESION_VOXELS
    from study.imaging.lesions import LesionRule

    assert LesionRule().min_voxels == MIN_LESION_VOXELS and LesionRule().labels is None


def test_diffusion_that_misses_the_t2w_slices_is_refused(capsys, copy, tmp_path) -> None:
    adc = copy / "images" / "PH3-0004" / "PH3-0004_1000004_adc.mha"
    image = sitk.ReadImage(str(adc))
    x, y, z = image.GetOrigin()
    image.SetOrigin((x, y, z + 1000.0))
    sitk.WriteImage(image, str(adc), useCompression=True)
    t2w = copy / "images" / "PH3-0004" / "PH3-0004_1000004_t2w.mha"
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{adc}: does not reach slices 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 of the T2W volume {t2w}, "
        "on whose slices it is shown; choose T2W slices that both cover (its row's 'slices')",
    )
    assert not (tmp_path / "out").exists()


def test_a_study_in_two_image_folders_is_refused(capsys, cohort, tmp_path) -> None:
    """The five PI-CAI folds hold each patient once."""
    fold = tmp_path / "fold"
    shutil.copytree(cohort / "images" / "PH3-0001", fold / "PH3-0001")
    images = ["--images", cohort / "images", "--images", fold]
    labels = ["--labels", cohort / "labels", "--out", tmp_path / "out"]
    code, _, err = prepare(capsys, *images, *labels)
    first = cohort / "images" / "PH3-0001" / "PH3-0001_1000001"
    assert code == 1
    assert messages(err)[0] == (
        f"error: {fold / 'PH3-0001' / 'PH3-0001_1000001_adc.mha'}: the ADC of study "
        f"PH3-0001_1000001 is also at {first}_adc.mha; keep one"
    )
    assert len(messages(err)) == 3
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused(capsys, cohort, tmp_path) -> None:
    out = tmp_path / "out"
    out.write_text("a file")
    refused(
        prepare_cohort(capsys, cohort, out=out),
        f"{out}: is not a folder; --out names a folder",
    )


def test_a_marksheet_that_is_not_text_is_refused(capsys, copy, tmp_path) -> None:
    marksheet = copy / "labels" / "clinical_information" / "marksheet.csv"
    marksheet.write_bytes(b"patient_id,study_id\n\xff\xfe\n")
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{marksheet}: is not UTF-8 text (invalid start byte); save it as CSV UTF-8",
    )


def test_a_study_listed_twice_in_the_marksheet_is_refused(capsys, copy, tmp_path) -> None:
    marksheet = copy / "labels" / "clinical_information" / "marksheet.csv"
    lines = marksheet.read_text().splitlines(keepends=True)
    marksheet.write_text("".join([*lines, lines[3]]))
    refused(
        prepare_cohort(capsys, copy, out=tmp_path / "out"),
        f"{marksheet}: line 8: study PH3-0003_1000003 is listed twice; keep one",
    )


# ProstateX-style DICOM folders


def test_prostatex_dicom_folders(capsys, shared_data, tmp_path) -> None:
    prostatex = shared_data / "prostatex"
    code, stdout, stderr = prepare(
        capsys, "--dicom", "--images", prostatex, "--out", tmp_path, "--slices", "central:4"
    )
    assert code == 0, stderr
    assert stdout.splitlines() == [
        f"2 patients, 2 studies: 6 rows in {tmp_path / 'manifest.csv'}",
        "sequence    slices  lesion slices",
        "T2W              8              -",
        "ADC              8              -",
        "DWI              8              -",
    ]
    rows = read_rows(tmp_path / "manifest.csv")
    assert [(row["path"], row["sequence"], row["patient_id"], row["lesion"]) for row in rows] == [
        (str(prostatex / patient / folder), sequence, patient, "")
        for patient in ("ProstateX-0000", "ProstateX-0001")
        for folder, sequence in SEQUENCES
    ]
    assert "mask" not in rows[0] and "study_id" not in rows[0]


def test_prostatex_with_a_label_in_the_t2w_geometry(capsys, shared_data, tmp_path) -> None:
    images = tmp_path / "images"
    (images / "P1" / "2011-study").mkdir(parents=True)
    named_as_tcia = {
        "t2w": "4.000000-t2tsetra-00702",
        "adc": "7-ep2d-ADC",
        "hbv": "8-ep2d-CALC_BVAL",
    }
    for folder, named in named_as_tcia.items():
        shutil.copytree(
            shared_data / "prostatex" / "ProstateX-0000" / folder,
            images / "P1" / "2011-study" / named,
        )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(
        reader.GetGDCMSeriesFileNames(str(images / "P1/2011-study/4.000000-t2tsetra-00702"))
    )
    t2w = reader.Execute()
    lesion = np.zeros(sitk.GetArrayViewFromImage(t2w).shape, np.uint8)
    lesion[9:12, 180:190, 180:190] = 3
    label = sitk.GetImageFromArray(lesion)
    label.CopyInformation(t2w)
    labels = tmp_path / "labels"
    labels.mkdir()
    sitk.WriteImage(label, str(labels / "P1.nii.gz"))
    out = tmp_path / "out"
    code, stdout, stderr = prepare(
        capsys, "--dicom", "--images", images, "--labels", labels, "--out", out, "--json"
    )
    assert code == 0, stderr
    assert json.loads(stdout)["sequences"]["T2W"] == {"slices": 10, "lesion_slices": 3}
    rows = read_rows(out / "manifest.csv")
    assert [row["sequence"] for row in rows] == ["T2W", "ADC", "DWI"]
    assert {row["study_id"] for row in rows} == {"2011-study"}
    assert {row["mask"] for row in rows} == {str(labels / "P1.nii.gz")}


def test_prostatex_with_a_missing_slice_is_refused(capsys, shared_data, tmp_path) -> None:
    patient = tmp_path / "images" / "ProstateX-0000"
    patient.mkdir(parents=True)
    for folder in ("t2w", "adc"):
        shutil.copytree(shared_data / "prostatex" / "ProstateX-0000" / folder, patient / folder)
    bad = shared_data / "prostatex-bad" / "ProstateX-0000-missing-slice" / "hbv"
    shutil.copytree(bad, patient / "hbv")
    options = ["--out", tmp_path / "out", "--skip-incomplete"]
    code, out, err = prepare(capsys, "--dicom", "--images", tmp_path / "images", *options)
    assert code == 1 and out == ""
    (line,) = messages(err)
    assert line.startswith(f"error: {patient / 'hbv'}: uneven slice spacing: a slice is missing")
    assert not (tmp_path / "out").exists()


def test_prostatex_without_a_sequence_is_incomplete(capsys, shared_data, tmp_path) -> None:
    patient = tmp_path / "images" / "ProstateX-0001"
    patient.mkdir(parents=True)
    shutil.copytree(shared_data / "prostatex" / "ProstateX-0001" / "t2w", patient / "t2w")
    shutil.copytree(shared_data / "prostatex" / "ProstateX-0001" / "t2w", patient / "t2tsesag")
    refused(
        prepare(capsys, "--dicom", "--images", tmp_path / "images", "--out", tmp_path / "out"),
        f"{patient}: holds no ADC series (a folder named adc, or ...adc); pass "
        "--skip-incomplete to leave such studies out",
        f"{patient}: holds no DWI series (a folder named hbv, or ...calc_bval); pass "
        "--skip-incomplete to leave such studies out",
    )


def test_labels_subdir_is_for_picai_only(capsys, shared_data, tmp_path) -> None:
    images = shared_data / "prostatex"
    subdir = ["--labels-subdir", "AI/Bosma22a"]
    refused(
        prepare(capsys, "--dicom", "--images", images, "--out", tmp_path, *subdir),
        "--labels-subdir AI/Bosma22a: applies to PI-CAI, not --dicom",
    )


def prostatex_patient(shared_data: Path, folder: Path, series: dict[str, str]) -> Path:
    """A patient folder of ProstateX-0000's series, each under the name `series` gives it."""
    for source, named in series.items():
        shutil.copytree(shared_data / "prostatex" / "ProstateX-0000" / source, folder / named)
    return folder


def test_prostatex_with_two_series_of_a_sequence_is_incomplete(
    capsys, shared_data, tmp_path
) -> None:
    patient = prostatex_patient(
        shared_data,
        tmp_path / "images" / "P1",
        {"t2w": "t2w", "adc": "adc", "hbv": "hbv"},
    )
    shutil.copytree(patient / "t2w", patient / "t2_tse_tra_repeat")
    refused(
        prepare(capsys, "--dicom", "--images", tmp_path / "images", "--out", tmp_path / "out"),
        f"{patient}: holds 2 T2W series (t2_tse_tra_repeat, t2w); pass --skip-incomplete to "
        "leave such studies out",
    )


def test_prostatex_with_series_in_two_studies_is_incomplete(capsys, shared_data, tmp_path):
    patient = prostatex_patient(
        shared_data,
        tmp_path / "images" / "P1",
        {"t2w": "2011/t2w", "adc": "2011/adc", "hbv": "2012/hbv"},
    )
    refused(
        prepare(capsys, "--dicom", "--images", tmp_path / "images", "--out", tmp_path / "out"),
        f"{patient}: its series lie in several studies (2011, 2012); keep one; pass "
        "--skip-incomplete to leave such studies out",
    )


def test_prostatex_labels_must_be_a_folder_and_hold_each_patient(capsys, shared_data, tmp_path):
    images = ["--dicom", "--images", shared_data / "prostatex", "--out", tmp_path / "out"]
    nowhere = tmp_path / "labels"
    refused(
        prepare(capsys, *images, "--labels", nowhere),
        f"{nowhere}: is not a folder of <patient>.nii.gz label volumes",
    )
    nowhere.mkdir()
    refused(
        prepare(capsys, *images, "--labels", nowhere),
        *(
            f"{nowhere / patient}.nii.gz: does not exist, so patient {patient} has no label; "
            "pass --skip-incomplete to leave such studies out"
            for patient in ("ProstateX-0000", "ProstateX-0001")
        ),
    )
    assert not (tmp_path / "out").exists()


# The command line itself


def test_phantom_to_prepare_to_import_on_the_command_line(tmp_path) -> None:
    env = {**os.environ, "VTT_DATA_DIR": str(tmp_path / "instance")}
    env.pop("VTT_DATABASE_URL", None)

    def run(*arguments: object) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", *map(str, arguments)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    data = tmp_path / "picai"
    cohort = ["--patients", 2, "--seed", 1, "--size", 64, "--slices", 4]
    run("synth", "phantom", "--layout", "picai", "--out", data, *cohort)
    layout = ["--images", data / "images", "--labels", data / "labels"]
    prepared = run("study", "prepare-picai", *layout, "--out", data)
    assert (
        prepared.stdout.splitlines()[0] == f"2 patients, 2 studies: 6 rows in {data}/manifest.csv"
    )
    imported = run("study", "import", data / "manifest.csv")
    assert imported.stdout.splitlines()[-1] == "added 24 assets"


def test_help_starts_without_the_imaging_libraries() -> None:
    code = (
        "import sys\n"
        "from study.cli import main\n"
        "try:\n"
        "    main(['prepare-picai', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('study.picai', 'SimpleITK', 'nibabel', 'pydicom', 'tqdm')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]"


def test_docstring_examples() -> None:
    assert doctest.testmod(study.picai).failed == 0
