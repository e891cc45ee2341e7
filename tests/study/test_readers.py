"""Readers: access codes shown once and stored hashed, links, revocation, throttled sign-in,
analyst accounts."""

from __future__ import annotations

import pytest
from seeding import add_assets, grid
from sqlalchemy import select

from study.auth import FREE_FAILED_SIGN_INS, check_account, hash_access_code
from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.models import Reader
from study.questions import TEMPLATES
from study.readers import (
    ReaderAdminError,
    SignInError,
    add_reader,
    create_analyst,
    disable_account,
    issue_new_code,
    list_analysts,
    list_readers,
    public_url,
    reader_link,
    revoke_code,
    set_public_code,
    sign_in_with_code,
)


@pytest.fixture
def study_id(engine) -> int:
    add_assets(engine, grid([Sequence.T2W], 1))
    return create_study(
        engine, StudyPlan("s", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    )


def test_code_is_shown_once_and_stored_hashed(engine, study_id, monkeypatch):
    monkeypatch.setenv("VTT_PUBLIC_URL", "https://vtt.example.org/")
    issued = add_reader(engine, study_id, "Dr A", experience_years=4, specialty="uroradiology")
    assert len(issued.code) >= 27  # 160 bits, URL-safe
    assert issued.link == f"https://vtt.example.org/?code={issued.code}"
    assert reader_link("x") == "https://vtt.example.org/?code=x"
    with transaction(engine) as session:
        reader = session.get(Reader, issued.reader_id)
        assert reader.code_hash == hash_access_code(issued.code)
        assert issued.code not in {reader.alias, reader.specialty, reader.code_hash}
    (info,) = list_readers(engine, study_id)
    assert (info.alias, info.experience_years, info.specialty, info.revoked) == (
        "Dr A",
        4,
        "uroradiology",
        False,
    )
    with pytest.raises(ReaderAdminError, match="already"):
        add_reader(engine, study_id, "Dr A")


def test_links_use_the_coordinators_address_unless_the_setting_names_one(monkeypatch):
    """The defect: with VTT_PUBLIC_URL unset, links said localhost:8501 wherever the app ran."""
    monkeypatch.delenv("VTT_PUBLIC_URL", raising=False)
    assert (
        reader_link("x", "https://vtt.lab.example:8443") == "https://vtt.lab.example:8443/?code=x"
    )
    assert public_url(None) == "http://localhost:8501"  # the command line, with no browser
    monkeypatch.setenv("VTT_PUBLIC_URL", "https://vtt.example.org/")
    assert reader_link("x", "http://10.0.0.5:8501") == "https://vtt.example.org/?code=x"


def test_a_public_code_cannot_be_a_readers_personal_code(engine, study_id):
    issued = add_reader(engine, study_id, "Dr A")
    with pytest.raises(ReaderAdminError, match="personal code"):
        set_public_code(engine, study_id, issued.code)
    with pytest.raises(ReaderAdminError, match="empty"):
        set_public_code(engine, study_id, "  ")
    set_public_code(engine, study_id, "open-to-all")
    with pytest.raises(SignInError, match="not open"):
        sign_in_with_code(engine, "open-to-all")  # a draft takes no visitors


def test_sign_in_by_code_revocation_and_new_code(engine, study_id):
    issued = add_reader(engine, study_id, "r")
    with pytest.raises(SignInError, match="not opened yet"):
        sign_in_with_code(engine, issued.code)
    open_study(engine, study_id)
    assert sign_in_with_code(engine, f"  {issued.code} ") == issued.reader_id
    revoke_code(engine, issued.reader_id)
    with pytest.raises(SignInError, match="not valid"):
        sign_in_with_code(engine, issued.code, source="a")
    renewed = issue_new_code(engine, issued.reader_id)
    assert sign_in_with_code(engine, renewed.code) == issued.reader_id
    with pytest.raises(SignInError, match="not valid"):
        sign_in_with_code(engine, issued.code, source="a")


def test_failed_codes_are_recorded_and_slowed_down_per_source(engine, study_id):
    issued = add_reader(engine, study_id, "r")
    open_study(engine, study_id)
    for _ in range(FREE_FAILED_SIGN_INS + 1):
        with pytest.raises(SignInError, match="not valid"):
            sign_in_with_code(engine, "guess", source="10.0.0.9")
    with pytest.raises(SignInError, match="Too many wrong codes"):
        sign_in_with_code(engine, issued.code, source="10.0.0.9")
    assert sign_in_with_code(engine, issued.code, source="10.0.0.10") == issued.reader_id


def test_analyst_accounts(engine):
    password = create_analyst(engine, "ana")
    assert check_account(engine, "ana", password) is not None
    with pytest.raises(ReaderAdminError, match="taken"):
        create_analyst(engine, "ana")
    (account,) = list_analysts(engine)
    disable_account(engine, account.id)
    assert check_account(engine, "ana", password) is None
    assert list_analysts(engine)[0].disabled
    with transaction(engine) as session:
        assert session.scalar(select(Reader.id)) is None
