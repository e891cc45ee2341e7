"""Timed exposure in the study: the block setting and its rules, the exposure each reader is
given (fixed, or the next step of their staircase), and the shown duration kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from study.db import transaction
from study.design import (
    DesignError,
    SingleBlock,
    StudyPlan,
    TwoAFCBlock,
    create_study,
    open_study,
)
from study.exposure import Exposure, ExposureError, check_exposure, next_step
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Assignment, Case
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.storage import AssetStore
from study.timed_cases import TimedCaseError, record_shown

CASES = 8
TEMPLATE = TEMPLATES["Timed exposure (HYPE)"]
STAIRCASE = Exposure(ms=500, adaptive=True, step_ms=50, min_ms=400, max_ms=600)


def import_pictures(engine, folder) -> None:
    rng = np.random.default_rng(8)
    rows = ["path,origin,sequence,lesion,patient_id"]
    for i in range(CASES + 4):
        origin = "real" if i % 2 else "synthetic"
        Image.fromarray((rng.random((10, 10)) * 60000).astype(np.uint16)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{origin},T2W,{i // 2 % 2},{'P' + str(i) if origin == 'real' else ''}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    import_manifest(engine, folder / "manifest.csv", store=AssetStore(folder / "assets"))


def plan(exposure: Exposure | None = STAIRCASE, **overrides) -> StudyPlan:
    fields = {
        "name": "Timed",
        "questions": TEMPLATE,
        "blocks": (SingleBlock(Sequence.T2W, CASES, lesion_share=None, exposure=exposure),),
    }
    return StudyPlan(**{**fields, **overrides})


@pytest.fixture
def pictures(engine, tmp_path):
    import_pictures(engine, tmp_path)


def read(engine, reader_id: int, right: list[bool]) -> list[int]:
    """Answer the reader's cases, right or wrong in turn; the exposure each was given."""
    given = []
    for correct in right:
        view = next_case(engine, reader_id)
        given.append(view.exposure_ms)
        with transaction(engine) as session:
            origin = session.scalar(select(Case.origin).where(Case.public_id == view.public_id))
        truth = "real" if origin == "real" else "synthetic"
        wrong = "synthetic" if truth == "real" else "real"
        (question,) = view.questions
        record_answer(
            engine, reader_id, view.public_id, {question.id: truth if correct else wrong}, 1.0
        )
    return given


def test_the_staircase_is_shorter_after_a_right_answer_and_three_steps_longer_after_a_wrong_one():
    assert next_step(STAIRCASE, 500, True) == 450
    assert next_step(STAIRCASE, 500, False) == 600  # 650, kept within max_ms
    assert next_step(STAIRCASE, 400, True) == 400  # kept within min_ms
    assert next_step(STAIRCASE, 450, False) == 600


@pytest.mark.parametrize(
    ("exposure", "message"),
    [
        (Exposure(ms=20), "cannot be shown faithfully"),
        (Exposure(ms=20_000), "cannot be shown faithfully"),
        (Exposure(ms=250.5), "whole milliseconds"),
        (Exposure(ms=500, adaptive=True, step_ms=0), "step must be positive"),
        (Exposure(ms=300, adaptive=True, min_ms=400, max_ms=600), "start within its range"),
    ],
)
def test_exposures_that_cannot_be_honoured_are_refused(exposure, message):
    with pytest.raises(ExposureError, match=message):
        check_exposure(exposure)


def test_a_readers_staircase_follows_their_answers(engine, pictures):
    study_id = create_study(engine, plan())
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r1").reader_id
    right = [True, True, True, False, True, False, False, True]
    assert read(engine, reader, right) == [500, 450, 400, 400, 550, 500, 600, 600]
    with transaction(engine) as session:
        stored = session.scalars(
            select(Assignment.exposure_ms)
            .where(Assignment.reader_id == reader)
            .order_by(Assignment.position)
        ).all()
    assert stored == [500, 450, 400, 400, 550, 500, 600, 600]
    # Another reader's staircase starts afresh.
    other = add_reader(engine, study_id, "r2").reader_id
    assert read(engine, other, [False, True]) == [500, 600]


def test_a_fixed_exposure_and_practice_cases_do_not_move(engine, pictures):
    study_id = create_study(engine, plan(Exposure(ms=250), practice_cases=2))
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r1").reader_id
    assert read(engine, reader, [False, True, False, True]) == [250, 250, 250, 250]
    staircase = create_study(engine, plan(name="Timed 2", practice_cases=2))
    open_study(engine, staircase)
    reader = add_reader(engine, staircase, "r1").reader_id
    # Two practice cases at the start, wrong both times, then the staircase starts at 500.
    assert read(engine, reader, [False, False, True, True]) == [500, 500, 500, 450]


def test_an_exposure_is_decided_once_and_the_shown_duration_kept_once(engine, pictures):
    study_id = create_study(engine, plan())
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r1").reader_id
    first = next_case(engine, reader)
    assert (first.exposure_ms, first.shown) == (500, False)
    record_shown(engine, reader, first.public_id, 516.7)
    again = next_case(engine, reader)
    assert (again.public_id, again.exposure_ms, again.shown) == (first.public_id, 500, True)
    record_shown(engine, reader, first.public_id, 900.0)  # a reload: the first report stays
    with transaction(engine) as session:
        shown = session.scalar(
            select(Assignment.shown_ms).where(
                Assignment.reader_id == reader,
                Assignment.exposure_ms.is_not(None),
                Assignment.shown_ms.is_not(None),
            )
        )
    assert shown == pytest.approx(516.7)
    with pytest.raises(TimedCaseError, match="cannot be recorded"):
        record_shown(engine, reader, first.public_id, -1.0)
    with pytest.raises(TimedCaseError, match="cannot be recorded"):
        record_shown(engine, reader, first.public_id, float("nan"))


def test_an_untimed_case_has_no_exposure(engine, pictures):
    study_id = create_study(engine, plan(None))
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r1").reader_id
    view = next_case(engine, reader)
    assert (view.exposure_ms, view.shown) == (None, False)
    with pytest.raises(TimedCaseError, match="not a timed case"):
        record_shown(engine, reader, view.public_id, 500.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"allow_revisit": True}, "cannot go back"),
        ({"questions": TEMPLATES["Realism rating"]}, "needs a required 'real_or_synthetic'"),
        (
            {"questions": TEMPLATE + TEMPLATES["Lesion localisation"]},
            "lesion marks cannot be asked on timed",
        ),
        ({"blocks": (SingleBlock(Sequence.T2W, 4, exposure=Exposure(ms=10)),)}, "faithfully"),
        (
            {"blocks": (TwoAFCBlock(Sequence.T2W, 2, lesion_share=None, exposure=Exposure()),)},
            "needs a required 'which_is_real'",
        ),
    ],
)
def test_timed_blocks_need_what_a_timed_case_relies_on(engine, pictures, overrides, message):
    with pytest.raises(DesignError, match=message):
        create_study(engine, plan(**overrides))
    with transaction(engine) as session:
        assert session.scalars(select(Case)).all() == []


def test_timed_and_informed_phases_are_not_combined(engine, pictures):
    with pytest.raises(DesignError, match="cannot be combined"):
        create_study(
            engine, plan(questions=TEMPLATES["Informed and uninformed phases"], informed_phase=True)
        )


def test_two_afc_cases_follow_the_which_is_real_answer(engine, pictures):
    study_id = create_study(
        engine,
        plan(
            questions=TEMPLATES["2AFC"],
            blocks=(TwoAFCBlock(Sequence.T2W, 4, lesion_share=None, exposure=STAIRCASE),),
        ),
    )
    open_study(engine, study_id)
    reader = add_reader(engine, study_id, "r1").reader_id
    given = []
    for correct in (True, False, True):
        view = next_case(engine, reader)
        given.append(view.exposure_ms)
        with transaction(engine) as session:
            case = session.scalar(select(Case).where(Case.public_id == view.public_id))
            real = next(v.viewport for v in case.views if v.asset.origin == "real")
        side = real if correct else ("left" if real == "right" else "right")
        (question,) = view.questions
        record_answer(engine, reader, view.public_id, {question.id: side}, 1.0)
    assert given == [500, 450, 600]
