"""Coordinator: generate synthetic images in the background and import them with provenance."""

import pandas as pd
import streamlit as st

from pages import ui
from pages.ui_jobs import option_input, show_jobs
from study.imaging.errors import VTTError
from study.imaging.types import Lesion, Sequence
from study.jobs import (
    GenerateCell,
    JobKind,
    JobView,
    SampleOptions,
    job_device,
    list_checkpoints,
    match_real_pool,
    preview_samples,
    remote_workers,
    submit_generate,
    submit_paired,
    t2w_assets,
)
from synth.contract import (
    LESION_MASK_CHOICES,
    LESION_WORDS,
    PROMPT_TEMPLATE,
    SAMPLERS,
    SEQUENCE_WORDS,
    SampleRequest,
    option_spec,
)

ui.require(ui.Role.COORDINATOR)
st.title("Generate images")
st.markdown(
    "The generator runs in the background (closing this tab does not stop it). When it "
    "finishes, its images are imported into the asset library, all or nothing, with their "
    "provenance (checkpoint, prompt, seed, sampler, steps, guidance)."
)
engine = ui.engine()

checkpoints = list_checkpoints()
if not checkpoints:
    st.info("There is no checkpoint yet: train one on the Train page.")
    st.stop()
device = job_device()


def use_recommended_sampling() -> None:
    """A checkpoint's own sampling settings (a distilled student's few steps) when it is chosen."""
    sampling = st.session_state["gen-checkpoint"].recommended_sampling()
    st.session_state.update(
        {
            "gen-sampler": sampling.sampler,
            "gen-steps": sampling.steps,
            "gen-guidance": sampling.guidance,
        }
    )


# Without a GPU a distilled student is the practical choice: a few unguided steps per image.
students = [i for i, c in enumerate(checkpoints) if c.sampling is not None]
first = students[0] if device == "cpu" and students else 0
checkpoint = st.selectbox(
    "Checkpoint",
    checkpoints,
    first,
    format_func=lambda c: c.name,
    key="gen-checkpoint",
    on_change=use_recommended_sampling,
)
st.caption(
    f"{checkpoint.preset} model, {checkpoint.image_size} px, {checkpoint.steps} training steps, "
    f"trained {checkpoint.date or 'on an unknown date'}; training manifest sha256 "
    f"`{checkpoint.training_manifest_sha256 or 'unknown'}`"
    + (
        f"; distilled from checkpoint `{checkpoint.distilled_from[:12]}` for "
        f"{checkpoint.sampling.steps} {checkpoint.sampling.sampler} steps at guidance "
        f"{checkpoint.sampling.guidance:g}"
        if checkpoint.sampling
        else ""
    )
)
if "gen-sampler" not in st.session_state:
    use_recommended_sampling()

with st.expander("Sampling settings", expanded=True):
    template = st.text_input(
        "Prompt template ({sequence} and {lesion} are filled in per cell)",
        PROMPT_TEMPLATE,
        help=f"{{sequence}}: {', '.join(SEQUENCE_WORDS.values())}; "
        f"{{lesion}}: {', '.join(word for word in LESION_WORDS.values() if word)} or nothing",
        key="gen-template",
    )
    left, middle, right, seed_column = st.columns(4)
    sampler = left.selectbox(
        "Sampler",
        SAMPLERS,
        help=option_spec(SampleRequest, "sampler").help,
        key="gen-sampler",
    )
    steps = option_input(middle, SampleRequest, "steps", "Steps", key="gen-steps", from_state=True)
    guidance = option_input(
        right, SampleRequest, "guidance", "Guidance", key="gen-guidance", from_state=True, step=0.5
    )
    seed = option_input(seed_column, SampleRequest, "seed", "Seed", key="gen-seed")
    lesion_masks = (
        st.radio(
            "Lesion masks",
            LESION_MASK_CHOICES,
            horizontal=True,
            help="auto: each single image with a lesion is drawn around a lesion outline from "
            "the phantom's lesion model, imported as its ground truth (paired images take "
            "their T2W assets' masks either way)",
            key="gen-lesion-masks",
        )
        if checkpoint.mask_channel
        else "none"
    )
options = SampleOptions(template, sampler, steps, guidance, seed, lesion_masks)
st.caption(
    f"Jobs run on the workers' machines, each on its own device; the preview runs on **{device}**."
    if remote_workers()
    else f"The generator runs on **{device}**."
)

single_tab, paired_tab = st.tabs(["Single images", "Paired: DWI/ADC from T2W"])
with single_tab:
    how = st.radio("How many", ["Per sequence and lesion", "Match the real pool"], horizontal=True)
    if how == "Match the real pool":
        cells = match_real_pool(engine)
        if not cells:
            st.info("There are no real assets to match: import some first.")
    else:
        lesions = {"with lesion": Lesion.YES, "without lesion": Lesion.NO}
        cells = []
        for column, sequence in zip(
            st.columns(3), [Sequence.T2W, Sequence.ADC, Sequence.DWI], strict=True
        ):
            for label, lesion in lesions.items():
                count = column.number_input(
                    f"{sequence.value} {label}", 0, 10000, 0, key=f"gen-{sequence}-{lesion}"
                )
                cells.append(GenerateCell(sequence, lesion, int(count)))
    wanted = [cell for cell in cells if cell.n > 0]
    st.dataframe(
        pd.DataFrame(
            [(c.sequence.value, c.lesion.value or "unknown", c.n) for c in wanted],
            columns=["sequence", "lesion", "images"],
        ),
        hide_index=True,
    )
    preview, start = st.columns(2)
    if wanted and preview.button("Preview 2 images", key="gen-preview"):
        with st.spinner("Generating a preview..."):
            try:
                images = preview_samples(checkpoint.path, wanted[0], options)
            except VTTError as error:
                st.error(str(error))
            else:
                st.image(
                    images, width=200, caption=[f"preview {i + 1}" for i in range(len(images))]
                )
    if wanted and start.button("Start generating", type="primary", key="gen-start"):
        try:
            job_id = submit_generate(engine, checkpoint.path, wanted, options)
        except VTTError as error:
            st.error(str(error))
        else:
            st.success(f"Job {job_id} is queued; it runs in the background.")

with paired_tab:
    candidates = dict(t2w_assets(engine))
    chosen = st.multiselect(
        "T2W assets to condition on",
        list(candidates),
        format_func=candidates.get,
        key="gen-paired-assets",
    )
    targets = st.multiselect(
        "Make", [Sequence.DWI, Sequence.ADC], default=[Sequence.DWI], key="gen-paired-targets"
    )
    if chosen and targets and st.button("Start paired synthesis", type="primary"):
        try:
            job_id = submit_paired(engine, checkpoint.path, chosen, targets, options)
        except VTTError as error:
            st.error(str(error))
        else:
            st.success(f"Job {job_id} is queued; it runs in the background.")


def result(job: JobView) -> None:
    if job.result:
        st.success(
            f"added {job.result['added']} assets to the library "
            f"({job.result['unchanged']} were already there)"
        )


show_jobs(JobKind.GENERATE, result)
