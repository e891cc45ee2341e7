"""Fixtures for driving app.py with Streamlit's AppTest: an empty data directory, a known
coordinator password, and small studies of generated images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from seeding import add_assets, grid

from study.db import open_database
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.questions import TEMPLATES
from study.readers import add_reader
from study.storage import AssetStore


@pytest.fixture
def admin_password() -> str:
    return "coordinator-test-password"


@pytest.fixture
def app_engine(data_dir: Path, admin_password: str, monkeypatch: pytest.MonkeyPatch):
    """The app's own database (SQLite under VTT_DATA_DIR), migrated."""
    monkeypatch.setenv("VTT_ADMIN_PASSWORD", admin_password)
    monkeypatch.delenv("VTT_DATABASE_URL", raising=False)
    engine = open_database()
    yield engine
    engine.dispose()


@pytest.fixture
def reading_study(app_engine, data_dir: Path) -> Callable[..., tuple[int, str]]:
    """Make an open study of four T2W cases (plus options); returns (study id, reader code)."""

    def make(name: str = "Reading test", **options) -> tuple[int, str]:
        add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
        plan = StudyPlan(
            name, TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),), **options
        )
        study_id = create_study(app_engine, plan)
        open_study(app_engine, study_id)
        return study_id, add_reader(app_engine, study_id, "reader").code

    return make
