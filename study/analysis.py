"""The tidy answers table: one row per reader x case x question, joined with the ground truth.

`phase` is 1 or, in a two-phase study's informed phase, 2 (`phase_case` the phase-1 case of
the same images, which pairs a reader's answers across the phases); `machine` marks the
answers of machine readers (imported scores, `study.machine_reader`): the
report leaves them out of the readers' tables unless asked to include them. A timed case
(`study.exposure`) has its block's number in `exposure_block` (None: untimed), `adaptive` when
its block runs a staircase, and the reader's `exposure_ms` and measured `shown_ms`.

Every statistic, table, plot and export is computed from this frame (see `study.stats`).
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from study.case_truth import real_side
from study.db import transaction
from study.models import (
    Answer,
    Assignment,
    Case,
    CaseAsset,
    CaseKind,
    Question,
    Reader,
    ReaderKind,
)

TIDY_COLUMNS = [
    "reader",
    "reader_id",
    "experience_years",
    "case_id",
    "case_public_id",
    "question_id",
    "question_kind",
    "question",
    "value",
    "origin",
    "sequence",
    "lesion",
    "paired",
    "volume",
    "practice",
    "repeat",
    "repeat_of",
    "correct_side",
    "time_s",
    "revisions",
    "saved_at",
    "machine",
    "phase",
    "phase_case",
    "exposure_block",
    "adaptive",
    "exposure_ms",
    "shown_ms",
]


def tidy_answers(engine: Engine, study_id: int) -> pd.DataFrame:
    """All answers of a study with the truth of their cases, as the statistics expect them."""
    with transaction(engine) as session:
        return read_answers(session, study_id)


def read_answers(session: Session, study_id: int) -> pd.DataFrame:
    """`tidy_answers` inside the caller's transaction (a report reads the study in one)."""
    answers = session.execute(
        select(Answer, Reader, Question, Case, Assignment.exposure_ms, Assignment.shown_ms)
        .join(Reader, Reader.id == Answer.reader_id)
        .join(Question, Question.id == Answer.question_id)
        .join(Case, Case.id == Answer.case_id)
        .outerjoin(
            Assignment,
            (Assignment.reader_id == Answer.reader_id) & (Assignment.case_id == Answer.case_id),
        )
        .where(Case.study_id == study_id)
        .options(selectinload(Case.views).selectinload(CaseAsset.asset))
        .order_by(Reader.alias, Case.id, Question.position)
    ).all()
    rows = [
        {
            "reader": reader.alias,
            "reader_id": reader.id,
            "machine": reader.kind == ReaderKind.MACHINE,
            "phase": case.phase,
            # The phase-1 case of the same images (the case itself in phase 1).
            "phase_case": case.first_phase_id or case.id,
            "experience_years": reader.experience_years,
            "case_id": case.id,
            "case_public_id": case.public_id,
            "question_id": question.id,
            "question_kind": str(question.kind),
            "question": question.wording,
            "value": answer.value,
            "origin": str(case.origin),
            "sequence": case.sequence,
            "lesion": case.lesion,
            "paired": case.kind == CaseKind.PAIRED,
            "volume": case.kind == CaseKind.VOLUME,
            "practice": case.practice,
            "repeat": case.repeat_of_id is not None,
            "repeat_of": case.repeat_of_id,
            "correct_side": real_side(case),
            "time_s": answer.time_on_case_s,
            "revisions": answer.revision,
            "saved_at": answer.last_saved_at,
            "exposure_block": None if case.exposure is None else case.exposure["block"],
            "adaptive": case.exposure is not None and bool(case.exposure.get("adaptive")),
            "exposure_ms": exposure_ms,
            "shown_ms": shown_ms,
        }
        for answer, reader, question, case, exposure_ms, shown_ms in answers
    ]
    frame = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    frame["lesion"] = frame["lesion"].astype("Int64")
    for column in ("exposure_block", "exposure_ms"):
        frame[column] = frame[column].astype("Int64")
    frame["shown_ms"] = frame["shown_ms"].astype(float)
    return frame
