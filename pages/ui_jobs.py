"""The background-jobs panel shared by the Generate and Train pages (not a page itself).

It refreshes every two seconds (st.fragment), reading everything from the database, so a job
shows the same after a page reload or from another browser.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from pages import ui
from study.imaging.errors import VTTError
from study.jobs import JobKind, JobView, cancel_job, list_jobs

STATE_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/sync:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}


def duration_text(seconds: float) -> str:
    """E.g. '3 min 05 s' or '2 h 07 min'."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _job(job: JobView, details: Callable[[JobView], None] | None) -> None:
    device = job.params.get("device")
    st.markdown(
        f"{STATE_ICONS[job.state.value]} **Job {job.id}** ({job.kind}, {job.state.value}"
        + (f", on {device}" if device else "")
        + (f", app server {job.runner_host}" if job.runner_host else "")
        + f"), started {job.created_at:%Y-%m-%d %H:%M}"
    )
    if job.active:
        left = job.seconds_left()
        text = f"{job.progress:.0%}" + (f", about {duration_text(left)} left" if left else "")
        st.progress(job.progress, text=text)
        if st.button("Cancel", key=f"cancel-job-{job.id}"):
            try:
                cancel_job(ui.engine(), job.id)
            except VTTError as error:
                st.error(str(error))
            else:
                # The whole page: a fragment-scoped rerun fails outside fragment reruns.
                st.rerun()
    if job.error:
        st.error(job.error)
    if details is not None:
        details(job)
    if job.log_tail:
        with st.expander("Log"):
            st.code(job.log_tail, language=None)


def show_jobs(kind: JobKind, details: Callable[[JobView], None] | None = None) -> None:
    """The newest jobs of `kind`, with progress, time left, cancel and `details(job)`."""

    @st.fragment(run_every=2)
    def panel() -> None:
        jobs = list_jobs(ui.engine(), kind, limit=10)
        if not jobs:
            st.caption("No job yet.")
        for job in jobs:
            with st.container(border=True):
                _job(job, details)

    st.subheader("Jobs")
    panel()
