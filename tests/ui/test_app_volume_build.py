"""The Studies page builds a study of volumes (Streamlit AppTest): the volume inputs make a
block of stacks with the slices asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from seeding import AssetRow, add_assets
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.imaging.types import Origin, Sequence
from study.models import Case, CaseKind, Study

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_the_builder_makes_volume_cases_of_n_slices(app_engine, admin_password):
    # 4 real stacks (one per patient) and 4 generated ones (one pair key each), 5 slices each.
    rows = [
        AssetRow(Sequence.T2W, origin, 0, f"P{i}" if origin == Origin.REAL else "", key)
        for origin in (Origin.REAL, Origin.SYNTHETIC)
        for i in range(4)
        for key in [f"gen-{i}" if origin == Origin.SYNTHETIC else ""] * 5
    ]
    add_assets(app_engine, rows)
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    next(t for t in app.text_input if t.label == "User name").set_value("coordinator")
    next(t for t in app.text_input if t.label == "Password").set_value(admin_password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    app.switch_page("pages/studies.py").run()
    app.text_input(key="new-name").input("Stacks")
    app.selectbox(key="new-template").set_value("Volumes")
    for key in ("new-T2W", "new-ADC", "new-pairs"):
        app.number_input(key=key).set_value(0)
    app.number_input(key="new-volumes").set_value(4)
    app.number_input(key="new-volume-slices").set_value(3)
    app.checkbox(key="new-balance").uncheck()
    next(b for b in app.button if b.label == "Build study").click().run()
    assert not app.error, [e.value for e in app.error]
    with transaction(app_engine) as session:
        study = session.scalar(select(Study).where(Study.name == "Stacks"))
        cases = session.scalars(select(Case).where(Case.study_id == study.id)).all()
        assert [case.kind for case in cases] == [CaseKind.VOLUME] * 4
        assert sorted(str(case.origin) for case in cases) == ["real"] * 2 + ["synthetic"] * 2
        assert {tuple(view.slice for view in case.views) for case in cases} == {(0, 1, 2)}
