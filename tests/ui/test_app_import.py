"""The landing page and the coordinator's import page, through app.py (Streamlit AppTest)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.models import Asset

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def labelled(app: AppTest, label: str):
    return next(t for t in app.text_input if t.label == label)


def signed_in_coordinator(password: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    labelled(app, "User name").set_value("coordinator")
    labelled(app, "Password").set_value(password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert not app.exception, app.exception
    assert app.session_state["role"] == "coordinator"
    return app


def assets_in(engine) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(Asset))


def test_landing_page_says_what_the_app_does_and_refuses_a_wrong_password(app_engine):
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert "VTT Studio" in app.title[0].value
    assert any("Visual Turing Test" in m.value for m in app.markdown)
    labelled(app, "User name").set_value("coordinator")
    labelled(app, "Password").set_value("wrong")
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert "role" not in app.session_state
    assert app.error


def test_import_page_is_neither_listed_for_nor_usable_by_an_anonymous_visitor(app_engine):
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/import_assets.py")
    # Run directly, the page's own guard stops before showing anything.
    page = AppTest.from_file(str(Path(APP).parent / "pages" / "import_assets.py"))
    page.run()
    assert page.error and not page.button and not page.text_input


def test_coordinator_imports_real_prostatex_series_from_a_server_manifest(
    app_engine, admin_password, shared_data, tmp_path
):
    manifest = tmp_path / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "origin", "sequence", "lesion", "patient_id", "slices"])
        for sequence, folder in [("T2W", "t2w"), ("ADC", "adc"), ("DWI", "hbv")]:
            series = shared_data / "prostatex" / "ProstateX-0001" / folder
            writer.writerow([series, "real", sequence, "0", "ProstateX-0001", "central:2"])
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/import_assets.py").run()
    app.text_input(key="server-manifest").set_value(str(manifest)).run()
    next(b for b in app.button if b.label == "Import manifest").click().run()
    assert not app.exception, app.exception
    assert [s.value for s in app.success] == ["added 6 assets (0 were already in the library)"]
    assert assets_in(app_engine) == 6


def test_a_bad_server_manifest_imports_nothing_and_names_the_problem(
    app_engine, admin_password, tmp_path
):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "ok.png")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,origin,sequence,lesion,patient_id\nok.png,real,T2W,0,P1\nok.png,real,MRI-X,0,P1\n"
    )
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/import_assets.py").run()
    app.text_input(key="server-manifest").set_value(str(manifest)).run()
    next(b for b in app.button if b.label == "Import manifest").click().run()
    message = app.error[0].value
    assert "Nothing was imported" in message and "line 3" in message and "MRI-X" in message
    assert assets_in(app_engine) == 0
