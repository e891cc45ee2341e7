"""Reader: instructions, practice cases, the study's cases one at a time, and the finish page.

Blinding: this page shows only the case's viewport names, its number in the reader's order and
the questions. Widget keys are built from the case's opaque public id; images reach the browser
as pixel samples of one length for every 2D viewport (the viewer) or as PNGs of one length (the
simple viewer), made from canonical arrays by the same function for every case.

The reading room: a dark page (readers only) with the images as large as the window allows
and the questions beside them on wide screens. The viewer (pages/viewer) does window/level,
zoom, pan and slices in the browser and gives the page its keyboard (answer keys shown under
the choices, Enter for the main button, B for "Back"); the reader may switch to the simple
viewer (sliders and server-rendered PNGs), which AppTest gets too (it runs no component).

Speed: the case (progress, images, questions) is a fragment, so "Submit and next" reruns only
it; the next case's pixels (or PNGs) are prepared while the reader reads this one, and each is
computed once (the caches of study.viewer_payload and study.rendering).
"""

import logging
import time

import pandas as pd
import streamlit as st

from pages import ui, viewer
from study.answer_keys import answer_keys
from study.marks import Mark, ViewportShape, dump_marks, from_display, load_marks, to_display
from study.models import Feedback, QuestionKind, StudyStatus
from study.phases import INFORMED_TEXT
from study.reading import (
    AnswerFeedback,
    CaseView,
    QuestionView,
    ReaderAccessError,
    ReadingError,
    case_at,
    case_feedback,
    mark_informed,
    mark_instructions_seen,
    next_case,
    reader_score,
    reader_state,
    record_answer,
)
from study.rendering import prefetch_upcoming, render_case
from study.report.thumbnails import case_thumbnails
from study.timed_cases import TimedCaseError, record_shown
from study.viewer_payload import prefetch_viewer_case, viewer_case

DEFAULT_VIEW = {"view-center": 0.5, "view-width": 1.0, "view-zoom": 1.0}
# Each image at most this wide on screen (CSS px; narrower when the page is): twice the default
# 256 px render, so small images are not blown up to the width of the page. The browser scales
# the image; the PNG sent is the render itself, never re-encoded to fit.
IMAGE_WIDTH = 512
SUBMIT = "Submit and next"
BACK = "Back"
NEXT = "Next case"
THUMBNAIL_SIZE = 64
# Questions answered without choosing an option (no radio group for the keyboard).
UNCHOSEN = (QuestionKind.FREE_TEXT, QuestionKind.LESION_MARKS)
TIMED_NEEDS_VIEWER = (
    "This study shows each image for a limited time, which needs the image viewer, and it "
    "could not start here. Please reload the page, or use another browser."
)
LOG = logging.getLogger(__name__)

ui.require(ui.Role.READER)
engine = ui.engine()
reader = ui.reader_id()
try:
    state = reader_state(engine, reader)
except ReaderAccessError as error:
    ui.sign_out()
    st.error(str(error))
    st.stop()

st.html(viewer.ROOM_CSS)
st.title(state.study_name)


def show_feedback(public_id: str) -> None:
    for line in case_feedback(engine, reader, public_id):
        if line.correct is None:
            st.write(f"**{line.wording}** You answered {line.given}.")
        elif line.is_correct:
            st.success(f"**{line.wording}** You answered {line.given}: correct.")
        else:
            st.error(f"**{line.wording}** You answered {line.given}; the answer is {line.correct}.")


def option_keys(view: CaseView) -> dict[int, tuple[str, ...]]:
    """The keyboard key of each option of every question of the case (none for free text)."""
    keys = answer_keys([(question.kind, question.options) for question in view.questions])
    return {question.id: k for question, k in zip(view.questions, keys, strict=True)}


def answer_key(view: CaseView, question: QuestionView) -> str:
    return f"answer-{view.public_id}-{question.id}"


def marks_question(view: CaseView) -> QuestionView | None:
    return next((q for q in view.questions if q.kind == QuestionKind.LESION_MARKS), None)


def ask(view: CaseView, question: QuestionView, keys: tuple[str, ...]) -> None:
    key = answer_key(view, question)
    given = view.answers.get(question.id)
    label = question.wording + ("" if question.required else " (optional)")
    if question.kind == QuestionKind.LESION_MARKS:
        marks = load_marks(st.session_state.get(key, given or "[]"), scale=len(question.options))
        st.markdown(f"**{label}**")
        ratings = ", ".join(str(mark.rating) for mark in marks)
        st.caption(
            f"{len(marks)} mark(s) placed"
            + (f" (rated {ratings})." if marks else ".")
            + (
                ""
                if viewer.available() and not st.session_state.get("simple-viewer")
                else " Marks are placed in the viewer: switch the simple viewer off."
            )
        )
        return
    if question.kind == QuestionKind.FREE_TEXT:
        st.text_area(label, value=given or "", key=key)
        return
    labels = dict(zip(question.values, question.options, strict=True))
    st.radio(
        label,
        question.values,
        index=question.values.index(given) if given in question.values else None,
        format_func=labels.__getitem__,
        captions=[f"`{k}`" if k else "" for k in keys] if viewer.available() else None,
        horizontal=True,
        key=key,
    )


def reset_view() -> None:
    st.session_state.update(DEFAULT_VIEW)


def simple_view_controls() -> tuple[tuple[float, float], float]:
    """Window/level and zoom, applied identically to every image of the case."""
    for key, value in DEFAULT_VIEW.items():
        st.session_state.setdefault(key, value)
    center_col, width_col, zoom_col, reset_col = st.columns(
        [3, 3, 3, 1], vertical_alignment="bottom"
    )
    center = center_col.slider("Level (window center)", 0.0, 1.0, step=0.01, key="view-center")
    width = width_col.slider("Window width", 0.05, 1.0, step=0.01, key="view-width")
    zoom = zoom_col.slider("Zoom", 1.0, 4.0, step=0.25, key="view-zoom")
    reset_col.button("Reset view", on_click=reset_view)
    return (round(center, 2), round(width, 2)), zoom


# Callbacks run before the fragment reruns, so the rerun shows the next case directly.


def submit_case(view: CaseView) -> None:
    keep_viewer_marks(view)
    values = {
        question.id: st.session_state.get(answer_key(view, question)) for question in view.questions
    }
    answers = {qid: value for qid, value in values.items() if value is not None}
    started = st.session_state.get("case-clock", (view.public_id, time.monotonic()))[1]
    try:
        record_answer(engine, reader, view.public_id, answers, time.monotonic() - started)
    except ReadingError as error:
        st.session_state["reading-error"] = str(error)
        return
    st.session_state.pop("case-clock", None)
    st.session_state.pop("revisit-position", None)
    if view.practice or state.feedback == Feedback.EACH_CASE:
        st.session_state["feedback-for"] = view.public_id


def go_back(view: CaseView) -> None:
    st.session_state["revisit-position"] = view.position - 1


def leave_feedback() -> None:
    st.session_state.pop("feedback-for", None)


def simple_viewer(view: CaseView) -> None:
    """Sliders and server-rendered PNGs (each at most IMAGE_WIDTH px wide on screen)."""
    window, zoom = simple_view_controls()
    images = render_case(view, window=window, zoom=zoom)
    columns = st.columns(len(images), width=IMAGE_WIDTH * len(images))
    for column, (caption, png) in zip(columns, images, strict=True):
        column.image(png, caption=caption, width="stretch", output_format="PNG", alt=caption)
    prefetch_upcoming(engine, reader, view.public_id, window=window, zoom=zoom)


def images(view: CaseView, keys: dict[int, tuple[str, ...]]) -> bool:
    """The viewer (or the simple viewer), with the page's keyboard: the keys of the choice
    questions in the page's order, Enter and B. False when the case cannot be shown here: a
    timed case needs the viewer (only it honours the exposure)."""
    timed = view.exposure_ms is not None
    if not viewer.available():
        if timed:
            st.warning(TIMED_NEEDS_VIEWER)
            return False
        simple_viewer(view)
        return True
    choices = [keys[q.id] for q in view.questions if q.kind not in UNCHOSEN]
    actions = {"Enter": SUBMIT} | ({"B": BACK} if view.can_go_back else {})
    if st.session_state.get("simple-viewer") and not timed:
        simple_viewer(view)
        viewer.keyboard(keys=choices, actions=actions)
    else:
        question = marks_question(view)
        if timed:
            show_timed(view, choices, actions)
        elif question is None:
            viewer.show_case(viewer_case(view), keys=choices, actions=actions)
        else:
            show_with_marks(view, question, choices, actions)
        prefetch_viewer_case(engine, reader, view.public_id)
    if not timed:
        st.toggle(
            "Simple viewer",
            key="simple-viewer",
            help="Images not showing? Use the simple viewer: sliders, and images drawn by the "
            "server.",
        )
    return True


def show_timed(view: CaseView, choices: list, actions: dict[str, str]) -> None:
    """A timed case in the viewer: its images for the exposure, then the mask; the duration
    the browser showed them is kept once (study.timed_cases)."""
    value = viewer.show_case(
        viewer_case(view),
        keys=choices,
        actions=actions,
        exposure={"ms": view.exposure_ms, "shown": view.shown},
    )
    if not isinstance(value, dict) or "shown_ms" not in value:
        return
    case = str(value.get("case"))
    if st.session_state.get("shown-kept") == case:
        return
    st.session_state["shown-kept"] = case
    try:
        record_shown(engine, reader, case, float(value["shown_ms"]))
    except (TimedCaseError, TypeError, ValueError) as error:
        LOG.warning("the viewer's shown duration of case %s was not kept: %s", case, error)


def show_with_marks(
    view: CaseView, question: QuestionView, choices: list, actions: dict[str, str]
) -> None:
    """The viewer with the reader's lesion marks: shown from the answer kept for the case, and
    kept as the answer (canonical pixels, study.marks) each time the reader changes them."""
    key = answer_key(view, question)
    st.session_state.setdefault(key, view.answers.get(question.id) or "[]")
    names = [viewport.name for viewport in view.viewports]
    shapes = [ViewportShape(viewport.rows, viewport.cols) for viewport in view.viewports]
    shown = []
    for mark in load_marks(st.session_state[key], scale=len(question.options)):
        index = names.index(mark.viewport)
        u, v = to_display(mark.row, mark.col, shapes[index])
        shown.append(
            {"viewport": index, "slice": mark.slice, "u": u, "v": v, "rating": mark.rating}
        )
    viewer.show_case(
        viewer_case(view),
        keys=choices,
        actions=actions,
        marks={"scale": len(question.options), "marks": shown},
    )
    keep_viewer_marks(view)


def keep_viewer_marks(view: CaseView) -> None:
    """The marks the viewer holds for this case (its value: fractions of the displayed square)
    as the answer of the case's marks question, in canonical pixels. Also called by "Submit"'s
    callback, which may run before the rerun that the viewer's last change asked for."""
    question = marks_question(view)
    value = st.session_state.get(viewer.COMPONENT_KEY)
    if question is None or not isinstance(value, dict) or value.get("case") != view.public_id:
        return
    names = [viewport.name for viewport in view.viewports]
    shapes = [ViewportShape(viewport.rows, viewport.cols) for viewport in view.viewports]
    placed = []
    for mark in value.get("marks", []):
        index = int(mark["viewport"])
        point = from_display(float(mark["u"]), float(mark["v"]), shapes[index])
        if point is not None:
            placed.append(Mark(names[index], int(mark["slice"]), *point, int(mark["rating"])))
    st.session_state[answer_key(view, question)] = dump_marks(placed)


@st.fragment
def reading() -> None:
    pending = st.session_state.get("feedback-for")
    if pending:
        st.subheader("Feedback")
        show_feedback(pending)
        st.button(NEXT, type="primary", on_click=leave_feedback)
        if viewer.available():
            viewer.keyboard(keys=[], actions={"Enter": NEXT})
        return
    revisit = st.session_state.get("revisit-position")
    try:
        view = next_case(engine, reader) if revisit is None else case_at(engine, reader, revisit)
    except ReadingError as error:
        st.session_state.pop("revisit-position", None)
        st.error(str(error))
        return
    if view is None:
        st.session_state.pop("reviewing", None)
        st.rerun()
    clock = st.session_state.get("case-clock")
    if clock is None or clock[0] != view.public_id:
        st.session_state["case-clock"] = (view.public_id, time.monotonic())

    if view.practice:
        st.progress(view.number / view.of, text=f"Practice case {view.number} of {view.of}")
    else:
        st.progress((view.number - 1) / view.of, text=f"Case {view.number} of {view.of}")
    # Side by side on wide screens; Streamlit stacks the columns on narrow ones.
    images_column, questions_column = st.columns([3, 1], gap="medium")
    keys = option_keys(view)
    with images_column:
        shown = images(view, keys)
    if not shown:
        return
    with questions_column:
        with st.form(f"case-{view.public_id}"):
            for question in view.questions:
                ask(view, question, keys[question.id])
            st.form_submit_button(
                SUBMIT, type="primary", on_click=submit_case, args=(view,), width="stretch"
            )
            if view.can_go_back:
                st.form_submit_button(BACK, on_click=go_back, args=(view,), width="stretch")
        if error := st.session_state.pop("reading-error", None):
            st.error(error)
    ui.keep_collections_short()


def back_to_last_case() -> None:
    st.session_state["revisit-position"] = state.progress.total + state.progress.practice_total - 1
    st.session_state["reviewing"] = True


def answer_text(answer: AnswerFeedback) -> str:
    if answer.correct is None:
        return answer.given
    if answer.is_correct:
        return f"{answer.given}: correct"
    return f"{answer.given}; the answer is {answer.correct}"


def show_score() -> None:
    score = reader_score(engine, reader)
    st.subheader("Your score")
    # Counts without arrows or colours: a score is not a trend.
    for column, line in zip(st.columns(max(1, len(score.lines))), score.lines, strict=False):
        column.metric(line.wording, f"{line.correct} of {line.scored}")
        column.caption(f"{line.correct / line.scored:.0%} correct")
    thumbnails = case_thumbnails(
        {case.number: case.viewports for case in score.cases},
        [case.number for case in score.cases],
        size=THUMBNAIL_SIZE,
    )
    wordings = list(dict.fromkeys(a.wording for case in score.cases for a in case.answers))
    rows = [
        {"case": case.number, "image": thumbnails.get(case.number)}
        | {answer.wording: answer_text(answer) for answer in case.answers}
        for case in score.cases
    ]
    st.dataframe(
        # A question a case did not ask (paired cases ask fewer) stays blank.
        pd.DataFrame(rows, columns=["case", "image", *wordings]).fillna({w: "" for w in wordings}),
        hide_index=True,
        row_height=THUMBNAIL_SIZE + 8,
        column_config={"image": st.column_config.ImageColumn("image", width="small")},
    )


def finish_page() -> None:
    st.header("Thank you")
    st.write("You have read every case of this study. Your answers are saved.")
    may_go_back = state.allow_revisit and state.status == StudyStatus.OPEN
    if state.feedback == Feedback.NONE:
        if may_go_back:
            st.caption("You may still go back and change answers while the study is open.")
            st.button("Back to the last case", on_click=back_to_last_case)
        return
    if may_go_back and not state.score_seen:
        # The score shows the truth of every case: from then on the answers are final.
        st.write(
            "You may go back over your answers first. Once you see your score, your answers "
            "are final."
        )
        back_col, score_col = st.columns(2)
        back_col.button("Back to the last case", on_click=back_to_last_case)
        if not score_col.button("See my score", type="primary"):
            return
    show_score()


def informed_page() -> None:
    """Between the phases of a two-phase study: the reader is told, then reads on."""
    st.subheader("Second part")
    st.markdown(INFORMED_TEXT)
    if st.button("Start the second part", type="primary"):
        try:
            mark_informed(engine, reader)
        except ReadingError as error:
            st.error(str(error))
            return
        st.rerun()


if state.status == StudyStatus.DRAFT:
    st.info("This study has not opened yet; please come back later.")
elif not state.instructions_seen:
    st.subheader("Instructions")
    st.markdown(
        state.instructions
        or "You will see one case at a time. Look at the image(s), adjust the window and zoom "
        "if you like, answer the questions and press **Submit and next**. You can stop at any "
        "time and come back with your link: you will resume where you left off."
    )
    if state.progress.practice_total:
        st.write(
            f"You start with {state.progress.practice_total} practice case(s); after each you "
            "will see the right answer. Practice answers do not count."
        )
    if st.button("Start", type="primary"):
        mark_instructions_seen(engine, reader)
        st.rerun()
elif state.informed_pending and state.status == StudyStatus.OPEN:
    informed_page()
elif state.progress.finished and not st.session_state.get("reviewing"):
    finish_page()
elif state.status == StudyStatus.CLOSED:
    st.info("This study is closed; answers are no longer accepted. Thank you for taking part.")
else:
    reading()
