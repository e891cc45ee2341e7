"""Coordinator: train the generator on imported assets, in the background, with its loss curve."""

import plotly.express as px
import streamlit as st

from pages import ui
from pages.ui_jobs import duration_text, show_jobs
from study.design import PoolFilter, patient_ids
from study.imaging.errors import VTTError
from study.imaging.types import Lesion, Origin, Sequence
from study.jobs import (
    JobKind,
    JobView,
    TrainingSelection,
    TrainOptions,
    can_resume,
    estimate_training,
    job_device,
    resume_training,
    selected_assets,
    submit_training,
    training_loss,
)

ui.require(ui.Role.COORDINATOR)
st.title("Train the generator")
st.markdown(
    "Trains the conditional diffusion model on the canonical arrays of the assets you choose. "
    "The checkpoint goes to `checkpoints/<name>` under the data folder and appears on the "
    "Generate page. Training runs in the background; a stopped run can be resumed."
)
engine = ui.engine()

with st.expander("Training data", expanded=True):
    left, right = st.columns(2)
    sequences = left.multiselect("Sequences", list(Sequence), key="train-sequences")
    origins = right.multiselect("Origins", list(Origin), default=[Origin.REAL], key="train-origins")
    lesion_names = {
        "with lesion": Lesion.YES,
        "without lesion": Lesion.NO,
        "unknown": Lesion.UNKNOWN,
    }
    lesions = left.multiselect("Lesion", list(lesion_names), key="train-lesions")
    patients = patient_ids(engine)
    keep = right.multiselect("Only these patients", patients, key="train-patients")
    drop = left.multiselect("Leave out these patients (held out)", patients, key="train-exclude")
selection = TrainingSelection(
    frozenset(sequences),
    frozenset(lesion_names[name] for name in lesions),
    PoolFilter(frozenset(origins), frozenset(keep), frozenset(drop)),
)
st.caption(f"{len(selected_assets(engine, selection))} assets match.")

with st.expander("Settings of `synth train`", expanded=True):
    name = st.text_input("Checkpoint name", key="train-name")
    a, b, c, d = st.columns(4)
    preset = a.selectbox("Model", ["tiny", "small", "default"], index=1, key="train-preset")
    steps = b.number_input("Steps", 1, 1_000_000, 2000, key="train-steps")
    batch = c.number_input("Batch", 1, 512, 8, key="train-batch")
    size = d.selectbox("Size (px)", [None, 32, 64, 128, 256], key="train-size")
    max_minutes = a.number_input("Stop after (minutes, 0: no limit)", 0.0, 10_000.0, 0.0)
    seed = b.number_input("Seed", 0, 2**31 - 1, 0, key="train-seed")
    save_every = c.number_input(
        "Save every (steps; a stopped run resumes from the last save)",
        1,
        1_000_000,
        1000,
        key="train-save-every",
    )
    log_every = d.number_input("Log the loss every (steps)", 1, 100_000, 10, key="train-log-every")
options = TrainOptions(
    int(steps),
    int(batch),
    preset,
    size,
    max_minutes or None,
    int(seed),
    int(save_every),
    int(log_every),
)

device = job_device()
st.caption(f"Jobs run on **{device}**.")
if device == "cpu" and st.button("Estimate the duration (a 3-step dry run)"):
    with st.spinner("Timing 3 training steps..."):
        try:
            estimate = estimate_training(engine, selection, options)
        except VTTError as error:
            st.error(str(error))
        else:
            st.info(
                f"{estimate.seconds_per_step:.2f} s per step on the CPU: about "
                f"{duration_text(estimate.total_s)} for {options.steps} steps."
            )
if st.button("Start training", type="primary", disabled=not name):
    try:
        job_id = submit_training(engine, name, selection, options)
    except VTTError as error:
        st.error(str(error))
    else:
        st.success(f"Job {job_id} is queued; it runs in the background.")


def details(job: JobView) -> None:
    loss = training_loss(job.params["checkpoint"])
    if not loss.empty:
        figure = px.line(loss, x="step", y="loss", log_y=True, height=250)
        st.plotly_chart(figure, key=f"loss-{job.id}")
    if can_resume(job) and st.button("Resume", key=f"resume-{job.id}"):
        try:
            resume_training(engine, job.id)
        except VTTError as error:
            st.error(str(error))
        else:
            # The whole page: a fragment-scoped rerun fails outside fragment reruns.
            st.rerun()


show_jobs(JobKind.TRAIN, details)
