"""Coordinator: readers of a study with their personal codes, and analyst accounts.

A code or password is shown once, right after it is made; only its hash is stored.
"""

import pandas as pd
import streamlit as st

from pages import ui
from study import settings
from study.design import list_studies
from study.imaging.errors import VTTError
from study.models import ReaderKind
from study.readers import (
    IssuedCode,
    add_reader,
    create_analyst,
    disable_account,
    issue_new_code,
    list_analysts,
    list_readers,
    public_url,
    revoke_code,
)

ui.require(ui.Role.COORDINATOR)
engine = ui.engine()
st.title("Readers and accounts")
# Personal links take the address this browser uses unless VTT_PUBLIC_URL says otherwise.
address = ui.app_address()
configured = settings.get("VTT_PUBLIC_URL").rstrip("/")
if configured and address and configured != address:
    st.warning(
        f"Personal links point to {configured} (the VTT_PUBLIC_URL setting), but you are using "
        f"the app at {address}. Readers must be able to open {configured}; if they cannot, "
        "change the setting."
    )
else:
    st.caption(f"Personal links point to {public_url(address)}.")


def show_code(issued: IssuedCode) -> None:
    st.success(
        f"Access code for {issued.alias}. It is shown only now: copy the link and send it to "
        "the reader (a new code can be made later; the old one then stops working)."
    )
    st.code(issued.link, language=None)
    st.code(issued.code, language=None)


def readers_section() -> None:
    study = ui.pick_study(list_studies(engine), key="readers-pick")
    if study is None:
        return
    with st.form("add-reader", clear_on_submit=True):
        st.subheader("Add a reader")
        alias_col, years_col, specialty_col = st.columns(3)
        alias = alias_col.text_input("Alias (shown in reports)", key="reader-alias")
        years = years_col.number_input("Experience (years)", 0.0, 60.0, 0.0, step=0.5)
        specialty = specialty_col.text_input("Specialty", key="reader-specialty")
        added = st.form_submit_button("Add reader and make a code", type="primary")
    try:
        if added:
            show_code(
                add_reader(
                    engine,
                    study.id,
                    alias,
                    experience_years=years,
                    specialty=specialty,
                    address=address,
                )
            )
        everyone = list_readers(engine, study.id)
        readers = [r for r in everyone if r.kind == ReaderKind.PERSON]
        visitors = sum(r.kind == ReaderKind.VISITOR for r in everyone)
        machines = [r.alias for r in everyone if r.kind == ReaderKind.MACHINE]
        if visitors:
            st.caption(
                f"Besides these, {visitors} anonymous visitor(s) read the study with its "
                "public code."
            )
        if machines:
            st.caption(
                "Machine readers (imported scores, `python -m study add-machine`): "
                + ", ".join(machines)
            )
        if not readers:
            st.info("No readers yet.")
            return
        st.subheader("Readers")
        for reader in readers:
            info, new_col, revoke_col = st.columns([4, 1, 1], vertical_alignment="center")
            status = "code revoked" if reader.revoked else "code active"
            years_text = "" if reader.experience_years is None else f"{reader.experience_years:g} y"
            info.write(f"**{reader.alias}** {years_text} {reader.specialty} ({status})")
            if new_col.button("New code", key=f"new-code-{reader.id}"):
                show_code(issue_new_code(engine, reader.id, address))
            if not reader.revoked:
                with revoke_col:
                    if ui.confirm(
                        "Revoke",
                        f"{reader.alias}'s code and signed-in browsers stop working at once; "
                        "their answers are kept. A new code can be made later.",
                        action="Revoke the code",
                        key=f"revoke-{reader.id}",
                    ):
                        revoke_code(engine, reader.id)
                        st.rerun()
    except VTTError as error:
        st.error(str(error))


def analysts_section() -> None:
    st.subheader("Analyst accounts")
    st.caption("Analysts see results and exports, read-only.")
    with st.form("add-analyst", clear_on_submit=True):
        username = st.text_input("User name", key="analyst-name")
        created = st.form_submit_button("Create analyst account")
    try:
        if created:
            password = create_analyst(engine, username)
            st.success(f"Password for {username.strip()}, shown only now:")
            st.code(password, language=None)
        accounts = list_analysts(engine)
        if accounts:
            st.dataframe(
                pd.DataFrame(
                    [
                        {"user name": a.username, "created": a.created_at, "disabled": a.disabled}
                        for a in accounts
                    ]
                ),
                hide_index=True,
            )
            active = [a for a in accounts if not a.disabled]
            if active:
                pick_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
                chosen = pick_col.selectbox(
                    "Account", active, format_func=lambda a: a.username, key="disable-pick"
                )
                with button_col:
                    if ui.confirm(
                        "Disable account",
                        f"{chosen.username} can no longer sign in, and their signed-in browsers "
                        "are signed out.",
                        action="Disable it",
                        key=f"disable-{chosen.id}",
                    ):
                        disable_account(engine, chosen.id)
                        st.rerun()
    except VTTError as error:
        st.error(str(error))


readers_section()
analysts_section()
