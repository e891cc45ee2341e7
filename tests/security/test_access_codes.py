"""Reader access codes: >= 128 random bits, stored only hashed, compared in constant time,
revocable, and repeated failures slow every further attempt down (a right code included)."""

from __future__ import annotations

import base64
import hmac
import itertools
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from seeding import add_assets, grid
from sqlalchemy import MetaData, select
from streamlit.testing.v1 import AppTest

from study import auth
from study.auth import FREE_FAILED_SIGN_INS, new_access_code, sign_in_delay
from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.models import SignInAttempt
from study.questions import TEMPLATES
from study.readers import (
    READER_CODE_KEY,
    SignInError,
    add_reader,
    issue_new_code,
    revoke_code,
    sign_in_with_code,
)

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SOURCE = "203.0.113.7"
KEY = f"{READER_CODE_KEY}:{SOURCE}"


@pytest.fixture
def open_study_id(engine) -> int:
    add_assets(engine, grid([Sequence.T2W], 1))
    study_id = create_study(
        engine, StudyPlan("codes", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )
    open_study(engine, study_id)
    return study_id


def decoded_bits(code: str) -> int:
    return 8 * len(base64.urlsafe_b64decode(code + "=" * (-len(code) % 4)))


def test_codes_carry_at_least_128_random_bits(monkeypatch):
    requested: list[int] = []
    token_bytes = secrets.token_bytes

    def spy(nbytes: int | None = None) -> bytes:
        requested.append(nbytes)
        return token_bytes(nbytes)

    monkeypatch.setattr(secrets, "token_bytes", spy)
    code = new_access_code()
    assert requested and all(n is not None and 8 * n >= 128 for n in requested)
    # The code is the URL-safe encoding of those bytes, nothing less.
    assert decoded_bits(code) >= 128
    assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    codes = {new_access_code() for _ in range(2000)}
    assert len(codes) == 2000


def test_issued_codes_are_random_per_reader(engine, open_study_id):
    codes = [add_reader(engine, open_study_id, f"r{i}").code for i in range(20)]
    assert len(set(codes)) == len(codes)
    assert all(decoded_bits(code) >= 128 for code in codes)


def every_text_in_the_database(engine) -> list[str]:
    """Every non-null value of every column of every table, as text."""
    metadata = MetaData()
    metadata.reflect(engine)
    texts = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                texts.extend(str(value) for value in row if value is not None)
    assert texts, "the database scan found nothing: it would prove nothing"
    return texts


def test_no_code_is_stored_in_clear_anywhere(engine, open_study_id):
    first = add_reader(engine, open_study_id, "first")
    second = add_reader(engine, open_study_id, "second")
    renewed = issue_new_code(engine, second.reader_id)
    assert sign_in_with_code(engine, first.code, source=SOURCE) == first.reader_id
    with pytest.raises(SignInError):
        sign_in_with_code(engine, second.code, source=SOURCE)
    codes = [first.code, second.code, renewed.code]
    texts = every_text_in_the_database(engine)
    for code in codes:
        # Any 12 consecutive characters of a code would be a leak worth ~72 bits.
        pieces = {code[i : i + 12] for i in range(len(code) - 11)}
        leaks = [text for text in texts if any(piece in text for piece in pieces)]
        assert not leaks, f"a reader code is stored in clear: {leaks}"


def test_sign_in_compares_hashes_in_constant_time(engine, open_study_id, monkeypatch):
    issued = add_reader(engine, open_study_id, "r")
    compared: list[tuple[str, str]] = []
    compare_digest = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert sign_in_with_code(engine, issued.code) == issued.reader_id
    expected = auth.hash_access_code(issued.code)
    assert (expected, expected) in compared


def test_a_revoked_code_is_refused_and_a_new_one_works(engine, open_study_id):
    issued = add_reader(engine, open_study_id, "r")
    assert sign_in_with_code(engine, issued.code) == issued.reader_id
    revoke_code(engine, issued.reader_id)
    with pytest.raises(SignInError, match="not valid"):
        sign_in_with_code(engine, issued.code)
    renewed = issue_new_code(engine, issued.reader_id)
    with pytest.raises(SignInError, match="not valid"):
        sign_in_with_code(engine, issued.code)
    assert sign_in_with_code(engine, renewed.code) == issued.reader_id


def let_time_pass(engine, seconds: float) -> None:
    """Move every recorded failure of KEY `seconds` into the past (inside the window)."""
    with transaction(engine) as session:
        for attempt in session.scalars(select(SignInAttempt).where(SignInAttempt.key == KEY)):
            attempt.attempted_at -= timedelta(seconds=seconds)


def fail_once(engine) -> None:
    with pytest.raises(SignInError, match="not valid"):
        sign_in_with_code(engine, "wrong-" + new_access_code(), source=SOURCE)


def test_repeated_failures_make_the_wait_grow_and_lock_out_a_right_code_too(engine, open_study_id):
    issued = add_reader(engine, open_study_id, "r")
    for _ in range(FREE_FAILED_SIGN_INS):
        fail_once(engine)
    assert sign_in_delay(engine, KEY) == 0.0
    waits = []
    for _ in range(4):
        fail_once(engine)
        wait = sign_in_delay(engine, KEY)
        waits.append(wait)
        # While locked out, even the right code is refused, with a message that says why.
        with pytest.raises(SignInError, match=r"Too many wrong codes\. Please wait \d+ seconds"):
            sign_in_with_code(engine, issued.code, source=SOURCE)
        let_time_pass(engine, wait + 1)
    assert all(later > earlier * 1.9 for earlier, later in itertools.pairwise(waits))
    assert waits[0] > 1.0
    # Once the wait is over the right code works again; other clients were never slowed.
    assert sign_in_with_code(engine, issued.code, source=SOURCE) == issued.reader_id
    assert sign_in_with_code(engine, issued.code, source="198.51.100.1") == issued.reader_id


def test_lockout_is_not_extended_by_attempts_made_while_locked_out(engine, open_study_id):
    for _ in range(FREE_FAILED_SIGN_INS + 1):
        fail_once(engine)
    wait = sign_in_delay(engine, KEY)
    for _ in range(20):
        with pytest.raises(SignInError, match="Too many wrong codes"):
            sign_in_with_code(engine, "guess", source=SOURCE)
    # Refused attempts are not counted, so hammering cannot grow the wait without bound...
    assert sign_in_delay(engine, KEY) <= wait
    # ...and they were not checked either: a guess during the lockout proves nothing.
    with transaction(engine) as session:
        attempts = session.scalars(select(SignInAttempt).where(SignInAttempt.key == KEY)).all()
    assert len(attempts) == FREE_FAILED_SIGN_INS + 1


@pytest.mark.slow
def test_the_landing_page_refuses_a_right_code_during_a_lockout_with_a_clear_message(
    app_engine, reading_study, monkeypatch
):
    _, code = reading_study()
    # AppTest has no client address (st.context.ip_address is a fresh mock on every run):
    # every attempt here comes from one client.
    from pages import ui

    monkeypatch.setattr(ui, "_client_key", lambda: SOURCE)

    def type_code(app: AppTest, value: str) -> None:
        next(t for t in app.text_input if t.label == "Access code").set_value(value)
        next(b for b in app.button if b.label == "Start reading").click().run()
        assert not app.exception, app.exception

    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    for _ in range(FREE_FAILED_SIGN_INS + 1):
        type_code(app, "not-a-code")
        assert "role" not in app.session_state
    type_code(app, code)
    assert "role" not in app.session_state
    message = " ".join(e.value for e in app.error)
    assert "Too many wrong codes" in message and "seconds" in message
    assert code not in message
