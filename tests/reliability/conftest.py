"""Fixtures of the reliability tests: app servers a test may kill, and headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from app_server import AppServer

ROOT = Path(__file__).resolve().parents[2]
ROOT_CONFTEST = ROOT / "tests" / "conftest.py"
CHROMIUM = Path("/usr/bin/chromium")


def suite_require(config: pytest.Config, condition: bool, reason: str) -> None:
    """`tests/conftest.py`'s `require` (every conftest is imported as "conftest")."""
    config.pluginmanager.get_plugin(str(ROOT_CONFTEST)).require(condition, reason)


@pytest.fixture
def app_servers() -> Iterator[list[AppServer]]:
    """A list to append started `AppServer`s to; every one still running is stopped at the end."""
    servers: list[AppServer] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def browser(request: pytest.FixtureRequest):
    """Headless Debian Chromium; skips where it is missing, except under CI=true."""
    suite_require(
        request.config, CHROMIUM.exists(), f"{CHROMIUM} is not installed (make browser installs it)"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema (search_path in the URL, as a deployment would set
    it in VTT_DATABASE_URL), dropped afterwards."""
    import uuid

    import sqlalchemy

    suite = request.config.pluginmanager.get_plugin(str(ROOT_CONFTEST))
    suite.require(
        suite._postgres_reachable(), f"PostgreSQL is not reachable at {suite.POSTGRES_URL}"
    )
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(suite.POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{suite.POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
