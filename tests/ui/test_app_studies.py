"""The coordinator's Studies, Progress and Readers pages through app.py (Streamlit AppTest):
builder defaults that fit the library, the new study shown after a build, destructive actions
confirmed first, reopening recorded, a simulated study marked as such, and a finished study
sizing the next one."""

from __future__ import annotations

from pathlib import Path

import pytest
from seeding import add_assets, grid, pairs
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.demo import DEMO_QUESTIONS
from study.design import SingleBlock, StudyPlan, close_study, create_study, open_study
from study.imaging.types import Origin, Sequence
from study.models import Reader, Study, StudyStatus
from study.questions import TEMPLATES
from study.readers import add_reader
from study.simulate import simulate_answers

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


def button(app: AppTest, label: str):
    return next(b for b in app.button if b.label == label)


def status_of(engine, study_id: int) -> StudyStatus:
    with transaction(engine) as session:
        return StudyStatus(session.get(Study, study_id).status)


def test_the_builder_offers_counts_the_library_gives_and_shows_the_new_study(
    app_engine, admin_password
):
    rows = grid([Sequence.T2W, Sequence.ADC], 3)
    for origin in (Origin.REAL, Origin.SYNTHETIC):
        for lesion in (0, 1):
            rows += pairs(1, origin, lesion)
    add_assets(app_engine, rows)
    app = coordinator(admin_password, "pages/studies.py")
    # One pair per cell: 4 pairs; the T2W images left give 4 singles as well.
    assert [app.number_input(key=k).value for k in ("new-T2W", "new-ADC", "new-pairs")] == [4] * 3
    for name in ("First", "Second"):
        app.text_input(key="new-name").input(name)
        button(app, "Build study").click().run()
        assert not app.error, [e.value for e in app.error]
        # The Studies tab shows the study just built, not the one chosen before.
        assert app.selectbox(key="studies-pick").value.name == name
        assert any(f"'{name}' was built" in s.value for s in app.success)


def test_closing_and_deleting_ask_first_and_a_reopening_is_recorded(
    app_engine, admin_password, reading_study
):
    study_id, _ = reading_study()
    app = coordinator(admin_password, "pages/studies.py")
    # "Close the study" opens a box that says what happens; only its button closes.
    assert "Close the study" not in {b.label for b in app.button}
    assert status_of(app_engine, study_id) == StudyStatus.OPEN
    button(app, "Close it").click().run()
    assert status_of(app_engine, study_id) == StudyStatus.CLOSED
    app.text_input(key=f"reopen-reason-{study_id}").input("one reader had not finished")
    button(app, "Reopen it").click().run()
    assert status_of(app_engine, study_id) == StudyStatus.OPEN
    assert any(
        "reopened" in c.value and "one reader had not finished" in c.value for c in app.caption
    )

    draft = create_study(
        app_engine,
        StudyPlan("Draft", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),)),
    )
    app.run()
    pick = app.selectbox(key="studies-pick")
    pick.select_index(next(i for i, o in enumerate(pick.options) if o.startswith("Draft"))).run()
    assert "Delete this draft" not in {b.label for b in app.button}
    button(app, "Delete it").click().run()
    with transaction(app_engine) as session:
        assert session.get(Study, draft) is None


def test_revoking_a_code_asks_first(app_engine, admin_password, reading_study):
    study_id, _ = reading_study()
    app = coordinator(admin_password, "pages/readers.py")
    assert "Revoke" not in {b.label for b in app.button}
    button(app, "Revoke the code").click().run()
    with transaction(app_engine) as session:
        (reader,) = session.scalars(select(Reader).where(Reader.study_id == study_id))
        assert reader.revoked_at is not None


def test_progress_closes_only_after_confirmation(app_engine, admin_password, data_dir):
    add_assets(app_engine, grid([Sequence.T2W], 1))
    study_id = create_study(
        app_engine, StudyPlan("P", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )
    open_study(app_engine, study_id)
    add_reader(app_engine, study_id, "r")
    app = coordinator(admin_password, "pages/progress.py")
    assert "Close the study" not in {b.label for b in app.button}
    button(app, "Close it").click().run()
    assert status_of(app_engine, study_id) == StudyStatus.CLOSED


def test_a_finished_study_sizes_the_next_one(app_engine, admin_password):
    add_assets(app_engine, grid([Sequence.T2W], 4))
    plan = StudyPlan("Pilot", DEMO_QUESTIONS, (SingleBlock(Sequence.T2W, 16),), seed=3)
    study_id = create_study(app_engine, plan)
    for number in (1, 2, 3):
        add_reader(app_engine, study_id, f"reader {number}")
    open_study(app_engine, study_id)
    simulate_answers(app_engine, study_id, seed=3)
    close_study(app_engine, study_id)
    app = coordinator(admin_password, "pages/studies.py")
    # Nothing is computed until a pilot is chosen.
    assert app.selectbox(key="size-pilot").value is None
    assert not any("readers" in d.value.columns for d in app.dataframe)
    app.selectbox(key="size-pilot").select_index(0)
    app.number_input(key="size-effect").set_value(0.2).run()
    assert app.selectbox(key="size-pilot").value.name == "Pilot"
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("Cases needed to detect a mean accuracy of 0.700" in m.value for m in app.markdown)
    (table,) = [d.value for d in app.dataframe if "readers" in d.value.columns]
    assert table["readers"].tolist() == list(range(3, 11))
    assert "cases (random readers and cases)" in table.columns
    app.selectbox(key="size-metric").set_value("auc").run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("mean AUC of 0.700" in m.value for m in app.markdown)
    assert app.get("plotly_chart")


def test_the_builder_times_the_exposure_with_a_staircase(app_engine, admin_password):
    add_assets(app_engine, grid([Sequence.T2W, Sequence.ADC], 3))
    app = coordinator(admin_password, "pages/studies.py")
    app.text_input(key="new-name").input("Timed")
    app.selectbox(key="new-template").set_value("Timed exposure (HYPE)")
    for key, value in {"new-T2W": 8, "new-ADC": 0, "new-pairs": 0}.items():
        app.number_input(key=key).set_value(value)
    app.selectbox(key="new-exposure").set_value("Staircase (HYPE-time)")
    app.number_input(key="new-exposure-ms").set_value(400)
    app.number_input(key="new-exposure-step").set_value(25)
    button(app, "Build study").click().run()
    assert not app.error, [e.value for e in app.error]
    with transaction(app_engine) as session:
        study = session.scalar(select(Study).where(Study.name == "Timed"))
        exposures = {tuple(sorted(case.exposure.items())) for case in study.cases}
    assert exposures == {
        (
            ("adaptive", True),
            ("block", 0),
            ("max_ms", 1000),
            ("min_ms", 100),
            ("ms", 400),
            ("step_ms", 25),
        )
    }
    # A timed study with going back is refused, and nothing is built.
    app.text_input(key="new-name").input("Timed with going back")
    app.checkbox(key="new-revisit").check()
    button(app, "Build study").click().run()
    assert "cannot go back in a study with timed exposure" in app.error[0].value
    with transaction(app_engine) as session:
        assert session.scalar(select(Study).where(Study.name == "Timed with going back")) is None
