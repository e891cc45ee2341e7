"""The reading flow: seeded order, next case, one answer per (reader, case, question) under
concurrency, revisions, revisit rules, feedback and score, progress, blinding of what is shown."""

from __future__ import annotations

import struct
from concurrent.futures import ThreadPoolExecutor

import pytest
from seeding import add_assets, grid
from sqlalchemy import func, select

from study.analysis import tidy_answers
from study.db import transaction
from study.design import (
    DesignError,
    SingleBlock,
    StudyPlan,
    TwoAFCBlock,
    close_study,
    create_study,
    open_study,
    update_study,
)
from study.imaging.canonical import canonical_from_bytes
from study.imaging.render import render_png
from study.imaging.types import Sequence
from study.models import Answer, AnswerRevision, Assignment, Feedback
from study.questions import TEMPLATES
from study.readers import add_reader, revoke_code
from study.reading import (
    AnswersFinalError,
    CaseRef,
    ReaderAccessError,
    ReadingError,
    RevisitNotAllowedError,
    StudyNotOpenError,
    case_at,
    case_feedback,
    mark_instructions_seen,
    next_case,
    reader_score,
    reader_state,
    reading_order,
    record_answer,
    study_progress,
    upcoming_viewports,
)
from study.rendering import clear_render_cache, prefetch_upcoming, render_case
from study.storage import AssetStore


def open_seed_study(engine, **plan_options) -> int:
    add_assets(engine, grid([Sequence.T2W], 3))
    plan = StudyPlan(
        "reading", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),), **plan_options
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    return study_id


def answers_for(view, real_or_synthetic: str = "real", lesion: str = "no") -> dict[int, str]:
    by_kind = {"real_or_synthetic": real_or_synthetic, "lesion_present": lesion}
    return {q.id: by_kind[q.kind.value] for q in view.questions}


def test_reading_order_is_seeded_per_reader_with_practice_first_and_repeats_last():
    cases = [CaseRef(i, practice=i < 2, repeat_of_id=None) for i in range(12)]
    cases += [CaseRef(20, False, 5), CaseRef(21, False, 7)]
    first = reading_order(4, 1, cases)
    assert first == reading_order(4, 1, cases)
    assert first != reading_order(4, 2, cases)
    assert sorted(first) == sorted(c.id for c in cases)
    assert set(first[:2]) == {0, 1}
    assert set(first[-2:]) == {20, 21}
    for seed in range(50):
        order = reading_order(seed, 1, cases)
        assert {20: 5, 21: 7}[order[12]] != order[11]


def test_answer_saved_once_with_time_then_resume_at_first_unanswered(engine):
    study_id = open_seed_study(engine)
    reader = add_reader(engine, study_id, "r").reader_id
    state = reader_state(engine, reader)
    assert (state.progress.done, state.progress.total, state.instructions_seen) == (0, 4, False)
    mark_instructions_seen(engine, reader)
    assert reader_state(engine, reader).instructions_seen

    first = next_case(engine, reader)
    assert (first.number, first.of, first.position, first.answers) == (1, 4, 0, {})
    assert record_answer(engine, reader, first.public_id, answers_for(first), 12.5)
    # A double click sends the same answers again: nothing changes, nothing is added.
    assert not record_answer(engine, reader, first.public_id, answers_for(first), 0.3)
    with transaction(engine) as session:
        rows = session.scalars(select(Answer).where(Answer.reader_id == reader)).all()
        assert len(rows) == 2
        assert {(a.revision, a.time_on_case_s) for a in rows} == {(1, 12.5)}
        assert session.scalar(select(func.count()).select_from(AnswerRevision)) == 2

    # The browser is closed; a new session resumes at the first unanswered case.
    second = next_case(engine, reader)
    assert (second.number, second.position) == (2, 1)
    assert second.public_id != first.public_id
    record_answer(engine, reader, second.public_id, answers_for(second), 3)
    assert next_case(engine, reader).number == 3
    assert reader_state(engine, reader).progress.done == 2


def test_changing_a_finished_case_needs_allow_revisit(engine):
    study_id = open_seed_study(engine)
    reader = add_reader(engine, study_id, "r").reader_id
    view = next_case(engine, reader)
    record_answer(engine, reader, view.public_id, answers_for(view), 5)
    with pytest.raises(RevisitNotAllowedError):
        case_at(engine, reader, view.position)
    with pytest.raises(RevisitNotAllowedError):
        record_answer(engine, reader, view.public_id, answers_for(view, "synthetic"), 2)


def test_revisits_keep_every_revision(engine):
    study_id = open_seed_study(engine, allow_revisit=True)
    reader = add_reader(engine, study_id, "r").reader_id
    view = next_case(engine, reader)
    record_answer(engine, reader, view.public_id, answers_for(view), 5)
    record_answer(engine, reader, next_case(engine, reader).public_id, answers_for(view), 1)
    again = case_at(engine, reader, view.position)
    assert again.completed and set(again.answers.values()) == {"real", "no"}
    assert record_answer(engine, reader, view.public_id, answers_for(view, "synthetic"), 2)
    record_answer(engine, reader, view.public_id, answers_for(view, "real"), 4)
    with transaction(engine) as session:
        answer = session.scalar(
            select(Answer)
            .where(Answer.reader_id == reader, Answer.value.in_(["real"]))
            .order_by(Answer.revision.desc())
        )
        assert (answer.revision, answer.time_on_case_s) == (3, 11)
        assert [(r.revision, r.value) for r in answer.revisions] == [
            (1, "real"),
            (2, "synthetic"),
            (3, "real"),
        ]
    assert next_case(engine, reader).number == 3


def test_concurrent_double_submission_creates_one_answer(engine):
    study_id = open_seed_study(engine)
    reader = add_reader(engine, study_id, "r").reader_id
    view = next_case(engine, reader)

    def submit(value: str) -> str:
        try:
            record_answer(engine, reader, view.public_id, answers_for(view, value), 1)
        except RevisitNotAllowedError:
            return "refused"
        return "saved"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(submit, ["real"] * 4 + ["synthetic"] * 2))
    with transaction(engine) as session:
        answers = session.scalars(select(Answer).where(Answer.reader_id == reader)).all()
        assert len(answers) == 2
        assert all(a.revision == 1 for a in answers)
        assert session.scalar(select(func.count()).select_from(AnswerRevision)) == 2
        stored = {a.value for a in answers} - {"no"}
    # Whichever value came first stands; the other value was refused, never a second answer.
    loser = "synthetic" if stored == {"real"} else "real"
    assert all(
        o == "refused"
        for o, v in zip(outcomes, ["real"] * 4 + ["synthetic"] * 2, strict=True)
        if v == loser
    )


def test_two_readers_do_not_see_or_change_each_others_answers(engine):
    study_id = open_seed_study(engine)
    a = add_reader(engine, study_id, "a").reader_id
    b = add_reader(engine, study_id, "b").reader_id
    order = {}
    with transaction(engine) as session:
        for reader in (a, b):
            order[reader] = session.scalars(
                select(Assignment.case_id)
                .where(Assignment.reader_id == reader)
                .order_by(Assignment.position)
            ).all()
    assert order[a] != order[b]

    def read_all(reader: int, value: str) -> None:
        while (view := next_case(engine, reader)) is not None:
            assert view.answers == {}
            record_answer(engine, reader, view.public_id, answers_for(view, value), 1)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(read_all, [a, b], ["real", "synthetic"]))
    with transaction(engine) as session:
        for reader, value in ((a, "real"), (b, "synthetic")):
            values = session.scalars(
                select(Answer.value).where(Answer.reader_id == reader, Answer.value != "no")
            ).all()
            assert values == [value] * 4
    assert [r.done for r in study_progress(engine, study_id)] == [4, 4]


def test_invalid_answers_are_refused(engine):
    study_id = open_seed_study(engine)
    reader = add_reader(engine, study_id, "r").reader_id
    view = next_case(engine, reader)
    q_real, q_lesion = view.questions
    with pytest.raises(ReadingError, match="Please answer"):
        record_answer(engine, reader, view.public_id, {q_real.id: "real"}, 1)
    with pytest.raises(ReadingError, match="choose one of the options"):
        record_answer(engine, reader, view.public_id, {q_real.id: "Real", q_lesion.id: "no"}, 1)
    with pytest.raises(ReadingError, match="not part of your reading"):
        record_answer(engine, reader, "0" * 16, answers_for(view), 1)
    with pytest.raises(ReadingError, match="negative"):
        record_answer(engine, reader, view.public_id, answers_for(view), -1)
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 0


def test_closed_study_and_revoked_code_stop_reading(engine):
    study_id = open_seed_study(engine)
    reader = add_reader(engine, study_id, "r").reader_id
    other = add_reader(engine, study_id, "o").reader_id
    view = next_case(engine, reader)
    revoke_code(engine, other)
    with pytest.raises(ReaderAccessError):
        next_case(engine, other)
    close_study(engine, study_id)
    with pytest.raises(StudyNotOpenError, match="closed"):
        record_answer(engine, reader, view.public_id, answers_for(view), 1)


def test_practice_feedback_and_score_at_the_end(engine):
    study_id = open_seed_study(engine, practice_cases=1, feedback=Feedback.AT_END)
    reader = add_reader(engine, study_id, "r").reader_id
    practice = next_case(engine, reader)
    assert practice.practice and (practice.number, practice.of) == (1, 1)
    record_answer(engine, reader, practice.public_id, answers_for(practice), 1)
    lines = case_feedback(engine, reader, practice.public_id)
    assert [line.wording for line in lines] == [q.wording for q in practice.questions]
    assert all(line.correct in {"Real", "Synthetic", "Yes", "No"} for line in lines)

    first = next_case(engine, reader)
    assert not first.practice and (first.number, first.of) == (1, 4)
    record_answer(engine, reader, first.public_id, answers_for(first), 1)
    with pytest.raises(ReadingError, match="does not show"):
        case_feedback(engine, reader, first.public_id)
    with pytest.raises(ReadingError, match="once you have read every case"):
        reader_score(engine, reader)
    while (view := next_case(engine, reader)) is not None:
        record_answer(engine, reader, view.public_id, answers_for(view, "synthetic", "yes"), 1)
    score = reader_score(engine, reader)
    assert [line.scored for line in score.lines] == [4, 4]
    assert len(score.cases) == 4
    correct = sum(line.correct for line in score.lines)
    assert correct == sum(a.is_correct for case in score.cases for a in case.answers)
    assert case_feedback(engine, reader, first.public_id)


def test_answers_are_final_once_the_score_shows_the_truth(engine):
    """The defect: at the end of an educational study, going back after the score and changing
    an answer moved the score and the results."""
    study_id = open_seed_study(
        engine, practice_cases=1, feedback=Feedback.AT_END, allow_revisit=True
    )
    reader = add_reader(engine, study_id, "r").reader_id
    practice = next_case(engine, reader)
    record_answer(engine, reader, practice.public_id, answers_for(practice), 1)
    case_feedback(engine, reader, practice.public_id)
    # Practice truth shown: the practice case is final, and "Back" does not lead to it.
    with pytest.raises(AnswersFinalError):
        record_answer(engine, reader, practice.public_id, answers_for(practice, "synthetic"), 1)
    first = next_case(engine, reader)
    assert not first.can_go_back
    record_answer(engine, reader, first.public_id, answers_for(first), 1)
    second = next_case(engine, reader)
    assert second.can_go_back
    while (view := next_case(engine, reader)) is not None:
        record_answer(engine, reader, view.public_id, answers_for(view), 1)
    # Finished, score not seen yet: going back and changing is still allowed.
    assert not reader_state(engine, reader).score_seen
    assert record_answer(engine, reader, first.public_id, answers_for(first, "synthetic"), 1)
    before = reader_score(engine, reader)
    assert reader_state(engine, reader).score_seen
    with pytest.raises(AnswersFinalError, match="final"):
        case_at(engine, reader, first.position)
    with pytest.raises(AnswersFinalError, match="final"):
        record_answer(engine, reader, first.public_id, answers_for(first, "real", "yes"), 1)
    assert reader_score(engine, reader) == before
    tidy = tidy_answers(engine, study_id)
    mine = tidy[(tidy["case_public_id"] == first.public_id)].set_index("question_kind")["value"]
    assert mine.to_dict() == {"real_or_synthetic": "synthetic", "lesion_present": "no"}
    # Submitting the same values again is not a change, so it is still accepted.
    assert not record_answer(engine, reader, first.public_id, answers_for(first, "synthetic"), 1)


def test_feedback_after_each_case_makes_that_case_final(engine):
    study_id = open_seed_study(engine, feedback=Feedback.EACH_CASE)
    reader = add_reader(engine, study_id, "r").reader_id
    view = next_case(engine, reader)
    record_answer(engine, reader, view.public_id, answers_for(view), 1)
    case_feedback(engine, reader, view.public_id)
    with pytest.raises(AnswersFinalError):
        record_answer(engine, reader, view.public_id, answers_for(view, "synthetic"), 1)


def test_studies_cannot_combine_going_back_with_feedback_after_each_case(engine):
    add_assets(engine, grid([Sequence.T2W], 3))
    plan = StudyPlan(
        "each case",
        TEMPLATES["Seed protocol"],
        (SingleBlock(Sequence.T2W, 4),),
        allow_revisit=True,
        feedback=Feedback.EACH_CASE,
    )
    with pytest.raises(DesignError, match="cannot go back"):
        create_study(engine, plan)
    study_id = create_study(engine, StudyPlan("at end", plan.questions, plan.blocks))
    with pytest.raises(DesignError, match="cannot go back"):
        update_study(
            engine,
            study_id,
            description="",
            instructions="",
            allow_revisit=True,
            feedback=Feedback.EACH_CASE,
        )
    update_study(
        engine,
        study_id,
        description="",
        instructions="",
        allow_revisit=True,
        feedback=Feedback.AT_END,
    )


def test_no_feedback_in_a_plain_study(engine):
    study_id = open_seed_study(engine)
    reader = add_reader(engine, study_id, "r").reader_id
    while (view := next_case(engine, reader)) is not None:
        record_answer(engine, reader, view.public_id, answers_for(view), 1)
    with pytest.raises(ReadingError, match="does not show"):
        reader_score(engine, reader)


def test_progress_counts_time_once_per_case(engine):
    study_id = open_seed_study(engine)
    reader = add_reader(engine, study_id, "r").reader_id
    add_reader(engine, study_id, "idle")
    for seconds in (4.0, 6.0):
        view = next_case(engine, reader)
        record_answer(engine, reader, view.public_id, answers_for(view), seconds)
    busy, idle = study_progress(engine, study_id)
    assert (busy.alias, busy.done, busy.total, busy.time_spent_s) == ("r", 2, 4, 10.0)
    assert busy.last_activity is not None and busy.active
    assert (idle.done, idle.time_spent_s, idle.last_activity) == (0, 0.0, None)


def png_chunks(data: bytes) -> list[bytes]:
    chunks, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        chunks.append(data[offset + 4 : offset + 8])
        offset += 12 + length
    return chunks


def test_case_views_and_renders_name_nothing_but_viewports(engine, tmp_path):
    store = AssetStore(tmp_path / "assets")
    add_assets(engine, grid([Sequence.ADC], 2), store=store)
    study_id = create_study(
        engine, StudyPlan("2afc", TEMPLATES["2AFC"], (TwoAFCBlock(Sequence.ADC, 2),))
    )
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r").reader_id
    view = next_case(engine, reader)
    assert [v.label for v in view.viewports] == ["Left", "Right"]
    for viewport in view.viewports:
        assert viewport.canonical_sha256 not in repr(view)
    images = render_case(view, window=(0.5, 0.8), zoom=2.0, size=48, store=store)
    assert [caption for caption, _ in images] == ["Left", "Right"]
    for _, png in images:
        assert png_chunks(png) == [b"IHDR", b"IDAT", b"IEND"]
        assert struct.unpack(">II", png[16:24]) == (48, 48)
    assert render_case(view, window=(0.5, 0.8), zoom=2.0, size=48, store=store) == images
    assert render_case(view, size=48, store=store) != images


def test_the_upcoming_case_is_the_first_unfinished_other_than_the_one_shown(engine):
    study_id = open_seed_study(engine, allow_revisit=True)
    reader = add_reader(engine, study_id, "r").reader_id
    first = next_case(engine, reader)
    upcoming = upcoming_viewports(engine, reader, first.public_id)
    record_answer(engine, reader, first.public_id, answers_for(first), 1)
    second = next_case(engine, reader)
    assert upcoming == second.viewports
    # Going back to a finished case: what follows it is still the first unanswered case.
    assert upcoming_viewports(engine, reader, first.public_id) == second.viewports
    for _ in range(3):
        view = next_case(engine, reader)
        last = upcoming_viewports(engine, reader, view.public_id)
        record_answer(engine, reader, view.public_id, answers_for(view), 1)
    assert last == ()
    assert next_case(engine, reader) is None


def test_the_next_case_is_rendered_ahead_with_the_readers_window_and_zoom(engine, tmp_path):
    store = AssetStore(tmp_path / "assets")
    add_assets(engine, grid([Sequence.T2W], 2), store=store)
    study_id = create_study(
        engine, StudyPlan("ahead", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r").reader_id
    shown = next_case(engine, reader)
    clear_render_cache()
    ahead = prefetch_upcoming(
        engine, reader, shown.public_id, window=(0.4, 0.6), zoom=2.0, size=40, store=store
    )
    assert ahead.result(timeout=30) is None
    record_answer(engine, reader, shown.public_id, answers_for(shown), 2)
    following = next_case(engine, reader)
    canonicals = {}
    for viewport in following.viewports:
        path = store.path(viewport.canonical_sha256, ".npy")
        canonicals[viewport.label] = canonical_from_bytes(path.read_bytes())
        path.unlink()
    # The canonical files are gone: the PNGs come from the renders made ahead, and they are
    # exactly what rendering now would give.
    assert render_case(following, window=(0.4, 0.6), zoom=2.0, size=40, store=store) == [
        (label, render_png(canonical, size=40, window=(0.4, 0.6), zoom=2.0))
        for label, canonical in canonicals.items()
    ]
    clear_render_cache()
    with pytest.raises(FileNotFoundError):
        render_case(following, window=(0.4, 0.6), zoom=2.0, size=40, store=store)
