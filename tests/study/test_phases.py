"""Two-phase studies: the informed phase's cases, the rules of its questions, the reader told
between the phases (and not before), and how the ratings changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from study.db import transaction
from study.design import (
    SingleBlock,
    StudyPlan,
    add_questions,
    create_study,
    open_study,
    study_questions,
    update_question,
)
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Case, QuestionKind
from study.phases import PhaseError
from study.questions import TEMPLATES, QuestionSpec
from study.readers import add_reader
from study.reading import (
    ReadingError,
    case_at,
    mark_informed,
    next_case,
    reader_state,
    record_answer,
)
from study.report.data import read_study
from study.report.html import report_html
from study.report.model import study_report
from study.reports import methods_text
from study.simulate import simulate_answers
from study.stats import StatsError
from study.stats.phase_change import SYNTHETIC_MINUS_REAL, phase_change
from study.storage import AssetStore

CASES = 6
TEMPLATE = TEMPLATES["Informed and uninformed phases"]


def import_pictures(engine, folder) -> None:
    rng = np.random.default_rng(4)
    rows = ["path,origin,sequence,lesion,patient_id"]
    for i in range(CASES):
        origin = "real" if i % 2 else "synthetic"
        Image.fromarray((rng.random((10, 10)) * 60000).astype(np.uint16)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{origin},T2W,{i // 2 % 2},{'P' + str(i) if origin == 'real' else ''}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    import_manifest(engine, folder / "manifest.csv", store=AssetStore(folder / "assets"))


def plan(**overrides) -> StudyPlan:
    fields = {
        "name": "Two phases",
        "questions": TEMPLATE,
        "blocks": (SingleBlock(Sequence.T2W, CASES, lesion_share=None),),
        "informed_phase": True,
        "allow_revisit": True,
    }
    return StudyPlan(**{**fields, **overrides})


@pytest.fixture
def phased(engine, tmp_path):
    import_pictures(engine, tmp_path)
    study_id = create_study(engine, plan())
    return study_id


def test_each_case_has_an_informed_copy_of_the_same_images(engine, phased):
    with transaction(engine) as session:
        cases = session.scalars(select(Case).where(Case.study_id == phased)).all()
        first = {c.id: c for c in cases if c.phase == 1}
        second = [c for c in cases if c.phase == 2]
        assert len(first) == len(second) == CASES
        for case in second:
            original = first[case.first_phase_id]
            assert [v.asset_id for v in case.views] == [v.asset_id for v in original.views]
            assert (case.origin, case.lesion) == (original.origin, original.lesion)
            assert case.public_id != original.public_id


@pytest.mark.parametrize(
    ("questions", "informed", "message"),
    [
        (TEMPLATE, False, "asked in the informed phase \\(2\\), but the study has no informed"),
        (
            (*TEMPLATES["Seed protocol"],),
            True,
            "'Real or synthetic\\?' would tell the readers about synthetic images",
        ),
        ((TEMPLATE[2], TEMPLATE[3]), True, "no question is asked in phase 1"),
    ],
)
def test_questions_that_break_the_phases_are_refused(
    engine, tmp_path, questions, informed, message
):
    import_pictures(engine, tmp_path)
    with pytest.raises(PhaseError, match=message):
        create_study(engine, plan(questions=questions, informed_phase=informed))


def test_a_later_question_edit_is_held_to_the_same_rules(engine, phased):
    with pytest.raises(PhaseError, match="would tell the readers"):
        add_questions(
            engine, phased, [QuestionSpec(QuestionKind.WHICH_IS_REAL, "Which?", ("L", "R"))]
        )
    likert = study_questions(engine, phased)[0]
    with pytest.raises(PhaseError, match="would tell the readers"):
        update_question(
            engine,
            likert.id,
            QuestionSpec(QuestionKind.REAL_OR_SYNTHETIC, "Real?", ("Real", "Synthetic")),
        )
    assert study_questions(engine, phased)[0].spec == likert.spec


def answer(engine, reader_id, view) -> None:
    values = {}
    for question in view.questions:
        values[question.id] = question.values[0]
    record_answer(engine, reader_id, view.public_id, values, 2.0)


def test_the_reader_is_told_between_the_phases_and_not_before(engine, phased):
    open_study(engine, phased)
    reader = add_reader(engine, phased, "R").reader_id
    first_images = []
    for _ in range(CASES):
        view = next_case(engine, reader)
        kinds = [q.kind for q in view.questions]
        assert kinds == [QuestionKind.LIKERT_REALISM, QuestionKind.LESION_PRESENT]
        first_images.append(view.viewports[0].canonical_sha256)
        answer(engine, reader, view)
    state = reader_state(engine, reader)
    assert state.informed_pending and not state.progress.finished
    with pytest.raises(ReadingError, match="instructions of the second part first"):
        next_case(engine, reader)
    mark_informed(engine, reader)
    assert not reader_state(engine, reader).informed_pending
    with pytest.raises(ReadingError, match="no second part to start now"):
        mark_informed(engine, reader)
    view = next_case(engine, reader)
    assert [q.kind for q in view.questions] == [
        QuestionKind.LIKERT_REALISM,
        QuestionKind.REAL_OR_SYNTHETIC,
        QuestionKind.CONFIDENCE,
    ]
    # The first part's answers are final now, even in a study that allows going back.
    assert not view.can_go_back
    with pytest.raises(ReadingError, match="first part are final"):
        case_at(engine, reader, CASES - 1)
    second_images = []
    while view is not None:
        second_images.append(view.viewports[0].canonical_sha256)
        answer(engine, reader, view)
        view = next_case(engine, reader)
    assert sorted(second_images) == sorted(first_images)
    assert reader_state(engine, reader).progress.finished


def test_ratings_change_between_the_phases_by_hand():
    rows = []
    # Reader A: synthetic images rated 4, 4 then 2, 3; real images 3 then 3 (no change).
    # Reader B: synthetic 5 then 3; real 4 then 5.
    for reader, origin, image, first, second in [
        ("A", "synthetic", 1, 4, 2),
        ("A", "synthetic", 2, 4, 3),
        ("A", "real", 3, 3, 3),
        ("B", "synthetic", 1, 5, 3),
        ("B", "real", 3, 4, 5),
    ]:
        for phase, value in ((1, first), (2, second)):
            rows.append(
                {
                    "reader": reader,
                    "origin": origin,
                    "phase_case": image,
                    "phase": phase,
                    "question_kind": "likert_realism",
                    "value": str(value),
                    "practice": False,
                    "repeat": False,
                }
            )
    result = phase_change(pd.DataFrame(rows))
    per_reader = result.per_reader.set_index(["reader", "origin"])
    assert per_reader.loc[("A", "synthetic"), "mean_change"] == -1.5
    assert per_reader.loc[("A", "synthetic"), "pairs"] == 2
    assert per_reader.loc[("B", "real"), "mean_change"] == 1.0
    assert np.isnan(per_reader.loc[("A", "real"), "wilcoxon_p"])
    summary = result.summary.set_index("origin")
    assert summary.loc["synthetic", "mean_change"] == pytest.approx(-1.75)
    # Per reader: synthetic change minus real change: A -1.5 - 0, B -2 - 1 = -3; mean -2.25,
    # sd 1.0607, se 0.75, t = -3 on 1 df.
    assert summary.loc[SYNTHETIC_MINUS_REAL, "mean_change"] == pytest.approx(-2.25)
    assert summary.loc[SYNTHETIC_MINUS_REAL, "t"] == pytest.approx(-3.0)
    assert summary.loc[SYNTHETIC_MINUS_REAL, "p"] == pytest.approx(
        2 * 0.10241638234956672, rel=1e-9
    )
    with pytest.raises(StatsError, match="in both phases"):
        phase_change(pd.DataFrame(rows[:1]))


def test_a_simulated_two_phase_study_reports_the_change(engine, phased):
    open_study(engine, phased)
    for alias in ("A", "B", "C"):
        add_reader(engine, phased, alias)
    simulate_answers(engine, phased, seed=3)
    report = study_report(read_study(engine, phased))
    change = report.tables.phase_change
    assert set(change.per_reader["reader"]) == {"A", "B", "C"}
    assert change.per_reader["pairs"].sum() == 3 * CASES
    assert list(change.summary["origin"]) == ["real", "synthetic", SYNTHETIC_MINUS_REAL]
    assert "The study had two phases" in " ".join(methods_text(report.context, report.tables))
    # The informed copies show the same images: counted once.
    assert report.context.cases["cases"].sum() == CASES
    page = report_html(report)
    assert "Realism ratings before and after being told" in page
