"""Concurrency: 30 readers save 200 answers each at once (50 cases x 4 questions), with double
submissions racing each other and changed answers, on SQLite and on PostgreSQL. Afterwards there
is exactly one answer per (reader, case, question), none is lost, and every change is a revision,
numbered 1, 2, ... without gaps, whose last value is the answer's."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from reliability_support import open_reading_study
from sqlalchemy import func, select

from study.db import transaction
from study.models import Answer, AnswerRevision, Assignment, Question
from study.reading import record_answer

pytestmark = pytest.mark.slow

READERS = 30
CASES = 50  # x 4 questions = 200 answers per reader
FIRST = {
    "real_or_synthetic": "real",
    "lesion_present": "no",
    "likert_realism": "3",
    "confidence": "2",
}
CHANGED = {**FIRST, "real_or_synthetic": "synthetic", "likert_realism": "5"}


def test_thirty_readers_lose_nothing_and_double_nothing(engine):
    study = open_reading_study(engine, readers=READERS, cases=CASES, allow_revisit=True)
    with transaction(engine) as session:
        kinds = dict(session.execute(select(Question.id, Question.kind)).all())
    first = {qid: FIRST[kind] for qid, kind in kinds.items()}
    changed = {qid: CHANGED[kind] for qid, kind in kinds.items()}
    start = threading.Barrier(READERS)
    outcomes: dict[int, Counter[str]] = {}

    def read(reader_id: int) -> None:
        """Every case once; every third case double-submitted at the same instant; every fifth
        case changed afterwards, the change itself sent twice at once."""
        counts: Counter[str] = Counter()
        with ThreadPoolExecutor(2) as clicks:

            def submit_twice(values: dict[int, str], public_id: str, seconds: float) -> None:
                together = threading.Barrier(2)

                def click() -> bool:
                    together.wait()
                    return record_answer(engine, reader_id, public_id, values, seconds)

                saved = sorted(f.result() for f in [clicks.submit(click), clicks.submit(click)])
                counts["double submissions" if saved == [False, True] else "bad double"] += 1

            start.wait()
            for index, public_id in enumerate(study.orders[reader_id]):
                if index % 3 == 0:
                    submit_twice(first, public_id, 4.0)
                else:
                    assert record_answer(engine, reader_id, public_id, first, 4.0)
                if index % 5 == 0:
                    submit_twice(changed, public_id, 1.5)
                    assert not record_answer(engine, reader_id, public_id, changed, 0.5)
        outcomes[reader_id] = counts

    with ThreadPoolExecutor(READERS) as readers:
        list(readers.map(read, study.orders))

    doubles = (CASES + 2) // 3 + (CASES + 4) // 5
    assert all(c == Counter({"double submissions": doubles}) for c in outcomes.values())
    changed_ids = {qid for qid in kinds if first[qid] != changed[qid]}
    with transaction(engine) as session:
        answers = session.execute(
            select(
                Answer.reader_id,
                Answer.case_id,
                Answer.question_id,
                Answer.value,
                Answer.revision,
                Answer.time_on_case_s,
            )
        ).all()
        revisions = session.execute(
            select(
                AnswerRevision.answer_id,
                func.count(),
                func.min(AnswerRevision.revision),
                func.max(AnswerRevision.revision),
                func.count(AnswerRevision.revision.distinct()),
            ).group_by(AnswerRevision.answer_id)
        ).all()
        last_values = dict(
            session.execute(
                select(Answer.id, AnswerRevision.value)
                .join(AnswerRevision, AnswerRevision.answer_id == Answer.id)
                .where(AnswerRevision.revision == Answer.revision)
            ).all()
        )
        answer_values = dict(session.execute(select(Answer.id, Answer.value)).all())
        unfinished = session.scalar(
            select(func.count()).select_from(Assignment).where(Assignment.completed_at.is_(None))
        )
        case_index = {
            (reader_id, case_id): position
            for reader_id, case_id, position in session.execute(
                select(Assignment.reader_id, Assignment.case_id, Assignment.position)
            )
        }

    assert len(answers) == READERS * CASES * len(kinds) == 6000
    keys = Counter((a.reader_id, a.case_id, a.question_id) for a in answers)
    assert max(keys.values()) == 1
    assert set(keys) == {(r, c, q) for (r, c) in case_index for q in kinds}
    assert unfinished == 0
    for answer in answers:
        was_changed = case_index[answer.reader_id, answer.case_id] % 5 == 0
        if was_changed and answer.question_id in changed_ids:
            expected = (changed[answer.question_id], 2, 4.0 + 1.5)
        else:
            expected = (first[answer.question_id], 1, 4.0)
        assert (answer.value, answer.revision, answer.time_on_case_s) == expected
    # Every answer's revisions are 1..n without gaps or doubles, and the last one is its value.
    assert len(revisions) == len(answers)
    assert all(n == high == distinct and low == 1 for _, n, low, high, distinct in revisions)
    assert last_values == answer_values
    assert sum(n for _, n, *_ in revisions) == len(answers) + READERS * ((CASES + 4) // 5) * len(
        changed_ids
    )
