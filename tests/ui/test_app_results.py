"""The results and exports pages through app.py (Streamlit AppTest): a coordinator sees
tables and plots of an answered study, filters a subgroup and finds every download; an
analyst lands on the results and reaches no coordinator page; a reader reaches neither."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from seeding import add_assets, grid
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.models import Case
from study.questions import TEMPLATES
from study.readers import add_reader, create_analyst, set_public_code, sign_in_with_code
from study.reading import next_case, record_answer
from study.simulate import simulate_answers
from study.storage import AssetStore

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[2] / "app.py")
COORDINATOR_PAGES = (
    "pages/import_assets.py",
    "pages/library.py",
    "pages/studies.py",
    "pages/readers.py",
    "pages/progress.py",
)


@pytest.fixture
def answered_study(app_engine, data_dir: Path) -> tuple[int, str]:
    """Eight T2W cases read by two readers (real or synthetic, lesion, realism, confidence),
    and a third reader who has not started; returns (study id, that reader's code)."""
    add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
    plan = StudyPlan(
        "Results test",
        TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"],
        (SingleBlock(Sequence.T2W, 8),),
        repeated_cases=1,
    )
    study_id = create_study(app_engine, plan)
    readers = [add_reader(app_engine, study_id, alias).reader_id for alias in ("A", "B")]
    waiting = add_reader(app_engine, study_id, "C").code
    open_study(app_engine, study_id)
    with transaction(app_engine) as session:
        truth = {
            c.public_id: str(c.origin)
            for c in session.scalars(select(Case).where(Case.study_id == study_id))
        }
    rng = np.random.default_rng(3)
    for reader in readers:
        while (view := next_case(app_engine, reader)) is not None:
            values = {
                "real_or_synthetic": truth[view.public_id]
                if rng.random() < 0.7
                else rng.choice(["real", "synthetic"]),
                "lesion_present": rng.choice(["yes", "no"]),
                "likert_realism": str(rng.integers(1, 6)),
                "confidence": str(rng.integers(1, 6)),
            }
            answers = {q.id: values[q.kind.value] for q in view.questions}
            record_answer(app_engine, reader, view.public_id, answers, 2.0)
    return study_id, waiting


def signed_in(username: str, password: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    next(t for t in app.text_input if t.label == "User name").set_value(username)
    next(t for t in app.text_input if t.label == "Password").set_value(password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert not app.exception, app.exception
    return app


def test_coordinator_sees_results_filters_them_and_finds_every_export(
    app_engine, admin_password, answered_study
):
    app = signed_in("coordinator", admin_password)
    app.switch_page("pages/results.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Results"
    assert not app.error, [e.value for e in app.error]
    tables = app.dataframe
    assert len(tables) >= 10
    # Per question: accuracy and the four rates in two tables narrow enough for the page, the
    # positive class named above them.
    accuracy, rates = tables[0].value, tables[1].value
    assert set(accuracy["reader"]) == set(rates["reader"]) == {"A", "B", "all readers"}
    assert list(accuracy.columns) == ["reader", "n", "accuracy (95% CI)", "p vs 0.5", "d'", "c"]
    assert list(rates.columns) == ["reader", "sensitivity", "specificity", "PPV", "NPV"]
    titles = " ".join(m.value for m in app.markdown)
    assert "(positive class: synthetic)" in titles and "(positive class: lesion)" in titles
    charts = app.get("plotly_chart")
    assert len(charts) >= 8  # forests, confusion matrices, ROC, AUC, Likert, lesions, fool rate
    fool_rate = next(t.value for t in tables if "fool_rate" in t.value.columns)
    assert fool_rate["image"].str.startswith("data:image/png;base64,").all()
    assert any("Mean AUC" in m.label for m in app.metric)

    app.multiselect(key="filter-readers").set_value(["A"]).run()
    assert not app.exception, app.exception
    assert set(app.dataframe[0].value["reader"]) == {"A", "all readers"}
    assert any("reader A" in c.value for c in app.caption)
    assert any("at least two readers" in i.value for i in app.info)  # no MRMC for one reader

    app.switch_page("pages/exports.py").run()
    assert not app.exception, app.exception
    downloads = app.get("download_button")
    assert len(downloads) == 8
    assert [s.value for s in app.subheader] == [
        "Answers",
        "Results tables",
        "Report",
        "ROC ratings for MRMC software",
    ]


def test_analyst_lands_on_results_and_reaches_no_coordinator_page(app_engine, answered_study):
    password = create_analyst(app_engine, "ana")
    app = signed_in("ana", password)
    assert app.session_state["role"] == "analyst"
    assert app.title[0].value == "Results"
    assert len(app.dataframe) >= 10

    # The analyst's navigation lists the results and exports pages and no coordinator page.
    session = AppTest.from_file(APP, default_timeout=60)
    session.session_state["role"] = "analyst"
    session.run()
    assert session.title[0].value == "Results"
    # (Checked before switching: after a page switch AppTest lists every file of pages/.)
    for page in COORDINATOR_PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            session.switch_page(page)
    session.switch_page("pages/exports.py").run()
    assert not session.exception, session.exception
    assert session.title[0].value == "Exports"
    for page in COORDINATOR_PAGES:
        # Run directly, each coordinator page refuses the analyst.
        direct = AppTest.from_file(str(Path(APP).parent / page), default_timeout=60)
        direct.session_state["role"] = "analyst"
        direct.run()
        assert [e.value for e in direct.error] == [
            "This page needs you to sign in with the right role."
        ]
        assert not direct.button and not direct.dataframe


def test_a_reader_cannot_reach_the_results(app_engine, answered_study):
    _, code = answered_study
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params["code"] = code
    app.run()
    assert app.session_state["role"] == "reader"
    for page in ("pages/results.py", "pages/exports.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page(page)
    # Run directly, the page's own guard stops before it shows anything.
    page = AppTest.from_file(str(Path(APP).parent / "pages" / "results.py"), default_timeout=60)
    page.session_state["role"] = "reader"
    page.run()
    assert page.error and not page.dataframe and not page.get("plotly_chart")


def test_simulated_answers_and_visitors_are_named_on_every_page_that_shows_them(
    app_engine, admin_password, data_dir
):
    add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
    plan = StudyPlan("Simulated", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 8),))
    study_id = create_study(app_engine, plan)
    add_reader(app_engine, study_id, "simulated reader 1")
    open_study(app_engine, study_id)
    set_public_code(app_engine, study_id, "open-to-all")
    sign_in_with_code(app_engine, "open-to-all")
    simulate_answers(app_engine, study_id, seed=1)
    app = signed_in("coordinator", admin_password)
    for page in ("pages/results.py", "pages/exports.py", "pages/progress.py", "pages/studies.py"):
        app.switch_page(page).run()
        assert not app.exception, app.exception
        assert any("Simulated answers" in w.value for w in app.warning), page
    app.switch_page("pages/results.py").run()
    assert any(
        "1 visitor(s) read this study" in i.value and "1 finished" in i.value for i in app.info
    )
