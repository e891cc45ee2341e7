"""Readers and accounts: personal access codes (shown once, stored hashed), revocation,
sign-in by code with throttling, and analyst accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

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
from study.models import Account, AccountRole, Reader, Study, StudyStatus, utcnow
from study.reading import create_assignments

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


def reader_link(code: str) -> str:
    """The personal link `<VTT_PUBLIC_URL>/?code=...`."""
    return f"{settings.get('VTT_PUBLIC_URL').rstrip('/')}/?code={code}"


def _issue(reader: Reader, code: str | None = None) -> IssuedCode:
    code = code or new_access_code()
    reader.code_hash = hash_access_code(code)
    reader.code_created_at = utcnow()
    reader.revoked_at = None
    return IssuedCode(reader.id, reader.alias, code, reader_link(code))


def add_reader(
    engine: Engine,
    study_id: int,
    alias: str,
    *,
    experience_years: float | None = None,
    specialty: str = "",
    public_code: str | None = None,
) -> IssuedCode:
    """Add a reader with a new access code; in an open study they get their cases at once.

    `public_code` replaces the random code for a reader whose code is public by design (the
    demo reader); every other reader gets 160 random bits.
    """
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
        issued = _issue(reader, public_code)
        if study.status == StudyStatus.OPEN:
            create_assignments(session, study, reader)
        return issued


def issue_new_code(engine: Engine, reader_id: int) -> IssuedCode:
    """Replace a reader's code (the old one stops working); also lifts a revocation."""
    with transaction(engine) as session:
        reader = session.get(Reader, reader_id)
        if reader is None:
            raise ReaderAdminError(f"there is no reader with id {reader_id}")
        return _issue(reader)


def revoke_code(engine: Engine, reader_id: int) -> None:
    """The reader's code stops working at once; their answers are kept."""
    with transaction(engine) as session:
        reader = session.get(Reader, reader_id)
        if reader is None:
            raise ReaderAdminError(f"there is no reader with id {reader_id}")
        reader.code_hash = None
        reader.revoked_at = utcnow()


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
            )
            for r in session.scalars(
                select(Reader).where(Reader.study_id == study_id).order_by(Reader.id)
            )
        ]


def sign_in_with_code(engine: Engine, code: str, *, source: str = "") -> int:
    """The reader id of a valid access code; failures are recorded and slowed down.

    `source` tells throttling apart per client (e.g. an IP address); failures from one source
    make that source wait, doubling past a few free tries.
    """
    key = f"{READER_CODE_KEY}:{source}" if source else READER_CODE_KEY
    wait = sign_in_delay(engine, key)
    if wait > 0:
        raise SignInError(f"Too many wrong codes. Please wait {wait:.0f} seconds and try again.")
    code = code.strip()
    with transaction(engine) as session:
        # The index finds the row by the code's hash, which an attacker cannot steer byte by
        # byte; the final check is constant-time all the same.
        reader = (
            session.scalar(select(Reader).where(Reader.code_hash == hash_access_code(code)))
            if code
            else None
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
