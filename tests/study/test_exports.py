"""Exports of a study read by three readers: answers as one CSV / Parquet file and as a
workbook split past Excel's row limit, results tables, the standalone HTML report, the
iMRMC file, and the long CSV that `python -m study mrmc` reads back to the same AUCs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from seeding import add_assets, grid
from sqlalchemy import select

from study import exports
from study.analysis import tidy_answers
from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.exports import (
    answers_csv,
    answers_parquet,
    answers_workbook,
    export_study,
    imrmc_text,
    mrmc_csv,
    readable_column,
    roc_ratings,
    tables_csv_zip,
    tables_workbook,
)
from study.imaging.types import Sequence
from study.models import Case
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.report.data import read_study
from study.report.html import report_html
from study.report.model import study_report
from study.reports import build_report, report_tables, study_context
from study.stats.roc import auc_table

ROOT = Path(__file__).resolve().parents[2]
READERS = {"A": 3.0, "B": 10.0, "C": None}


def three_reader_study(engine) -> int:
    """Twelve T2W cases (one practice, two repeated) read by three readers who answer real or
    synthetic, lesion, realism and confidence; returns the study id."""
    add_assets(engine, grid([Sequence.T2W], 4))
    plan = StudyPlan(
        "Three readers",
        TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"],
        (SingleBlock(Sequence.T2W, 12),),
        seed=5,
        practice_cases=1,
        repeated_cases=2,
    )
    study_id = create_study(engine, plan)
    readers = [
        add_reader(engine, study_id, alias, experience_years=years).reader_id
        for alias, years in READERS.items()
    ]
    open_study(engine, study_id)
    with transaction(engine) as session:
        truth = {
            c.public_id: (str(c.origin), c.lesion)
            for c in session.scalars(select(Case).where(Case.study_id == study_id))
        }
    rng = np.random.default_rng(11)
    for reader in readers:
        while (view := next_case(engine, reader)) is not None:
            origin, lesion = truth[view.public_id]
            right = rng.random() < 0.7
            flip = {"real": "synthetic", "synthetic": "real"}
            values = {
                "real_or_synthetic": origin if right else flip[origin],
                "lesion_present": "yes" if bool(lesion) == (rng.random() < 0.6) else "no",
                "likert_realism": str(rng.integers(1, 6)),
                "confidence": str(rng.integers(1, 6)),
            }
            answers = {q.id: values[q.kind.value] for q in view.questions}
            record_answer(engine, reader, view.public_id, answers, 2.5)
    return study_id


@pytest.fixture
def study(engine) -> tuple[object, int]:
    return engine, three_reader_study(engine)


def test_answers_csv_and_parquet_are_one_file_each_with_labels(study) -> None:
    engine, study_id = study
    tidy = tidy_answers(engine, study_id)
    questions = study_context(engine, study_id).questions
    # 3 readers x (12 cases + 1 practice + 2 repeats) x 4 questions
    assert len(tidy) == 3 * 15 * 4
    from_csv = pd.read_csv(io.BytesIO(answers_csv(tidy, questions)))
    from_parquet = pd.read_parquet(io.BytesIO(answers_parquet(tidy, questions)))
    for frame in (from_csv, from_parquet):
        assert len(frame) == len(tidy)
        assert list(frame.columns[:9]) == [
            "reader",
            "reader_id",
            "experience_years",
            "case_id",
            "case_public_id",
            "question_id",
            "question_kind",
            "question",
            "value",
        ]
        calls = frame[frame["question_kind"] == "real_or_synthetic"]
        labels = dict(zip(calls["value"], calls["answer_label"], strict=True))
        assert labels == {"real": "Real", "synthetic": "Synthetic"}
    assert from_parquet["saved_at"].notna().all()


def test_workbook_splits_a_long_table_over_sheets(study, monkeypatch) -> None:
    engine, study_id = study
    tidy = tidy_answers(engine, study_id)
    questions = study_context(engine, study_id).questions
    monkeypatch.setattr(exports, "EXCEL_MAX_ROWS", 51)  # 50 answers and a header per sheet
    book = openpyxl.load_workbook(io.BytesIO(answers_workbook(tidy, questions)), read_only=True)
    assert book.sheetnames == ["answers", "answers (2)", "answers (3)", "answers (4)", "questions"]
    sheets = [list(book[name].values) for name in book.sheetnames[:4]]
    assert [len(rows) - 1 for rows in sheets] == [50, 50, 50, 30]
    header = sheets[0][0]
    assert all(rows[0] == header for rows in sheets)
    assert header[:8] == (
        "Reader",
        "Experience (years)",
        "Case",
        "Case public id",
        "Question id",
        "Question kind",
        "Question",
        "Answer",
    )
    rows = [dict(zip(header, row, strict=True)) for s in sheets for row in s[1:]]
    assert len(rows) == len(tidy)
    calls = [r for r in rows if r["Question kind"] == "Real or synthetic"]
    assert {r["Answer"] for r in calls} == {"Real", "Synthetic"}
    assert {r["Question"] for r in calls} == {"Real or synthetic?"}
    assert {r["Lesion (truth)"] for r in rows} == {"with lesion", "without lesion"}
    assert {r["Practice case"] for r in rows} == {"yes", "no"}
    assert {r["Experience (years)"] for r in rows} == {3.0, 10.0, None}
    questions_sheet = list(book["questions"].values)
    assert questions_sheet[1][3] == "Real or synthetic?"


def test_tables_as_csv_zip_and_workbook(study) -> None:
    engine, study_id = study
    tables = report_tables(build_report(tidy_answers(engine, study_id)))
    assert {"per_reader", "by_sequence_lesion", "auc_per_reader", "mrmc_auc"} <= set(tables)
    with zipfile.ZipFile(io.BytesIO(tables_csv_zip(tables))) as archive:
        per_reader = pd.read_csv(archive.open("per_reader.csv"))
    assert set(per_reader["positive_class"]) == {"synthetic", "lesion"}
    book = openpyxl.load_workbook(io.BytesIO(tables_workbook(tables)), read_only=True)
    assert book.sheetnames[0] == "per reader"
    assert all(len(name) <= 31 for name in book.sheetnames)
    header = next(book["per reader"].values)
    assert {"Positive class", "Accuracy Wilson low", "Accuracy Clopper-Pearson high"} <= set(header)
    assert readable_column("ppv_wilson_high") == "PPV Wilson high"


def test_html_report_is_standalone_with_methods_and_plots(study) -> None:
    engine, study_id = study
    page = report_html(study_report(read_study(engine, study_id)))
    assert page.startswith("<!DOCTYPE html>")
    assert "Readers. 3 readers read the cases blind to their origin: A (3 years), B (10" in page
    assert "Obuchowski-Rockette" in page and "Newcombe" in page
    assert "1 practice case, with the right answers shown after each, came first" in page
    assert "2 cases were shown a second time" in page
    plots = page.count('<div id="plot-')
    assert plots >= 8  # forests, confusion matrices, lesion, ROC, AUC, Likert, fool rate
    assert page.count("Plotly.newPlot") == plots
    assert "<script src=" not in page.replace(" ", "")
    assert "Mean AUC of 3 readers" in page


def test_imrmc_file_has_truth_and_one_line_per_rating(study) -> None:
    engine, study_id = study
    long = roc_ratings(tidy_answers(engine, study_id))
    text = imrmc_text(long, title="Study: three, readers")
    lines = text.splitlines()
    begin = lines.index("BEGIN DATA:")
    header = lines[:begin]
    assert header[0] == "Study  three  readers"
    assert "NR: 3" in header and "NM: 1" in header
    assert "N0: 6" in header and "N1: 6" in header
    assert "reader 1 = A" in header and "modality 1 = all" in header
    assert not any(
        marker in line
        for line in header[1:]
        for marker in ("N0:", "N1:", "NR:", "NM:")
        if not line.startswith(marker)
    )
    data = [line.split(",") for line in lines[begin + 1 :]]
    truth = [row for row in data if row[0] == "-1"]
    ratings = [row for row in data if row[0] != "-1"]
    assert len(truth) == 12 and {row[2] for row in truth} == {"0"}
    assert len(ratings) == 3 * 12 and {row[2] for row in ratings} == {"1"}
    by_case = long.drop_duplicates("case").set_index("case")["truth"]
    assert {row[1]: int(row[3]) for row in truth} == by_case.to_dict()
    expected = {
        ({"A": "1", "B": "2", "C": "3"}[r], c): f"{v:g}"
        for r, c, v in zip(long["reader"], long["case"], long["rating"], strict=True)
    }
    assert {(row[0], row[1]): row[3] for row in ratings} == expected


def test_mrmc_csv_round_trips_through_the_mrmc_command(study, tmp_path) -> None:
    engine, study_id = study
    tidy = tidy_answers(engine, study_id)
    path = tmp_path / "ratings.csv"
    path.write_bytes(mrmc_csv(roc_ratings(tidy)))
    done = subprocess.run(
        [sys.executable, "-m", "study", "mrmc", "--csv", str(path), "--metric", "auc", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["n_readers"], result["n_cases"], result["n_positive"]) == (3, 12, 6)
    expected = auc_table(tidy).set_index("reader")["auc"]
    assert result["readers"]["all"] == pytest.approx(expected.to_dict(), abs=1e-12)


def test_export_study_writes_every_format(study, tmp_path) -> None:
    engine, study_id = study
    result = export_study(engine, study_id, tmp_path, exports.FORMATS)
    names = {path.relative_to(tmp_path).as_posix() for path in result.files}
    assert not result.skipped
    assert {
        "answers.csv",
        "answers.xlsx",
        "answers.parquet",
        "tables.xlsx",
        "tables/per_reader.csv",
        "ratings.imrmc",
        "ratings_long.csv",
        "report.html",
    } <= names
    assert all(path.stat().st_size > 0 for path in result.files)


def test_equivalence_and_calibration_tables_are_exported_as_csv(study, tmp_path) -> None:
    engine, study_id = study
    export_study(engine, study_id, tmp_path, ["csv"])
    report = study_report(read_study(engine, study_id)).tables
    for name, expected in (
        ("equivalence", report.equivalence),
        ("calibration", report.calibration),
        ("reliability_bins", report.reliability),
    ):
        written = pd.read_csv(tmp_path / "tables" / f"{name}.csv")
        assert list(written.columns) == list(expected.columns), name
        assert len(written) == len(expected) > 0, name
    equivalence = pd.read_csv(tmp_path / "tables" / "equivalence.csv").set_index("reader")
    assert equivalence["p_tost"].to_numpy() == pytest.approx(
        report.equivalence.set_index("reader")["p_tost"].to_numpy()
    )
    assert set(equivalence["margin"]) == {0.1}
    calibration = pd.read_csv(tmp_path / "tables" / "calibration.csv").set_index("reader")
    assert calibration["brier"].to_numpy() == pytest.approx(
        report.calibration.set_index("reader")["brier"].to_numpy()
    )
