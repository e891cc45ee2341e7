"""`python -m study froc`: JSON against RJafroc's Thompson reference, report and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from study.cli import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def thompson_dir(shared_data: Path) -> Path:
    return shared_data / "froc" / "dataset05-thompson"


@pytest.fixture(scope="module")
def reference(thompson_dir: Path) -> dict:
    return json.loads((thompson_dir / "reference.json").read_text())


def files(directory: Path) -> list[str]:
    return ["--marks", str(directory / "marks.csv"), "--truth", str(directory / "truth.csv")]


def test_json_through_the_module_entry_point(thompson_dir: Path, reference: dict) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "study", "froc", *files(thompson_dir), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(completed.stdout)
    assert result["fom"] == "wAFROC"
    assert [(r["treatment"], r["reader"]) for r in result["per_reader"]] == [
        (r["treatment"], r["reader"]) for r in reference["per_reader"]
    ]
    for mine, theirs in zip(result["per_reader"], reference["per_reader"], strict=True):
        assert mine["fom"] == pytest.approx(theirs["fom"], abs=1e-12)
    expected = reference["or"]
    for key in ("F", "ddf", "p"):
        assert result["or"][key] == pytest.approx(expected[key], rel=1e-10)
    assert result["or"]["diff_ci"] == pytest.approx(expected["diff_ci"], rel=1e-10)
    assert result["or"]["var_comp"] == pytest.approx(expected["var_comp"], rel=1e-10)
    assert (result["n_cases"], result["n_normal"], result["n_abnormal"]) == (92, 45, 47)
    assert (result["n_lesions"], result["jackknife"], result["n_jackknife"]) == (
        59,
        "all_cases",
        92,
    )


@pytest.mark.parametrize(("asked", "name"), [("MaxLLF", "MaxLLF"), ("jafroc1", "AFROC1")])
def test_other_figures_and_aliases(
    thompson_dir: Path,
    reference: dict,
    asked: str,
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["froc", *files(thompson_dir), "--fom", asked, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["fom"] == name
    assert result["or"]["F"] == pytest.approx(reference["or_by_fom"][name]["F"], rel=1e-10)
    assert result["n_jackknife"] == (47 if name == "MaxLLF" else 92)


def test_readable_report(thompson_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["froc", *files(thompson_dir)]) == 0
    report = capsys.readouterr().out
    assert "Figure of merit: wAFROC, weighted AFROC area" in report
    assert "92 cases (47 abnormal, 45 normal)" in report
    assert "Jackknife (all_cases): each of the 92 cases left out in turn" in report
    assert "F(1, 164.05) = 6.5212, p = 0.0116" in report
    assert "1 - 2: -0.07803 (SE 0.03056, df 164.05), 95% CI -0.13836 to -0.01770" in report


def test_unknown_figure_of_merit(thompson_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["froc", *files(thompson_dir), "--fom", "ROC"]) == 1
    assert "the FROC figure of merit is one of wAFROC" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("marks", "truth", "message"),
    [
        ("treatment,reader,case,kind,lesion,rating\nA,1,7,NL,,2\n", None, "marks.csv: line 2"),
        ("treatment,reader,case,kind,lesion,rating\nA,1,3,LL,,2\n", None, "without a lesion"),
        (None, "case,truth,lesions,weights\n1,1,2,0.5;0.6\n", "truth.csv: line 2 has weights"),
        ("", None, "marks.csv: empty; expected the header"),
    ],
)
def test_bad_files_are_named_in_one_line(
    tmp_path: Path,
    marks: str | None,
    truth: str | None,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good_truth = "case,truth,lesions,weights\n1,0,0,\n2,0,0,\n3,1,1,\n4,1,1,\n"
    good_marks = "treatment,reader,case,kind,lesion,rating\nA,1,3,LL,1,2\n"
    (tmp_path / "marks.csv").write_text(good_marks if marks is None else marks)
    (tmp_path / "truth.csv").write_text(good_truth if truth is None else truth)
    assert main(["froc", *files(tmp_path)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert message in error


def test_too_few_cases_names_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "truth.csv").write_text("case,truth,lesions,weights\n1,0,0,\n2,1,1,\n3,1,1,\n")
    (tmp_path / "marks.csv").write_text(
        "treatment,reader,case,kind,lesion,rating\nA,1,2,LL,1,3\nA,2,3,LL,1,4\n"
    )
    assert main(["froc", *files(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "marks.csv" in error and "truth.csv" in error and "at least 2 normal" in error


def test_zero_variance_study_reports_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two readers who mark every lesion at 5 and nothing else: wAFROC 1 for both, in both
    treatments, whatever case is left out: no interval, and the report says why."""
    (tmp_path / "truth.csv").write_text(
        "case,truth,lesions,weights\n1,0,0,\n2,0,0,\n3,1,1,\n4,1,2,0.5;0.5\n"
    )
    rows = [
        f"{t},{r},{case},LL,{lesion},5"
        for t in ("A", "B")
        for r in ("1", "2")
        for case, lesion in ((3, 1), (4, 1), (4, 2))
    ]
    (tmp_path / "marks.csv").write_text(
        "treatment,reader,case,kind,lesion,rating\n" + "\n".join(rows) + "\n"
    )
    assert main(["froc", *files(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {r["fom"] for r in result["per_reader"]} == {1.0}
    assert result["or"]["F"] is None and result["or"]["diff_ci"] == [None, None]
    assert result["or"]["reason"].startswith("zero variance")
    assert result["or"]["trt_ci"][0]["reason"].endswith("no interval")
    assert main(["froc", *files(tmp_path)]) == 0
    report = capsys.readouterr().out
    assert "nan" not in report and "n/a to n/a" not in report
    assert "A: 1.00000000; zero variance: the readers' figures of merit are all equal" in report
