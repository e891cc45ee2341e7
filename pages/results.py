"""Results of a study (coordinators and analysts): accuracy with intervals, confusion matrices,
ROC and MRMC, agreement, realism ratings, the seed study's table, lesions on real vs synthetic
images, and the images that fooled the readers; filters choose a subgroup."""

import pandas as pd
import streamlit as st

from pages import ui
from study import plots
from study.analysis import tidy_answers
from study.design import list_studies
from study.exports import report_html
from study.readers import visitor_count
from study.reports import (
    POOLED,
    SUBGROUP_TITLES,
    Filters,
    apply_filters,
    build_report,
    case_thumbnails,
    filter_choices,
    methods_text,
    metrics_parts,
    study_context,
)

ui.require(ui.Role.COORDINATOR, ui.Role.ANALYST)
engine = ui.engine()
st.title("Results")

study = ui.pick_study(list_studies(engine), key="results-pick")
if study is None:
    st.stop()
ui.simulated_notice(study)
visitors = visitor_count(engine, study.id)
if visitors.visitors:
    st.info(
        f"{visitors.visitors} visitor(s) read this study with its public code, each as an "
        f"anonymous reader of their own; {visitors.finished} finished. Visitors who stop before "
        "the end are removed after a while."
    )
tidy = tidy_answers(engine, study.id)
if tidy.empty:
    st.info("No answers yet: the results appear as readers answer.")
    st.stop()

choices = filter_choices(tidy)
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
    )
subset = apply_filters(tidy, filters)
if subset.empty:
    st.warning("No answers in this subgroup: widen the filters.")
    st.stop()
context = study_context(engine, study.id)
report = build_report(subset, filters=filters, seed=context.seed)
st.caption(
    f"{report.answers} answers of {len(report.readers)} reader(s), practice answers left out; "
    f"{filters.describe()}. "
    "Pooled rows count every reading as independent; the MRMC analysis treats readers and "
    "cases as random."
)
st.download_button(
    "Download this view as an HTML report",
    data=lambda: report_html(context, report).encode(),
    file_name=f"results-study-{study.id}.html",
    mime="text/html",
    on_click="ignore",
    key="results-html",
)


def show_metrics(table: pd.DataFrame) -> None:
    """Each question's metrics in two tables narrow enough for the page."""
    for part in metrics_parts(table):
        st.markdown(f"**{part.title}**")
        st.dataframe(part.accuracy, hide_index=True)
        st.dataframe(part.rates, hide_index=True)


(
    accuracy_tab,
    subgroup_tab,
    roc_tab,
    agreement_tab,
    likert_tab,
    lesion_tab,
    seed_tab,
    fool_tab,
    methods_tab,
) = st.tabs(
    [
        "Accuracy",
        "Subgroups",
        "ROC and MRMC",
        "Agreement",
        "Realism",
        "Lesions: real vs synthetic",
        "Seed study table",
        "Fool rate",
        "Methods",
    ]
)

with accuracy_tab:
    if report.per_reader.empty:
        st.info(report.notes.get("per_reader", "No readings."))
    else:
        show_metrics(report.per_reader)
        for kind in report.per_reader["question_kind"].unique():
            st.plotly_chart(plots.accuracy_forest(report.per_reader, kind), key=f"forest-{kind}")
        st.subheader("Confusion matrices")
        reader = st.selectbox("Reader", [POOLED, *report.readers], key="confusion-reader")
        rows = report.per_reader[report.per_reader["reader"] == reader]
        if rows.empty:
            st.info(f"{reader} answered no real/synthetic, lesion or 2AFC question here.")
        else:
            for column, (_, row) in zip(st.columns(len(rows)), rows.iterrows(), strict=True):
                column.plotly_chart(
                    plots.confusion_matrix(row), key=f"confusion-{row['question_kind']}"
                )

with subgroup_tab:
    for name, table in report.subgroups.items():
        if not table.empty:
            st.subheader(SUBGROUP_TITLES[name])
            show_metrics(table)

with roc_tab:
    if report.auc.empty:
        st.info(report.notes.get("roc", "No confidence ratings."))
    else:
        st.dataframe(report.auc.round(3), hide_index=True)
        st.plotly_chart(plots.roc_curves(report.scores, report.auc), key="roc")
        st.plotly_chart(plots.auc_forest(report.auc, report.mrmc), key="auc-forest")
    st.subheader("MRMC (Obuchowski-Rockette, random readers and cases)")
    if report.mrmc is None:
        st.info(report.notes.get("mrmc", "Not available."))
    else:
        mrmc = report.mrmc
        mean, interval, test = st.columns(3)
        mean.metric("Mean AUC of the readers", f"{mrmc.fom:.3f}")
        interval.metric("95% CI (Hillis ddf)", f"{mrmc.low:.3f} to {mrmc.high:.3f}")
        test.metric("p against 0.5", f"{mrmc.p_vs_chance:.4f}")
        st.caption(
            f"{mrmc.cases_used} cases read by every reader"
            + (f"; {mrmc.cases_left_out} left out." if mrmc.cases_left_out else ".")
        )
        st.dataframe(mrmc.table.round(4), hide_index=True)

with agreement_tab:
    if report.agreement_pairs.empty:
        st.info(report.notes.get("agreement", "Not available."))
    else:
        st.subheader("Fleiss' kappa")
        st.dataframe(report.agreement_groups.round(3), hide_index=True)
        st.subheader("Cohen's kappa per pair of readers")
        st.dataframe(report.agreement_pairs.round(3), hide_index=True)
    st.subheader("Intra-reader agreement on repeated cases")
    if report.agreement_intra.empty:
        st.info("No repeated case was read.")
    else:
        st.dataframe(report.agreement_intra.round(3), hide_index=True)

with likert_tab:
    if report.likert_distribution.empty:
        st.info(report.notes.get("likert", "No realism ratings."))
    else:
        st.plotly_chart(plots.likert_histogram(report.likert_distribution), key="likert")
        st.dataframe(report.likert_summary.round(3), hide_index=True)
        st.dataframe(report.likert_test.round(4), hide_index=True)

with lesion_tab:
    if report.lesion_by_origin.empty:
        st.info("No lesion question was answered.")
    else:
        st.dataframe(report.lesion_by_origin.round(3), hide_index=True)
        st.plotly_chart(plots.lesion_by_origin(report.lesion_by_origin), key="lesions")

with seed_tab:
    if report.has_seed_cells():
        st.caption(
            "Table 4.3 of Saeed et al.: correct/read = accuracy (Wilson 95% interval), exact "
            "binomial p against 0.5."
        )
        st.dataframe(report.seed_layout, hide_index=True)
    else:
        st.info("This study has none of the seed study's tasks (T2W, ADC, T2W-DW pairs).")

with fool_tab:
    if report.fool_rate.empty:
        st.info("No real/synthetic or 2AFC question was answered.")
    else:
        st.plotly_chart(plots.fool_rate_histogram(report.fool_rate), key="fool-rate")
        shown = int(
            st.number_input(
                "Images shown with thumbnails", 1, 200, value=20, step=10, key="fool-shown"
            )
        )
        top = report.fool_rate.head(shown).copy()
        thumbnails = case_thumbnails(engine, top["case_id"].tolist(), size=64)
        top.insert(0, "image", top["case_id"].map(thumbnails))
        st.dataframe(
            top.round(3),
            hide_index=True,
            column_config={"image": st.column_config.ImageColumn("image", width="small")},
        )
        st.caption(
            f"The {len(top)} most convincing of {len(report.fool_rate)} images (fooled: a "
            "synthetic image called real, a real one called synthetic, or the synthetic side "
            "picked in a 2AFC case). The exports hold every image."
        )

with methods_tab:
    st.caption("A starting point for a paper's methods section; adapt it.")
    for paragraph in methods_text(context, report):
        st.markdown(paragraph)
