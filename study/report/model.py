"""The plain model of a study's report: the study, the tables of one subgroup of its answers,
and the notices every place that shows them must give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from study.design import analysis_settings
from study.report.data import StudyData
from study.reports import Filters, ResultTables, StudyContext, apply_filters, build_report


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
    table computed once, the Likert bootstrap seeded with the study's seed, equivalence judged
    with the study's margin and ordinal questions on their whole scales."""
    filters = filters or Filters()
    tables = build_report(
        apply_filters(data.answers, filters),
        filters=filters,
        seed=data.context.seed,
        margin=analysis_settings(data.context.settings).equivalence_margin,
        questions=data.context.questions,
    )
    return StudyReport(context=data.context, tables=tables, notices=study_notices(data))
