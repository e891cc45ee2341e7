"""Streamlit glue shared by the pages: the engine, the signed-in role, guards.

Not a page (st.navigation lists the pages in app.py). Holds no module-level mutable state:
everything per user lives in st.session_state.
"""

from __future__ import annotations

import gc
import logging
import sys
from enum import StrEnum

import streamlit as st
from sqlalchemy import Engine

from study import settings
from study.auth import check_account, ensure_coordinator
from study.db import open_database
from study.demo import DemoError, demo_code_if_active, seed_demo_if_empty
from study.design import StudySummary
from study.jobs import recover_jobs
from study.readers import SignInError, sign_in_with_code


class Role(StrEnum):
    READER = "reader"
    COORDINATOR = "coordinator"
    ANALYST = "analyst"


@st.cache_resource(show_spinner="Preparing the database...")
def _engine_for(url: str, seed_demo: bool) -> Engine:
    engine = open_database(url)
    failed = recover_jobs(engine)
    if failed:
        logging.getLogger("vtt").warning("jobs %s were running when the app stopped", failed)
    if ensure_coordinator(engine):
        logging.getLogger("vtt").info("a coordinator password was generated (see above)")
    if seed_demo:
        try:
            demo = seed_demo_if_empty(engine)
        except DemoError as error:
            logging.getLogger("vtt").warning("the demo study was not seeded: %s", error)
        else:
            if demo is not None:
                logging.getLogger("vtt").info("seeded the demo study (id %s)", demo.study_id)
    return engine


def engine() -> Engine:
    """The migrated engine of the configured database (one per URL and process)."""
    return _engine_for(settings.database_url(), settings.get("VTT_SEED_DEMO") == "1")


def keep_collections_short() -> None:
    """Leave the objects of the modules imported so far out of garbage collection.

    Streamlit runs a full collection after every script run, a fragment's included
    (`runner.postScriptGC`). A full collection walks every object in the process: about
    220,000 once the app's libraries are loaded, 130 ms on two cores, on the path of every
    click. `gc.freeze` moves the objects alive now to a generation that collections skip, so
    they walk only what later runs made. Done again whenever more modules have been imported
    (a page that loads another library), after a collection so that no garbage is frozen.
    """
    _freeze_objects(len(sys.modules))


@st.cache_resource(show_spinner=False)
def _freeze_objects(modules: int) -> None:
    # `modules` only keys the cache: one freeze per number of imported modules.
    gc.collect()
    gc.freeze()


def demo_code() -> str | None:
    """The demo reader's public code while the demo study is open."""
    return demo_code_if_active(engine())


def role() -> Role | None:
    value = st.session_state.get("role")
    return Role(value) if value else None


def sign_in_account(username: str, password: str) -> bool:
    account = check_account(engine(), username, password)
    if account is None:
        return False
    st.session_state["role"] = str(account.role)
    st.session_state["account_id"] = account.id
    return True


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def reader_id() -> int | None:
    """The signed-in reader, or None."""
    return st.session_state.get("reader_id") if role() == Role.READER else None


def _client_key() -> str:
    """Failed codes are throttled per client address (all together when it is unknown)."""
    return st.context.ip_address or ""


def sign_in_reader(code: str) -> str | None:
    """Sign a reader in by access code; None on success, else the message to show."""
    try:
        reader = sign_in_with_code(engine(), code, source=_client_key())
    except SignInError as error:
        return str(error)
    sign_out()
    st.session_state["role"] = Role.READER.value
    st.session_state["reader_id"] = reader
    return None


def sign_in_from_link() -> None:
    """Handle a personal link `?code=...`: sign in and take the code out of the address bar.

    A failure is kept in the session for the landing page to show.
    """
    code = st.query_params.get("code")
    if code is None:
        return
    del st.query_params["code"]
    error = sign_in_reader(code)
    if error:
        st.session_state["sign_in_error"] = error


def pick_study(studies: list[StudySummary], key: str) -> StudySummary | None:
    """A study chosen by name (the newest first); None, with a hint, when there is none."""
    if not studies:
        st.info("There is no study yet: build one on the Studies page.")
        return None
    newest_first = sorted(studies, key=lambda s: s.id, reverse=True)
    return st.selectbox(
        "Study", newest_first, format_func=lambda s: f"{s.name} ({s.status.value})", key=key
    )


def require(*roles: Role) -> None:
    """Stop the page unless the signed-in role is one of `roles`."""
    if role() not in roles:
        st.error("This page needs you to sign in with the right role.")
        st.stop()
