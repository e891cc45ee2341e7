"""The timed exposure (HYPE) section of a seeded study read through the reading flow: a
staircase block whose exposures `next_case` decides, and an untimed block; the section's words,
tables and staircase figure, the HTML report, and the exports."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import openpyxl
import pytest
from seeding import add_assets, grid
from sqlalchemy import Engine, select

from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.exports import readable_answers, tables_csv_zip, tables_workbook
from study.exposure import Exposure
from study.imaging.types import Sequence
from study.models import Case
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.report.blocks import Figure, Heading, Note, Paragraph, Table
from study.report.data import read_study
from study.report.html import report_html
from study.report.hype import INTRODUCTION
from study.report.model import export_tables, study_report
from study.report.sections import SECTIONS
from study.stats.hype import staircase_threshold
from study.timed_cases import record_shown

STAIRCASE = Exposure(ms=500, adaptive=True, step_ms=50, min_ms=100, max_ms=1000)
# R1's staircase: right, right, right, wrong (at 350: three steps up), right, right, wrong
# (at 400), right.
R1_RIGHT = [True, True, True, False, True, True, False, True]
R1_EXPOSURES = [500, 450, 400, 350, 500, 450, 400, 550]
# R2 is always wrong: up three steps at a time to the longest exposure, and kept there.
R2_EXPOSURES = [500, 650, 800, 950, 1000, 1000, 1000, 1000]
SENTENCES = (
    "Block 1: readers told real from synthetic at about 725 ms (95% CI 450-1000 ms; "
    "HYPE-time, the mean of 2 readers' thresholds). 1 of 2 readers did not reach theirs within "
    "1000 ms and count at 1000 ms, so the time is a lower bound.",
    "Untimed (real or synthetic), readers were wrong on 25% of their calls (95% CI 0%-50%, "
    "the mean of 2 readers' rates; 50% is chance): 0% of real images and 50% of synthetic "
    "images.",
)


def read(engine: Engine, study_id: int, alias: str, right: list[bool], shown: dict) -> list:
    """Read every case: timed ones right or wrong in turn (their shown duration reported as
    `shown` says: trial number -> ms longer than the exposure), untimed ones by answering
    'real' when `right` is all wrong and the truth otherwise. The exposures given."""
    reader = add_reader(engine, study_id, alias).reader_id
    calls, given = iter(right), []
    while (view := next_case(engine, reader)) is not None:
        with transaction(engine) as session:
            origin = session.scalar(select(Case.origin).where(Case.public_id == view.public_id))
        truth = "real" if origin == "real" else "synthetic"
        wrong = "synthetic" if truth == "real" else "real"
        if view.exposure_ms is None:
            value = truth if any(right) else "real"
        else:
            given.append(view.exposure_ms)
            if len(given) in shown:
                record_shown(engine, reader, view.public_id, view.exposure_ms + shown[len(given)])
            value = truth if next(calls) else wrong
        (question,) = view.questions
        record_answer(engine, reader, view.public_id, {question.id: value}, 1.0)
    return given


@pytest.fixture
def study_id(engine: Engine) -> int:
    """Eight staircase cases (block 1) and four untimed ones (block 2), half synthetic, read
    by R1 (untimed all right) and R2 (timed all wrong, untimed all 'real')."""
    add_assets(engine, grid([Sequence.T2W], 3))
    plan = StudyPlan(
        "HYPE",
        TEMPLATES["Timed exposure (HYPE)"],
        (
            SingleBlock(Sequence.T2W, 8, lesion_share=None, exposure=STAIRCASE),
            SingleBlock(Sequence.T2W, 4, lesion_share=None),
        ),
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    every_trial = {trial: 4 for trial in range(1, 9)}
    assert read(engine, study_id, "R1", R1_RIGHT, every_trial) == R1_EXPOSURES
    assert read(engine, study_id, "R2", [False] * 8, {1: 10, 2: 20}) == R2_EXPOSURES
    return study_id


def section(report):
    return next(s for s in SECTIONS if s.key == "hype").content(report)


def test_the_section_gives_thresholds_hype_time_and_error_rates(engine, study_id) -> None:
    data = read_study(engine, study_id)
    report = study_report(data)
    blocks = section(report)
    paragraphs = [b.text for b in blocks if isinstance(b, Paragraph)]
    assert paragraphs == [INTRODUCTION, *SENTENCES]
    tables = {b.key: b for b in blocks if isinstance(b, Table)}
    assert tables["hype-time"].rows == (("1", "2", "725 (450-1000)", "1", "1000"),)
    # The intervals are the bootstrap over each reader's trials, seeded with the study's seed.
    r1, r2 = (staircase_threshold(e, seed=data.context.seed) for e in (R1_EXPOSURES, R2_EXPOSURES))
    # R1: 500, 450 and 400 twice each, so (500 + 450 + 400) / 3; R2 at 1000 ms, the longest.
    assert (r1.estimate, r2.estimate) == (450.0, 1000.0)
    assert tables["hype-thresholds"].rows == (
        ("1", "R1", "6/8", f"450 ({r1.low:g}-{r1.high:g})", "1000", "reached"),
        (
            "1",
            "R2",
            "0/8",
            f"1000 ({r2.low:g}-{r2.high:g})",
            "1000",
            "not reached: not told apart even at the longest exposure, 1000 ms",
        ),
    )
    untimed, kind = "untimed (HYPE-infinity)", "Real or synthetic"
    # R1 right on all four untimed cases; R2 calls them all real: wrong on both synthetic ones.
    # Exact intervals: 0/2 -> (0, 1 - 0.025^(1/2)), 0/4 -> (0, 1 - 0.025^(1/4)).
    exact, pooled = "exact (Clopper-Pearson)", "bootstrap over readers"
    assert [row[:3] for row in tables["hype-error-rates"].rows] == [
        (untimed, kind, "R1"),
        (untimed, kind, "R2"),
        (untimed, kind, "mean of readers (bootstrap)"),
    ]
    assert [row[3:] for row in tables["hype-error-rates"].rows] == [
        (
            "0/4",
            "0.000 (0.000-0.602)",
            "0/2",
            "0.000 (0.000-0.842)",
            "0/2",
            "0.000 (0.000-0.842)",
            exact,
        ),
        (
            "2/4",
            "0.500 (0.068-0.932)",
            "0/2",
            "0.000 (0.000-0.842)",
            "2/2",
            "1.000 (0.158-1.000)",
            exact,
        ),
        (
            "2/8",
            "0.250 (0.000-0.500)",
            "0/4",
            "0.000 (0.000-0.000)",
            "2/4",
            "0.500 (0.000-1.000)",
            pooled,
        ),
    ]
    assert tables["hype-shown"].rows == (
        ("R1", "8", "8", "4.000", "4.000"),
        ("R2", "8", "2", "15.000", "20.000"),
        ("all readers", "16", "10", "4.000", "20.000"),
    )
    (figure,) = [b for b in blocks if isinstance(b, Figure)]
    assert figure.key == "hype-staircase-1"
    r1_trials, r1_line, r2_trials, r2_line = figure.figure.data
    assert list(r1_trials.y) == R1_EXPOSURES and list(r2_trials.y) == R2_EXPOSURES
    assert list(r1_trials.marker.symbol) == ["circle" if right else "x" for right in R1_RIGHT]
    assert list(r1_line.y) == [450.0, 450.0] and list(r2_line.y) == [1000.0, 1000.0]


def test_an_untimed_study_shows_only_its_error_rates(engine, study_id) -> None:
    data = read_study(engine, study_id)
    untimed = data.answers[data.answers["exposure_block"].isna()]
    blocks = section(study_report(dataclasses.replace(data, answers=untimed)))
    assert [b.text for b in blocks if isinstance(b, Heading)] == [
        "Error rates: untimed (HYPE-infinity) and at fixed exposures"
    ]
    assert [b.text for b in blocks if isinstance(b, Paragraph)] == [INTRODUCTION, SENTENCES[1]]
    lesions = untimed.assign(question_kind="lesion_present", value="no")
    empty = study_report(dataclasses.replace(data, answers=lesions))
    assert section(empty) == (
        Note("No timed case and no real/synthetic or 2AFC question was answered."),
    )


def test_the_html_report_and_the_exports_hold_the_section(engine, study_id) -> None:
    data = read_study(engine, study_id)
    report = study_report(data)
    page = report_html(report)
    assert "<h2>Timed exposure (HYPE)</h2>" in page
    assert SENTENCES[0] in page.replace("&#39;", "'")
    assert 'id="plot-hype-staircase-1"' in page
    assert "Timed exposure (HYPE, Zhou et al. 2019). In staircase blocks" in page
    tables = export_tables(report)
    assert [name for name in tables if name.startswith("hype")] == [
        "hype_time",
        "hype_thresholds",
        "hype_staircase_trials",
        "hype_error_rates",
        "hype_shown_durations",
    ]
    assert tables["hype_staircase_trials"]["exposure_ms"].tolist() == R1_EXPOSURES + R2_EXPOSURES
    book = openpyxl.load_workbook(io.BytesIO(tables_workbook(tables)), read_only=True)
    header = next(book["hype thresholds"].values)
    assert {"Reader", "Threshold ms", "Threshold low ms", "Threshold reached"} <= set(header)
    assert next(book["hype time"].values)[3] == "HYPE time ms"
    with zipfile.ZipFile(io.BytesIO(tables_csv_zip(tables))) as archive:
        assert "hype_error_rates.csv" in archive.namelist()
    answers = readable_answers(data.answers, data.context.questions)
    assert sorted(answers["Exposure (ms)"].dropna().astype(int)) == sorted(
        R1_EXPOSURES + R2_EXPOSURES
    )
    assert answers["Shown (ms)"].notna().sum() == 10
