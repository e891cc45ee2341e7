"""Exports of a study (coordinators and analysts): answers, results tables, the HTML report
and ROC ratings for MRMC software, each file made when its button is clicked."""

import itertools

import streamlit as st

from pages import ui
from study.design import list_studies
from study.exports import study_downloads
from study.report.data import read_study

ui.require(ui.Role.COORDINATOR, ui.Role.ANALYST)
engine = ui.engine()
st.title("Exports")

study = ui.pick_study(list_studies(engine), key="exports-pick")
if study is None:
    st.stop()
ui.simulated_notice(study)
data = read_study(engine, study.id)
analysed = data.answers[~data.answers["practice"].astype(bool)]
st.caption(
    f"{len(analysed)} answers of {analysed['reader'].nunique()} reader(s), practice answers left "
    "out (the answers file keeps them, marked). Answers come with their stored codes and the "
    "options they stand for; tables name the positive class."
)
downloads = study_downloads(data)
for group, offered in itertools.groupby(downloads, key=lambda download: download.group):
    st.subheader(group)
    for download in offered:
        st.download_button(
            download.label,
            data=download.make,
            file_name=download.file_name,
            mime=download.mime,
            on_click="ignore",
            disabled=bool(download.unavailable) or data.answers.empty,
            help=download.unavailable or None,
            key=f"download-{download.file_name}",
        )
