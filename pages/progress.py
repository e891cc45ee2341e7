"""Coordinator: each reader's progress in a study; opening and closing it."""

import pandas as pd
import streamlit as st

from pages import ui
from study.design import list_studies, open_study
from study.imaging.errors import VTTError
from study.models import StudyStatus
from study.reading import study_progress

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
    try:
        if study.status == StudyStatus.DRAFT and st.button("Open the study", type="primary"):
            open_study(engine, study.id, actor="coordinator")
            st.rerun()
        if study.status == StudyStatus.OPEN:
            ui.close_study_button(study, key=f"progress-close-{study.id}")
    except VTTError as error:
        st.error(str(error))
