"""The reading flow: each reader's seeded order, the next case, saving answers, feedback, progress.

Every call is its own transaction. `record_answer` first takes a lock on the reader's assignment
(an UPDATE: a row lock on PostgreSQL, the write lock on SQLite), so two submissions of the same
case run one after the other; answers are written by INSERT ... ON CONFLICT DO UPDATE on the
(reader, case, question) unique key, so no path can create a second answer.

Nothing returned to a reader's page names an asset, a file, a patient or an origin: cases are
known by their opaque public id, viewports by their name ("T2W", "left"). The canonical sha256 in
a `Viewport` is for server-side rendering only.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, contains_eager, joinedload
from sqlalchemy.sql.base import ExecutableOption

from study.case_stacks import case_stacks
from study.case_truth import real_side
from study.db import transaction
from study.imaging.errors import VTTError
from study.marks import MarkError, ViewportShape, check_marks, dump_marks, load_marks
from study.models import (
    Answer,
    AnswerRevision,
    Assignment,
    Case,
    CaseAsset,
    CaseKind,
    CaseOrigin,
    Feedback,
    Question,
    QuestionKind,
    Reader,
    Study,
    StudyStatus,
    utcnow,
)
from study.phases import is_phased
from study.questions import answer_values, expected_value, option_label
from study.timed_cases import serve_exposure

FREE_TEXT_LIMIT = 4000


class ReadingError(VTTError):
    """A reading action that cannot be done; the message is safe to show to the reader."""


class ReaderAccessError(ReadingError):
    """The reader's code was revoked, or the reader does not exist."""


class StudyNotOpenError(ReadingError):
    """The study is not open for answers."""


class RevisitNotAllowedError(ReadingError):
    """A change to a finished case in a study that does not allow going back."""


class AnswersFinalError(ReadingError):
    """A change to a case whose truth the reader has seen: those answers are final."""


ANSWERS_FINAL = "You have seen the answer to this case, so your answers to it are final."


# --- order ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseRef:
    id: int
    practice: bool
    repeat_of_id: int | None
    phase: int = 1


def reading_order(seed: int, reader_id: int, cases: Sequence[CaseRef]) -> list[int]:
    """Case ids in a reader's order: practice cases, the study's cases, the repeats, then (in
    a two-phase study) the informed phase's cases.

    Each part is shuffled by `random.Random(f"{seed}:{reader_id}")`: reproducible, and different
    for every reader. Repeats come after every original, and the first repeat never directly
    follows its own original. The informed phase is shuffled anew (a new order of the same
    images), drawn after the rest so that a study without it keeps its order.
    """
    rng = random.Random(f"{seed}:{reader_id}")
    ordered = sorted(cases, key=lambda c: c.id)
    first = [c for c in ordered if c.phase == 1]
    practice = [c.id for c in first if c.practice]
    originals = [c.id for c in first if not c.practice and c.repeat_of_id is None]
    repeats = [c for c in first if not c.practice and c.repeat_of_id is not None]
    informed = [c.id for c in ordered if c.phase == 2]
    rng.shuffle(practice)
    rng.shuffle(originals)
    rng.shuffle(repeats)
    if repeats and len(originals) > 1 and repeats[0].repeat_of_id == originals[-1]:
        originals[0], originals[-1] = originals[-1], originals[0]
    rng.shuffle(informed)
    return practice + originals + [c.id for c in repeats] + informed


def create_assignments(session: Session, study: Study, reader: Reader) -> None:
    """Give `reader` their order of the study's cases (no-op when they have it already)."""
    if session.scalar(select(Assignment.id).where(Assignment.reader_id == reader.id).limit(1)):
        return
    refs = [CaseRef(c.id, c.practice, c.repeat_of_id, c.phase) for c in study.cases]
    session.add_all(
        Assignment(reader_id=reader.id, case_id=case_id, position=position)
        for position, case_id in enumerate(reading_order(study.seed, reader.id, refs))
    )


# --- what a reader sees -----------------------------------------------------------------------


@dataclass(frozen=True)
class Viewport:
    name: str
    label: str
    canonical_sha256: str = field(repr=False)
    # A volume case's slices in stack order (study.design.VolumeBlock); canonical_sha256 is
    # its centre slice. Empty for a viewport of one image.
    slice_sha256s: tuple[str, ...] = field(default=(), repr=False)
    # The image's size, for placing lesion marks; never sent to the browser (real and
    # synthetic images may differ in size).
    rows: int = field(default=0, repr=False)
    cols: int = field(default=0, repr=False)


@dataclass(frozen=True)
class QuestionView:
    id: int
    kind: QuestionKind
    wording: str
    options: tuple[str, ...]
    values: tuple[str, ...]
    required: bool


@dataclass(frozen=True)
class CaseView:
    public_id: str
    position: int
    practice: bool
    number: int
    of: int
    kind: CaseKind
    viewports: tuple[Viewport, ...]
    questions: tuple[QuestionView, ...]
    answers: dict[int, str]
    completed: bool
    # The reader has seen this case's truth: its answers can no longer change.
    final: bool = False
    # The case before it in the reader's order may still be changed ("Back" leads there).
    can_go_back: bool = False
    # A timed case (study.timed_cases): how long its images are shown, and whether they were
    # shown already (then only the mask is).
    exposure_ms: int | None = None
    shown: bool = False


@dataclass(frozen=True)
class ReaderProgress:
    done: int
    total: int
    practice_done: int
    practice_total: int

    @property
    def finished(self) -> bool:
        return self.done >= self.total and self.practice_done >= self.practice_total


@dataclass(frozen=True)
class ReaderState:
    reader_id: int
    alias: str
    study_name: str
    instructions: str
    instructions_seen: bool
    status: StudyStatus
    allow_revisit: bool
    feedback: Feedback
    progress: ReaderProgress
    # The reader has been shown their score (feedback at the end): every answer is final.
    score_seen: bool = False
    # A two-phase study whose first phase the reader has finished, not yet told about the
    # synthetic images (study.phases): the reading page tells them before phase 2.
    informed_pending: bool = False


def _reader(session: Session, reader_id: int, *options: ExecutableOption) -> Reader:
    reader = session.get(Reader, reader_id, options=options)
    if reader is None or reader.revoked_at is not None or reader.code_hash is None:
        raise ReaderAccessError("Your access code is no longer valid; ask the study coordinator.")
    return reader


def _open_study(reader: Reader) -> Study:
    study = reader.study
    if study.status == StudyStatus.DRAFT:
        raise StudyNotOpenError("This study has not opened yet; please try again later.")
    if study.status == StudyStatus.CLOSED:
        raise StudyNotOpenError("This study is closed; answers are no longer accepted.")
    return study


def _progress(session: Session, reader_id: int) -> ReaderProgress:
    rows = session.execute(
        select(Case.practice, func.count(), func.count(Assignment.completed_at))
        .join(Case, Case.id == Assignment.case_id)
        .where(Assignment.reader_id == reader_id)
        .group_by(Case.practice)
    ).all()
    counts = {bool(practice): (total, done) for practice, total, done in rows}
    total, done = counts.get(False, (0, 0))
    practice_total, practice_done = counts.get(True, (0, 0))
    return ReaderProgress(done, total, practice_done, practice_total)


def reader_state(engine: Engine, reader_id: int) -> ReaderState:
    with transaction(engine) as session:
        reader = _reader(session, reader_id)
        study = reader.study
        return ReaderState(
            reader_id=reader.id,
            alias=reader.alias,
            study_name=study.name,
            instructions=study.instructions,
            instructions_seen=reader.instructions_seen_at is not None,
            status=StudyStatus(study.status),
            allow_revisit=study.allow_revisit,
            feedback=Feedback(study.feedback),
            progress=_progress(session, reader.id),
            score_seen=_score_seen(session, reader.id),
            informed_pending=_informed_pending(session, reader),
        )


def _informed_pending(session: Session, reader: Reader) -> bool:
    """Whether the reader has finished phase 1 of a two-phase study and not yet been told."""
    if not is_phased(reader.study.settings) or reader.informed_at is not None:
        return False
    left = session.scalar(
        select(func.count())
        .select_from(Assignment)
        .join(Case, Case.id == Assignment.case_id)
        .where(
            Assignment.reader_id == reader.id,
            Assignment.completed_at.is_(None),
            Case.phase == 1,
        )
    )
    return left == 0


def mark_informed(engine: Engine, reader_id: int) -> None:
    """Record that the reader was told that some images are synthetic: phase 2 starts, and
    their phase-1 answers are final."""
    with transaction(engine) as session:
        reader = _reader(session, reader_id)
        if not _informed_pending(session, reader):
            raise ReadingError("There is no second part to start now.")
        reader.informed_at = utcnow()


def _score_seen(session: Session, reader_id: int) -> bool:
    """Whether the reader has seen the truth of a study (not practice) case."""
    return (
        session.scalar(
            select(Assignment.id)
            .join(Case, Case.id == Assignment.case_id)
            .where(
                Assignment.reader_id == reader_id,
                Case.practice.is_(False),
                Assignment.truth_shown_at.is_not(None),
            )
            .limit(1)
        )
        is not None
    )


def mark_instructions_seen(engine: Engine, reader_id: int) -> None:
    with transaction(engine) as session:
        reader = _reader(session, reader_id)
        if reader.instructions_seen_at is None:
            reader.instructions_seen_at = utcnow()


def _applies(question: Question, kind: CaseKind, phase: int = 1) -> bool:
    """Whether `question` is asked on a case of `kind` in `phase`."""
    kinds = not question.applies_to or kind.value in question.applies_to
    return kinds and question.phase in (None, phase)


def _question_view(question: Question) -> QuestionView:
    kind = QuestionKind(question.kind)
    return QuestionView(
        id=question.id,
        kind=kind,
        wording=question.wording,
        options=tuple(question.options),
        values=tuple(answer_values(kind, question.options)),
        required=question.required,
    )


# A case view in few round trips: the reader with their study's questions, the assignment with
# its case and the case's viewports with their assets (each a lazy load otherwise).
_STUDY_QUESTIONS = joinedload(Reader.study).selectinload(Study.questions)
_CASE_VIEWS = joinedload(Assignment.case).selectinload(Case.views).joinedload(CaseAsset.asset)


def _viewports(case: Case) -> tuple[Viewport, ...]:
    """One viewport per viewport name, in position order; a volume case's viewport lists its
    slices in stack order and stands for its centre slice."""
    kind = CaseKind(case.kind)
    viewports = []
    for name, stack in case_stacks(case).items():
        shown = stack[len(stack) // 2].asset
        viewports.append(
            Viewport(
                name=name,
                label=name.capitalize() if kind == CaseKind.TWO_AFC else name,
                canonical_sha256=shown.canonical_sha256,
                slice_sha256s=(
                    tuple(view.asset.canonical_sha256 for view in stack)
                    if kind == CaseKind.VOLUME
                    else ()
                ),
                rows=shown.rows,
                cols=shown.cols,
            )
        )
    return tuple(viewports)


def _case_view(session: Session, reader: Reader, assignment: Assignment) -> CaseView:
    case = assignment.case
    kind = CaseKind(case.kind)
    number, of = session.execute(
        select(
            func.count().filter(Assignment.position <= assignment.position),
            func.count(),
        )
        .select_from(Assignment)
        .join(Case, Case.id == Assignment.case_id)
        .where(Assignment.reader_id == reader.id, Case.practice == case.practice)
    ).one()
    answers = dict(
        session.execute(
            select(Answer.question_id, Answer.value).where(
                Answer.reader_id == reader.id, Answer.case_id == case.id
            )
        ).all()
    )
    can_go_back = False
    if reader.study.allow_revisit and assignment.position > 0:
        previous = session.execute(
            select(Assignment.truth_shown_at, Case.phase)
            .join(Case, Case.id == Assignment.case_id)
            .where(
                Assignment.reader_id == reader.id, Assignment.position == assignment.position - 1
            )
        ).first()
        can_go_back = (
            previous is not None
            and previous.truth_shown_at is None
            and not (previous.phase == 1 and reader.informed_at is not None)
        )
    return CaseView(
        public_id=case.public_id,
        position=assignment.position,
        practice=case.practice,
        number=number,
        of=of,
        kind=kind,
        viewports=_viewports(case),
        questions=tuple(
            _question_view(q) for q in reader.study.questions if _applies(q, kind, case.phase)
        ),
        answers=answers,
        completed=assignment.completed_at is not None,
        final=assignment.truth_shown_at is not None,
        can_go_back=can_go_back,
        exposure_ms=assignment.exposure_ms,
        shown=assignment.shown_ms is not None,
    )


def next_case(engine: Engine, reader_id: int) -> CaseView | None:
    """The reader's first unanswered case in their order; None when all are done."""
    with transaction(engine) as session:
        reader = _reader(session, reader_id, _STUDY_QUESTIONS)
        _open_study(reader)
        assignment = session.scalar(
            select(Assignment)
            .where(Assignment.reader_id == reader.id, Assignment.completed_at.is_(None))
            .order_by(Assignment.position)
            .limit(1)
            .options(_CASE_VIEWS)
        )
        if assignment is None:
            return None
        _check_informed(reader, assignment.case)
        serve_exposure(session, assignment, reader.study.questions)
        return _case_view(session, reader, assignment)


def _check_informed(reader: Reader, case: Case) -> None:
    """Raise ReadingError for a phase-2 case before the reader was told, and for a phase-1
    case after (its answers are final then)."""
    if case.phase == 2 and reader.informed_at is None:
        raise ReadingError("Please read the instructions of the second part first.")
    if case.phase == 1 and not case.practice and reader.informed_at is not None:
        raise ReadingError("The answers of the first part are final now that it has ended.")


def upcoming_viewports(engine: Engine, reader_id: int, public_id: str) -> tuple[Viewport, ...]:
    """The viewports of the case the reader gets once `public_id` is answered: their first
    unfinished case other than it (empty when there is none). For rendering ahead."""
    with transaction(engine) as session:
        reader = _reader(session, reader_id)
        assignment = session.scalar(
            select(Assignment)
            .join(Case, Case.id == Assignment.case_id)
            .where(
                Assignment.reader_id == reader.id,
                Assignment.completed_at.is_(None),
                Case.public_id != public_id,
            )
            .order_by(Assignment.position)
            .limit(1)
            .options(_CASE_VIEWS)
        )
        return () if assignment is None else _viewports(assignment.case)


def case_at(engine: Engine, reader_id: int, position: int) -> CaseView:
    """A case the reader has finished, to look at or change again (when the study allows)."""
    with transaction(engine) as session:
        reader = _reader(session, reader_id, _STUDY_QUESTIONS)
        study = _open_study(reader)
        assignment = session.scalar(
            select(Assignment)
            .where(Assignment.reader_id == reader.id, Assignment.position == position)
            .options(_CASE_VIEWS)
        )
        if assignment is None:
            raise ReadingError("There is no such case in your reading.")
        if assignment.completed_at is not None and not study.allow_revisit:
            raise RevisitNotAllowedError("This study does not allow going back to earlier cases.")
        if assignment.truth_shown_at is not None:
            raise AnswersFinalError(ANSWERS_FINAL)
        _check_informed(reader, assignment.case)
        return _case_view(session, reader, assignment)


# --- saving answers ---------------------------------------------------------------------------


def _check_value(question: Question, value: str) -> str:
    if question.kind == QuestionKind.LESION_MARKS:
        try:
            return dump_marks(load_marks(value, scale=len(question.options)))
        except MarkError as error:
            raise ReadingError(f"'{question.wording}': {error}.") from None
    if question.kind == QuestionKind.FREE_TEXT:
        text = value.strip()
        if len(text) > FREE_TEXT_LIMIT:
            raise ReadingError(
                f"'{question.wording}': please keep the answer under {FREE_TEXT_LIMIT} characters."
            )
        return text
    if value not in answer_values(QuestionKind(question.kind), question.options):
        raise ReadingError(f"'{question.wording}': choose one of the options.")
    return value


def _viewport_shapes(case: Case) -> dict[str, ViewportShape]:
    """Each viewport's image size and number of slices (a volume case's stack)."""
    return {
        viewport.name: ViewportShape(
            viewport.rows, viewport.cols, max(1, len(viewport.slice_sha256s))
        )
        for viewport in _viewports(case)
    }


def _check_marks_on_case(
    case: Case, questions: Mapping[int, Question], cleaned: Mapping[int, str]
) -> None:
    """Raise ReadingError unless every lesion mark lies on an image of `case`."""
    shapes: dict[str, ViewportShape] = {}
    for qid, value in cleaned.items():
        question = questions[qid]
        if question.kind != QuestionKind.LESION_MARKS:
            continue
        shapes = shapes or _viewport_shapes(case)
        try:
            check_marks(load_marks(value, scale=len(question.options)), shapes)
        except MarkError as error:
            raise ReadingError(f"'{question.wording}': {error}.") from None


def _save_answers(session: Session, rows: list[dict[str, object]]) -> list[tuple[int, int, str]]:
    """Insert new answers and change those whose value differs, in one INSERT ... ON CONFLICT
    DO UPDATE on (reader, case, question) for all rows; (answer id, revision, value) of every
    answer written. An unchanged value is not written: it returns nothing."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Answer)
    statement = upsert.on_conflict_do_update(
        index_elements=["reader_id", "case_id", "question_id"],
        set_={
            "value": upsert.excluded.value,
            "revision": Answer.revision + 1,
            "last_saved_at": upsert.excluded.last_saved_at,
            "time_on_case_s": Answer.time_on_case_s + upsert.excluded.time_on_case_s,
        },
        where=Answer.value != upsert.excluded.value,
    ).returning(Answer.id, Answer.revision, Answer.value)
    # A list of parameters keeps the statement cached and sends every row in one round trip.
    return [tuple(row) for row in session.execute(statement, rows)]


def record_answer(
    engine: Engine,
    reader_id: int,
    public_id: str,
    values: Mapping[int, str],
    time_on_case_s: float,
) -> bool:
    """Save a reader's answers to one case in one transaction; True when anything changed.

    The first save of an answer is revision 1; each later change adds a revision and adds the
    time spent to the answer's time on case. Submitting the same values again changes nothing.
    Changing a finished case needs a study that allows revisits, and a case whose truth the
    reader has seen (practice, per-case or end feedback) cannot change at all.

    Each kind of write is one statement for all of the case's questions, so a save costs the
    same six round trips however many questions the case asks (benchmarks/bench_answer_store.py).
    """
    if time_on_case_s < 0:
        raise ReadingError("The time on a case cannot be negative.")
    now = utcnow()
    with transaction(engine) as session:
        reader = _reader(session, reader_id, joinedload(Reader.study).joinedload(Study.questions))
        study = _open_study(reader)
        assignment = session.scalar(
            select(Assignment)
            .join(Case, Case.id == Assignment.case_id)
            .where(Assignment.reader_id == reader.id, Case.public_id == public_id)
            .options(contains_eager(Assignment.case))
        )
        if assignment is None:
            raise ReadingError("This case is not part of your reading.")
        case = assignment.case
        kind = CaseKind(case.kind)
        _check_informed(reader, case)
        questions = {q.id: q for q in study.questions if _applies(q, kind, case.phase)}
        unknown = set(values) - set(questions)
        if unknown:
            raise ReadingError("An answer was sent for a question this case does not ask.")
        cleaned = {qid: _check_value(questions[qid], value) for qid, value in values.items()}
        cleaned = {qid: value for qid, value in cleaned.items() if value != ""}
        missing = [q.wording for q in questions.values() if q.required and q.id not in cleaned]
        if missing:
            raise ReadingError("Please answer: " + "; ".join(missing))
        _check_marks_on_case(case, questions, cleaned)

        # The lock: every save of this reader's case waits here for the one before it, and
        # learns whether the case was finished, or its truth shown, only once it holds the lock.
        completed_at, truth_shown_at = session.execute(
            update(Assignment)
            .where(Assignment.id == assignment.id)
            .values(
                shown_at=func.coalesce(Assignment.shown_at, now - timedelta(seconds=time_on_case_s))
            )
            .returning(Assignment.completed_at, Assignment.truth_shown_at)
            .execution_options(synchronize_session=False)
        ).one()
        written = _save_answers(
            session,
            [
                {
                    "reader_id": reader.id,
                    "case_id": case.id,
                    "question_id": qid,
                    "value": value,
                    "first_saved_at": now,
                    "last_saved_at": now,
                    "time_on_case_s": time_on_case_s,
                    "revision": 1,
                }
                for qid, value in cleaned.items()
            ],
        )
        # Raising rolls the whole transaction back, the answers just written included.
        if written and truth_shown_at is not None:
            raise AnswersFinalError(ANSWERS_FINAL)
        if written and completed_at is not None and not study.allow_revisit:
            raise RevisitNotAllowedError(
                "This case is finished and this study does not allow changing answers."
            )
        if written:
            session.execute(
                insert(AnswerRevision),
                [
                    {
                        "answer_id": answer_id,
                        "revision": revision,
                        "value": value,
                        "saved_at": now,
                        "time_on_case_s": time_on_case_s,
                    }
                    for answer_id, revision, value in written
                ],
            )
        if completed_at is None:
            session.execute(
                update(Assignment)
                .where(Assignment.id == assignment.id)
                .values(completed_at=now)
                .execution_options(synchronize_session=False)
            )
        return bool(written)


# --- feedback, score and progress -------------------------------------------------------------


@dataclass(frozen=True)
class AnswerFeedback:
    wording: str
    given: str
    correct: str | None
    is_correct: bool | None


@dataclass(frozen=True)
class ScoreLine:
    wording: str
    correct: int
    scored: int


@dataclass(frozen=True)
class CaseResult:
    number: int
    answers: tuple[AnswerFeedback, ...]
    # The case's images, for thumbnails beside the answers.
    viewports: tuple[Viewport, ...] = ()


@dataclass(frozen=True)
class ReaderScore:
    lines: tuple[ScoreLine, ...]
    cases: tuple[CaseResult, ...]


def _feedback(
    case: Case, questions: Sequence[Question], given: Mapping[int, str]
) -> list[tuple[Question, AnswerFeedback]]:
    kind = CaseKind(case.kind)
    real_viewport = real_side(case)
    lines = []
    for question in questions:
        if not _applies(question, kind, case.phase) or question.id not in given:
            continue
        qkind = QuestionKind(question.kind)
        truth = expected_value(qkind, CaseOrigin(case.origin), case.lesion, real_viewport)
        value = given[question.id]
        lines.append(
            (
                question,
                AnswerFeedback(
                    wording=question.wording,
                    given=option_label(qkind, question.options, value),
                    correct=None if truth is None else option_label(qkind, question.options, truth),
                    is_correct=None if truth is None else value == truth,
                ),
            )
        )
    return lines


def _given(session: Session, reader_id: int, case_ids: Sequence[int]) -> dict[int, dict[int, str]]:
    given: dict[int, dict[int, str]] = defaultdict(dict)
    for case_id, question_id, value in session.execute(
        select(Answer.case_id, Answer.question_id, Answer.value).where(
            Answer.reader_id == reader_id, Answer.case_id.in_(case_ids)
        )
    ):
        given[case_id][question_id] = value
    return given


def case_feedback(engine: Engine, reader_id: int, public_id: str) -> list[AnswerFeedback]:
    """The truth next to the reader's answers for one case: practice cases always, study cases
    in a study with feedback after each case, or at the end once the reader has finished.

    From then on the reader's answers to the case are final."""
    with transaction(engine) as session:
        reader = _reader(session, reader_id)
        study = reader.study
        assignment = session.scalar(
            select(Assignment)
            .join(Case, Case.id == Assignment.case_id)
            .where(Assignment.reader_id == reader.id, Case.public_id == public_id)
        )
        if assignment is None or assignment.completed_at is None:
            raise ReadingError("Feedback comes once the case is answered.")
        case = assignment.case
        allowed = (
            case.practice
            or study.feedback == Feedback.EACH_CASE
            or (study.feedback == Feedback.AT_END and _progress(session, reader.id).finished)
        )
        if not allowed:
            raise ReadingError("This study does not show the answers.")
        if assignment.truth_shown_at is None:
            assignment.truth_shown_at = utcnow()
        given = _given(session, reader.id, [case.id])[case.id]
        return [line for _, line in _feedback(case, study.questions, given)]


def reader_score(engine: Engine, reader_id: int) -> ReaderScore:
    """An educational study's result for a reader who has finished: per question and per case,
    practice cases left out. Showing it shows every case's truth: all answers become final."""
    with transaction(engine) as session:
        reader = _reader(session, reader_id)
        study = reader.study
        if study.feedback == Feedback.NONE:
            raise ReadingError("This study does not show the answers.")
        if not _progress(session, reader.id).finished:
            raise ReadingError("Your score comes once you have read every case.")
        assignments = session.scalars(
            select(Assignment)
            .join(Case, Case.id == Assignment.case_id)
            .where(Assignment.reader_id == reader.id, Case.practice.is_(False))
            .order_by(Assignment.position)
        ).all()
        now = utcnow()
        for assignment in assignments:
            if assignment.truth_shown_at is None:
                assignment.truth_shown_at = now
        given = _given(session, reader.id, [a.case_id for a in assignments])
        tally: dict[int, list[int]] = {q.id: [0, 0] for q in study.questions}
        cases = []
        for number, assignment in enumerate(assignments, start=1):
            lines = _feedback(assignment.case, study.questions, given[assignment.case_id])
            for question, line in lines:
                if line.is_correct is not None:
                    tally[question.id][0] += int(line.is_correct)
                    tally[question.id][1] += 1
            cases.append(
                CaseResult(number, tuple(line for _, line in lines), _viewports(assignment.case))
            )
        return ReaderScore(
            lines=tuple(
                ScoreLine(q.wording, *tally[q.id]) for q in study.questions if tally[q.id][1]
            ),
            cases=tuple(cases),
        )


def reader_progress(engine: Engine, reader_id: int) -> ReaderProgress:
    with transaction(engine) as session:
        return _progress(session, _reader(session, reader_id).id)


@dataclass(frozen=True)
class ProgressRow:
    reader_id: int
    alias: str
    done: int
    total: int
    practice_done: int
    practice_total: int
    time_spent_s: float
    last_activity: datetime | None
    active: bool


def study_progress(engine: Engine, study_id: int) -> list[ProgressRow]:
    """Per reader: cases done of total, time spent (each case counted once), last activity."""
    with transaction(engine) as session:
        readers = session.scalars(
            select(Reader).where(Reader.study_id == study_id).order_by(Reader.id)
        ).all()
        counts: dict[tuple[int, bool], tuple[int, int]] = {
            (reader_id, bool(practice)): (total, done)
            for reader_id, practice, total, done in session.execute(
                select(
                    Assignment.reader_id,
                    Case.practice,
                    func.count(),
                    func.count(Assignment.completed_at),
                )
                .join(Case, Case.id == Assignment.case_id)
                .where(Case.study_id == study_id)
                .group_by(Assignment.reader_id, Case.practice)
            )
        }
        per_case = (
            select(
                Answer.reader_id.label("reader_id"),
                func.max(Answer.time_on_case_s).label("seconds"),
                func.max(Answer.last_saved_at).label("last"),
            )
            .join(Case, Case.id == Answer.case_id)
            .where(Case.study_id == study_id)
            .group_by(Answer.reader_id, Answer.case_id)
            .subquery()
        )
        times = {
            reader_id: (seconds, last)
            for reader_id, seconds, last in session.execute(
                select(
                    per_case.c.reader_id, func.sum(per_case.c.seconds), func.max(per_case.c.last)
                ).group_by(per_case.c.reader_id)
            )
        }
        rows = []
        for reader in readers:
            total, done = counts.get((reader.id, False), (0, 0))
            practice_total, practice_done = counts.get((reader.id, True), (0, 0))
            seconds, last = times.get(reader.id, (0.0, None))
            rows.append(
                ProgressRow(
                    reader_id=reader.id,
                    alias=reader.alias,
                    done=done,
                    total=total,
                    practice_done=practice_done,
                    practice_total=practice_total,
                    time_spent_s=float(seconds or 0.0),
                    last_activity=last,
                    active=reader.code_hash is not None and reader.revoked_at is None,
                )
            )
        return rows
