"""Coordinator: build a balanced study from the library, edit its questions, open and close it."""

import streamlit as st

from pages import ui
from study.design import (
    PairedBlock,
    PoolFilter,
    SingleBlock,
    StudyPlan,
    StudySummary,
    TwoAFCBlock,
    VolumeBlock,
    add_questions,
    create_study,
    delete_study,
    largest_fitting_cases,
    list_studies,
    open_study,
    patient_ids,
    pool_counts,
    power_summary,
    remove_question,
    reopen_study,
    study_composition,
    study_history,
    study_questions,
    update_question,
    update_study,
)
from study.exposure import Exposure
from study.imaging.errors import VTTError
from study.imaging.types import Origin, Sequence
from study.localisation_study import DEFAULT_TOLERANCE_MM, DEFAULT_TOLERANCE_PX
from study.models import CaseKind, Feedback, QuestionKind, StudyStatus
from study.questions import TEMPLATES, QuestionSpec
from study.sizing import METRIC_TITLES, finished_studies, power_curve_figure, size_study

ui.require(ui.Role.COORDINATOR)
engine = ui.engine()
st.title("Studies")

FEEDBACK_LABELS = {
    Feedback.NONE: "None (a blind study)",
    Feedback.AT_END: "Educational: truth and score at the end",
    Feedback.EACH_CASE: "Educational: truth after each case",
}
REVISIT_HELP = (
    "Answers are final once a reader has seen the truth of a case: with feedback at the end, "
    "readers may go back until they open their score; with feedback after each case, going "
    "back is not possible."
)
# The seed protocol's shape: as many T2W and ADC singles and T2W + DWI pairs.
# Timed exposure choices: None untimed, else whether the exposure adapts (a staircase).
EXPOSURES = {"Untimed": None, "Fixed": False, "Staircase (HYPE-time)": True}
SEED_SHAPE = (SingleBlock(Sequence.T2W, 0), SingleBlock(Sequence.ADC, 0), PairedBlock())


def build_form() -> None:
    patients = patient_ids(engine)
    # The largest seed-protocol study the whole library can give, so that the first
    # suggestion can be built as it stands.
    default = largest_fitting_cases(engine, SEED_SHAPE)
    st.caption(
        f"The counts start at the largest balanced seed-protocol study the library gives "
        f"({default} each, at most 32)."
        if default
        else "The library cannot give a balanced seed-protocol study yet: import more images."
    )
    with st.form("new-study"):
        name = st.text_input("Name", key="new-name")
        template = st.selectbox("Questions from the template", list(TEMPLATES), key="new-template")
        description = st.text_area("Description (coordinators only)", key="new-description")
        instructions = st.text_area("Instructions for readers", key="new-instructions")
        st.markdown("**Cases** (exact counts; the shares below hold in every block)")
        t2w, adc, dwi, paired = st.columns(4)
        singles = {
            Sequence.T2W: t2w.number_input("T2W singles", 0, 10_000, default, key="new-T2W"),
            Sequence.ADC: adc.number_input("ADC singles", 0, 10_000, default, key="new-ADC"),
            Sequence.DWI: dwi.number_input("DWI singles", 0, 10_000, 0, key="new-DWI"),
        }
        pairs = paired.number_input("T2W + DWI pairs", 0, 10_000, default, key="new-pairs")
        afc_sequence, afc_cases, _ = st.columns([1, 1, 2])
        two_afc_sequence = afc_sequence.selectbox(
            "2AFC sequence", [s for s in Sequence if s != Sequence.OTHER], key="new-2afc-seq"
        )
        two_afc = afc_cases.number_input("2AFC cases", 0, 10_000, 0, key="new-2afc")
        volume_seqs, volume_cases, volume_slices, volume_around = st.columns(4)
        volume_sequences = volume_seqs.multiselect(
            "Volume sequences",
            [s for s in Sequence if s != Sequence.OTHER],
            [Sequence.T2W],
            key="new-volume-seqs",
        )
        volumes = volume_cases.number_input("Volume cases", 0, 10_000, 0, key="new-volumes")
        slices = volume_slices.number_input(
            "Slices per volume (0: whole stack)",
            0,
            1_000,
            5,
            key="new-volume-slices",
            help="A stack is one patient's slices of a sequence (a generated stack: slices "
            "with one pair key), in slice order; every case shows as many slices, so whole "
            "stacks need stacks of one length.",
        )
        around = volume_around.selectbox(
            "Slices around the", ["centre", "lesion"], key="new-volume-around"
        )
        share_col, lesion_col, balance_col = st.columns(3)
        synthetic_share = share_col.number_input(
            "Synthetic share", 0.0, 1.0, 0.5, step=0.05, key="new-synthetic-share"
        )
        lesion_share = lesion_col.number_input(
            "Lesion share", 0.0, 1.0, 0.5, step=0.05, key="new-lesion-share"
        )
        balance_lesions = balance_col.checkbox("Balance lesions", True, key="new-balance")
        st.markdown("**Pool** (empty means every asset)")
        origins = st.multiselect("Origins", list(Origin), key="new-origins")
        keep = st.multiselect("Only these patients", patients, key="new-patients")
        drop = st.multiselect("Leave out these patients", patients, key="new-exclude")
        known = st.checkbox("Only images with a known lesion status", key="new-known")
        st.markdown("**Reading**")
        extra = st.columns(4)
        practice = extra[0].number_input("Practice cases", 0, 100, 0, key="new-practice")
        repeats = extra[1].number_input("Repeated cases", 0, 10_000, 0, key="new-repeats")
        seed = extra[2].number_input("Seed", 0, 2**31 - 1, 0, key="new-seed")
        feedback = extra[3].selectbox(
            "Feedback", list(Feedback), format_func=FEEDBACK_LABELS.get, key="new-feedback"
        )
        allow_revisit = st.checkbox(
            "Readers may go back and change answers", key="new-revisit", help=REVISIT_HELP
        )
        informed_phase = st.checkbox(
            "Two phases: read every case uninformed, then again told that some images are "
            "synthetic",
            key="new-informed",
            help="Use the template 'Informed and uninformed phases' (or questions limited to a "
            "phase): real-or-synthetic questions are asked in the second phase only.",
        )
        timing_col, ms_col, step_col, min_col, max_col = st.columns([2, 1, 1, 1, 1])
        timing = timing_col.selectbox(
            "Timed exposure (singles, pairs, 2AFC)",
            list(EXPOSURES),
            key="new-exposure",
            help="Each image shown for a limited time, then masked, before the reader answers "
            "(HYPE). A staircase per reader shortens the exposure after a right answer and "
            "lengthens it three steps after a wrong one; where it settles is the reader's "
            "threshold (HYPE-time). Use the template 'Timed exposure (HYPE)'.",
        )
        exposure_ms = ms_col.number_input(
            "Exposure / start (ms)", 34, 10_000, 500, step=50, key="new-exposure-ms"
        )
        step_ms = step_col.number_input("Step (ms)", 1, 5_000, 50, key="new-exposure-step")
        min_ms = min_col.number_input("Shortest (ms)", 34, 10_000, 100, key="new-exposure-min")
        max_ms = max_col.number_input("Longest (ms)", 34, 10_000, 1000, key="new-exposure-max")
        margin_col, target_col = st.columns(2)
        margin = margin_col.number_input(
            "Equivalence margin (accuracy within 0.5 ± margin: indistinguishable)",
            min_value=0.01,
            max_value=0.49,
            value=0.10,
            step=0.01,
            key="new-margin",
        )
        target = target_col.number_input(
            "Target half-width of the 95% accuracy interval (0: none)",
            min_value=0.0,
            max_value=0.49,
            value=0.0,
            step=0.01,
            key="new-target",
        )
        mm_col, px_col = st.columns(2)
        tolerance_mm = mm_col.number_input(
            "Lesion marks: a mark within this many mm of a lesion localises it",
            min_value=0.0,
            max_value=100.0,
            value=DEFAULT_TOLERANCE_MM,
            step=0.5,
            key="new-tolerance-mm",
            help="For images whose pixel spacing is known (DICOM, NIfTI, MHA); only studies "
            "that ask for lesion marks use it.",
        )
        tolerance_px = px_col.number_input(
            "... or this many pixels, on pictures of unknown spacing",
            min_value=0.0,
            max_value=500.0,
            value=DEFAULT_TOLERANCE_PX,
            step=1.0,
            key="new-tolerance-px",
        )
        submitted = st.form_submit_button("Build study", type="primary")
    if not submitted:
        return
    asks_marks = any(q.kind == QuestionKind.LESION_MARKS for q in TEMPLATES[template])
    marks_settings = (
        {"localisation_tolerance_mm": tolerance_mm, "localisation_tolerance_px": tolerance_px}
        if asks_marks
        else {}
    )
    lesion = lesion_share if balance_lesions else None
    exposure = None
    if EXPOSURES[timing] is not None:
        exposure = Exposure(
            int(exposure_ms), EXPOSURES[timing], int(step_ms), int(min_ms), int(max_ms)
        )
    blocks = [
        SingleBlock(sequence, int(n), synthetic_share, lesion, exposure)
        for sequence, n in singles.items()
        if n
    ]
    if pairs:
        blocks.append(
            PairedBlock(
                cases=int(pairs),
                synthetic_share=synthetic_share,
                lesion_share=lesion,
                exposure=exposure,
            )
        )
    if two_afc:
        blocks.append(TwoAFCBlock(two_afc_sequence, int(two_afc), lesion, exposure))
    if volumes:
        blocks.append(
            VolumeBlock(
                tuple(volume_sequences),
                int(volumes),
                int(slices) or None,
                around,
                synthetic_share,
                lesion,
            )
        )
    plan = StudyPlan(
        name=name,
        questions=TEMPLATES[template],
        blocks=tuple(blocks),
        pool=PoolFilter(frozenset(origins), frozenset(keep), frozenset(drop), known),
        description=description,
        instructions=instructions,
        seed=int(seed),
        allow_revisit=allow_revisit,
        feedback=feedback,
        practice_cases=int(practice),
        repeated_cases=int(repeats),
        equivalence_margin=float(margin),
        target_halfwidth=float(target) or None,
        settings=marks_settings,
        informed_phase=informed_phase,
    )
    try:
        create_study(engine, plan)
    except VTTError as error:
        st.error(f"The study was not built.\n\n{error}")
        return
    # The Studies tab shows the newest study once its choice is forgotten.
    st.session_state.pop("studies-pick", None)
    st.session_state["built"] = name.strip()
    st.rerun()


def question_editor(study_id: int, draft: bool) -> None:
    for info in study_questions(engine, study_id):
        spec = info.spec
        phase = f"; phase {spec.phase} only" if spec.phase else ""
        title = (
            f"{info.position}. {spec.wording} ({spec.kind.value}; "
            f"{', '.join(spec.applies_to)}{phase})"
        )
        with st.expander(title, expanded=False):
            st.write("Options: " + (", ".join(spec.options) or "free text"))
            if not draft:
                continue
            with st.form(f"question-{info.id}"):
                wording = st.text_input("Wording", spec.wording)
                options = st.text_area("Options, one per line", "\n".join(spec.options))
                required = st.checkbox("Required", spec.required)
                applies = st.multiselect(
                    "Case kinds", [k.value for k in CaseKind], list(spec.applies_to)
                )
                save, remove = st.columns(2)
                saved = save.form_submit_button("Save question")
                removed = remove.form_submit_button("Remove question")
            try:
                if saved:
                    lines = tuple(line.strip() for line in options.splitlines() if line.strip())
                    update_question(
                        engine,
                        info.id,
                        QuestionSpec(
                            QuestionKind(spec.kind),
                            wording,
                            lines,
                            required,
                            tuple(applies),
                            spec.phase,
                        ),
                    )
                    st.rerun()
                if removed:
                    remove_question(engine, info.id)
                    st.rerun()
            except VTTError as error:
                st.error(str(error))
    if draft:
        template_col, add_col = st.columns([3, 1], vertical_alignment="bottom")
        template = template_col.selectbox(
            "Add the questions of", list(TEMPLATES), key="add-template"
        )
        if add_col.button("Add questions"):
            add_questions(engine, study_id, TEMPLATES[template])
            st.rerun()


def status_actions(study: StudySummary) -> None:
    """Open, close, reopen or delete, each destructive one confirmed; the history below."""
    name = study.name
    if study.status == StudyStatus.DRAFT:
        open_col, delete_col = st.columns(2)
        if open_col.button("Open the study to its readers", type="primary"):
            open_study(engine, study.id, actor="coordinator")
            st.rerun()
        with delete_col:
            if ui.confirm(
                "Delete this draft",
                f"'{name}' will be deleted with its cases, questions and readers. This cannot "
                "be undone.",
                action="Delete it",
                key=f"delete-{study.id}",
            ):
                delete_study(engine, study.id)
                st.session_state.pop("studies-pick", None)
                st.rerun()
    elif study.status == StudyStatus.OPEN:
        ui.close_study_button(study, key=f"close-{study.id}")
    else:
        with st.popover("Reopen the study"):
            st.write(
                f"Readers of '{name}' can answer again. The reopening is recorded with your "
                "reason in the study's history and its report's methods."
            )
            reason = st.text_input("Reason", key=f"reopen-reason-{study.id}")
            if st.button("Reopen it", type="primary", key=f"reopen-{study.id}"):
                reopen_study(engine, study.id, actor="coordinator", note=reason)
                st.rerun()
    history = study_history(engine, study.id)
    if history:
        st.caption(
            "History: "
            + "; ".join(
                f"{e.action.value} {e.at:%Y-%m-%d %H:%M}"
                + (f" by {e.actor}" if e.actor else "")
                + (f" ({e.note})" if e.note else "")
                for e in history
            )
        )


def study_details() -> None:
    if built := st.session_state.pop("built", None):
        st.success(f"Study '{built}' was built as a draft. Review it here, then open it.")
    study = ui.pick_study(list_studies(engine), key="studies-pick")
    if study is None:
        return
    ui.simulated_notice(study)
    draft = study.status == StudyStatus.DRAFT
    cols = st.columns(5)
    cols[0].metric("Status", study.status.value)
    cols[1].metric("Cases", study.cases)
    cols[2].metric("Practice", study.practice_cases)
    cols[3].metric("Repeats", study.repeated_cases)
    cols[4].metric("Readers", study.readers)
    power = power_summary(engine, study.id)
    if power.cases:
        st.info(
            f"With {power.cases} cases per reader, accuracy comes with a 95% interval of about "
            f"±{power.ci_halfwidth:.3f} (at 0.5). Telling an accuracy of "
            f"{power.target_accuracy:.2f} from chance (0.50) with {power.power:.0%} power needs "
            f"{power.cases_needed} cases (exact binomial test, two-sided alpha 0.05)."
        )
    st.subheader("Cases")
    st.dataframe(study_composition(engine, study.id), hide_index=True)
    st.subheader("Questions")
    if not draft:
        st.caption("The study is open or closed: its questions are frozen.")
    question_editor(study.id, draft)
    st.subheader("Open and close")
    try:
        if draft:
            with st.form(f"settings-{study.id}"):
                description = st.text_area("Description (coordinators only)", study.description)
                instructions = st.text_area("Instructions for readers", study.instructions)
                feedback = st.selectbox(
                    "Feedback",
                    list(Feedback),
                    list(Feedback).index(study.feedback),
                    format_func=FEEDBACK_LABELS.get,
                )
                revisit = st.checkbox(
                    "Readers may go back and change answers", study.allow_revisit, help=REVISIT_HELP
                )
                if st.form_submit_button("Save settings"):
                    update_study(
                        engine,
                        study.id,
                        description=description,
                        instructions=instructions,
                        allow_revisit=revisit,
                        feedback=feedback,
                    )
                    st.rerun()
        status_actions(study)
    except VTTError as error:
        st.error(str(error))


def pilot_sizing() -> None:
    """Readers and cases for a new study, sized from a finished one (study.sizing)."""
    with st.expander("Size from a pilot"):
        pilots = finished_studies(engine)
        if not pilots:
            st.caption("A closed study with two or more readers can serve as the pilot.")
            return
        pilot_col, metric_col, effect_col, power_col = st.columns(4)
        pilot = pilot_col.selectbox(
            "Pilot study",
            pilots,
            index=None,
            format_func=lambda s: s.name,
            placeholder="a closed study",
            key="size-pilot",
        )
        metric = metric_col.selectbox(
            "Figure of merit", list(METRIC_TITLES), format_func=METRIC_TITLES.get, key="size-metric"
        )
        effect = effect_col.number_input(
            "Above chance by",
            0.01,
            0.5,
            0.10,
            step=0.01,
            key="size-effect",
            help="The effect to detect: the readers' accuracy (or AUC) minus chance, 0.5.",
        )
        power = power_col.number_input("Power", 0.5, 0.99, 0.80, step=0.05, key="size-power")
        if pilot is None:
            return
        try:
            sizing = size_study(engine, pilot.id, metric, effect=effect, power=power)
        except VTTError as error:
            st.error(str(error))
            return
        st.write(sizing.summary)
        st.dataframe(sizing.table, hide_index=True)
        st.plotly_chart(power_curve_figure(sizing), key="size-curve")


studies_tab, new_tab, pool_tab = st.tabs(["Studies", "Build a study", "Asset pool"])
with studies_tab:
    study_details()
with new_tab:
    pilot_sizing()
    build_form()
with pool_tab:
    st.dataframe(pool_counts(engine, PoolFilter()), hide_index=True)
