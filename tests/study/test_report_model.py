"""The report model: a study read for its report in one transaction (and the same study that
the separate readers give), its sections declared once in the Results page's order, each with
its note when empty, table cells formatted once, and the standalone HTML rendered from it
(escaped, with the simulated-answers and visitors notices)."""

from __future__ import annotations

import dataclasses
import doctest
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from seeding import add_assets, grid
from sqlalchemy import Engine, event

from study.analysis import tidy_answers
from study.design import (
    SingleBlock,
    StudyPlan,
    create_study,
    open_study,
    study_history,
    study_questions,
)
from study.exports import FORMATS, export_study
from study.imaging.types import Sequence
from study.questions import TEMPLATES
from study.readers import add_reader, set_public_code, sign_in_with_code, visitor_count
from study.report import blocks
from study.report.blocks import Caption, Metrics, Note, Table, cell_text, table
from study.report.data import read_study
from study.report.html import report_html
from study.report.model import SIMULATED, study_report
from study.report.sections import SECTIONS
from study.simulate import simulate_answers

NAME = "Model <b>test</b>"


@pytest.fixture
def study_id(engine: Engine) -> int:
    """Eight T2W cases (one repeated) answered by three simulated readers and one anonymous
    visitor (real or synthetic, lesion, realism, confidence)."""
    add_assets(engine, grid([Sequence.T2W], 2))
    plan = StudyPlan(
        NAME,
        TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"],
        (SingleBlock(Sequence.T2W, 8),),
        repeated_cases=1,
    )
    study_id = create_study(engine, plan)
    for alias in ("R1", "R2", "R3"):
        add_reader(engine, study_id, alias)
    open_study(engine, study_id)
    set_public_code(engine, study_id, "open-to-all")
    sign_in_with_code(engine, "open-to-all")
    simulate_answers(engine, study_id, seed=1)
    return study_id


@contextmanager
def transactions(engine: Engine) -> Iterator[list[object]]:
    """The connections that began a transaction on `engine` inside the block."""
    begun: list[object] = []

    def record(connection: object) -> None:
        begun.append(connection)

    event.listen(engine, "begin", record)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", record)


def test_a_study_is_read_for_its_report_in_one_transaction(engine, study_id, tmp_path) -> None:
    with transactions(engine) as begun:
        data = read_study(engine, study_id)
    assert len(begun) == 1
    # The same study as the readers of each part give, each in a transaction of its own.
    assert data.answers.equals(tidy_answers(engine, study_id))
    assert data.context.questions == tuple(study_questions(engine, study_id))
    assert data.context.history == tuple(study_history(engine, study_id))
    assert data.visitors == visitor_count(engine, study_id)
    assert (data.visitors.visitors, data.visitors.finished) == (1, 1)
    assert set(data.answers["case_id"]) <= set(data.views)

    # The report and its HTML need nothing more from the database.
    with transactions(engine) as begun:
        page = report_html(study_report(data))
    assert begun == [] and page.startswith("<!DOCTYPE html>")

    # Exporting the study in every format reads it once too.
    with transactions(engine) as begun:
        export_study(engine, study_id, tmp_path, FORMATS)
    assert len(begun) == 1


def test_sections_are_declared_once_in_the_results_pages_order() -> None:
    assert [s.title for s in SECTIONS] == [
        "Accuracy",
        "Indistinguishable?",
        "Timed exposure (HYPE)",
        "Subgroups",
        "ROC and MRMC",
        "Calibration",
        "Agreement",
        "Realism",
        "Lesions: real vs synthetic",
        "Seed study table",
        "Fool rate",
        "Phases",
        "Lesion localisation",
        "Machine readers",
        "Methods",
    ]
    assert len({s.key for s in SECTIONS}) == len(SECTIONS)


def test_a_section_without_content_shows_why(engine, study_id) -> None:
    data = read_study(engine, study_id)
    report = study_report(data)
    sections = {s.key: s for s in SECTIONS}
    assert not any(isinstance(b, Note) for b in sections["roc"].content(report))

    answers = data.answers[~data.answers["question_kind"].isin(["confidence", "likert_realism"])]
    without = study_report(dataclasses.replace(data, answers=answers))
    assert sections["roc"].content(without) == (Note(without.tables.notes["roc"]),)
    assert "confidence" in without.tables.notes["roc"]
    assert sections["realism"].content(without) == (
        Note("the study asks no realism (Likert) question"),
    )
    no_lesions = answers[answers["question_kind"] != "lesion_present"]
    lesions = sections["lesions"]
    assert lesions.content(study_report(dataclasses.replace(data, answers=no_lesions))) == (
        Note(lesions.empty),
    )


def test_cells_are_formatted_once_for_every_renderer() -> None:
    assert doctest.testmod(blocks).failed == 0
    values = [0.12345, -0.0, -0.0001, 2.5e-7, np.int64(3), 7, True, None, math.nan, pd.NA, "x"]
    assert [cell_text(v) for v in values] == [
        "0.123",
        "0.000",
        "-1.0e-04",
        "2.5e-07",
        "3",
        "7",
        "yes",
        "",
        "",
        "",
        "x",
    ]
    assert cell_text(math.inf) == "inf"
    long = table(pd.DataFrame({"case_id": range(25), "fool_rate": 0.5}), shown=20, cases="case_id")
    assert len(long.head()) == 20 and long.case_ids == tuple(range(25))
    assert long.more(20) == "The first 20 of 25 rows; the exports hold them all."
    assert long.more(25) == ""


def test_html_report_is_escaped_standalone_and_gives_the_notices(engine, study_id) -> None:
    report = study_report(read_study(engine, study_id))
    page = report_html(report)
    # Only the inlined plotly.js is a script of its own; nothing is fetched from elsewhere.
    head, body = page.split("</head>", 1)
    assert head.count("<script") == 1 and "<script src" not in page.replace(" ", "")
    assert not re.search(r"\b(src|href)=", body)
    assert "Model &lt;b&gt;test&lt;/b&gt;: results" in page and "<b>test</b>" not in page
    assert f"<strong>{SIMULATED.title}</strong>" in body
    assert "1 visitor(s) read this study with its public code" in body
    assert [line for line in body.splitlines() if line.startswith("<h2>")] == [
        f"<h2>{s.title}</h2>" for s in SECTIONS
    ]


def test_the_studys_margin_judges_equivalence_in_every_place(engine) -> None:
    add_assets(engine, grid([Sequence.T2W], 2))
    plan = StudyPlan(
        "Margin",
        TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"],
        (SingleBlock(Sequence.T2W, 8),),
        equivalence_margin=0.2,
        target_halfwidth=0.05,
    )
    study_id = create_study(engine, plan)
    for alias in ("R1", "R2", "R3"):
        add_reader(engine, study_id, alias)
    open_study(engine, study_id)
    simulate_answers(engine, study_id, seed=2)
    report = study_report(read_study(engine, study_id))
    assert set(report.tables.equivalence["margin"]) == {0.2}
    sections = {s.key: s for s in SECTIONS}
    blocks = sections["equivalence"].content(report)
    assert isinstance(blocks[0], Caption) and "inside [0.30, 0.70]" in blocks[0].text
    metrics = next(b for b in blocks if isinstance(b, Metrics))
    assert metrics.items[0][0] == "Mean accuracy of 3 readers"
    shown = next(b for b in blocks if isinstance(b, Table))
    assert shown.columns == (
        "reader",
        "n",
        "accuracy",
        "90% CI (TOST)",
        "p (TOST)",
        "95% CI",
        "conclusion",
    )
    assert [row[0] for row in shown.rows] == [
        "R1",
        "R2",
        "R3",
        "mean of readers (OR, random readers and cases)",
    ]
    calibration = sections["calibration"].content(report)
    assert [type(b).__name__ for b in calibration] == [
        "Caption",
        "Table",
        "Figure",
        "Heading",
        "Table",
    ]
    page = report_html(report)
    mean = report.tables.equivalence.iloc[-1]
    assert mean["conclusion"] in {
        "indistinguishable within ±0.20",
        "distinguishable",
        "inconclusive: more cases needed",
    }
    assert f"<td>{mean['conclusion']}</td>" in page
    assert 'id="plot-equivalence-real_or_synthetic"' in page and 'id="plot-reliability"' in page
