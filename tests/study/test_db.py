"""The database: migrations, pragmas and the invariants kept by constraints."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from study.auth import hash_access_code
from study.db import alembic_config, migrate, transaction
from study.imaging.types import Intensity, Origin, Sequence
from study.models import (
    Answer,
    AnswerRevision,
    Asset,
    Case,
    CaseAsset,
    CaseKind,
    CaseOrigin,
    Question,
    QuestionKind,
    Reader,
    Study,
)

SHA = "a" * 64


def make_asset(sha: str = SHA, **overrides) -> Asset:
    fields = {
        "origin": Origin.REAL,
        "sequence": Sequence.T2W,
        "lesion": 1,
        "patient_id": "P1",
        "pair_key": "P1-s1",
        "intensity": Intensity.RAW,
        "source_sha256": sha,
        "source_path": "/x.png",
        "canonical_sha256": "c" * 64,
        "display_sha256": "d" * 64,
        "rows": 8,
        "cols": 8,
        "spacing_row_mm": 1.0,
        "spacing_col_mm": 1.0,
    }
    fields.update(overrides)
    return Asset(**fields)


def make_study_with_answerable(engine) -> tuple[int, int, int]:
    with transaction(engine) as session:
        study = Study(name="s")
        session.add(study)
        session.flush()
        question = Question(
            study_id=study.id, position=1, kind=QuestionKind.REAL_OR_SYNTHETIC, wording="?"
        )
        case = Case(
            study_id=study.id,
            public_id="c1",
            kind=CaseKind.SINGLE,
            origin=CaseOrigin.REAL,
            sequence="T2W",
        )
        reader = Reader(study_id=study.id, alias="r1")
        session.add_all([question, case, reader])
        session.flush()
        return reader.id, case.id, question.id


def test_migration_creates_every_table_and_is_idempotent(engine):
    tables = set(inspect(engine).get_table_names())
    assert {
        "assets",
        "cases",
        "case_assets",
        "studies",
        "questions",
        "readers",
        "assignments",
        "answers",
        "answer_revisions",
        "accounts",
        "jobs",
        "alembic_version",
    } <= tables
    migrate(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def test_revision_0003_keeps_every_row_and_gives_the_demo_code_to_the_study(engine):
    """SQLite alters a table by copying it and dropping the old one; with foreign keys on, that
    drop would cascade to the children (readers, answers). The shared demo reader's public code
    moves to its study, and the old reader keeps its answers without a code."""
    reader_id, case_id, question_id = make_study_with_answerable(engine)
    with transaction(engine) as session:
        session.execute(
            text("UPDATE readers SET code_hash = :code WHERE id = :id"),
            {"code": hash_access_code("demo"), "id": reader_id},
        )
        session.add(
            Answer(reader_id=reader_id, case_id=case_id, question_id=question_id, value="1")
        )
    config = alembic_config(engine)
    command.downgrade(config, "0002")
    command.upgrade(config, "head")
    with transaction(engine) as session:
        reader = session.get(Reader, reader_id)
        assert (reader.kind, reader.code_hash) == ("person", None)
        assert reader.revoked_at is not None
        assert reader.study.public_code_hash == hash_access_code("demo")
        assert session.scalar(select(Answer.value).where(Answer.reader_id == reader_id)) == "1"
        assert session.scalar(select(Case.id).where(Case.id == case_id)) == case_id


def test_revision_0006_adds_lesion_marks_and_keeps_every_answer(engine):
    """Rebuilding the question kind's CHECK copies the questions table in SQLite: answers stay;
    a downgrade is refused while a study asks for lesion marks."""
    reader_id, case_id, question_id = make_study_with_answerable(engine)
    with transaction(engine) as session:
        session.add(
            Answer(reader_id=reader_id, case_id=case_id, question_id=question_id, value="real")
        )
    config = alembic_config(engine)
    command.downgrade(config, "0005")
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.execute(
            text("UPDATE questions SET kind = 'lesion_marks' WHERE id = :id"), {"id": question_id}
        )
    command.upgrade(config, "head")
    with transaction(engine) as session:
        assert session.scalar(select(Answer.value).where(Answer.case_id == case_id)) == "real"
        session.get(Question, question_id).kind = QuestionKind.LESION_MARKS
    with pytest.raises(RuntimeError, match="a study asks a lesion_marks question"):
        command.downgrade(config, "0005")
    with transaction(engine) as session:
        assert session.get(Question, question_id).kind == QuestionKind.LESION_MARKS


def test_revision_0009_adds_volume_cases_and_keeps_every_answer(engine):
    """Rebuilding the case kind's CHECK copies the cases table in SQLite: answers and images
    stay; a volume case holds one row per slice of a viewport; a downgrade is refused while a
    volume case exists."""
    reader_id, case_id, question_id = make_study_with_answerable(engine)
    with transaction(engine) as session:
        asset = make_asset()
        session.add(asset)
        session.flush()
        session.add(CaseAsset(case_id=case_id, asset_id=asset.id, viewport="T2W", position=0))
        session.add(
            Answer(reader_id=reader_id, case_id=case_id, question_id=question_id, value="real")
        )
    config = alembic_config(engine)
    command.downgrade(config, "0008")
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.execute(text("UPDATE cases SET kind = 'volume' WHERE id = :id"), {"id": case_id})
    command.upgrade(config, "head")
    with transaction(engine) as session:
        assert session.scalar(select(Answer.value).where(Answer.case_id == case_id)) == "real"
        case = session.get(Case, case_id)
        assert [(v.viewport, v.slice) for v in case.views] == [("T2W", 0)]
        case.kind = CaseKind.VOLUME
        case.views.append(
            CaseAsset(asset_id=case.views[0].asset_id, viewport="T2W", position=1, slice=1)
        )
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.add(
            CaseAsset(
                case_id=case_id,
                asset_id=case.views[0].asset_id,
                viewport="T2W",
                position=2,
                slice=1,
            )
        )
    with pytest.raises(RuntimeError, match="a study has volume cases"):
        command.downgrade(config, "0008")
    with transaction(engine) as session:
        assert session.get(Case, case_id).kind == CaseKind.VOLUME


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    from study.db import open_database

    engine = open_database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_asset_source_sha256_is_unique(engine):
    with transaction(engine) as session:
        session.add(make_asset())
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.add(make_asset(patient_id="other"))
    with transaction(engine) as session:
        assert len(session.scalars(select(Asset)).all()) == 1


def test_one_answer_per_reader_case_question(engine):
    reader_id, case_id, question_id = make_study_with_answerable(engine)
    with transaction(engine) as session:
        session.add(
            Answer(reader_id=reader_id, case_id=case_id, question_id=question_id, value="a")
        )
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.add(
            Answer(reader_id=reader_id, case_id=case_id, question_id=question_id, value="b")
        )
    with transaction(engine) as session:
        answers = session.scalars(select(Answer)).all()
        assert [a.value for a in answers] == ["a"]


def test_answer_revisions_are_numbered_uniquely(engine):
    reader_id, case_id, question_id = make_study_with_answerable(engine)
    with transaction(engine) as session:
        answer = Answer(reader_id=reader_id, case_id=case_id, question_id=question_id, value="a")
        answer.revisions.append(AnswerRevision(revision=1, value="a"))
        session.add(answer)
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.add(AnswerRevision(answer_id=answer.id, revision=1, value="b"))


@pytest.mark.parametrize(
    ("column", "value"),
    [("origin", "fake"), ("sequence", "CT"), ("intensity", "odd")],
)
def test_enumerations_are_checked_by_the_database(engine, column, value):
    # Raw SQL bypasses the ORM's own validation: the CHECK constraint must refuse it.
    with transaction(engine) as session:
        session.add(make_asset())
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text(f"UPDATE assets SET {column} = :v"), {"v": value})


@pytest.mark.parametrize(("column", "value"), [("lesion", 2), ("pirads", 7)])
def test_lesion_and_pirads_ranges_are_checked(engine, column, value):
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.add(make_asset(**{column: value}))


def test_orm_refuses_unknown_enum_strings(engine):
    with pytest.raises((StatementError, LookupError)), transaction(engine) as session:
        session.add(make_asset(origin="imaginary"))


def test_revision_0010_adds_timed_exposure_and_keeps_every_answer(engine):
    """The exposure columns come and go with revision 0010; answers and cases stay."""
    reader_id, case_id, question_id = make_study_with_answerable(engine)
    with transaction(engine) as session:
        session.add(
            Answer(reader_id=reader_id, case_id=case_id, question_id=question_id, value="real")
        )
    config = alembic_config(engine)
    command.downgrade(config, "0009")
    assert "exposure" not in {c["name"] for c in inspect(engine).get_columns("cases")}
    command.upgrade(config, "head")
    assert {"exposure_ms", "shown_ms"} <= {
        c["name"] for c in inspect(engine).get_columns("assignments")
    }
    with transaction(engine) as session:
        assert session.scalar(select(Answer.value).where(Answer.case_id == case_id)) == "real"
        case = session.get(Case, case_id)
        assert case.exposure is None
        case.exposure = {"ms": 500, "adaptive": False, "block": 0}
    with transaction(engine) as session:
        assert session.get(Case, case_id).exposure["ms"] == 500
    insert = text(
        "INSERT INTO assignments (reader_id, case_id, position, exposure_ms) "
        "VALUES (:r, :c, 0, :ms)"
    )
    with pytest.raises(IntegrityError), transaction(engine) as session:
        session.execute(insert, {"r": reader_id, "c": case_id, "ms": 0})
    with transaction(engine) as session:
        session.execute(insert, {"r": reader_id, "c": case_id, "ms": 500})
