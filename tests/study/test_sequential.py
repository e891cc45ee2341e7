"""Sequential design: a study's analysis settings (margin, target half-width) as built, and
the half-widths its readers have reached so far against the target."""

from __future__ import annotations

import pytest
from seeding import add_assets, grid
from sqlalchemy import select
from statsmodels.stats.proportion import proportion_confint

from study.analysis import tidy_answers
from study.db import transaction
from study.design import (
    AnalysisSettings,
    DesignError,
    SingleBlock,
    StudyPlan,
    analysis_settings,
    create_study,
    open_study,
)
from study.imaging.types import Sequence
from study.models import Case, Study
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.sequential import accuracy_precision
from study.stats.equivalence import MEAN_OF_READERS


def build(engine, name: str = "Sequential", **settings) -> int:
    add_assets(engine, grid([Sequence.T2W], 3))
    plan = StudyPlan(name, TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 12),), **settings)
    return create_study(engine, plan)


def read(engine, study_id: int, reader_id: int, right: list[bool]) -> None:
    """The reader calls the next len(right) cases, right or wrong as listed."""
    with transaction(engine) as session:
        origin = {
            c.public_id: str(c.origin)
            for c in session.scalars(select(Case).where(Case.study_id == study_id))
        }
    flip = {"real": "synthetic", "synthetic": "real"}
    for is_right in right:
        view = next_case(engine, reader_id)
        truth = origin[view.public_id]
        values = {
            q.id: (truth if is_right else flip[truth])
            if q.kind.value == "real_or_synthetic"
            else "no"
            for q in view.questions
        }
        record_answer(engine, reader_id, view.public_id, values, 1.0)


def test_analysis_settings_are_kept_with_the_study(engine) -> None:
    study_id = build(engine, equivalence_margin=0.05, target_halfwidth=0.08)
    with transaction(engine) as session:
        settings = session.get(Study, study_id).settings
    assert analysis_settings(settings) == AnalysisSettings(0.05, 0.08)
    # Studies built before the settings existed get the defaults.
    assert analysis_settings({"blocks": []}) == AnalysisSettings(0.10, None)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"equivalence_margin": 0.5}, "margin must lie strictly between 0 and 0.5"),
        ({"equivalence_margin": 0.0}, "margin must lie strictly between 0 and 0.5"),
        ({"target_halfwidth": 0.0}, "target half-width .* strictly between 0 and 0.5"),
        ({"target_halfwidth": 0.7}, "target half-width .* strictly between 0 and 0.5"),
    ],
)
def test_bad_analysis_settings_build_nothing(engine, settings, message) -> None:
    with pytest.raises(DesignError, match=message):
        build(engine, **settings)
    with transaction(engine) as session:
        assert session.scalar(select(Study.id)) is None


def test_half_widths_so_far_against_the_target(engine) -> None:
    study_id = build(engine, target_halfwidth=0.35)
    readers = {alias: add_reader(engine, study_id, alias).reader_id for alias in "ABC"}
    open_study(engine, study_id)
    read(engine, study_id, readers["A"], [True] * 12)
    read(engine, study_id, readers["B"], [True, False] * 6)
    read(engine, study_id, readers["C"], [True, False, False])  # not finished
    precision = accuracy_precision(engine, study_id)
    assert precision.target == 0.35
    table = precision.table.set_index("reader")
    assert list(table.columns) == [
        "question",
        "cases",
        "accuracy",
        "half-width",
        "target reached",
    ]
    tidy = tidy_answers(engine, study_id)
    calls = tidy[tidy["question_kind"] == "real_or_synthetic"]
    for alias in "ABC":
        own = calls[calls["reader"] == alias]
        right = int((own["value"] == own["origin"]).sum())
        low, high = proportion_confint(right, len(own), alpha=0.05, method="beta")
        assert table.loc[alias, "cases"] == len(own)
        assert table.loc[alias, "half-width"] == pytest.approx((high - low) / 2)
        assert table.loc[alias, "target reached"] == ((high - low) / 2 <= 0.35)
    # 12 of 12 right: the exact interval 0.735-1 is 0.13 either side; 3 cases are too few.
    assert table.loc["A", "target reached"] and not table.loc["C", "target reached"]
    mean = table.loc[MEAN_OF_READERS]
    assert mean["cases"] == 12 and mean["accuracy"] == pytest.approx(0.75)
    assert precision.notes == (
        "Real or synthetic, readers' mean: left out: reader C (did not read every case)",
    )
    assert not precision.reached


def test_without_a_target_the_half_widths_are_shown_alone(engine) -> None:
    study_id = build(engine, "No target")
    reader = add_reader(engine, study_id, "A").reader_id
    open_study(engine, study_id)
    assert accuracy_precision(engine, study_id).table.empty
    read(engine, study_id, reader, [True, False])
    precision = accuracy_precision(engine, study_id)
    assert precision.target is None and not precision.reached
    assert "target reached" not in precision.table.columns
    assert precision.table["reader"].tolist() == ["A"]
    assert precision.notes == (
        "Real or synthetic: no readers' mean: a fully crossed block needs at least two "
        "readers, not 1",
    )
