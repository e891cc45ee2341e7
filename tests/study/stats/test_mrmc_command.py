"""`python -m study mrmc`: JSON, report and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from study.cli import main

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def vandyke_csv(shared_data: Path) -> Path:
    return shared_data / "mrmc" / "vandyke.csv"


def test_json_through_the_module_entry_point(vandyke_csv: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "study",
            "mrmc",
            "--csv",
            str(vandyke_csv),
            "--metric",
            "auc",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(completed.stdout)
    assert result["metric"] == "auc"
    assert round(result["rrrc"]["F"], 2) == 4.46
    assert round(result["rrrc"]["ddf"], 2) == 15.26
    assert round(result["rrrc"]["p"], 4) == 0.0517
    low, high = result["rrrc"]["differences"][0]["ci"]
    assert (round(low, 5), round(high, 5)) == (-0.08796, 0.00036)
    assert round(result["frrc"]["p"], 4) == 0.0193
    assert round(result["rrfc"]["p"], 4) == 0.0420
    assert round(result["readers"]["0"]["0"], 8) == 0.91964573


def test_readable_report(vandyke_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mrmc", "--csv", str(vandyke_csv), "--metric", "auc"]) == 0
    report = capsys.readouterr().out
    assert "F(1, 15.26) = 4.4563, p = 0.0517" in report
    assert "0 - 1: -0.04380 (SE 0.02075, df 15.26), 95% CI -0.08796 to 0.00036" in report
    assert "X2(1) = 5.4760, p = 0.0193" in report


@pytest.mark.parametrize("metric", ["sensitivity", "specificity"])
def test_binary_figures_of_merit(
    vandyke_csv: Path, metric: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["mrmc", "--csv", str(vandyke_csv), "--metric", metric, "--threshold", "3", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["metric"] == metric
    assert all(0 <= v <= 1 for by_reader in result["readers"].values() for v in by_reader.values())


def test_missing_threshold_names_the_file(
    vandyke_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mrmc", "--csv", str(vandyke_csv), "--metric", "sensitivity"]) == 1
    error = capsys.readouterr().err
    assert "vandyke.csv" in error and "--threshold" in error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("reader,modality,case,truth,rating\n1,A,1,0,2\n", "missing column(s) treatment"),
        ("reader,treatment,case,truth,rating\n1,A,1,0,high\n", "line 2 has rating 'high'"),
        ("", "cannot be read"),
    ],
)
def test_bad_files_are_named_in_one_line(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(content)
    assert main(["mrmc", "--csv", str(path), "--metric", "auc"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert str(path) in error and message in error


def test_absent_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mrmc", "--csv", str(tmp_path / "nope.csv"), "--metric", "auc"]) == 1
    assert "nope.csv: no such file" in capsys.readouterr().err


def test_jackknife_option_is_named_in_json_and_report(
    vandyke_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asked = ["mrmc", "--csv", str(vandyke_csv), "--metric", "sensitivity", "--threshold", "3"]
    assert main([*asked, "--json"]) == 0
    varying = json.loads(capsys.readouterr().out)
    assert main([*asked, "--jackknife", "all", "--json"]) == 0
    every_case = json.loads(capsys.readouterr().out)
    assert (varying["jackknife"], varying["n_jackknife"]) == ("varying_cases", 45)
    assert (every_case["jackknife"], every_case["n_jackknife"]) == ("all_cases", 114)
    # Every covariance grows by (c-1) n1 / (c (n1-1)) when the negatives are left out too.
    ratio = (
        every_case["variance_components"]["var_error"] / varying["variance_components"]["var_error"]
    )
    assert ratio == pytest.approx(113 * 45 / (114 * 44), rel=1e-12)
    assert varying["readers"] == every_case["readers"]
    assert main(asked) == 0
    report = capsys.readouterr().out
    assert "Jackknife (varying_cases): each of the 45 positive cases left out in turn" in report
    assert main([*asked, "--jackknife", "all"]) == 0
    assert (
        "Jackknife (all_cases): each of the 114 cases left out in turn" in capsys.readouterr().out
    )
