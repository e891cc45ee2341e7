"""Passwords, reader access codes and the slowing down of repeated failed sign-ins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import timedelta

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError

from study import settings
from study.db import transaction
from study.models import Account, AccountRole, SignInAttempt, utcnow

log = logging.getLogger(__name__)

COORDINATOR = "coordinator"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
FAILED_SIGN_IN_WINDOW = timedelta(minutes=15)
FREE_FAILED_SIGN_INS = 5


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """scrypt with a random salt, encoded as `scrypt$<salt>$<hash>`."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + "$".join(base64.b64encode(part).decode() for part in (salt, digest))


def verify_password(password: str, stored: str) -> bool:
    parts = stored.split("$")
    if len(parts) != 3 or parts[0] != "scrypt":
        return False
    expected = hash_password(password, salt=base64.b64decode(parts[1]))
    return hmac.compare_digest(expected, stored)


def new_access_code() -> str:
    """A reader's personal code: 160 random bits, URL-safe."""
    return secrets.token_urlsafe(20)


def hash_access_code(code: str) -> str:
    """Codes carry 160 random bits, so one unsalted SHA-256 is enough to store them safely."""
    return hashlib.sha256(code.strip().encode()).hexdigest()


def verify_access_code(code: str, stored_hash: str) -> bool:
    """Whether `code` hashes to `stored_hash`, compared in constant time."""
    return hmac.compare_digest(hash_access_code(code), stored_hash)


def ensure_coordinator(engine: Engine) -> str | None:
    """Create or update the coordinator account; returns a generated password once, else None.

    With VTT_ADMIN_PASSWORD set, the stored hash follows it. Without it, a password is made on
    first start only, logged once, and never stored in clear.
    """
    configured = settings.get("VTT_ADMIN_PASSWORD")
    try:
        with transaction(engine) as session:
            account = session.scalar(select(Account).where(Account.username == COORDINATOR))
            if account is not None:
                if configured and not verify_password(configured, account.password_hash):
                    account.password_hash = hash_password(configured)
                return None
            password = configured or secrets.token_urlsafe(12)
            session.add(
                Account(
                    username=COORDINATOR,
                    role=AccountRole.COORDINATOR,
                    password_hash=hash_password(password),
                )
            )
    except IntegrityError:
        # Another app process on the same database made the account at the same moment.
        return ensure_coordinator(engine)
    if configured:
        return None
    log.warning("VTT Studio coordinator password (shown once): %s", password)
    return password


def check_account(engine: Engine, username: str, password: str) -> Account | None:
    """The account when the password is right and sign-ins are not being throttled."""
    key = f"account:{username.strip().lower()}"
    if sign_in_delay(engine, key) > 0:
        return None
    with transaction(engine) as session:
        account = session.scalar(select(Account).where(Account.username == username.strip()))
        ok = (
            account is not None
            and account.disabled_at is None
            and verify_password(password, account.password_hash)
        )
        if ok:
            session.execute(delete(SignInAttempt).where(SignInAttempt.key == key))
            return account
        session.add(SignInAttempt(key=key))
    return None


def record_failed_sign_in(engine: Engine, key: str) -> None:
    with transaction(engine) as session:
        session.add(SignInAttempt(key=key))


def sign_in_delay(engine: Engine, key: str) -> float:
    """Seconds to wait before the next attempt for `key`: doubles past a few free failures."""
    since = utcnow() - FAILED_SIGN_IN_WINDOW
    with transaction(engine) as session:
        failures = session.scalar(
            select(func.count())
            .select_from(SignInAttempt)
            .where(SignInAttempt.key == key, SignInAttempt.attempted_at >= since)
        )
        last = session.scalar(
            select(func.max(SignInAttempt.attempted_at)).where(SignInAttempt.key == key)
        )
    if not failures or failures <= FREE_FAILED_SIGN_INS or last is None:
        return 0.0
    wait = min(2.0 ** (failures - FREE_FAILED_SIGN_INS), 300.0)
    if last.tzinfo is None:
        last = last.replace(tzinfo=utcnow().tzinfo)
    elapsed = (utcnow() - last).total_seconds()
    return max(0.0, wait - elapsed)
