"""Scale-out: two app server processes share one PostgreSQL database and one asset folder.
Readers are spread across both; a reader who lands on the other server (a lost sticky session)
signs in again and resumes where they were; the same case submitted through both servers at once
is saved once. Every answer is in the database exactly once, with its revision."""

from __future__ import annotations

import pytest
from app_server import AppServer
from reliability_support import (
    fill_case,
    open_app,
    open_reading_study,
    read_cases,
    settle,
    sign_in,
    start_reading,
)
from sqlalchemy import func, select

from study.db import make_engine, migrate, transaction
from study.models import Answer, AnswerRevision, Assignment
from study.storage import AssetStore

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]

CASES = 2


def test_two_app_servers_on_one_database_lose_and_double_nothing(
    postgres_url, tmp_path, app_servers, browser
):
    data_dir = tmp_path / "shared-instance"
    engine = make_engine(postgres_url)
    migrate(engine)
    study = open_reading_study(
        engine, readers=3, cases=CASES, store=AssetStore(data_dir / "assets")
    )
    (first_reader, first_code), (second_reader, second_code), (racing_reader, racing_code) = (
        study.codes.items()
    )
    env = {"VTT_DATABASE_URL": postgres_url, "VTT_DATA_DIR": str(data_dir), "VTT_SEED_DEMO": "0"}
    servers = [AppServer(env, tmp_path / f"streamlit-{i}.log") for i in (1, 2)]
    for server in servers:
        app_servers.append(server)
        server.launch()
    for server in servers:
        server.wait_until_ready()
    one, two = servers

    def reader_on(server: AppServer, code: str):
        page = open_app(browser, server.url)
        sign_in(page, code)
        return page

    # Two readers, one on each server, each half-way through (both servers' first script runs,
    # the slow ones, go on at the same time).
    first_page, second_page = open_app(browser, one.url), open_app(browser, two.url)
    for page, code in ((first_page, first_code), (second_page, second_code)):
        sign_in(page, code)
        start_reading(page)
        read_cases(page, 1, 1, CASES)
        page.context.close()

    # Each comes back through the other server and finishes there.
    for server, code in ((two, first_code), (one, second_code)):
        page = reader_on(server, code)
        read_cases(page, 2, CASES, CASES)
        page.context.close()

    # One reader, signed in through both servers, submits the same case on both at once.
    pages = [reader_on(server, racing_code) for server in servers]
    for page in pages:
        start_reading(page)
        page.get_by_text(f"Case 1 of {CASES}", exact=True).wait_for()
        settle(page)
        fill_case(page)
    for page in pages:
        page.get_by_role("button", name="Submit and next").click()
    for page in pages:
        page.get_by_text(f"Case 2 of {CASES}", exact=True).wait_for()
        page.context.close()

    with transaction(engine) as session:
        per_reader = dict(
            session.execute(select(Answer.reader_id, func.count()).group_by(Answer.reader_id)).all()
        )
        revisions = session.scalar(select(func.count()).select_from(AnswerRevision))
        highest = session.scalar(select(func.max(Answer.revision)))
        done = dict(
            session.execute(
                select(Assignment.reader_id, func.count(Assignment.completed_at)).group_by(
                    Assignment.reader_id
                )
            ).all()
        )
    engine.dispose()
    assert per_reader == {first_reader: 4 * CASES, second_reader: 4 * CASES, racing_reader: 4}
    assert revisions == sum(per_reader.values()) and highest == 1
    assert done == {first_reader: CASES, second_reader: CASES, racing_reader: 1}
