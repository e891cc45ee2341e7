"""Everything a study's report is made of, read from the database in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine

from study.analysis import read_answers
from study.db import transaction
from study.readers import VisitorCount, count_visitors
from study.reading import Viewport
from study.report.thumbnails import read_case_views
from study.reports import StudyContext, read_context


@dataclass(frozen=True)
class StudyData:
    """A study as read for its report: what the methods describe, every answer (the tidy
    frame of `study.analysis`, practice answers included and marked), its anonymous visitors,
    and each case's viewports (for thumbnails)."""

    context: StudyContext
    answers: pd.DataFrame = field(repr=False)
    visitors: VisitorCount
    views: dict[int, tuple[Viewport, ...]] = field(repr=False)


def read_study(engine: Engine, study_id: int) -> StudyData:
    """The study `study_id` for its report, read in one transaction (so that every part of the
    report describes the same moment of a study that readers are still answering)."""
    with transaction(engine) as session:
        return StudyData(
            context=read_context(session, study_id),
            answers=read_answers(session, study_id),
            visitors=count_visitors(session, study_id),
            views=read_case_views(session, study_id),
        )
