"""The plain model of a study's report: the study, the tables of one subgroup of its answers,
and the notices every place that shows them must give."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import pandas as pd

from study.design import analysis_settings
from study.hype_results import HypeResults, block_exposures, hype_tables
from study.localisation_results import LocalisationResults
from study.machine_results import MachineSummary, machine_summaries, machine_table
from study.report.data import StudyData
from study.reports import (
    Filters,
    ResultTables,
    StudyContext,
    apply_filters,
    build_report,
    report_tables,
)


@dataclass(frozen=True)
class Notice:
    """What a reader of the results must know first (simulated answers, visitors)."""

    level: Literal["warning", "info"]
    title: str
    text: str


SIMULATED = Notice(
    "warning",
    "Simulated answers.",
    "The readers of this study are simulated (a signal-detection model of a reader, for the "
    "demo): no person read it. Its results only show what VTT Studio's analysis looks like.",
)


def study_notices(data: StudyData) -> tuple[Notice, ...]:
    """The notices of a study, whatever subgroup of its answers is shown."""
    notices = [SIMULATED] if data.context.simulated else []
    if data.visitors.visitors:
        notices.append(
            Notice(
                "info",
                "Visitors.",
                f"{data.visitors.visitors} visitor(s) read this study with its public code, "
                f"each as an anonymous reader of their own; {data.visitors.finished} finished. "
                "Visitors who stop before the end are removed after a while.",
            )
        )
    return tuple(notices)


@dataclass(frozen=True)
class StudyReport:
    """A study's results for one subgroup of its answers (`tables.filters`), as the Results
    page and the HTML report show them through `study.report.sections.SECTIONS`."""

    context: StudyContext
    tables: ResultTables
    notices: tuple[Notice, ...]
    # Each machine reader compared with the people (`study.machine_results`).
    machines: tuple[MachineSummary, ...] = ()
    # The scored lesion marks (`study.localisation_results`); None without a marks question.
    localisation: LocalisationResults | None = None
    # Timed exposure and error rates (`study.hype_results`); None without a timed case or a
    # real/synthetic answer.
    hype: HypeResults | None = None

    @property
    def title(self) -> str:
        return f"{self.context.name}: results"

    @property
    def summary(self) -> str:
        """The study, what was analysed, and how pooled figures are to be read."""
        study, tables = self.context, self.tables
        return (
            f"Study {study.name} (id {study.id}, {study.status}): {tables.answers} answers of "
            f"{len(tables.readers)} reader(s), practice answers left out; "
            f"{tables.filters.describe()}. Pooled rows count every reading as independent; the "
            "MRMC analysis treats readers and cases as random."
        )


def study_report(data: StudyData, filters: Filters | None = None) -> StudyReport:
    """The report of the answers of `data` that `filters` keeps (all of them without), every
    table computed once, the Likert and HYPE bootstraps seeded with the study's seed,
    equivalence judged with the study's margin and ordinal questions on their whole scales."""
    filters = filters or Filters()
    answers = apply_filters(data.answers, filters)
    tables = build_report(
        answers,
        filters=filters,
        seed=data.context.seed,
        margin=analysis_settings(data.context.settings).equivalence_margin,
        questions=data.context.questions,
    )
    # The machines are judged on the cases of the subgroup, against the people in it.
    people = apply_filters(data.answers, replace(filters, machines=True))
    people = people[people["case_id"].isin(answers["case_id"])]
    return StudyReport(
        context=data.context,
        tables=tables,
        notices=study_notices(data),
        machines=machine_summaries(people, data.machine_scores),
        localisation=data.localisation,
        hype=hype_tables(answers, block_exposures(data.context.settings), seed=data.context.seed),
    )


def export_tables(report: StudyReport) -> dict[str, pd.DataFrame]:
    """Every table of the report by export name (empty ones left out), in reading order: the
    answers' tables, then timed exposure (HYPE), lesion localisation and machine readers."""
    tables = report_tables(report.tables)
    if report.hype is not None:
        tables.update(report.hype.export_tables())
    if report.localisation is not None:
        marks = report.localisation.tables
        extra = {
            "froc_per_reader": report.localisation.per_reader,
            "froc_curves": report.localisation.curves,
            "froc_marks": marks.marks,
            "froc_truth": marks.truth,
        }
        tables.update({name: table for name, table in extra.items() if not table.empty})
    if report.machines:
        tables["machines"] = machine_table(report.machines)
    return tables
