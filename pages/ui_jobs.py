"""What the Generate, Train and Machine evaluation pages share (not a page itself): inputs for
the generator's options, and the background-jobs panel.

The inputs take their default, limits and help from the generator's contract
(`synth.contract`), so the forms say what `python -m synth` says. The panel refreshes every two
seconds (st.fragment), reading everything from the database, so a job shows the same after a
page reload or from another browser.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from pages import ui
from study.imaging.errors import VTTError
from study.jobs import JobKind, JobView, cancel_job, list_jobs
from synth.contract import option_spec

STATE_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/sync:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}


def option_input(
    container: DeltaGenerator,
    request: type,
    name: str,
    label: str,
    *,
    key: str,
    from_state: bool = False,
    **widget: Any,
) -> Any:
    """A number input for the numeric option `name` of a generator request (or settings) class,
    with the default, limits and help the contract declares; empty (None) where the default is
    None. `from_state`: the page keeps its value in st.session_state[key]."""
    spec = option_spec(request, name)
    cast = int if spec.type is int else float
    low = spec.min if spec.min is not None else spec.gt
    value = {} if from_state else {"value": None if spec.default is None else cast(spec.default)}
    return container.number_input(
        label,
        min_value=None if low is None else cast(low),
        max_value=None if spec.max is None else cast(spec.max),
        help=spec.help,
        key=key,
        **value,
        **widget,
    )


def duration_text(seconds: float) -> str:
    """E.g. '3 min 05 s' or '2 h 07 min'."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _job(job: JobView, details: Callable[[JobView], None] | None, can_cancel: bool) -> None:
    device = job.params.get("device")
    st.markdown(
        f"{STATE_ICONS[job.state.value]} **Job {job.id}** ({job.kind}, {job.state.value}"
        + (f", on {device}" if device else "")
        + (f" at {job.runner_host}" if job.runner_host else "")
        + f"), started {job.created_at:%Y-%m-%d %H:%M}"
    )
    if job.active:
        left = job.seconds_left()
        text = f"{job.progress:.0%}" + (f", about {duration_text(left)} left" if left else "")
        st.progress(job.progress, text=text)
        if can_cancel and st.button("Cancel", key=f"cancel-job-{job.id}"):
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
    show_job_list(lambda: list_jobs(ui.engine(), kind, limit=10), details)


def show_job_list(
    jobs: Callable[[], list[JobView]],
    details: Callable[[JobView], None] | None = None,
    *,
    can_cancel: bool = True,
) -> None:
    """The jobs `jobs()` reads (every two seconds), with progress, time left, `details(job)`,
    and cancel where `can_cancel`."""

    @st.fragment(run_every=2)
    def panel() -> None:
        shown = jobs()
        if not shown:
            st.caption("No job yet.")
        for job in shown:
            with st.container(border=True):
                _job(job, details, can_cancel)

    st.subheader("Jobs")
    panel()
