"""Everything a study's report is made of, read from the database in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from study.analysis import read_answers
from study.db import transaction
from study.localisation_results import LocalisationResults, localisation_results
from study.machine_results import SCORE_COLUMNS
from study.models import Case, MachineScore, QuestionKind, Reader
from study.readers import VisitorCount, count_visitors
from study.reading import Viewport
from study.report.thumbnails import read_case_views
from study.reports import StudyContext, read_context
from study.storage import AssetStore


@dataclass(frozen=True)
class StudyData:
    """A study as read for its report: what the methods describe, every answer (the tidy
    frame of `study.analysis`, practice answers included and marked), its anonymous visitors,
    and each case's viewports (for thumbnails)."""

    context: StudyContext
    answers: pd.DataFrame = field(repr=False)
    visitors: VisitorCount
    views: dict[int, tuple[Viewport, ...]] = field(repr=False)
    # Machine readers' scores (`study.machine_results.SCORE_COLUMNS`), empty without any.
    machine_scores: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    # The scored lesion marks; None when the study asks for none.
    localisation: LocalisationResults | None = field(default=None, repr=False)


def read_machine_scores(session: Session, study_id: int) -> pd.DataFrame:
    """Every machine reader's score of every case of the study, with the case's origin."""
    rows = session.execute(
        select(Reader.alias, MachineScore.case_id, Case.origin, MachineScore.score)
        .join(Reader, Reader.id == MachineScore.reader_id)
        .join(Case, Case.id == MachineScore.case_id)
        .where(Reader.study_id == study_id)
        .order_by(Reader.alias, MachineScore.case_id)
    ).all()
    frame = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    frame["origin"] = frame["origin"].astype(str)
    return frame


def read_study(engine: Engine, study_id: int, *, store: AssetStore | None = None) -> StudyData:
    """The study `study_id` for its report, read in one transaction (so that every part of the
    report describes the same moment of a study that readers are still answering); its lesion
    marks are scored after, against the outlines in `store`."""
    with transaction(engine) as session:
        context = read_context(session, study_id)
        answers = read_answers(session, study_id)
        visitors = count_visitors(session, study_id)
        views = read_case_views(session, study_id)
        machine_scores = read_machine_scores(session, study_id)
        asks_marks = any(q.spec.kind == QuestionKind.LESION_MARKS for q in context.questions)
    return StudyData(
        context=context,
        answers=answers,
        visitors=visitors,
        views=views,
        machine_scores=machine_scores,
        localisation=localisation_results(engine, study_id, store=store) if asks_marks else None,
    )
