"""Studies of volumes: stacks of real and generated slices, N slices around the centre or the
lesion in slice order, the same payload length for every case, the refusals, reading and
the analysis."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from study.analysis import tidy_answers
from study.db import transaction
from study.design import (
    BalanceError,
    DesignError,
    StudyPlan,
    VolumeBlock,
    create_study,
    open_study,
    study_composition,
)
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.models import Case, CaseKind
from study.questions import TEMPLATES
from study.readers import add_reader
from study.reading import next_case, record_answer
from study.report.thumbnails import read_case_views
from study.reports import presentation
from study.viewer_payload import viewer_case
from synth.phantom import write_phantom

T2W_ADC = (Sequence.T2W, Sequence.ADC)
# The phantoms' T2W lesion slices (seed 21 real, seed 22 generated; 8 slices each):
# PH21-0001 00111000, PH21-0003 00001000, PH21-0005 00001110, PH22-0001 00110000,
# PH22-0003 00011100, PH22-0005 01110000; the other patients have none. Three slices around
# the middle of the lesion slices, or around the centre (slice 4) without a lesion:
AROUND_LESION = {
    "PH21-0001": [2, 3, 4],
    "PH21-0003": [3, 4, 5],
    "PH21-0005": [4, 5, 6],
    "gen-PH22-0001": [1, 2, 3],
    "gen-PH22-0003": [3, 4, 5],
    "gen-PH22-0005": [1, 2, 3],
}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real stacks (6 phantom patients of 8 slices), generated stacks (6 more, each written
    with one pair key, no patient id, rows in reverse slice order) and 2 shorter real stacks."""
    root = tmp_path_factory.mktemp("volumes")
    real = write_phantom(root / "real", patients=6, seed=21, size=64, slices=8, lesion_fraction=0.5)
    generated = write_phantom(
        root / "generated", patients=6, seed=22, size=64, slices=8, lesion_fraction=0.5
    )
    with generated.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row |= {"origin": "synthetic", "patient_id": "", "pair_key": f"gen-{row['patient_id']}"}
    synthetic = generated.with_name("synthetic.csv")
    with synthetic.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(reversed(rows))
    short = write_phantom(root / "short", patients=2, seed=23, size=64, slices=6)
    return {"real": real, "synthetic": synthetic, "short": short}


@pytest.fixture
def pool(engine, data_dir: Path, manifests: dict[str, Path]):
    import_manifest(engine, manifests["real"])
    import_manifest(engine, manifests["synthetic"])
    return engine


def stacks_of(engine, study_id: int) -> dict[str, dict]:
    """Per case: its kind, truth, practice/repeat, and per viewport (stack key, slice indices)."""
    with transaction(engine) as session:
        cases = session.scalars(select(Case).where(Case.study_id == study_id)).all()
        result = {}
        for case in cases:
            viewports: dict[str, list] = {}
            for view in sorted(case.views, key=lambda v: (v.position, v.slice)):
                asset = view.asset
                viewports.setdefault(view.viewport, []).append(
                    (
                        view.slice,
                        asset.patient_id or asset.pair_key,
                        asset.slice_index,
                        asset.lesion,
                    )
                )
            result[case.public_id] = {
                "kind": case.kind,
                "origin": str(case.origin),
                "lesion": case.lesion,
                "practice": case.practice,
                "repeat": case.repeat_of_id is not None,
                "viewports": viewports,
            }
        return result


def plan(block: VolumeBlock, name: str = "Volumes", **fields) -> StudyPlan:
    return StudyPlan(name, TEMPLATES["Volumes"], (block,), **fields)


def test_volume_cases_show_n_slices_around_the_lesion_in_slice_order(pool):
    block = VolumeBlock(T2W_ADC, cases=8, slices=3, around="lesion")
    study_id = create_study(pool, plan(block, practice_cases=1, repeated_cases=1))
    cases = stacks_of(pool, study_id)
    assert len(cases) == 10
    assert Counter((c["practice"], c["repeat"]) for c in cases.values()) == {
        (False, False): 8,
        (True, False): 1,
        (False, True): 1,
    }
    main = [c for c in cases.values() if not c["practice"] and not c["repeat"]]
    assert Counter((c["origin"], c["lesion"]) for c in main) == {
        ("real", 1): 2,
        ("real", 0): 2,
        ("synthetic", 1): 2,
        ("synthetic", 0): 2,
    }
    keys = []
    for case in cases.values():
        assert case["kind"] == CaseKind.VOLUME
        assert list(case["viewports"]) == ["T2W", "ADC"]
        t2w, adc = case["viewports"]["T2W"], case["viewports"]["ADC"]
        (key,) = {stack_key for _, stack_key, _, _ in t2w + adc}
        keys.append(key)
        assert [place for place, *_ in t2w] == [0, 1, 2]
        indices = [index for _, _, index, _ in t2w]
        assert indices == [index for _, _, index, _ in adc]
        assert indices == AROUND_LESION.get(key, [3, 4, 5]), (key, t2w)
        assert case["lesion"] == int(any(lesion for *_, lesion in t2w + adc))
    # Every stack at most once outside the repeat.
    assert len(set(keys)) == 9


def test_volume_cases_around_the_centre_and_whole_stacks(pool):
    centre = create_study(
        pool, plan(VolumeBlock((Sequence.T2W,), cases=4, slices=5, lesion_share=None))
    )
    for case in stacks_of(pool, centre).values():
        assert [index for _, _, index, _ in case["viewports"]["T2W"]] == [2, 3, 4, 5, 6]
    whole = create_study(
        pool,
        StudyPlan(
            "Whole", TEMPLATES["Volumes"], (VolumeBlock((Sequence.ADC,), 4, None, "lesion"),)
        ),
    )
    for case in stacks_of(pool, whole).values():
        assert [index for _, _, index, _ in case["viewports"]["ADC"]] == list(range(8))


def test_whole_stacks_of_different_lengths_are_refused(pool, manifests):
    import_manifest(pool, manifests["short"])
    with pytest.raises(DesignError, match=r"whole stacks of T2W differ in length \(6, 8 slices\)"):
        create_study(pool, plan(VolumeBlock((Sequence.T2W,), cases=4, slices=None)))
    # N slices around the centre draw from stacks of both lengths.
    study_id = create_study(pool, plan(VolumeBlock((Sequence.T2W,), cases=8, slices=6)))
    assert {len(c["viewports"]["T2W"]) for c in stacks_of(pool, study_id).values()} == {6}


def test_two_series_of_one_patient_and_sequence_are_not_drawn(pool, manifests, tmp_path):
    with manifests["short"].open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    second = tmp_path / "second_series.csv"
    with second.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            row["path"] = str(manifests["short"].parent / row["path"])
            writer.writerow(row | {"patient_id": "PH21-0001"})
    import_manifest(pool, second)
    with pytest.raises(BalanceError, match=r"T2W volumes real: need 6, the pool has 5 \(short"):
        create_study(pool, plan(VolumeBlock((Sequence.T2W,), 12, 3, lesion_share=None)))


@pytest.mark.parametrize(
    ("block", "error", "message"),
    [
        (
            VolumeBlock((Sequence.T2W,), 4, 9),
            BalanceError,
            "T2W volumes real with lesion: need 1, the pool has 0",
        ),
        (
            VolumeBlock((Sequence.T2W,), 8, 3, lesion_share=1.0),
            BalanceError,
            "T2W volumes real with lesion: need 4, the pool has 3 \\(short by 1\\)",
        ),
        (VolumeBlock((Sequence.T2W,), 4, 0), DesignError, "cannot show 0 slices"),
        (VolumeBlock((Sequence.T2W,), 4, 3, "edge"), DesignError, "not 'edge'"),
        (VolumeBlock((Sequence.T2W, Sequence.T2W), 2), DesignError, "different sequences"),
        (VolumeBlock((), 2), DesignError, "one or more different sequences"),
    ],
)
def test_volume_blocks_that_cannot_be_drawn_are_refused(pool, block, error, message):
    with pytest.raises(error, match=message):
        create_study(pool, plan(block))
    with transaction(pool) as session:
        assert session.scalar(select(Case.id)) is None


def test_volume_cases_are_read_with_one_payload_length_and_counted_as_cases(pool):
    block = VolumeBlock(T2W_ADC, cases=8, slices=3, around="lesion")
    study_id = create_study(pool, plan(block))
    open_study(pool, study_id)
    reader = add_reader(pool, study_id, "r1").reader_id
    payloads = []
    centres = {}
    while (view := next_case(pool, reader)) is not None:
        assert view.kind == CaseKind.VOLUME
        assert [len(v.slice_sha256s) for v in view.viewports] == [3, 3]
        assert all(v.canonical_sha256 == v.slice_sha256s[1] for v in view.viewports)
        centres[view.public_id] = tuple(v.canonical_sha256 for v in view.viewports)
        case = viewer_case(view, size=32)
        assert [(p.label, p.slices) for p in case.viewports] == [("T2W", 3), ("ADC", 3)]
        payloads.extend(len(p.samples) for p in case.viewports)
        answers = {q.id: q.values[0] for q in view.questions}
        assert len(answers) == 4
        assert record_answer(pool, reader, view.public_id, answers, 2.0)
    assert payloads == [3 * 32 * 32 * 2] * 16
    # The thumbnails show the centre slice of every stack.
    with transaction(pool) as session:
        public = dict(session.execute(select(Case.id, Case.public_id)).all())
        thumbnails = read_case_views(session, study_id)
    assert {
        public[case_id]: tuple(v.canonical_sha256 for v in viewports)
        for case_id, viewports in thumbnails.items()
    } == centres
    tidy = tidy_answers(pool, study_id)
    scored = tidy[tidy["question_kind"] == "real_or_synthetic"]
    assert len(scored) == 8
    assert Counter(zip(scored["origin"], scored["lesion"], strict=True)) == {
        ("real", 1): 2,
        ("real", 0): 2,
        ("synthetic", 1): 2,
        ("synthetic", 0): 2,
    }
    assert set(scored["sequence"]) == {"T2W+ADC"}
    assert set(presentation(scored)) == {"volume"}
    assert set(presentation(tidy.assign(volume=False))) == {"single"}
    assert {(row["kind"], row["cases"]) for row in study_composition(pool, study_id)} == {
        ("volume", 2)
    }
