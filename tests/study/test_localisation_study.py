"""A lesion-localisation study end to end without a browser: pictures with lesion masks
imported, a study asking for marks, readers' marks saved (and refused when off the image),
scored into the FROC tables against the stored outlines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pictures import Picture, square_lesion, write_pictures
from sqlalchemy import select

from study.db import transaction
from study.design import (
    DesignError,
    SingleBlock,
    StudyPlan,
    VolumeBlock,
    create_study,
    open_study,
)
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.localisation_cases import case_marks_figure
from study.localisation_results import localisation_results
from study.localisation_study import LocalisationError, localisation_tables, tolerances
from study.marks import Mark, dump_marks
from study.models import Asset, Case, CaseAsset
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import ReadingError, next_case, record_answer
from study.report.data import read_study
from study.report.html import report_html
from study.report.localisation import localisation_blocks
from study.report.model import export_tables, study_report
from study.report.sections import SECTIONS
from study.simulate import simulate_answers
from study.storage import AssetStore

SIZE = 32


def write_cases(folder, *, second_lesion: bool = True) -> None:
    """Four real T2W pictures: two with a lesion (a mask with one 4 x 4 lesion at rows and
    cols 10..13, one with a second one unless `second_lesion` is False), two without."""
    rng = np.random.default_rng(3)
    pictures = []
    for i in range(4):
        image = (rng.random((SIZE, SIZE)) * 60000).astype(np.uint16)
        labels = square_lesion(SIZE, 10) if i < 2 else np.zeros((SIZE, SIZE), np.uint8)
        if i == 1 and second_lesion:
            labels[20:24, 24:28] = 1
        pictures.append(Picture(f"image-{i}", image, f"P{i}", labels))
    write_pictures(folder, pictures)


def open_marks_study(engine, folder, block, *, tolerance_px: float) -> tuple[int, AssetStore]:
    """The pictures of `folder`'s manifest imported (a lesion from one voxel) into a store
    there, and an open one-block study asking for lesion marks: (its id, the store)."""
    store = AssetStore(folder / "assets")
    import_manifest(engine, folder / "manifest.csv", store=store, min_lesion_voxels=1)
    plan = StudyPlan(
        "Localisation",
        TEMPLATES["Lesion localisation"],
        (block,),
        settings={"localisation_tolerance_px": tolerance_px},
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    return study_id, store


@pytest.fixture
def marked_study(engine, tmp_path):
    write_cases(tmp_path)
    block = SingleBlock(Sequence.T2W, 4, synthetic_share=0.0)
    study_id, store = open_marks_study(engine, tmp_path, block, tolerance_px=1.0)
    readers = [add_reader(engine, study_id, alias).reader_id for alias in ("A", "B")]
    return study_id, readers, store


def answer_all(engine, reader_id, marks_for) -> None:
    while (view := next_case(engine, reader_id)) is not None:
        (question,) = view.questions
        record_answer(engine, reader_id, view.public_id, {question.id: marks_for(view)}, 3.0)


def test_marks_are_scored_against_the_stored_outlines(engine, marked_study):
    study_id, (reader_a, reader_b), store = marked_study

    def on_lesion_and_off(view) -> str:
        # Every case: a 5 on the first lesion's place (10..13), a 2 far away.
        return dump_marks([Mark("T2W", 0, 11.5, 11.5, 5), Mark("T2W", 0, 1.0, 30.0, 2)])

    answer_all(engine, reader_a, on_lesion_and_off)
    answer_all(engine, reader_b, lambda view: "[]")
    tables = localisation_tables(engine, study_id, store=store)

    truth = tables.truth.sort_values(["lesions", "case"]).reset_index(drop=True)
    assert truth["lesions"].tolist() == [0, 0, 1, 2]
    assert truth["truth"].tolist() == [0, 0, 1, 1]
    assert truth["weights"].tolist()[2:] == ["1.0", "0.5;0.5"]
    assert tables.presence_only == () and tables.no_truth == ()
    assert tables.tolerance == {"mm": 5.0, "px": 1.0}

    marks = tables.marks.merge(truth[["case", "lesions"]], on="case")
    # Reader B marked nothing; A's 5s localise lesion 1 where there is one, NL elsewhere.
    assert set(marks["reader"]) == {"A"}
    assert len(marks) == 8
    fives = marks[marks["rating"] == 5].sort_values("lesions")
    assert fives["kind"].tolist() == ["NL", "NL", "LL", "LL"]
    assert fives["lesion"].tolist()[2:] == [1, 1]
    assert set(marks[marks["rating"] == 2]["kind"]) == {"NL"}
    assert len(tables.read) == 8


def test_a_case_with_a_lesion_but_no_outline_is_scored_for_presence_only(engine, tmp_path):
    image = (np.random.default_rng(0).random((SIZE, SIZE)) * 60000).astype(np.uint16)
    pictures = [Picture(f"image-{i}", image + i, f"P{i}", lesion=str(1 - i)) for i in range(2)]
    write_pictures(tmp_path, pictures)
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, tmp_path / "manifest.csv", store=store)
    plan = StudyPlan(
        "No outlines",
        TEMPLATES["Lesion localisation"],
        (SingleBlock(Sequence.T2W, 2, synthetic_share=0.0),),
    )
    study_id = create_study(engine, plan)
    tables = localisation_tables(engine, study_id, store=store)
    assert len(tables.presence_only) == 1
    assert tables.truth["lesions"].tolist() == [0]


def test_marks_off_the_image_or_on_another_viewport_are_refused(engine, marked_study):
    _, (reader_a, _), _ = marked_study
    view = next_case(engine, reader_a)
    (question,) = view.questions
    assert (view.viewports[0].rows, view.viewports[0].cols) == (SIZE, SIZE)
    for marks, message in [
        ([Mark("T2W", 0, SIZE + 1.0, 1.0, 3)], "outside the image"),
        ([Mark("DWI", 0, 1.0, 1.0, 3)], "viewport this case does not show"),
    ]:
        with pytest.raises(ReadingError, match=message):
            record_answer(engine, reader_a, view.public_id, {question.id: dump_marks(marks)}, 1)
    with pytest.raises(ReadingError, match="outside the scale"):
        bad = json.dumps([{"viewport": "T2W", "slice": 0, "row": 1, "col": 1, "rating": 9}])
        record_answer(engine, reader_a, view.public_id, {question.id: bad}, 1)
    # Nothing was saved: the case is still the reader's next.
    assert next_case(engine, reader_a).public_id == view.public_id
    record_answer(engine, reader_a, view.public_id, {question.id: "[]"}, 1)
    assert next_case(engine, reader_a).public_id != view.public_id


def test_a_study_without_a_marks_question_is_refused(engine, tmp_path):
    write_cases(tmp_path)
    import_manifest(engine, tmp_path / "manifest.csv", store=AssetStore(tmp_path / "a"))
    plan = StudyPlan(
        "Seed", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 2, synthetic_share=0.0),)
    )
    study_id = create_study(engine, plan)
    with pytest.raises(LocalisationError, match="asks no lesion_marks question"):
        localisation_tables(engine, study_id)


def test_tolerances_come_from_the_study_settings():
    assert tolerances(None) == {"mm": 5.0, "px": 5.0}
    assert tolerances({"localisation_tolerance_mm": 2}) == {"mm": 2.0, "px": 5.0}
    with pytest.raises(LocalisationError, match="in px must be 0 or more"):
        tolerances({"localisation_tolerance_px": -1})


def test_simulated_readers_mark_outlined_lesions_and_a_few_other_places(engine, marked_study):
    study_id, _, store = marked_study
    simulate_answers(engine, study_id, seed=4)
    tables = localisation_tables(engine, study_id, store=store)
    assert len(tables.read) == 8
    counts = tables.marks["kind"].value_counts().to_dict()
    # Seeded: all 3 lesions x 2 readers found (each with probability Phi(d'/2) > 0.69), 7
    # false marks over 8 readings (at most 2 each).
    assert counts == {"LL": 6, "NL": 7}
    assert tables.marks["rating"].between(1, 5).all()


def test_localisation_results_give_wafroc_per_reader_and_the_readers_mean(engine, marked_study):
    """Reader A puts a 5 at the first lesion's place on every case; reader B marks nothing.
    B's wAFROC: every lesion and every normal case unmarked, all ties: 0.5."""
    study_id, (reader_a, reader_b), store = marked_study
    answer_all(engine, reader_a, lambda view: dump_marks([Mark("T2W", 0, 11.5, 11.5, 5)]))
    answer_all(engine, reader_b, lambda view: "[]")
    results = localisation_results(engine, study_id, store=store)
    (real,) = results.origins
    assert (real.origin, real.readers, real.n_cases, real.n_abnormal, real.n_lesions) == (
        "real",
        ("A", "B"),
        4,
        2,
        3,
    )
    per_reader = results.per_reader.set_index("reader")
    # A: a 5 on the first lesion of each abnormal case, NL 5s on both normal cases. wAFROC =
    # mean over (normal, abnormal) pairs of sum_l w_l psi(FP_n, LL_l): the one-lesion case
    # ties (5 vs 5): 1/2; the two-lesion case: 1/2 * 1/2 (tie) + 1/2 * 0 (unmarked < 5) = 1/4.
    assert per_reader.loc["A", "wAFROC"] == pytest.approx((0.5 + 0.25) / 2)
    assert per_reader.loc["B", "wAFROC"] == pytest.approx(0.5)
    assert real.result is not None
    mean = real.result.mrmc.rrrc.treatments["real"]
    assert mean.fom == pytest.approx((0.375 + 0.5) / 2)
    curves = results.curves
    assert set(curves["curve"]) == {"FROC", "AFROC", "wAFROC"}
    assert set(curves["reader"]) == {"A", "B"}


def test_the_report_section_names_the_scoring_and_shows_the_readers(engine, marked_study):
    study_id, _, store = marked_study
    simulate_answers(engine, study_id, seed=4)
    blocks = localisation_blocks(localisation_results(engine, study_id, store=store))
    kinds = [type(block).__name__ for block in blocks]
    assert kinds == [
        "Paragraph",
        "Heading",
        "Paragraph",
        "Table",
        "FigureRow",
        "Heading",
        "Choice",
    ]
    assert "within 5 mm of a lesion (within 1 pixels" in blocks[0].text
    assert "4 case(s) read by all 2 reader(s) (2 with 3 lesion(s))" in blocks[2].text
    assert blocks[3].columns[:4] == ("reader", "wAFROC", "AFROC", "inferred ROC AUC")
    assert [figure.key for figure in blocks[4].figures] == ["wAFROC-real", "FROC-real"]
    assert localisation_blocks(None) == ()
    # The case with two lesions: the image, both outlines, and the readers' marks.
    choice = blocks[6]
    assert len(choice.options) == 4
    tables = localisation_results(engine, study_id, store=store).tables
    two = tables.truth.loc[tables.truth["lesions"] == 2, "case"].item()
    (figure,) = choice.show(two)
    names = [trace.name for trace in figure.figure.data]
    assert names[:3] == [None, "lesion 1", "lesion 2"]
    marks = tables.points[tables.points["case"] == two]
    shown = sum(
        len(trace.x) for trace in figure.figure.data if (trace.name or "").endswith("marks")
    )
    assert shown == len(marks) > 0


def test_the_results_and_exports_carry_the_localisation(engine, marked_study):
    study_id, _, store = marked_study
    simulate_answers(engine, study_id, seed=4)
    report = study_report(read_study(engine, study_id, store=store))
    section = next(s for s in SECTIONS if s.key == "localisation")
    assert [type(b).__name__ for b in section.content(report)][:2] == ["Paragraph", "Heading"]
    tables = export_tables(report)
    assert {"froc_per_reader", "froc_curves", "froc_marks", "froc_truth"} <= set(tables)
    assert len(tables["froc_marks"]) == 13
    # The HTML report shows the section with its curves and the first case's marks.
    page = report_html(report)
    assert "Lesion localisation" in page and "wAFROC: real cases" in page
    assert "marks against the lesion outlines" in page


def test_a_negative_tolerance_is_refused_when_the_study_is_built(engine, tmp_path):
    write_cases(tmp_path)
    import_manifest(engine, tmp_path / "manifest.csv", store=AssetStore(tmp_path / "a"))
    plan = StudyPlan(
        "Bad tolerance",
        TEMPLATES["Lesion localisation"],
        (SingleBlock(Sequence.T2W, 2, synthetic_share=0.0),),
        settings={"localisation_tolerance_mm": -2.0},
    )
    with pytest.raises(DesignError, match="tolerance in mm must be 0 or more"):
        create_study(engine, plan)


def test_one_lesion_per_case_adds_the_lroc(engine, tmp_path):
    write_cases(tmp_path, second_lesion=False)
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, tmp_path / "manifest.csv", store=store, min_lesion_voxels=1)
    plan = StudyPlan(
        "LROC",
        TEMPLATES["Lesion localisation"],
        (SingleBlock(Sequence.T2W, 4, synthetic_share=0.0),),
        settings={"localisation_tolerance_px": 1.0},
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    reader_a, reader_b = (add_reader(engine, study_id, alias).reader_id for alias in "AB")
    answer_all(engine, reader_a, lambda view: dump_marks([Mark("T2W", 0, 11.5, 11.5, 5)]))
    answer_all(engine, reader_b, lambda view: "[]")
    results = localisation_results(engine, study_id, store=store)
    alroc = results.per_reader.set_index("reader")["ALROC"]
    # A: every case's only mark rated 5, right on each lesion: (0, 0) to (1, 1); B: no mark.
    assert alroc.to_dict() == {"A": pytest.approx(0.5), "B": 0.0}
    (row,) = [b for b in localisation_blocks(results) if type(b).__name__ == "FigureRow"]
    assert [f.key for f in row.figures] == ["wAFROC-real", "FROC-real", "LROC-real"]


def write_volumes(folder) -> None:
    """Four real T2W stacks of three slices with masks: V0's lesion on slices 2 and 3 (rows and
    cols 8..11), V1's on slice 1 (rows and cols 14..17), none in V2 and V3."""
    rng = np.random.default_rng(8)
    lesions = {("V0", 1): 8, ("V0", 2): 8, ("V1", 0): 14}
    pictures = []
    for patient in ("V0", "V1", "V2", "V3"):
        for index in range(3):
            image = (rng.random((SIZE, SIZE)) * 60000).astype(np.uint16)
            top = lesions.get((patient, index))
            labels = np.zeros((SIZE, SIZE), np.uint8) if top is None else square_lesion(SIZE, top)
            pictures.append(
                Picture(f"{patient}-{index}", image, patient, labels, slice_index=index)
            )
    write_pictures(folder, pictures)


@pytest.fixture
def volume_study(engine, tmp_path):
    write_volumes(tmp_path)
    block = VolumeBlock((Sequence.T2W,), cases=4, slices=None, synthetic_share=0.0)
    study_id, store = open_marks_study(engine, tmp_path, block, tolerance_px=0.0)
    with transaction(engine) as session:
        patients = dict(
            session.execute(
                select(Case.public_id, Asset.patient_id)
                .join(CaseAsset, CaseAsset.case_id == Case.id)
                .join(Asset, Asset.id == CaseAsset.asset_id)
                .where(Case.study_id == study_id)
                .distinct()
            ).all()
        )
    return study_id, add_reader(engine, study_id, "A").reader_id, store, patients


def test_marks_on_volumes_localise_a_lesion_on_any_of_its_slices_once(engine, volume_study):
    study_id, reader, store, patients = volume_study
    marks = [
        Mark("T2W", 1, 9.5, 9.5, 5),  # V0's lesion on its first slice
        Mark("T2W", 2, 9.5, 9.5, 4),  # the same lesion on its next slice: once is enough
        Mark("T2W", 0, 15.5, 15.5, 3),  # V1's lesion
    ]
    view = next_case(engine, reader)
    (question,) = view.questions
    assert [len(viewport.slice_sha256s) for viewport in view.viewports] == [3]
    beyond = dump_marks([Mark("T2W", 3, 9.5, 9.5, 5)])
    with pytest.raises(ReadingError, match="on slice 4; the viewport has 3"):
        record_answer(engine, reader, view.public_id, {question.id: beyond}, 1)
    answer_all(engine, reader, lambda view: dump_marks(marks))

    tables = localisation_tables(engine, study_id, store=store)
    assert tables.presence_only == () and tables.no_truth == ()
    truth = tables.truth.assign(patient=tables.truth["case"].map(patients))
    assert dict(zip(truth["patient"], truth["lesions"], strict=True)) == {
        "V0": 1,
        "V1": 1,
        "V2": 0,
        "V3": 0,
    }
    scored = tables.points.assign(patient=tables.points["case"].map(patients))
    kinds = {
        (row.patient, row.slice): (row.kind, None if pd.isna(row.lesion) else int(row.lesion))
        for row in scored.itertuples()
    }
    assert kinds == {
        ("V0", 1): ("LL", 1),
        ("V0", 2): ("NL", None),
        ("V0", 0): ("NL", None),
        ("V1", 1): ("NL", None),
        ("V1", 2): ("NL", None),
        ("V1", 0): ("LL", 1),
        **{(patient, index): ("NL", None) for patient in ("V2", "V3") for index in range(3)},
    }

    # The coordinators' view of a case: the slices with an outline or a mark.
    case = {patient: public_id for public_id, patient in patients.items()}
    titles = [
        [annotation.text for annotation in figure.layout.annotations]
        for figure in (
            case_marks_figure(engine, case["V0"], tables.points, store=store),
            case_marks_figure(engine, case["V0"], tables.points.iloc[:0], store=store),
            case_marks_figure(engine, case["V2"], tables.points.iloc[:0], store=store),
        )
    ]
    assert titles == [
        ["T2W slice 1", "T2W slice 2", "T2W slice 3"],
        ["T2W slice 2", "T2W slice 3"],
        ["T2W slice 2"],
    ]


def test_simulated_readers_mark_volumes_on_the_slice_where_the_lesion_is_largest(
    engine, volume_study
):
    study_id, _, store, patients = volume_study
    simulate_answers(engine, study_id, seed=4)
    tables = localisation_tables(engine, study_id, store=store)
    scored = tables.points.assign(patient=tables.points["case"].map(patients))
    where = sorted(zip(scored["patient"], scored["slice"], scored["kind"], strict=True))
    # Seeded: both lesions found, on the slice where each is largest (V0's first on a tie);
    # one false mark on V0 and one on each normal stack.
    assert where == [
        ("V0", 1, "LL"),
        ("V0", 1, "NL"),
        ("V1", 0, "LL"),
        ("V2", 0, "NL"),
        ("V3", 0, "NL"),
    ]
