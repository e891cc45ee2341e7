"""Machine evaluation (coordinators and analysts): can a machine tell a study's synthetic images
from its real ones, and do they help a lesion classifier? Beside the readers' results of the
same study. Coordinators start the checks as background jobs; analysts, read-only in the app,
see their results and progress."""

from collections.abc import Callable

import plotly.express as px
import streamlit as st

from pages import ui
from pages.ui_jobs import option_input, show_job_list
from study.design import list_studies
from study.imaging.errors import VTTError
from study.jobs import (
    JobKind,
    JobView,
    latest_result,
    machine_jobs,
    study_images,
    submit_augmentation,
    submit_evaluation,
)
from study.jobs.machine_results import (
    against_readers,
    augmentation_arms,
    augmentation_fold_table,
    augmentation_folds,
    readers_real_or_synthetic,
    realism_table,
    summary,
)
from study.report.data import read_study
from study.report.model import study_notices, study_report
from study.stats.tables import POOLED
from synth.contract import AugmentRequest, EvaluateRequest, option_spec

ui.require(ui.Role.COORDINATOR, ui.Role.ANALYST)
engine = ui.engine()
coordinator = ui.role() == ui.Role.COORDINATOR
st.title("Machine evaluation")
st.markdown(
    "Two checks by machine of a study's images, beside what its readers did with them. "
    "**Realism**: a small CNN, cross-validated with patients kept apart, tries to tell the "
    "synthetic images from the real ones (C2ST: AUC 0.5 means it cannot), and classifiers "
    "trained on real images check that the synthetic ones show the lesion and sequence they "
    "were made for. **Augmentation**: a lesion classifier trained on the real images of some "
    "patients, and on the same images plus the synthetic ones, is tested on the other patients "
    "(the seed study's machine-learning row of Table 4.3)."
)

study = ui.pick_study(list_studies(engine), key="machine-pick")
if study is None:
    st.stop()
images = study_images(engine, study.id)
st.caption(
    f"This study's cases show {len(images.real)} real images of {images.patients} patients "
    f"and {len(images.synthetic)} synthetic images (practice cases left out)."
)
data = read_study(engine, study.id)
for notice in study_notices(data):
    ui.show_notice(notice)
report = None if data.answers.empty else study_report(data)


def started(submit_job: Callable[[], int]) -> None:
    try:
        job_id = submit_job()
    except VTTError as error:
        st.error(str(error))
    else:
        st.success(f"Job {job_id} is queued; it runs in the background.")


if coordinator:
    with st.expander("Run a check", expanded=True):
        realism_tab, augment_tab = st.tabs(["Realism", "Augmentation"])
        with realism_tab:
            left, middle, right = st.columns(3)
            evaluate_options = {
                "folds": option_input(left, EvaluateRequest, "folds", "Folds", key="eval-folds"),
                "epochs": option_input(
                    middle, EvaluateRequest, "epochs", "Epochs", key="eval-epochs"
                ),
                "seed": option_input(right, EvaluateRequest, "seed", "Seed", key="eval-seed"),
            }
            if st.button("Start the realism checks", type="primary", key="eval-start"):
                started(lambda: submit_evaluation(engine, study.id, **evaluate_options))
        with augment_tab:
            left, middle, right, last = st.columns(4)
            augment_options = {
                "folds": option_input(left, AugmentRequest, "folds", "Folds", key="aug-folds"),
                "repeats": option_input(
                    middle, AugmentRequest, "repeats", "Repeats", key="aug-repeats"
                ),
                "epochs": option_input(
                    right, AugmentRequest, "epochs", "Epochs (empty: default)", key="aug-epochs"
                ),
                "seed": option_input(last, AugmentRequest, "seed", "Seed", key="aug-seed"),
                "quick": st.checkbox(
                    "Quick", help=option_spec(AugmentRequest, "quick").help, key="aug-quick"
                ),
                "allow_unrecorded": st.checkbox(
                    "Accept images whose generator does not record its training patients",
                    help=option_spec(AugmentRequest, "allow_unrecorded").help
                    + ". The result then cannot rule out a generator that saw a tested patient.",
                    key="aug-unrecorded",
                ),
            }
            if st.button("Start the augmentation experiment", type="primary", key="aug-start"):
                started(lambda: submit_augmentation(engine, study.id, **augment_options))

st.header("Can a machine tell them apart?")
evaluation = latest_result(engine, study.id, JobKind.EVALUATE)
readers = readers_real_or_synthetic(report.tables.per_reader if report else None)
pooled = readers[readers["reader"] == POOLED]
machine_column, readers_column = st.columns(2)
if evaluation is None:
    machine_column.info(
        "No realism check of this study has finished yet"
        + (": start one above." if coordinator else ".")
    )
else:
    result = evaluation.result
    low, high = result["c2st_auc_ci"]
    machine_column.metric("Machine: C2ST AUC", f"{result['c2st_auc']:.3f}")
    machine_column.caption(
        f"95% CI {low:.3f}-{high:.3f} (DeLong); job {evaluation.id} on {result['n_real']} real "
        f"and {result['n_synthetic']} synthetic images. 0.5: it cannot tell them apart."
    )
if pooled.empty:
    readers_column.info("No reader has answered a real-or-synthetic question yet.")
else:
    row = pooled.iloc[0]
    readers_column.metric("Readers pooled: real-or-synthetic accuracy", f"{row['accuracy']:.3f}")
    readers_column.caption(
        f"95% CI {row['low']:.3f}-{row['high']:.3f} (Wilson), exact binomial p against 0.5 "
        f"{row['p']:.3g}; {row['n']} readings. 0.5: the readers cannot tell them apart."
    )
if evaluation is not None or not pooled.empty:
    points = against_readers(evaluation.result if evaluation else None, readers)
    figure = px.scatter(
        points,
        x="estimate",
        y="who",
        color="what",
        error_x="plus",
        error_x_minus="minus",
        range_x=[0, 1],
        height=120 + 30 * len(points),
    )
    figure.add_vline(x=0.5, line_dash="dot")
    st.plotly_chart(figure, key="machine-vs-readers")
if not readers.empty:
    st.dataframe(readers, hide_index=True)
if evaluation is not None:
    st.subheader("Memorisation and conditioning fidelity")
    st.dataframe(realism_table(evaluation.result), hide_index=True)

st.header("Do they help a lesion classifier?")
augmentation = latest_result(engine, study.id, JobKind.AUGMENT)
experiment_column, seed_column = st.columns(2)
with experiment_column:
    st.subheader("Augmentation experiment")
    if augmentation is None:
        st.info(
            "No augmentation experiment on this study has finished yet"
            + (": start one above." if coordinator else ".")
        )
    else:
        result = augmentation.result
        st.dataframe(augmentation_arms(result), hide_index=True)
        st.caption(
            f"Job {augmentation.id}: {result['n_real']} real and {result['n_synthetic']} "
            "synthetic images; mean +- sd over the folds; the difference is real+synthetic "
            "minus real, paired by fold, with a t interval corrected for the patients folds "
            "share (Nadeau & Bengio 2003)."
        )
        if augmentation.params["request"].get("allow_unrecorded"):
            st.warning(
                "This experiment accepted synthetic images whose generator does not record its "
                "training patients: it cannot rule out a generator that saw a tested patient."
            )
with seed_column:
    st.subheader("Table 4.3 of the seed study, with this study's readers")
    if report is not None and report.tables.has_seed_cells():
        st.dataframe(report.tables.seed_layout, hide_index=True)
    else:
        st.info("This study's readings fill none of the seed study's reader tasks.")
if augmentation is not None:
    figure = px.line(
        augmentation_folds(augmentation.result),
        x="arm",
        y="value",
        color="label",
        facet_col="metric",
        markers=True,
        range_y=[0, 1],
        height=320,
    )
    st.plotly_chart(figure, key="augmentation-folds")
    st.dataframe(augmentation_fold_table(augmentation.result), hide_index=True)


def details(job: JobView) -> None:
    if job.result:
        st.caption(summary(job.kind, job.result))


show_job_list(lambda: machine_jobs(engine, study.id), details, can_cancel=coordinator)
