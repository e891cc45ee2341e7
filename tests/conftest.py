"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Apps started by tests (AppTest and `streamlit run` subprocesses) begin with an empty database;
# the demo's own tests turn seeding back on.
os.environ["VTT_SEED_DEMO"] = "0"


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` is false, except under CI=true, where it is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real ProstateX DICOM, Van Dyke MRMC data); skips where absent."""
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} is not present")
    # Resolved, as the importers resolve the paths they name in messages.
    return SHARED_DATA.resolve()


POSTGRES_URL = os.environ.get(
    "VTT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_reachable() -> bool:
    import sqlalchemy

    try:
        with sqlalchemy.create_engine(POSTGRES_URL).connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except Exception:
        return False
    return True


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path):
    """A migrated, empty database: SQLite in tmp_path, or a fresh PostgreSQL schema."""
    import uuid

    import sqlalchemy

    from study.db import make_engine, migrate

    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.sqlite3'}")
        migrate(engine)
        yield engine
        engine.dispose()
        return
    require(_postgres_reachable(), f"PostgreSQL is not reachable at {POSTGRES_URL}")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty VTT_DATA_DIR for the test."""
    folder = tmp_path / "instance"
    folder.mkdir()
    monkeypatch.setenv("VTT_DATA_DIR", str(folder))
    return folder
