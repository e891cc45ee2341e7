"""Signed-in browsers: a reload or a new tab keeps the sign-in, sign-out and revocation end it.

A sign-in (access code or password) is checked in the app, which then makes a session row
holding the hash of a one-time claim ticket. The browser trades the ticket once, within
`CLAIM_SECONDS`, at the app's session route for a random session token in an HTTP-only,
SameSite=Strict cookie (`SESSION_COOKIE`); the database keeps only the token's hash. Each new
page load finds its session by that cookie, so nothing in the address bar or in the page's
scripts can sign anyone in. A session ends at sign-out, when it expires
(`VTT_SESSION_HOURS`), and when its reader's code is revoked or replaced or its account
disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from study import settings
from study.db import transaction
from study.models import Account, Reader, WebSession, utcnow

SESSION_COOKIE = "vtt_session"
CLAIM_SECONDS = 120


@dataclass(frozen=True)
class StartedSession:
    """A new browser session: its id (to end it) and its one-time claim ticket."""

    id: int
    ticket: str


@dataclass(frozen=True)
class SignedIn:
    """Who a browser session belongs to."""

    session_id: int
    role: str
    reader_id: int | None
    account_id: int | None


@dataclass(frozen=True)
class ClaimedSession:
    """A session token for the cookie, and how long the cookie may live."""

    token: str
    max_age_s: int


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def session_lifetime() -> timedelta:
    return timedelta(hours=float(settings.get("VTT_SESSION_HOURS")))


def start_session(
    engine: Engine, role: str, *, reader_id: int | None = None, account_id: int | None = None
) -> StartedSession:
    """Record a sign-in that has just been checked, with its one-time claim ticket."""
    ticket = secrets.token_urlsafe(32)
    now = utcnow()
    with transaction(engine) as session:
        row = WebSession(
            claim_hash=_hash(ticket),
            claim_expires_at=now + timedelta(seconds=CLAIM_SECONDS),
            role=role,
            reader_id=reader_id,
            account_id=account_id,
            expires_at=now + session_lifetime(),
        )
        session.add(row)
        session.flush()
        return StartedSession(row.id, ticket)


def claim_session(engine: Engine, ticket: str) -> ClaimedSession | None:
    """Trade a claim ticket, once and in time, for the session's token; None otherwise."""
    if not ticket:
        return None
    now = utcnow()
    token = secrets.token_urlsafe(32)
    with transaction(engine) as session:
        row = session.execute(
            update(WebSession)
            .where(
                WebSession.claim_hash == _hash(ticket),
                WebSession.claim_expires_at > now,
                WebSession.ended_at.is_(None),
            )
            .values(token_hash=_hash(token), claim_hash=None, claim_expires_at=None)
            .returning(WebSession.expires_at)
            .execution_options(synchronize_session=False)
        ).first()
    if row is None:
        return None
    expires_at = row.expires_at
    if expires_at.tzinfo is None:  # SQLite hands back naive UTC
        expires_at = expires_at.replace(tzinfo=now.tzinfo)
    return ClaimedSession(token, max(0, int((expires_at - now).total_seconds())))


def _still_valid(session: Session, row: WebSession) -> bool:
    if row.reader_id is not None:
        reader = session.get(Reader, row.reader_id)
        return reader is not None and reader.code_hash is not None and reader.revoked_at is None
    account = session.get(Account, row.account_id)
    return account is not None and account.disabled_at is None


def resume_session(engine: Engine, token: str | None) -> SignedIn | None:
    """Who the cookie's token signs in, while its session lasts; None otherwise."""
    if not token:
        return None
    with transaction(engine) as session:
        row = session.scalar(
            select(WebSession).where(
                WebSession.token_hash == _hash(token),
                WebSession.ended_at.is_(None),
                WebSession.expires_at > utcnow(),
            )
        )
        if row is None or not _still_valid(session, row):
            return None
        return SignedIn(row.id, row.role, row.reader_id, row.account_id)


def end_session(engine: Engine, session_id: int | None = None, *, token: str | None = None) -> None:
    """Sign-out: the session (by id, or by its cookie's token) stops working at once."""
    if session_id is not None:
        which = WebSession.id == session_id
    elif token:
        which = WebSession.token_hash == _hash(token)
    else:
        return
    with transaction(engine) as session:
        session.execute(
            update(WebSession).where(which, WebSession.ended_at.is_(None)).values(ended_at=utcnow())
        )


def end_sessions(
    session: Session, *, reader_id: int | None = None, account_id: int | None = None
) -> None:
    """End every session of a reader or an account (in the caller's transaction)."""
    if (reader_id is None) == (account_id is None):
        raise ValueError("end_sessions needs either a reader_id or an account_id")
    owner = (
        WebSession.reader_id == reader_id
        if reader_id is not None
        else WebSession.account_id == account_id
    )
    session.execute(
        update(WebSession).where(owner, WebSession.ended_at.is_(None)).values(ended_at=utcnow())
    )
