"""Crash: the app server is killed with SIGKILL while a reader is in the middle of a study (one
submission possibly in flight). After a restart every submitted answer is in the database exactly
once, the case in flight is saved whole or not at all, and the reader, signing in again with
their code, resumes at their first unanswered case and can finish the study."""

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

from study.db import open_database, transaction
from study.models import Answer, AnswerRevision, Assignment, Case
from study.storage import AssetStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CASES = 6
CONFIRMED = 3  # cases whose submission the browser saw confirmed before the crash


def saved_cases(engine, reader_id: int) -> dict[str, tuple[int, int, bool]]:
    """public id -> (answers, revisions, assignment completed) for every case of the reader."""
    with transaction(engine) as session:
        rows = session.execute(
            select(
                Case.public_id,
                select(func.count())
                .select_from(Answer)
                .where(Answer.reader_id == reader_id, Answer.case_id == Case.id)
                .scalar_subquery(),
                select(func.count())
                .select_from(AnswerRevision)
                .join(Answer, Answer.id == AnswerRevision.answer_id)
                .where(Answer.reader_id == reader_id, Answer.case_id == Case.id)
                .scalar_subquery(),
                Assignment.completed_at.is_not(None),
            )
            .join(Assignment, Assignment.case_id == Case.id)
            .where(Assignment.reader_id == reader_id)
        ).all()
    return {public_id: (answers, revisions, done) for public_id, answers, revisions, done in rows}


def test_sigkill_mid_study_loses_nothing_and_the_reader_resumes(
    tmp_path, monkeypatch, app_servers, browser
):
    data_dir = tmp_path / "instance"
    monkeypatch.setenv("VTT_DATA_DIR", str(data_dir))
    monkeypatch.delenv("VTT_DATABASE_URL", raising=False)
    engine = open_database()
    study = open_reading_study(
        engine, readers=1, cases=CASES, store=AssetStore(data_dir / "assets")
    )
    engine.dispose()
    [(reader_id, code)] = study.codes.items()
    order = study.orders[reader_id]
    env = {"VTT_DATA_DIR": str(data_dir), "VTT_DATABASE_URL": "", "VTT_SEED_DEMO": "0"}

    first = AppServer(env, tmp_path / "streamlit.log")
    app_servers.append(first)
    first.start()
    page = open_app(browser, first.url)
    sign_in(page, code)
    start_reading(page)
    read_cases(page, 1, CONFIRMED, CASES)
    # The next case is answered and submitted; the server dies while (or just after) it saves.
    page.get_by_text(f"Case {CONFIRMED + 1} of {CASES}", exact=True).wait_for()
    settle(page)
    fill_case(page)
    page.get_by_role("button", name="Submit and next").click()
    first.kill()
    page.context.close()

    engine = open_database()
    saved = saved_cases(engine, reader_id)
    for public_id in order[:CONFIRMED]:
        assert saved[public_id] == (4, 4, True), "a confirmed answer is missing or doubled"
    in_flight = saved[order[CONFIRMED]]
    assert in_flight in {(4, 4, True), (0, 0, False)}, f"half a case was saved: {in_flight}"
    for public_id in order[CONFIRMED + 1 :]:
        assert saved[public_id] == (0, 0, False)
    resume = CONFIRMED + (1 if in_flight[2] else 0)

    second = AppServer(env, tmp_path / "streamlit.log")
    app_servers.append(second)
    second.start()
    page = open_app(browser, second.url)
    sign_in(page, code)
    page.get_by_text(f"Case {resume + 1} of {CASES}", exact=True).wait_for()
    settle(page)
    # Widget keys carry the case's opaque public id: this is the reader's first unanswered case.
    assert page.locator(f'[class*="st-key-answer-{order[resume]}-"]').count() == 4
    read_cases(page, resume + 1, CASES, CASES)
    page.context.close()

    saved = saved_cases(engine, reader_id)
    assert saved == {public_id: (4, 4, True) for public_id in order}
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 4 * CASES
    engine.dispose()
