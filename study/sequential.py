"""Sequential design: has the study read enough cases for the accuracy it wants to show?

A coordinator may give a study a target half-width of the 95% accuracy interval of its
real/synthetic question (`study.design.AnalysisSettings.target_halfwidth`). While readers
read, the Progress page shows the half-width each reader's interval (exact, Clopper-Pearson)
and the readers' mean interval (Obuchowski-Rockette, random readers and cases) have reached,
from the same analysis as the report's equivalence section (`study.stats.equivalence`).
Reading stops on the width of the interval alone, whatever the accuracy (see there).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine

from study.analysis import read_answers
from study.db import transaction
from study.design import analysis_settings
from study.reports import KIND_TITLES, read_context
from study.stats.equivalence import equivalence_table, halfwidth_table
from study.stats.tables import BINARY_KINDS


@dataclass(frozen=True)
class AccuracyPrecision:
    """The half-width reached per realism question, reader and for the readers' mean
    (`table`: question, reader, cases, accuracy, half-width and, with a target, target
    reached), the study's target (None: none set), and what each readers' mean left out or
    why it is missing (`notes`)."""

    target: float | None
    table: pd.DataFrame
    notes: tuple[str, ...]

    @property
    def reached(self) -> bool:
        """Whether every row of the table reached the target (false without a target)."""
        return self.target is not None and bool(self.table["target reached"].all())


def accuracy_precision(
    engine: Engine, study_id: int, *, confidence: float = 0.95
) -> AccuracyPrecision:
    """The study's answers so far against its target half-width, read in one transaction."""
    with transaction(engine) as session:
        context = read_context(session, study_id)
        tidy = read_answers(session, study_id)
    settings = analysis_settings(context.settings)
    binary = tidy[tidy["question_kind"].isin(BINARY_KINDS)]
    equivalence = equivalence_table(
        binary, margin=settings.equivalence_margin, confidence=confidence
    )
    widths = halfwidth_table(equivalence.table, settings.target_halfwidth)
    table = pd.DataFrame(
        {
            "question": widths["question_kind"].map(KIND_TITLES).fillna(widths["question_kind"]),
            "reader": widths["reader"],
            "cases": widths["n"].astype(int),
            "accuracy": widths["accuracy"],
            "half-width": widths["halfwidth"],
            "target reached": widths["reached"].astype(bool),
        }
    )
    if settings.target_halfwidth is None:
        table = table.drop(columns="target reached")
    notes = tuple(
        f"{KIND_TITLES.get(kind, kind)}, readers' mean: {text}"
        for kind, text in equivalence.left_out.items()
    ) + tuple(f"{KIND_TITLES.get(kind, kind)}: {text}" for kind, text in equivalence.notes.items())
    return AccuracyPrecision(settings.target_halfwidth, table, notes)
