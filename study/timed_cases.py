"""Timed cases in the reading (study.exposure): the exposure each reader gets for a case, and
the duration their browser measured its images as shown.

A reader's exposure of a case is decided when the case is first served and kept: the block's
fixed exposure, or, for an adaptive block, the next step of the reader's staircase for that
block after their last answered case of it (its exposure and whether the real/synthetic answer
was right). A case whose images were shown once is served again without them (a reload does
not show them twice).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, contains_eager

from study.case_truth import real_side
from study.db import transaction
from study.exposure import exposure_from_setting, next_step
from study.imaging.errors import VTTError
from study.models import Answer, Assignment, Case, CaseKind, CaseOrigin, Question, QuestionKind
from study.questions import expected_value

# The question whose answer moves a staircase, by case kind.
TIMED_QUESTIONS = {
    CaseKind.SINGLE: QuestionKind.REAL_OR_SYNTHETIC,
    CaseKind.PAIRED: QuestionKind.REAL_OR_SYNTHETIC,
    CaseKind.TWO_AFC: QuestionKind.WHICH_IS_REAL,
}
# A measured duration longer than this is not a browser's report of an exposure.
LONGEST_SHOWN_MS = 60_000.0


class TimedCaseError(VTTError):
    """A shown duration that cannot be recorded; the message says why."""


def timed_question(questions: Iterable[Question], kind: CaseKind) -> Question | None:
    """The question of a case of `kind` that a staircase follows: its first real-or-synthetic
    question (which-is-real for a 2AFC case); None when it asks none."""
    wanted = TIMED_QUESTIONS.get(CaseKind(kind))
    for question in questions:
        if question.kind == wanted and CaseKind(kind).value in question.applies_to:
            return question
    return None


def is_right(case: Case, question: Question, value: str) -> bool:
    """Whether `value` is the right answer of `question` (real/synthetic, which is real) on
    `case`."""
    truth = expected_value(
        QuestionKind(question.kind), CaseOrigin(case.origin), case.lesion, real_side(case)
    )
    return truth is not None and value == truth


def _last_trial(
    session: Session, assignment: Assignment, questions: list[Question]
) -> tuple[int, bool] | None:
    """The exposure of the reader's last answered staircase case of the same block and
    whether its real/synthetic answer was right (None when there is none)."""
    block = assignment.case.exposure["block"]
    earlier = session.scalars(
        select(Assignment)
        .join(Case, Case.id == Assignment.case_id)
        .where(
            Assignment.reader_id == assignment.reader_id,
            Assignment.completed_at.is_not(None),
            Assignment.exposure_ms.is_not(None),
            Case.practice.is_(False),
        )
        .order_by(Assignment.completed_at.desc(), Assignment.id.desc())
        .options(contains_eager(Assignment.case))
    ).all()
    last = next((a for a in earlier if a.case.exposure.get("block") == block), None)
    question = None if last is None else timed_question(questions, CaseKind(last.case.kind))
    if last is None or question is None:
        return None
    value = session.scalar(
        select(Answer.value).where(
            Answer.reader_id == last.reader_id,
            Answer.case_id == last.case_id,
            Answer.question_id == question.id,
        )
    )
    if value is None:
        return None
    return last.exposure_ms, is_right(last.case, question, value)


def serve_exposure(session: Session, assignment: Assignment, questions: list[Question]) -> None:
    """Decide the reader's exposure of the assignment's case when it is served the first time
    (nothing for an untimed case, or one already decided)."""
    setting = assignment.case.exposure
    if setting is None or assignment.exposure_ms is not None:
        return
    exposure = exposure_from_setting(setting)
    last = None
    if exposure.adaptive and not assignment.case.practice:
        last = _last_trial(session, assignment, questions)
    assignment.exposure_ms = exposure.ms if last is None else next_step(exposure, *last)


def record_shown(engine: Engine, reader_id: int, public_id: str, shown_ms: float) -> None:
    """Keep the duration the reader's browser showed a timed case's images (the first report
    only: the images are shown once)."""
    if not math.isfinite(shown_ms) or not 0 <= shown_ms <= LONGEST_SHOWN_MS:
        raise TimedCaseError(f"a shown duration of {shown_ms} ms cannot be recorded")
    with transaction(engine) as session:
        assignment = session.scalar(
            select(Assignment)
            .join(Case, Case.id == Assignment.case_id)
            .where(Assignment.reader_id == reader_id, Case.public_id == public_id)
        )
        if assignment is None or assignment.exposure_ms is None:
            raise TimedCaseError("this case is not a timed case of your reading")
        session.execute(
            update(Assignment)
            .where(Assignment.id == assignment.id, Assignment.shown_ms.is_(None))
            .values(shown_ms=float(shown_ms))
            .execution_options(synchronize_session=False)
        )
