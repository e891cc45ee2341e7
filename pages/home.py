"""Landing page: what VTT Studio does; sign-in for readers (access code), coordinators, analysts."""

import streamlit as st

from pages import ui

st.title("VTT Studio")
st.markdown(
    "Blind reader studies and Visual Turing Tests for real and synthetic medical images. "
    "Readers judge each image (real or synthetic? lesion present? how realistic?) without "
    "knowing where it came from; their answers are kept in a database and come out as "
    "accuracy, sensitivity and specificity with confidence intervals."
)

if ui.role() is None:
    if demo_code := ui.demo_code():
        st.info(
            f"**Try it:** the demo study is open to everyone. Type the access code "
            f"**`{demo_code}`** below and read 20 cases (about five minutes); you see your "
            "score at the end. Coordinators sign in further down to see the study's results."
        )
    with st.form("reader-sign-in"):
        st.subheader("Readers: your access code")
        st.caption("Your personal link signs you in by itself; or type the code it carries.")
        code = st.text_input("Access code", type="password")
        if st.form_submit_button("Start reading", type="primary"):
            error = ui.sign_in_reader(code)
            if error is None:
                st.rerun()
            st.session_state["sign_in_error"] = error
    if error := st.session_state.pop("sign_in_error", None):
        st.error(error)
    with st.form("account-sign-in"):
        st.subheader("Coordinator or analyst sign-in")
        username = st.text_input("User name", value="coordinator")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            if ui.sign_in_account(username, password):
                st.rerun()
            st.error("Wrong user name or password, or too many attempts: wait and try again.")
    st.caption(
        "Coordinators: the password is the VTT_ADMIN_PASSWORD setting, or the one printed "
        "in the server log on first start."
    )
elif ui.role() == ui.Role.READER:
    st.switch_page("pages/read.py")
elif ui.role() == ui.Role.ANALYST:
    st.switch_page("pages/results.py")
elif ui.role() == ui.Role.COORDINATOR:
    st.success(
        "Signed in as coordinator. Import images, build a study, add readers and follow their "
        "progress from the menu on the left."
    )
