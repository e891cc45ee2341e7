"""Study design: templates, exact balance, paired and 2AFC cases, practice and repeats,
frozen questions, opening and closing, the power shown before opening."""

from __future__ import annotations

import pytest
from seeding import add_assets, grid, pairs
from sqlalchemy import func, select

from study.db import transaction
from study.design import (
    BalanceError,
    DesignError,
    PairedBlock,
    PoolFilter,
    SingleBlock,
    StudyFrozenError,
    StudyPlan,
    TwoAFCBlock,
    add_questions,
    close_study,
    create_study,
    delete_study,
    largest_fitting_cases,
    open_study,
    power_summary,
    remove_question,
    reopen_study,
    seed_protocol_plan,
    study_composition,
    study_history,
    study_questions,
    update_question,
)
from study.imaging.types import Origin, Sequence
from study.models import (
    Assignment,
    Case,
    CaseKind,
    QuestionKind,
    Study,
    StudyAction,
    StudyStatus,
)
from study.questions import TEMPLATES, QuestionError, QuestionSpec, check_question
from study.readers import add_reader
from study.stats.proportions import ci_halfwidth, sample_size_accuracy


def seed_pool(engine, per_cell: int = 2, pairs_per_cell: int = 2) -> None:
    rows = grid([Sequence.T2W, Sequence.ADC], per_cell)
    for origin in (Origin.REAL, Origin.SYNTHETIC):
        for lesion in (0, 1):
            rows += pairs(pairs_per_cell, origin, lesion)
    add_assets(engine, rows)


def cases_of(engine, study_id: int) -> list[Case]:
    with transaction(engine) as session:
        cases = session.scalars(select(Case).where(Case.study_id == study_id)).all()
        for case in cases:
            for view in case.views:
                _ = view.asset
        return list(cases)


def test_templates_are_valid_and_apply_to_the_right_case_kinds():
    for specs in TEMPLATES.values():
        for spec in specs:
            check_question(spec)
    seed = {spec.kind: spec.applies_to for spec in TEMPLATES["Seed protocol"]}
    assert seed[QuestionKind.REAL_OR_SYNTHETIC] == ("single",)
    assert set(seed[QuestionKind.LESION_PRESENT]) == {"single", "paired"}
    assert [s.kind for s in TEMPLATES["2AFC"]] == [QuestionKind.WHICH_IS_REAL]
    kinds = {s.kind for s in TEMPLATES["Realism rating"]}
    assert kinds == {QuestionKind.LIKERT_REALISM, QuestionKind.CONFIDENCE}


def test_seed_protocol_balances_every_cell_exactly(engine):
    seed_pool(engine, per_cell=3, pairs_per_cell=3)
    study_id = create_study(engine, seed_protocol_plan(cases=8, seed=7))
    cases = cases_of(engine, study_id)
    assert len(cases) == 24
    cells: dict[tuple, int] = {}
    for case in cases:
        key = (case.kind, case.sequence, case.origin, case.lesion)
        cells[key] = cells.get(key, 0) + 1
    for sequence, kind in (("T2W", "single"), ("ADC", "single"), ("T2W+DWI", "paired")):
        for origin in ("real", "synthetic"):
            for lesion in (0, 1):
                assert cells[(kind, sequence, origin, lesion)] == 2
    paired = [c for c in cases if c.kind == CaseKind.PAIRED]
    for case in paired:
        assert [v.viewport for v in case.views] == ["T2W", "DWI"]
        assert len({v.asset.pair_key for v in case.views}) == 1
        assert len({v.asset.origin for v in case.views}) == 1
    used = [v.asset_id for c in cases for v in c.views]
    assert len(used) == len(set(used)), "an image appears in two cases"
    assert all(len(c.public_id) == 16 for c in cases)


def test_building_is_reproducible_from_the_seed(engine):
    seed_pool(engine, per_cell=4)
    plan = StudyPlan("a", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),), seed=3)
    first = create_study(engine, plan)
    second = create_study(engine, StudyPlan("b", plan.questions, plan.blocks, seed=3))
    assets = [
        sorted(v.asset_id for c in cases_of(engine, s) for v in c.views) for s in (first, second)
    ]
    assert assets[0] == assets[1]


def test_short_pool_names_every_short_cell_and_creates_nothing(engine):
    seed_pool(engine, per_cell=2, pairs_per_cell=1)
    with pytest.raises(BalanceError) as raised:
        create_study(engine, seed_protocol_plan(cases=12))
    message = str(raised.value)
    # T2W singles may use the T2W images of pairs (3 per cell here), ADC has only 2 per cell.
    assert "T2W real" not in message and "T2W synthetic" not in message
    assert "ADC synthetic with lesion: need 3, the pool has 2 (short by 1)" in message
    assert "ADC real without lesion: need 3, the pool has 2 (short by 1)" in message
    assert "T2W+DWI pairs real with lesion: need 3, the pool has 1 (short by 2)" in message
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 0


def test_shares_that_do_not_divide_the_cases_are_refused(engine):
    seed_pool(engine)
    plan = StudyPlan("odd", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 6),))
    with pytest.raises(BalanceError, match="cannot be split exactly"):
        create_study(engine, plan)


def test_pool_filter_excludes_patients_and_origins(engine):
    seed_pool(engine, per_cell=4)
    plan = StudyPlan(
        "real only",
        TEMPLATES["Seed protocol"],
        (SingleBlock(Sequence.T2W, 4, synthetic_share=0.0),),
        pool=PoolFilter(origins=frozenset({Origin.REAL}), exclude_patients=frozenset({"P0"})),
    )
    study_id = create_study(engine, plan)
    for case in cases_of(engine, study_id):
        (view,) = case.views
        assert view.asset.origin == Origin.REAL and view.asset.patient_id != "P0"
    with pytest.raises(BalanceError, match="short by 1"):
        create_study(
            engine,
            StudyPlan(
                "too few",
                plan.questions,
                (SingleBlock(Sequence.T2W, 10, synthetic_share=0.0),),
                pool=plan.pool,
            ),
        )


def test_two_afc_puts_one_real_and_one_synthetic_side_by_side(engine):
    seed_pool(engine, per_cell=3)
    plan = StudyPlan("2afc", TEMPLATES["2AFC"], (TwoAFCBlock(Sequence.ADC, 6),), seed=1)
    cases = cases_of(engine, create_study(engine, plan))
    assert len(cases) == 6
    real_left = 0
    for case in cases:
        assert case.kind == CaseKind.TWO_AFC and case.origin == "mixed"
        left, right = case.views
        assert (left.viewport, right.viewport) == ("left", "right")
        assert {left.asset.origin, right.asset.origin} == {Origin.REAL, Origin.SYNTHETIC}
        assert left.asset.lesion == right.asset.lesion == case.lesion
        real_left += left.asset.origin == Origin.REAL
    assert real_left == 3
    assert sum(c.lesion for c in cases) == 3


def test_practice_and_repeated_cases(engine):
    seed_pool(engine, per_cell=3)
    plan = StudyPlan(
        "with extras",
        TEMPLATES["Seed protocol"],
        (SingleBlock(Sequence.T2W, 8),),
        practice_cases=2,
        repeated_cases=3,
    )
    study_id = create_study(engine, plan)
    cases = cases_of(engine, study_id)
    practice = [c for c in cases if c.practice]
    repeats = [c for c in cases if c.repeat_of_id is not None]
    main = [c for c in cases if not c.practice and c.repeat_of_id is None]
    assert (len(main), len(practice), len(repeats)) == (8, 2, 3)
    by_id = {c.id: c for c in cases}
    for repeat in repeats:
        original = by_id[repeat.repeat_of_id]
        assert not original.practice and original.repeat_of_id is None
        assert [v.asset_id for v in repeat.views] == [v.asset_id for v in original.views]
        assert repeat.public_id != original.public_id
    practice_assets = {v.asset_id for c in practice for v in c.views}
    assert not practice_assets & {v.asset_id for c in main for v in c.views}
    roles = {row["role"] for row in study_composition(engine, study_id)}
    assert roles == {"study", "practice", "repeat"}
    assert power_summary(engine, study_id).cases == 8


def test_practice_cases_show_both_origins_and_both_lesion_states(engine):
    """The defect: the demo's two practice cases were both real without a lesion."""
    seed_pool(engine, per_cell=6)
    for seed in range(8):
        plan = StudyPlan(
            f"practice {seed}",
            TEMPLATES["Seed protocol"],
            (SingleBlock(Sequence.T2W, 4),),
            practice_cases=4,
            seed=seed,
        )
        cases = cases_of(engine, create_study(engine, plan))
        cells = [
            (c.origin.value, c.lesion) for c in sorted(cases, key=lambda c: c.id) if c.practice
        ]
        assert sorted(cells) == [("real", 0), ("real", 1), ("synthetic", 0), ("synthetic", 1)]
        # The first two already differ in both.
        assert cells[0][0] != cells[1][0] and cells[0][1] != cells[1][1]
        delete_study(engine, create_study(engine, StudyPlan("x", plan.questions, plan.blocks)))


def test_largest_fitting_cases_is_a_study_the_pool_can_give(engine):
    """The defect: the builder offered 32 of each, which the demo's pool never gives."""
    seed_pool(engine, per_cell=5, pairs_per_cell=2)
    shape = (SingleBlock(Sequence.T2W, 0), SingleBlock(Sequence.ADC, 0), PairedBlock())
    # 2 pairs per cell allow 8 pairs; the 3 T2W images per cell the pairs leave would allow 12
    # T2W singles: 8 of each is the largest multiple of 4 that fits every block.
    assert largest_fitting_cases(engine, shape) == 8
    assert largest_fitting_cases(engine, shape[:2]) == 20
    assert largest_fitting_cases(engine, shape[:2], cap=12) == 12
    blocks = tuple(
        SingleBlock(b.sequence, 8) if isinstance(b, SingleBlock) else PairedBlock(cases=8)
        for b in shape
    )
    create_study(engine, StudyPlan("fits", TEMPLATES["Seed protocol"], blocks))
    too_many = tuple(
        SingleBlock(b.sequence, 12) if isinstance(b, SingleBlock) else PairedBlock(cases=12)
        for b in shape
    )
    with pytest.raises(BalanceError):
        create_study(engine, StudyPlan("too many", TEMPLATES["Seed protocol"], too_many))
    assert largest_fitting_cases(engine, (SingleBlock(Sequence.OTHER, 0),)) == 0


def test_a_closed_study_can_be_reopened_and_the_history_says_so(engine):
    seed_pool(engine)
    study_id = create_study(
        engine, StudyPlan("reopen", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )
    with pytest.raises(DesignError, match="only a closed study"):
        reopen_study(engine, study_id)
    open_study(engine, study_id, actor="coordinator")
    close_study(engine, study_id, actor="coordinator")
    reopen_study(engine, study_id, actor="coordinator", note="two readers had not finished")
    with transaction(engine) as session:
        study = session.get(Study, study_id)
        assert study.status == StudyStatus.OPEN and study.closed_at is None
    history = study_history(engine, study_id)
    assert [(e.action, e.actor, e.note) for e in history] == [
        (StudyAction.OPENED, "coordinator", ""),
        (StudyAction.CLOSED, "coordinator", ""),
        (StudyAction.REOPENED, "coordinator", "two readers had not finished"),
    ]


def test_questions_are_editable_in_draft_and_frozen_once_open(engine):
    seed_pool(engine)
    study_id = create_study(
        engine, StudyPlan("q", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )
    first, second = study_questions(engine, study_id)
    update_question(
        engine,
        first.id,
        QuestionSpec(QuestionKind.REAL_OR_SYNTHETIC, "Echt oder synthetisch?", ("Echt", "Synth")),
    )
    with pytest.raises(QuestionError, match="exactly two options"):
        update_question(
            engine,
            first.id,
            QuestionSpec(QuestionKind.REAL_OR_SYNTHETIC, "?", ("a", "b", "c")),
        )
    add_questions(engine, study_id, TEMPLATES["Realism rating"])
    remove_question(engine, second.id)
    questions = study_questions(engine, study_id)
    assert [q.position for q in questions] == [1, 2, 3]
    assert questions[0].spec.wording == "Echt oder synthetisch?"
    assert [q.spec.kind for q in questions[1:]] == [
        QuestionKind.LIKERT_REALISM,
        QuestionKind.CONFIDENCE,
    ]

    open_study(engine, study_id)
    frozen = QuestionSpec(QuestionKind.REAL_OR_SYNTHETIC, "changed", ("Real", "Synthetic"))
    with pytest.raises(StudyFrozenError, match="frozen"):
        update_question(engine, questions[0].id, frozen)
    with pytest.raises(StudyFrozenError):
        add_questions(engine, study_id, TEMPLATES["2AFC"])
    with pytest.raises(StudyFrozenError):
        remove_question(engine, questions[0].id)
    with pytest.raises(StudyFrozenError):
        delete_study(engine, study_id)


def test_open_creates_assignments_and_close_ends_the_study(engine):
    seed_pool(engine)
    study_id = create_study(
        engine,
        StudyPlan(
            "open",
            TEMPLATES["Seed protocol"],
            (SingleBlock(Sequence.T2W, 4),),
            practice_cases=1,
        ),
    )
    early = add_reader(engine, study_id, "early")
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Assignment)) == 0
    open_study(engine, study_id)
    late = add_reader(engine, study_id, "late")
    with transaction(engine) as session:
        for reader_id in (early.reader_id, late.reader_id):
            positions = session.scalars(
                select(Assignment.position).where(Assignment.reader_id == reader_id)
            ).all()
            assert sorted(positions) == list(range(5))
    with pytest.raises(StudyFrozenError):
        open_study(engine, study_id)
    close_study(engine, study_id)
    with transaction(engine) as session:
        study = session.get(Study, study_id)
        assert study.status == StudyStatus.CLOSED and study.closed_at is not None


def test_opening_needs_a_question_for_every_case_kind(engine):
    seed_pool(engine)
    study_id = create_study(
        engine,
        StudyPlan("no 2afc question", TEMPLATES["Seed protocol"], (TwoAFCBlock(Sequence.T2W, 2),)),
    )
    with pytest.raises(DesignError, match="2afc cases that no question applies to"):
        open_study(engine, study_id)


def test_power_summary_before_opening(engine):
    seed_pool(engine, per_cell=5, pairs_per_cell=2)
    plan = StudyPlan(
        "power",
        TEMPLATES["Seed protocol"],
        (SingleBlock(Sequence.T2W, 16), PairedBlock(cases=8)),
        repeated_cases=2,
        practice_cases=1,
    )
    summary = power_summary(engine, create_study(engine, plan))
    assert summary.cases == 24
    assert summary.ci_halfwidth == pytest.approx(ci_halfwidth(24))
    assert summary.cases_needed == sample_size_accuracy(0.60, 0.50, 0.80, 0.05) == 210
    assert summary.per_sequence["T2W"][0] == 16
    assert summary.per_sequence["T2W+DWI"][0] == 8
