"""Coordinator: each reader's progress in a study, how precise its accuracy is so far
against the study's target half-width; opening and closing it."""

import pandas as pd
import streamlit as st

from pages import ui
from study.design import list_studies, open_study
from study.imaging.errors import VTTError
from study.models import StudyStatus
from study.reading import study_progress
from study.sequential import accuracy_precision

ui.require(ui.Role.COORDINATOR)
engine = ui.engine()
st.title("Progress")

study = ui.pick_study(list_studies(engine), key="progress-pick")
if study is not None:
    ui.simulated_notice(study)
    rows = study_progress(engine, study.id)
    done = sum(r.done for r in rows)
    total = sum(r.total for r in rows)
    status_col, readers_col, done_col = st.columns(3)
    status_col.metric("Status", study.status.value)
    readers_col.metric("Readers", len(rows))
    done_col.metric("Cases read", f"{done} of {total}")
    if rows:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "reader": r.alias,
                        "progress": r.done / r.total if r.total else 0.0,
                        "cases done": f"{r.done} of {r.total}",
                        "practice": f"{r.practice_done} of {r.practice_total}",
                        "time spent (min)": round(r.time_spent_s / 60, 1),
                        "last activity": r.last_activity,
                        "code": "active" if r.active else "revoked",
                    }
                    for r in rows
                ]
            ),
            column_config={
                "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1)
            },
            hide_index=True,
        )
    else:
        st.info("No readers yet: add them on the Readers page.")
    st.subheader("Accuracy interval so far")
    precision = accuracy_precision(engine, study.id)
    if precision.target is None:
        st.caption(
            "Half-widths of the 95% accuracy intervals of the real-or-synthetic calls. This "
            "study has no target half-width (it is set when a study is built)."
        )
    else:
        st.caption(
            f"Target: a 95% interval of ±{precision.target:.3f} for every reader and for the "
            "readers' mean. Readers: exact (Clopper-Pearson) intervals; their mean: "
            "Obuchowski-Rockette, random readers and cases."
        )
    if precision.table.empty:
        st.info("No real-or-synthetic or 2AFC answers yet.")
    else:
        if precision.target is not None:
            st.metric(
                "Target half-width",
                f"±{precision.target:.3f}",
                "reached" if precision.reached else "not reached yet",
                delta_color="normal" if precision.reached else "off",
            )
        st.dataframe(
            precision.table,
            column_config={
                "accuracy": st.column_config.NumberColumn(format="%.3f"),
                "half-width": st.column_config.NumberColumn(format="±%.3f"),
            },
            hide_index=True,
        )
    for note in precision.notes:
        st.caption(note)
    try:
        if study.status == StudyStatus.DRAFT and st.button("Open the study", type="primary"):
            open_study(engine, study.id, actor="coordinator")
            st.rerun()
        if study.status == StudyStatus.OPEN:
            ui.close_study_button(study, key=f"progress-close-{study.id}")
    except VTTError as error:
        st.error(str(error))
