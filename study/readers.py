"""Readers and accounts: personal access codes (shown once, stored hashed), revocation,
sign-in by code with throttling, and analyst accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from study import settings
from study.auth import (
    hash_access_code,
    hash_password,
    new_access_code,
    record_failed_sign_in,
    sign_in_delay,
    verify_access_code,
)
from study.db import transaction
from study.imaging.errors import VTTError
from study.models import (
    Account,
    AccountRole,
    Answer,
    Assignment,
    Reader,
    ReaderKind,
    Study,
    StudyStatus,
    utcnow,
)
from study.reading import create_assignments
from study.sessions import end_sessions

READER_CODE_KEY = "reader-code"


class ReaderAdminError(VTTError):
    """A reader or account change that cannot be made; the message says why."""


class SignInError(VTTError):
    """A sign-in by code that failed; the message is safe to show in the browser."""


@dataclass(frozen=True)
class IssuedCode:
    """A reader's new access code and link: shown to the coordinator once, never stored."""

    reader_id: int
    alias: str
    code: str
    link: str


@dataclass(frozen=True)
class ReaderInfo:
    id: int
    alias: str
    experience_years: float | None
    specialty: str
    code_created_at: datetime | None
    revoked: bool
    kind: ReaderKind = ReaderKind.PERSON


def public_url(address: str | None = None) -> str:
    """The address readers open: VTT_PUBLIC_URL when it is set, else `address` (the one the
    coordinator's browser is using), else http://localhost:8501."""
    return (settings.get("VTT_PUBLIC_URL") or address or "http://localhost:8501").rstrip("/")


def reader_link(code: str, address: str | None = None) -> str:
    """The personal link `<public_url(address)>/?code=...`."""
    return f"{public_url(address)}/?code={code}"


def _issue(reader: Reader, address: str | None = None) -> IssuedCode:
    code = new_access_code()
    reader.code_hash = hash_access_code(code)
    reader.code_created_at = utcnow()
    reader.revoked_at = None
    return IssuedCode(reader.id, reader.alias, code, reader_link(code, address))


def add_reader(
    engine: Engine,
    study_id: int,
    alias: str,
    *,
    experience_years: float | None = None,
    specialty: str = "",
    address: str | None = None,
) -> IssuedCode:
    """Add a reader with a new access code (160 random bits); in an open study they get their
    cases at once. `address` is the app's address for the link when VTT_PUBLIC_URL is unset."""
    alias = alias.strip()
    if not alias:
        raise ReaderAdminError("a reader needs an alias")
    if experience_years is not None and experience_years < 0:
        raise ReaderAdminError("experience cannot be negative")
    with transaction(engine) as session:
        study = session.get(Study, study_id)
        if study is None:
            raise ReaderAdminError(f"there is no study with id {study_id}")
        if study.status == StudyStatus.CLOSED:
            raise ReaderAdminError(f"study '{study.name}' is closed: readers cannot be added")
        taken = session.scalar(
            select(Reader.id).where(Reader.study_id == study_id, Reader.alias == alias)
        )
        if taken is not None:
            raise ReaderAdminError(f"study '{study.name}' has a reader called '{alias}' already")
        reader = Reader(
            study_id=study_id,
            alias=alias,
            experience_years=experience_years,
            specialty=specialty.strip(),
        )
        session.add(reader)
        session.flush()
        issued = _issue(reader, address)
        if study.status == StudyStatus.OPEN:
            create_assignments(session, study, reader)
        return issued


def issue_new_code(engine: Engine, reader_id: int, address: str | None = None) -> IssuedCode:
    """Replace a reader's code (the old one stops working, and so do the reader's signed-in
    browsers); also lifts a revocation."""
    with transaction(engine) as session:
        reader = session.get(Reader, reader_id)
        if reader is None:
            raise ReaderAdminError(f"there is no reader with id {reader_id}")
        end_sessions(session, reader_id=reader.id)
        return _issue(reader, address)


def revoke_code(engine: Engine, reader_id: int) -> None:
    """The reader's code and signed-in browsers stop working at once; their answers are kept."""
    with transaction(engine) as session:
        reader = session.get(Reader, reader_id)
        if reader is None:
            raise ReaderAdminError(f"there is no reader with id {reader_id}")
        reader.code_hash = None
        reader.revoked_at = utcnow()
        end_sessions(session, reader_id=reader.id)


# --- public codes and their visitors -----------------------------------------------------------


def set_public_code(engine: Engine, study_id: int, code: str | None) -> None:
    """Give a study a code anyone may use (None takes it away). Each sign-in with it makes an
    anonymous visitor reader of the study, with an order and answers of their own."""
    if code is not None and not code.strip():
        raise ReaderAdminError("a public code cannot be empty")
    with transaction(engine) as session:
        study = session.get(Study, study_id)
        if study is None:
            raise ReaderAdminError(f"there is no study with id {study_id}")
        code_hash = None if code is None else hash_access_code(code)
        if code_hash is not None and session.scalar(
            select(Reader.id).where(Reader.code_hash == code_hash)
        ):
            raise ReaderAdminError("that code is a reader's personal code: choose another")
        study.public_code_hash = code_hash


def _add_visitor(session: Session, study: Study) -> Reader:
    taken = set(session.scalars(select(Reader.alias).where(Reader.study_id == study.id)))
    alias = f"visitor {secrets.token_hex(3)}"
    while alias in taken:
        alias = f"visitor {secrets.token_hex(3)}"
    # A private code nobody is told: the visitor's browser session stands for it.
    reader = Reader(
        study_id=study.id,
        alias=alias,
        kind=ReaderKind.VISITOR,
        code_hash=hash_access_code(new_access_code()),
        code_created_at=utcnow(),
    )
    session.add(reader)
    session.flush()
    create_assignments(session, study, reader)
    return reader


def remove_idle_visitors(engine: Engine, *, idle: timedelta | None = None) -> int:
    """Delete the visitors who stopped before the end and have done nothing for `idle`
    (default VTT_VISITOR_IDLE_HOURS), with their answers; visitors who finished stay, as the
    study's results. Returns how many were removed."""
    idle = timedelta(hours=float(settings.get("VTT_VISITOR_IDLE_HOURS"))) if idle is None else idle
    cutoff = utcnow() - idle
    with transaction(engine) as session:
        unfinished = (
            select(Assignment.reader_id)
            .where(Assignment.completed_at.is_(None))
            .distinct()
            .scalar_subquery()
        )
        recent = (
            select(Answer.reader_id)
            .where(Answer.last_saved_at >= cutoff)
            .distinct()
            .scalar_subquery()
        )
        stale = list(
            session.scalars(
                select(Reader.id).where(
                    Reader.kind == ReaderKind.VISITOR,
                    Reader.created_at < cutoff,
                    Reader.id.in_(unfinished),
                    Reader.id.not_in(recent),
                )
            )
        )
        if stale:
            session.execute(delete(Reader).where(Reader.id.in_(stale)))
        return len(stale)


@dataclass(frozen=True)
class VisitorCount:
    visitors: int
    finished: int


def count_visitors(session: Session, study_id: int) -> VisitorCount:
    """How many anonymous visitors a study with a public code has, and how many finished
    (inside the caller's transaction)."""
    rows = session.execute(
        select(func.count(Assignment.id), func.count(Assignment.completed_at))
        .select_from(Reader)
        .outerjoin(Assignment, Assignment.reader_id == Reader.id)
        .where(Reader.study_id == study_id, Reader.kind == ReaderKind.VISITOR)
        .group_by(Reader.id)
    ).all()
    return VisitorCount(
        visitors=len(rows), finished=sum(1 for total, done in rows if total and done == total)
    )


def visitor_count(engine: Engine, study_id: int) -> VisitorCount:
    with transaction(engine) as session:
        return count_visitors(session, study_id)


def list_readers(engine: Engine, study_id: int) -> list[ReaderInfo]:
    with transaction(engine) as session:
        return [
            ReaderInfo(
                id=r.id,
                alias=r.alias,
                experience_years=r.experience_years,
                specialty=r.specialty,
                code_created_at=r.code_created_at,
                revoked=r.code_hash is None,
                kind=ReaderKind(r.kind),
            )
            for r in session.scalars(
                select(Reader).where(Reader.study_id == study_id).order_by(Reader.id)
            )
        ]


def sign_in_with_code(engine: Engine, code: str, *, source: str = "") -> int:
    """The reader id of a valid access code; failures are recorded and slowed down.

    A study's public code (`set_public_code`) makes a new visitor reader at every sign-in, so
    that people who share the code never share a reading.

    `source` tells throttling apart per client (e.g. an IP address); failures from one source
    make that source wait, doubling past a few free tries.
    """
    key = f"{READER_CODE_KEY}:{source}" if source else READER_CODE_KEY
    wait = sign_in_delay(engine, key)
    if wait > 0:
        raise SignInError(f"Too many wrong codes. Please wait {wait:.0f} seconds and try again.")
    code = code.strip()
    visitor_study = False
    with transaction(engine) as session:
        # The index finds the row by the code's hash, which an attacker cannot steer byte by
        # byte; the final check is constant-time all the same.
        code_hash = hash_access_code(code)
        reader = (
            session.scalar(select(Reader).where(Reader.code_hash == code_hash)) if code else None
        )
        if (
            reader is not None
            and reader.code_hash is not None
            and reader.revoked_at is None
            and verify_access_code(code, reader.code_hash)
        ):
            if reader.study.status == StudyStatus.DRAFT:
                raise SignInError("This study has not opened yet; please try again later.")
            return reader.id
        study = (
            session.scalar(select(Study).where(Study.public_code_hash == code_hash))
            if code
            else None
        )
        if study is not None and verify_access_code(code, study.public_code_hash or ""):
            if study.status != StudyStatus.OPEN:
                raise SignInError("This study is not open for reading at the moment.")
            visitor_study = True
            reader_id = _add_visitor(session, study).id
    if visitor_study:
        remove_idle_visitors(engine)
        return reader_id
    record_failed_sign_in(engine, key)
    raise SignInError("This access code is not valid. Check the link or ask the coordinator.")


@dataclass(frozen=True)
class AccountInfo:
    id: int
    username: str
    role: AccountRole
    created_at: datetime
    disabled: bool


def create_analyst(engine: Engine, username: str) -> str:
    """Create an analyst account; returns its password, shown once and stored only hashed."""
    username = username.strip()
    if not username:
        raise ReaderAdminError("an account needs a user name")
    password = secrets.token_urlsafe(12)
    with transaction(engine) as session:
        if session.scalar(select(Account.id).where(Account.username == username)) is not None:
            raise ReaderAdminError(f"the user name '{username}' is taken")
        session.add(
            Account(
                username=username, role=AccountRole.ANALYST, password_hash=hash_password(password)
            )
        )
    return password


def list_analysts(engine: Engine) -> list[AccountInfo]:
    with transaction(engine) as session:
        return [
            AccountInfo(
                a.id, a.username, AccountRole(a.role), a.created_at, a.disabled_at is not None
            )
            for a in session.scalars(
                select(Account).where(Account.role == AccountRole.ANALYST).order_by(Account.id)
            )
        ]


def disable_account(engine: Engine, account_id: int) -> None:
    """An analyst can no longer sign in (the coordinator account cannot be disabled here)."""
    with transaction(engine) as session:
        account = session.get(Account, account_id)
        if account is None or account.role != AccountRole.ANALYST:
            raise ReaderAdminError(f"there is no analyst account with id {account_id}")
        account.disabled_at = account.disabled_at or utcnow()
        end_sessions(session, account_id=account.id)
