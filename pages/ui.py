"""Streamlit glue shared by the pages: the engine, the signed-in role, guards.

Not a page (st.navigation lists the pages in app.py). Holds no module-level mutable state:
everything per user lives in st.session_state.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from enum import StrEnum

import streamlit as st
from sqlalchemy import Engine

from study import settings
from study.auth import check_account
from study.demo import demo_code_if_active
from study.design import StudySummary, close_study
from study.readers import SignInError, sign_in_with_code
from study.report.model import SIMULATED, Notice
from study.sessions import CLAIM_SECONDS, SESSION_COOKIE, end_session, resume_session, start_session
from study.startup import prepare


class Role(StrEnum):
    READER = "reader"
    COORDINATOR = "coordinator"
    ANALYST = "analyst"


@st.cache_resource(show_spinner="Preparing the database...")
def _engine_for(url: str, seed_demo: bool) -> Engine:
    # `seed_demo` keys the cache: a test that turns seeding on gets an engine that seeded.
    return prepare(url)


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


def _signed_in(role: Role, *, reader_id: int | None = None, account_id: int | None = None) -> None:
    """Put the sign-in in this Streamlit session and start its browser session (the cookie
    that keeps it across reloads and tabs, claimed by `sync_session_cookie`)."""
    st.session_state["role"] = role.value
    if reader_id is not None:
        st.session_state["reader_id"] = reader_id
    if account_id is not None:
        st.session_state["account_id"] = account_id
    started = start_session(engine(), role.value, reader_id=reader_id, account_id=account_id)
    st.session_state["session-id"] = started.id
    st.session_state["session-claim"] = (started.ticket, time.monotonic())


def resume_session_from_cookie() -> None:
    """A new page load (reload, new tab, bookmark) of a browser that is signed in: take the
    sign-in from its session cookie. Looked up once per Streamlit session."""
    if role() is not None or st.session_state.get("cookie-checked"):
        return
    st.session_state["cookie-checked"] = True
    token = st.context.cookies.get(SESSION_COOKIE)
    if not isinstance(token, str):  # no cookie (or a test harness without cookies)
        return
    signed_in = resume_session(engine(), token)
    if signed_in is None:
        return
    st.session_state["role"] = signed_in.role
    st.session_state["session-id"] = signed_in.session_id
    if signed_in.reader_id is not None:
        st.session_state["reader_id"] = signed_in.reader_id
    if signed_in.account_id is not None:
        st.session_state["account_id"] = signed_in.account_id


def _script(code: str) -> None:
    st.html(f"<script>{code}</script>", unsafe_allow_javascript=True)


def sync_session_cookie() -> None:
    """Have the browser trade a fresh sign-in's claim ticket for its HTTP-only cookie, or
    forget the cookie after a sign-out.

    The ticket's script stays on the page (unchanged, so it runs once) for as long as the
    ticket is valid: a page switch right after the sign-in may drop it before it ran once.
    """
    if st.session_state.pop("session-forget", False):
        _script("fetch(new URL('_vtt/session', document.baseURI), {method: 'DELETE'});")
    claim = st.session_state.get("session-claim")
    if claim is None:
        return
    ticket, issued = claim
    if time.monotonic() - issued > CLAIM_SECONDS:
        del st.session_state["session-claim"]
        return
    _script(
        "fetch(new URL('_vtt/session', document.baseURI), "
        f"{{method: 'POST', body: {json.dumps(ticket)}, credentials: 'same-origin'}});"
    )


def sign_in_account(username: str, password: str) -> bool:
    account = check_account(engine(), username, password)
    if account is None:
        return False
    sign_out()
    _signed_in(Role(str(account.role)), account_id=account.id)
    return True


def sign_out() -> None:
    """End the sign-in: this Streamlit session's state, the browser session and its cookie."""
    had_session = "role" in st.session_state
    end_session(engine(), st.session_state.get("session-id"))
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    # This page load has checked its cookie already; the sign-out must not bring it back.
    st.session_state["cookie-checked"] = True
    if had_session:
        st.session_state["session-forget"] = True


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
    _signed_in(Role.READER, reader_id=reader)
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


def app_address() -> str | None:
    """The app's address as the signed-in user's browser sees it (scheme, host, port)."""
    url = st.context.url
    if not url:
        return None
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else None


def pick_study(studies: list[StudySummary], key: str) -> StudySummary | None:
    """A study chosen by name (the newest first); None, with a hint, when there is none."""
    if not studies:
        st.info("There is no study yet: build one on the Studies page.")
        return None
    newest_first = sorted(studies, key=lambda s: s.id, reverse=True)
    return st.selectbox(
        "Study", newest_first, format_func=lambda s: f"{s.name} ({s.status.value})", key=key
    )


def confirm(label: str, consequence: str, *, action: str, key: str) -> bool:
    """A destructive action that takes two clicks: `label` opens a box that says what will
    happen; True once its `action` button is pressed."""
    with st.popover(label):
        st.write(consequence)
        return st.button(action, type="primary", key=key)


def close_study_button(study: StudySummary, *, key: str) -> None:
    """ "Close the study", confirmed first; the page reruns once it is closed."""
    if confirm(
        "Close the study",
        f"Readers of '{study.name}' can no longer answer; their answers so far are kept. The "
        "Studies page can reopen it (recorded in its history and its report's methods).",
        action="Close it",
        key=key,
    ):
        close_study(engine(), study.id, actor="coordinator")
        st.rerun()


def show_notice(notice: Notice) -> None:
    text = f"**{notice.title}** {notice.text}"
    if notice.level == "warning":
        st.warning(text)
    else:
        st.info(text)


def simulated_notice(study: StudySummary) -> None:
    """Every page that shows a study's answers says so when they are simulated."""
    if study.simulated:
        show_notice(SIMULATED)


def require(*roles: Role) -> None:
    """Stop the page unless the signed-in role is one of `roles`."""
    if role() not in roles:
        st.error("This page needs you to sign in with the right role.")
        st.stop()
