"""VTT Studio: the Streamlit entry point (navigation, sign-in, shared sidebar). Thin."""

import logging
from pathlib import Path

import streamlit as st

from pages import ui

# Served by the app itself: a hospital app sends nothing to, and fetches nothing from, outside.
ICON = Path(__file__).resolve().parent / "data" / "icon.png"

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="VTT Studio", page_icon=str(ICON), layout="wide")

ui.engine()
ui.resume_session_from_cookie()
ui.sign_in_from_link()
role = ui.role()

# Every signed-in page's address: opened signed out (a bookmark, a shared link), it shows the
# landing page's sign-in, and after the sign-in the page itself.
SIGNED_IN_PATHS = (
    "read",
    "results",
    "exports",
    "import",
    "library",
    "generate",
    "train",
    "studies",
    "readers",
    "progress",
    "blinding-audit",
    "machine",
)

pages: dict[str, list] = {}
if role == ui.Role.READER:
    # Readers see their reading and nothing else; the landing page (where a typed code signs
    # them in) stays reachable, hidden, and sends them on to their reading.
    pages["Reading"] = [
        st.Page("pages/read.py", title="Reading", url_path="read", default=True),
        st.Page("pages/home.py", title="Home", url_path="home", visibility="hidden"),
    ]
elif role == ui.Role.ANALYST:
    # Analysts read results, exports and the machine's checks (without starting any); the
    # landing page sends them on to the results.
    pages["Results"] = [
        st.Page("pages/results.py", title="Results", url_path="results", default=True),
        st.Page("pages/exports.py", title="Exports", url_path="exports"),
        st.Page("pages/machine.py", title="Machine evaluation", url_path="machine"),
        st.Page("pages/home.py", title="Home", url_path="home", visibility="hidden"),
    ]
else:
    pages["VTT Studio"] = [st.Page("pages/home.py", title="Home", url_path="home", default=True)]
if role is None:
    pages["VTT Studio"] += [
        st.Page("pages/home.py", title="Sign in", url_path=path, visibility="hidden")
        for path in SIGNED_IN_PATHS
    ]
if role == ui.Role.COORDINATOR:
    pages["Coordinator"] = [
        st.Page("pages/import_assets.py", title="Import images", url_path="import"),
        st.Page("pages/library.py", title="Asset library", url_path="library"),
        st.Page("pages/generate.py", title="Generate images", url_path="generate"),
        st.Page("pages/train.py", title="Train the generator", url_path="train"),
        st.Page("pages/studies.py", title="Studies", url_path="studies"),
        st.Page("pages/readers.py", title="Readers and accounts", url_path="readers"),
        st.Page("pages/progress.py", title="Progress", url_path="progress"),
        st.Page("pages/blinding_audit.py", title="Blinding audit", url_path="blinding-audit"),
    ]
    pages["Results"] = [
        st.Page("pages/results.py", title="Results", url_path="results"),
        st.Page("pages/exports.py", title="Exports", url_path="exports"),
        st.Page("pages/machine.py", title="Machine evaluation", url_path="machine"),
    ]

with st.sidebar:
    ui.sync_session_cookie()
    if role is not None:
        st.caption(f"Signed in as {role.value}")
        if st.button("Sign out"):
            ui.sign_out()
            st.rerun()

st.navigation(pages).run()
