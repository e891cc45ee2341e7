"""Coordinator: train the generator on imported assets, in the background, with its loss curve."""

import plotly.express as px
import streamlit as st

from pages import ui
from pages.ui_jobs import duration_text, option_input, show_jobs
from study.design import PoolFilter, patient_ids
from study.imaging.errors import VTTError
from study.imaging.types import Lesion, Origin, Sequence
from study.jobs import (
    JobKind,
    JobView,
    TrainingSelection,
    can_resume,
    estimate_training,
    job_device,
    remote_workers,
    resume_training,
    selected_assets,
    submit_training,
    training_loss,
)
from synth.contract import DEFAULT_PRESET, PRESETS, TrainSettings, option_spec

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
    preset = a.selectbox(
        "Model",
        list(PRESETS),
        index=list(PRESETS).index(DEFAULT_PRESET),
        format_func=lambda preset: f"{preset}: {PRESETS[preset]}",
        help=option_spec(TrainSettings, "model").help,
        key="train-preset",
    )
    steps = option_input(b, TrainSettings, "steps", "Steps", key="train-steps")
    batch = option_input(c, TrainSettings, "batch", "Batch", key="train-batch")
    size_option = option_spec(TrainSettings, "size")
    # Powers of two within the limits: sizes every preset's levels divide.
    sizes = [2**k for k in range(int(size_option.max).bit_length()) if 2**k >= size_option.min]
    size = d.selectbox(
        "Size (px)",
        [None, *sizes],
        format_func=lambda px: "the preset's" if px is None else str(px),
        help=size_option.help,
        key="train-size",
    )
    max_minutes = option_input(
        a, TrainSettings, "max_minutes", "Stop after (minutes; empty: no limit)", key="train-max"
    )
    seed = option_input(b, TrainSettings, "seed", "Seed (empty: 0)", key="train-seed")
    save_every = option_input(
        c, TrainSettings, "save_every", "Save every (steps)", key="train-save-every"
    )
    log_every = option_input(
        d, TrainSettings, "log_every", "Log the loss every (steps)", key="train-log-every"
    )
    mask_channel = a.checkbox(
        "Condition on lesion masks",
        help=option_spec(TrainSettings, "mask_channel").help
        + ". The assets' masks (imported with a mask) are the outlines; the Generate page "
        "then offers lesion masks.",
        key="train-mask-channel",
    )
    mask_dropout = option_input(
        b, TrainSettings, "mask_dropout", "Mask withheld (share)", key="train-mask-dropout"
    )
try:
    training = TrainSettings(
        model=preset,
        size=size,
        steps=steps,
        batch=batch,
        seed=seed,
        save_every=save_every,
        log_every=log_every,
        max_minutes=max_minutes,
        mask_channel=mask_channel,
        mask_dropout=mask_dropout,
    )
except VTTError as error:
    st.error(str(error))
    training = None

device = job_device()
remote = remote_workers()
st.caption(
    "Jobs run on the workers' machines, each on its own device."
    if remote
    else f"Jobs run on **{device}**."
)
# The dry run runs here: it tells the duration only where the jobs run here too.
if (
    device == "cpu"
    and not remote
    and training is not None
    and st.button("Estimate the duration (a 3-step dry run)")
):
    with st.spinner("Timing 3 training steps..."):
        try:
            estimate = estimate_training(engine, selection, training)
        except VTTError as error:
            st.error(str(error))
        else:
            st.info(
                f"{estimate.seconds_per_step:.2f} s per step on the CPU: about "
                f"{duration_text(estimate.total_s)} for {training.steps} steps."
            )
if st.button("Start training", type="primary", disabled=not name) and training is not None:
    try:
        job_id = submit_training(engine, name, selection, training)
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
