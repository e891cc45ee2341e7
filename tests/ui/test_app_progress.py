"""The sequential design through app.py (Streamlit AppTest): the coordinator sets a study's
equivalence margin and target half-width when building it, and the Progress page shows the
half-width each reader and the readers' mean have reached, against that target."""

from __future__ import annotations

from pathlib import Path

import pytest
from seeding import add_assets, grid
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.design import (
    AnalysisSettings,
    SingleBlock,
    StudyPlan,
    analysis_settings,
    create_study,
    open_study,
)
from study.imaging.types import Sequence
from study.models import Study
from study.questions import TEMPLATES
from study.readers import add_reader
from study.simulate import simulate_answers
from study.storage import AssetStore

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def coordinator(password: str, page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    next(t for t in app.text_input if t.label == "User name").set_value("coordinator")
    next(t for t in app.text_input if t.label == "Password").set_value(password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    app.switch_page(page).run()
    assert not app.exception, app.exception
    return app


def test_the_builder_keeps_the_margin_and_the_target(app_engine, admin_password):
    add_assets(app_engine, grid([Sequence.T2W, Sequence.ADC], 3))
    app = coordinator(admin_password, "pages/studies.py")
    app.text_input(key="new-name").input("With a target")
    app.number_input(key="new-T2W").set_value(8)
    app.number_input(key="new-margin").set_value(0.05)
    app.number_input(key="new-target").set_value(0.08)
    next(b for b in app.button if b.label == "Build study").click().run()
    assert not app.error, [e.value for e in app.error]
    with transaction(app_engine) as session:
        settings = session.scalar(select(Study.settings).where(Study.name == "With a target"))
    assert analysis_settings(settings) == AnalysisSettings(0.05, 0.08)


def test_progress_shows_the_half_widths_against_the_target(app_engine, admin_password, data_dir):
    add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
    plan = StudyPlan(
        "Target",
        TEMPLATES["Seed protocol"],
        (SingleBlock(Sequence.T2W, 8),),
        target_halfwidth=0.45,
    )
    study_id = create_study(app_engine, plan)
    for alias in ("R1", "R2"):
        add_reader(app_engine, study_id, alias)
    open_study(app_engine, study_id)
    simulate_answers(app_engine, study_id, seed=4)
    app = coordinator(admin_password, "pages/progress.py")
    assert "Accuracy interval so far" in [s.value for s in app.subheader]
    widths = next(t.value for t in app.dataframe if "half-width" in t.value.columns)
    assert widths["reader"].tolist() == [
        "R1",
        "R2",
        "mean of readers (OR, random readers and cases)",
    ]
    assert widths["cases"].tolist() == [8, 8, 8]
    assert widths["target reached"].tolist() == (widths["half-width"] <= 0.45).tolist()
    target = next(m for m in app.metric if m.label == "Target half-width")
    assert target.value == "±0.450"
    reached = bool(widths["target reached"].all())
    assert target.delta == ("reached" if reached else "not reached yet")
    assert any("Target: a 95% interval of ±0.450" in c.value for c in app.caption)
