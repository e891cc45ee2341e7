"""Results of a study (coordinators and analysts): the sections of its report
(`study.report.sections`) as tabs, for the subgroup the filters choose; the same report as an
HTML file."""

import pandas as pd
import streamlit as st

from pages import ui
from study.design import list_studies
from study.report.blocks import (
    Block,
    Caption,
    Choice,
    Figure,
    FigureRow,
    Heading,
    Metrics,
    Note,
    Paragraph,
    Table,
)
from study.report.data import StudyData, read_study
from study.report.html import report_html
from study.report.model import study_notices, study_report
from study.report.sections import SECTIONS
from study.report.thumbnails import case_thumbnails
from study.reports import Filters, apply_filters, filter_choices

THUMBNAIL_SIZE = 64
MOST_THUMBNAILS = 200


def show_table(table: Table, data: StudyData) -> None:
    """A table's first rows; a table of cases lets its reader choose how many, with
    thumbnails."""
    shown = table.shown
    if table.case_ids:
        shown = int(
            st.number_input(
                "Images shown with thumbnails",
                1,
                MOST_THUMBNAILS,
                value=min(table.shown or MOST_THUMBNAILS, MOST_THUMBNAILS),
                step=10,
                key=f"{table.key}-shown",
            )
        )
    frame = pd.DataFrame(list(table.head(shown)), columns=list(table.columns))
    config = {}
    if table.case_ids:
        cases = table.case_ids[: len(frame)]
        thumbnails = case_thumbnails(data.views, cases, size=THUMBNAIL_SIZE)
        frame.insert(0, "image", [thumbnails.get(case) for case in cases])
        config = {"image": st.column_config.ImageColumn("image", width="small")}
    st.dataframe(frame, hide_index=True, column_config=config)
    if more := table.more(len(frame)):
        st.caption(more)


def show(block: Block, data: StudyData) -> None:
    match block:
        case Heading(minor=True):
            st.markdown(f"**{block.text}**")
        case Heading():
            st.subheader(block.text)
        case Paragraph():
            st.markdown(block.text)
        case Caption():
            st.caption(block.text)
        case Note():
            st.info(block.text)
        case Table():
            show_table(block, data)
        case Figure():
            st.plotly_chart(block.figure, key=block.key)
        case FigureRow():
            for column, figure in zip(st.columns(len(block.figures)), block.figures, strict=True):
                column.plotly_chart(figure.figure, key=figure.key)
        case Metrics():
            columns = st.columns(len(block.items))
            for column, (label, value) in zip(columns, block.items, strict=True):
                column.metric(label, value)
        case Choice():
            chosen = st.selectbox(block.label, block.options, key=block.key)
            for inner in block.show(chosen):
                show(inner, data)


ui.require(ui.Role.COORDINATOR, ui.Role.ANALYST)
engine = ui.engine()
st.title("Results")

study = ui.pick_study(list_studies(engine), key="results-pick")
if study is None:
    st.stop()
data = read_study(engine, study.id)
for notice in study_notices(data):
    ui.show_notice(notice)
if data.answers.empty:
    st.info("No answers yet: the results appear as readers answer.")
    st.stop()

choices = filter_choices(data.answers)
with st.expander("Subgroup filters (empty: everything)"):
    columns = st.columns(5)
    filters = Filters(
        sequences=tuple(
            columns[0].multiselect("Sequence", choices["sequences"], key="filter-sequences")
        ),
        lesions=tuple(columns[1].multiselect("Lesion", choices["lesions"], key="filter-lesions")),
        origins=tuple(columns[2].multiselect("Origin", choices["origins"], key="filter-origins")),
        presentations=tuple(
            columns[3].multiselect(
                "Presentation", choices["presentations"], key="filter-presentations"
            )
        ),
        readers=tuple(columns[4].multiselect("Reader", choices["readers"], key="filter-readers")),
        phases=tuple(
            st.multiselect(
                "Phase (1 uninformed, 2 informed)", choices["phases"], key="filter-phases"
            )
        )
        if len(choices["phases"]) > 1
        else (),
        machines=bool(data.answers["machine"].any())
        and st.checkbox(
            "Count machine readers as readers in the tables",
            key="filter-machines",
            help="Machine readers (imported scores) are compared with the people under "
            "'Machine readers'; here they may also appear in the accuracy tables.",
        ),
    )
if apply_filters(data.answers, filters).empty:
    st.warning("No answers in this subgroup: widen the filters.")
    st.stop()
report = study_report(data, filters)
st.caption(report.summary)
st.download_button(
    "Download this view as an HTML report",
    data=lambda: report_html(report).encode(),
    file_name=f"results-study-{study.id}.html",
    mime="text/html",
    on_click="ignore",
    key="results-html",
)

for section, tab in zip(SECTIONS, st.tabs([s.title for s in SECTIONS]), strict=True):
    with tab:
        for block in section.content(report):
            show(block, data)
