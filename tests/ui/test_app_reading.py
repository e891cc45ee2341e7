"""The app through its entry point (Streamlit AppTest): reader sign-in by link and by code,
answering, resuming, the revisit rules, and the coordinator building a balanced study."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from seeding import add_assets, grid
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.exposure import Exposure
from study.imaging.types import Sequence
from study.models import Answer, Case, Feedback, Reader, ReaderKind, Study
from study.questions import TEMPLATES
from study.readers import add_reader, set_public_code
from study.reading import mark_instructions_seen, next_case, reader_progress, record_answer
from study.storage import AssetStore

pytestmark = pytest.mark.slow

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def start(code: str | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    if code is not None:
        app.query_params["code"] = code
    app.run()
    assert not app.exception, app.exception
    return app


def reader_of(engine, code: str) -> int:
    from study.auth import hash_access_code

    with transaction(engine) as session:
        return session.scalar(select(Reader.id).where(Reader.code_hash == hash_access_code(code)))


def answer_current_case(app: AppTest, engine, reader: int, real: str, lesion: str) -> None:
    view = next_case(engine, reader)
    by_kind = {"real_or_synthetic": real, "lesion_present": lesion}
    for question in view.questions:
        app.radio(key=f"answer-{view.public_id}-{question.id}").set_value(by_kind[question.kind])
    submit = next(b for b in app.button if b.label == "Submit and next")
    submit.click().run()
    assert not app.exception, app.exception


def progress_text(app: AppTest) -> str:
    return " ".join(element.proto.text for element in app.get("progress"))


def image_rows(node) -> list[tuple[int, int]]:
    """(pixel width of the row, number of images) for every row of images on the page."""
    rows = []
    for child in getattr(node, "children", {}).values():
        images = [
            image
            for column in getattr(child, "children", {}).values()
            if column.type == "column"
            for image in column.children.values()
            if image.type == "image"
        ]
        if images:
            rows.append((child.proto.width_config.pixel_width, len(images)))
        rows += image_rows(child)
    return rows


def test_reader_link_signs_in_removes_the_code_and_reads_with_practice_feedback(
    app_engine, reading_study
):
    _, code = reading_study(practice_cases=1)
    reader = reader_of(app_engine, code)
    app = start(code)
    assert "code" not in app.query_params
    assert app.session_state["reader_id"] == reader
    assert any(b.label == "Start" for b in app.button)
    next(b for b in app.button if b.label == "Start").click().run()
    assert "Practice case 1 of 1" in progress_text(app)
    answer_current_case(app, app_engine, reader, "real", "no")
    # Practice cases always show the truth, then "Next case".
    shown = [m.value for m in app.success] + [m.value for m in app.error]
    assert any("the answer is" in m or "correct" in m for m in shown)
    next(b for b in app.button if b.label == "Next case").click().run()
    assert "Case 1 of 4" in progress_text(app)
    answer_current_case(app, app_engine, reader, "synthetic", "yes")
    assert "Case 2 of 4" in progress_text(app)
    # No going back in a study that does not allow it.
    assert not any(b.label == "Back" for b in app.button)
    with transaction(app_engine) as session:
        answers = session.scalars(select(Answer).where(Answer.reader_id == reader)).all()
        assert len(answers) == 4
        assert all(a.time_on_case_s > 0 for a in answers)


def test_typed_code_resume_and_finish(app_engine, reading_study):
    _, code = reading_study()
    reader = reader_of(app_engine, code)
    app = start()
    app.text_input[0].input("not a code")
    next(b for b in app.button if b.label == "Start reading").click().run()
    assert any("not valid" in e.value for e in app.error)
    app.text_input[0].input(code)
    next(b for b in app.button if b.label == "Start reading").click().run()
    next(b for b in app.button if b.label == "Start").click().run()
    answer_current_case(app, app_engine, reader, "real", "no")
    answer_current_case(app, app_engine, reader, "real", "no")

    # The browser is closed; the link opens a new session that resumes at case 3.
    again = start(code)
    assert "Case 3 of 4" in progress_text(again)
    answer_current_case(again, app_engine, reader, "real", "no")
    answer_current_case(again, app_engine, reader, "real", "no")
    assert any(m.value == "Thank you" for m in again.header)
    with transaction(app_engine) as session:
        assert session.scalar(select(func.count()).select_from(Answer)) == 8


def test_going_back_changes_an_answer_when_the_study_allows_it(app_engine, reading_study):
    _, code = reading_study(allow_revisit=True)
    reader = reader_of(app_engine, code)
    app = start(code)
    next(b for b in app.button if b.label == "Start").click().run()
    first = next_case(app_engine, reader)
    answer_current_case(app, app_engine, reader, "real", "no")
    next(b for b in app.button if b.label == "Back").click().run()
    assert "Case 1 of 4" in progress_text(app)
    real_question = first.questions[0]
    radio = app.radio(key=f"answer-{first.public_id}-{real_question.id}")
    assert radio.value == "real"
    radio.set_value("synthetic")
    next(b for b in app.button if b.label == "Submit and next").click().run()
    assert "Case 2 of 4" in progress_text(app)
    with transaction(app_engine) as session:
        answer = session.scalar(
            select(Answer).where(Answer.reader_id == reader, Answer.question_id == real_question.id)
        )
        assert (answer.value, answer.revision) == ("synthetic", 2)


def test_coordinator_builds_a_balanced_study_and_sees_short_cells(app_engine, admin_password):
    add_assets(app_engine, grid([Sequence.T2W, Sequence.ADC], 3))
    app = start()
    username, password = app.text_input[1], app.text_input[2]
    username.input("coordinator")
    password.input(admin_password)
    next(b for b in app.button if b.label == "Sign in").click().run()
    assert app.session_state["role"] == "coordinator"
    app.switch_page("pages/studies.py").run()
    assert not app.exception, app.exception

    app.text_input(key="new-name").input("Balanced")
    app.number_input(key="new-T2W").set_value(8)
    app.number_input(key="new-ADC").set_value(16)
    app.number_input(key="new-pairs").set_value(0)
    next(b for b in app.button if b.label == "Build study").click().run()
    assert any("short by 1" in e.value and "ADC" in e.value for e in app.error)
    with transaction(app_engine) as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 0

    app.number_input(key="new-ADC").set_value(4)
    next(b for b in app.button if b.label == "Build study").click().run()
    assert not app.error, [e.value for e in app.error]
    with transaction(app_engine) as session:
        cells = session.execute(
            select(Case.sequence, Case.origin, Case.lesion, func.count()).group_by(
                Case.sequence, Case.origin, Case.lesion
            )
        ).all()
    assert sorted(cells) == sorted(
        [("T2W", o, lesion, 2) for o in ("real", "synthetic") for lesion in (0, 1)]
        + [("ADC", o, lesion, 1) for o in ("real", "synthetic") for lesion in (0, 1)]
    )
    app.run()
    assert any("210 cases" in info.value for info in app.info)


def test_images_are_capped_in_width_and_collections_skip_the_libraries(app_engine, reading_study):
    _, code = reading_study()
    reader = reader_of(app_engine, code)
    app = start(code)
    next(b for b in app.button if b.label == "Start").click().run()
    # One image in a row at most 512 px wide: small images are not blown up to the page width.
    assert image_rows(app.main) == [(512, 1)]
    answer_current_case(app, app_engine, reader, "real", "no")
    assert "Case 2 of 4" in progress_text(app)
    assert image_rows(app.main) == [(512, 1)]
    # Streamlit collects garbage after every run: the objects of the libraries loaded by then are
    # frozen, so a collection walks only what was made since, a small part.
    assert len(gc.get_objects()) < gc.get_freeze_count() / 2


def test_after_the_score_the_answers_are_final(app_engine, reading_study):
    """The defect: on the end page of a study with feedback at the end, "Back to the last
    case" after the score let the reader change an answer and move their score."""
    _, code = reading_study(feedback=Feedback.AT_END, allow_revisit=True)
    reader = reader_of(app_engine, code)
    app = start(code)
    next(b for b in app.button if b.label == "Start").click().run()
    for _ in range(4):
        answer_current_case(app, app_engine, reader, "real", "no")
    assert any(m.value == "Thank you" for m in app.header)
    # Before the score: going back is offered, and the score waits for the reader.
    assert {"Back to the last case", "See my score"} <= {b.label for b in app.button}
    assert not any(m.value == "Your score" for m in app.subheader)
    next(b for b in app.button if b.label == "See my score").click().run()
    assert any(m.value == "Your score" for m in app.subheader)
    app.run()
    # From now on: the score stays, and there is no way back to change answers.
    assert any(m.value == "Your score" for m in app.subheader)
    assert "Back to the last case" not in {b.label for b in app.button}
    with transaction(app_engine) as session:
        revisions = session.scalars(select(Answer.revision).where(Answer.reader_id == reader))
        assert set(revisions) == {1}


def test_each_visitor_with_a_public_code_reads_alone(app_engine, reading_study):
    """The defect: everybody who typed the demo's code read as one shared reader."""
    study_id, _ = reading_study()
    set_public_code(app_engine, study_id, "open-to-all")
    first = start()
    first.text_input[0].input("open-to-all")
    next(b for b in first.button if b.label == "Start reading").click().run()
    next(b for b in first.button if b.label == "Start").click().run()
    visitor = first.session_state["reader_id"]
    for _ in range(4):
        answer_current_case(first, app_engine, visitor, "real", "no")
    assert any(m.value == "Thank you" for m in first.header)

    second = start()
    second.text_input[0].input("open-to-all")
    next(b for b in second.button if b.label == "Start reading").click().run()
    other = second.session_state["reader_id"]
    assert other != visitor
    # The second visitor starts at the instructions, not at the first visitor's thank-you page.
    assert any(b.label == "Start" for b in second.button)
    assert not any(m.value == "Thank you" for m in second.header)
    assert reader_progress(app_engine, other).done == 0
    with transaction(app_engine) as session:
        kinds = session.scalars(select(Reader.kind).where(Reader.id.in_([visitor, other])))
        assert set(kinds) == {ReaderKind.VISITOR}


def element_types(node) -> list[str]:
    types = []
    for child in getattr(node, "children", {}).values():
        types.append(child.type)
        types += element_types(child)
    return types


def test_apptest_gets_the_simple_viewer_and_the_score_shows_counts_and_thumbnails(
    app_engine, reading_study
):
    """AppTest runs no component: the page falls back to the simple viewer by itself. At the
    end of a study with feedback the score is counts without arrows, and every case is listed
    with a thumbnail, the reader's answer and the truth."""
    _, code = reading_study(feedback=Feedback.AT_END)
    reader = reader_of(app_engine, code)
    app = start(code)
    next(b for b in app.button if b.label == "Start").click().run()
    types = element_types(app.main)
    assert "component_instance" not in types
    assert "image" in types and not any(t.label == "Simple viewer" for t in app.toggle)
    assert {s.label for s in app.slider} == {"Level (window center)", "Window width", "Zoom"}
    for _ in range(4):
        answer_current_case(app, app_engine, reader, "real", "no")

    assert any(m.value == "Your score" for m in app.subheader)
    # A balanced study answered "real" and "no" throughout: half right each.
    assert [(m.label, m.value, m.proto.delta) for m in app.metric] == [
        ("Real or synthetic?", "2 of 4", ""),
        ("Suspected cancerous lesion (PI-RADS >= 3)?", "2 of 4", ""),
    ]
    assert [c.value for c in app.caption if c.value.endswith("correct")] == ["50% correct"] * 2
    table = app.dataframe[0].value
    assert list(table.columns) == [
        "case",
        "image",
        "Real or synthetic?",
        "Suspected cancerous lesion (PI-RADS >= 3)?",
    ]
    assert table["case"].tolist() == [1, 2, 3, 4]
    assert all(url.startswith("data:image/png;base64,") for url in table["image"])
    assert sorted(table["Real or synthetic?"]) == [
        "Real: correct",
        "Real: correct",
        "Real; the answer is Synthetic",
        "Real; the answer is Synthetic",
    ]


def test_the_second_part_starts_once_the_reader_is_told(app_engine, data_dir):
    add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
    plan = StudyPlan(
        "Two parts",
        TEMPLATES["Informed and uninformed phases"],
        (SingleBlock(Sequence.T2W, 4),),
        informed_phase=True,
    )
    study_id = create_study(app_engine, plan)
    open_study(app_engine, study_id)
    code = add_reader(app_engine, study_id, "reader").code
    reader = reader_of(app_engine, code)
    mark_instructions_seen(app_engine, reader)
    for _ in range(4):
        view = next_case(app_engine, reader)
        values = {q.id: q.values[0] for q in view.questions}
        record_answer(app_engine, reader, view.public_id, values, 1.0)
    app = start(code)
    assert [h.value for h in app.subheader] == ["Second part"]
    assert "some of the images you have seen are synthetic" in app.markdown[-1].value
    next(b for b in app.button if b.label == "Start the second part").click().run()
    assert not app.exception, app.exception
    view = next_case(app_engine, reader)
    asked = {q.kind for q in view.questions}
    assert "real_or_synthetic" in asked
    assert app.radio(key=f"answer-{view.public_id}-{view.questions[1].id}") is not None
    assert "Case 5 of 8" in progress_text(app)


def test_a_timed_case_is_not_shown_without_the_viewer(app_engine, data_dir):
    """AppTest has no browser, so no viewer: a timed case says why it cannot be shown and
    offers no answers (the simple viewer cannot honour an exposure)."""
    add_assets(app_engine, grid([Sequence.T2W], 2), store=AssetStore(data_dir / "assets"))
    plan = StudyPlan(
        "Timed",
        TEMPLATES["Timed exposure (HYPE)"],
        (SingleBlock(Sequence.T2W, 4, exposure=Exposure(ms=300)),),
    )
    study_id = create_study(app_engine, plan)
    open_study(app_engine, study_id)
    code = add_reader(app_engine, study_id, "reader").code
    mark_instructions_seen(app_engine, reader_of(app_engine, code))
    app = start(code)
    assert "Case 1 of 4" in progress_text(app)
    (warning,) = app.warning
    assert "shows each image for a limited time, which needs the image viewer" in warning.value
    assert not [b for b in app.button if b.label == "Submit and next"]
    assert not app.radio
