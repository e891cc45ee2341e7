"""Signed-in browsers: a claim ticket is traded once, in time, for a session token; the token
signs the browser in until sign-out, expiry, or its reader's or account's revocation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from seeding import add_assets, grid
from sqlalchemy import func, select, update

from study.auth import ensure_coordinator
from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.models import Account, WebSession, utcnow
from study.questions import TEMPLATES
from study.readers import add_reader, create_analyst, disable_account, issue_new_code, revoke_code
from study.sessions import (
    CLAIM_SECONDS,
    claim_session,
    end_session,
    resume_session,
    start_session,
)


@pytest.fixture
def reader(engine) -> int:
    add_assets(engine, grid([Sequence.T2W], 1))
    study_id = create_study(
        engine, StudyPlan("s", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )
    open_study(engine, study_id)
    return add_reader(engine, study_id, "r").reader_id


def test_a_ticket_buys_one_token_that_signs_the_reader_in(engine, reader, monkeypatch):
    monkeypatch.setenv("VTT_SESSION_HOURS", "2")
    started = start_session(engine, "reader", reader_id=reader)
    assert resume_session(engine, started.ticket) is None  # a ticket is not a token
    claimed = claim_session(engine, started.ticket)
    assert claimed is not None and 2 * 3600 - 5 <= claimed.max_age_s <= 2 * 3600
    assert claim_session(engine, started.ticket) is None  # only once
    signed_in = resume_session(engine, claimed.token)
    assert (signed_in.session_id, signed_in.role, signed_in.reader_id) == (
        started.id,
        "reader",
        reader,
    )
    with transaction(engine) as session:
        row = session.get(WebSession, started.id)
        # Only hashes are stored.
        assert claimed.token not in (row.token_hash, row.claim_hash)
        assert started.ticket not in (row.token_hash, row.claim_hash)


@pytest.mark.parametrize("ticket", ["", "not-a-ticket"])
def test_unknown_tickets_buy_nothing(engine, ticket):
    assert claim_session(engine, ticket) is None


def test_a_late_ticket_buys_nothing(engine, reader):
    started = start_session(engine, "reader", reader_id=reader)
    with transaction(engine) as session:
        session.execute(
            update(WebSession)
            .where(WebSession.id == started.id)
            .values(claim_expires_at=utcnow() - timedelta(seconds=1))
        )
    assert CLAIM_SECONDS > 0 and claim_session(engine, started.ticket) is None


def test_sign_out_ends_the_session_by_id_or_by_token(engine, reader):
    tokens = []
    for _ in range(2):
        started = start_session(engine, "reader", reader_id=reader)
        tokens.append((started.id, claim_session(engine, started.ticket).token))
    (first_id, first_token), (_, second_token) = tokens
    end_session(engine, first_id)
    assert resume_session(engine, first_token) is None
    assert resume_session(engine, second_token) is not None
    end_session(engine, token=second_token)
    assert resume_session(engine, second_token) is None


def test_an_expired_session_signs_nobody_in(engine, reader):
    started = start_session(engine, "reader", reader_id=reader)
    token = claim_session(engine, started.ticket).token
    with transaction(engine) as session:
        session.execute(
            update(WebSession)
            .where(WebSession.id == started.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert resume_session(engine, token) is None


@pytest.mark.parametrize("action", [revoke_code, issue_new_code])
def test_revoking_or_replacing_a_code_signs_its_browsers_out(engine, reader, action):
    started = start_session(engine, "reader", reader_id=reader)
    token = claim_session(engine, started.ticket).token
    action(engine, reader)
    assert resume_session(engine, token) is None


def test_disabling_an_account_signs_its_browsers_out(engine):
    create_analyst(engine, "ana")
    ensure_coordinator(engine)
    with transaction(engine) as session:
        accounts = dict(session.execute(select(Account.username, Account.id)).all())
    tokens = {}
    for name, account_id in accounts.items():
        role = "coordinator" if name == "coordinator" else "analyst"
        started = start_session(engine, role, account_id=account_id)
        tokens[name] = claim_session(engine, started.ticket).token
    disable_account(engine, accounts["ana"])
    assert resume_session(engine, tokens["ana"]) is None
    assert resume_session(engine, tokens["coordinator"]).role == "coordinator"


def test_app_processes_starting_together_make_one_coordinator_account(engine, monkeypatch):
    """Two app servers on one database both find no coordinator and both add one: the second
    insert fails on the unique name and falls back to the account the first made."""
    monkeypatch.setenv("VTT_ADMIN_PASSWORD", "a shared password")
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: ensure_coordinator(engine), range(6)))
    assert results == [None] * 6
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 1
