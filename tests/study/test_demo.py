"""The demo: seeded from a demo folder, idempotent; its public code gives every visitor a reading
of their own; its simulated-readers study fills every analysis."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from study.analysis import tidy_answers
from study.db import transaction
from study.demo import (
    DEMO_CODE,
    SIMULATED_READERS,
    SIMULATED_STUDY_NAME,
    DemoError,
    demo_code_if_active,
    seed_demo,
    seed_demo_if_empty,
)
from study.design import close_study, list_studies
from study.imaging.canonical import write_canonical_png
from study.imaging.manifest import load_manifest
from study.models import Answer, Asset, Case, Reader, ReaderKind, Study, utcnow
from study.readers import (
    SignInError,
    VisitorCount,
    remove_idle_visitors,
    sign_in_with_code,
    visitor_count,
)
from study.reading import next_case, reader_progress, record_answer
from study.reports import build_report, methods_text, study_context
from study.storage import AssetStore
from synth.phantom import write_phantom

SYNTHETIC_COLUMNS = [
    "path",
    "origin",
    "sequence",
    "lesion",
    "patient_id",
    "pair_key",
    "intensity",
    "generator",
    "seed",
]


def stand_in_synthetic(source_manifest: Path, out: Path) -> Path:
    """Phantom slices re-labelled as generator output (canonical PNGs): the demo's shape."""
    out.mkdir(parents=True)
    rows = []
    for i, item in enumerate(load_manifest(source_manifest)):
        name = f"syn{i:04d}.png"
        write_canonical_png(item.canonical, out / name)
        rows.append(
            {
                "path": name,
                "origin": "synthetic",
                "sequence": item.row.sequence.value,
                "lesion": item.row.lesion.value,
                "patient_id": "",
                "pair_key": f"syn-{item.row.pair_key}",
                "intensity": "canonical",
                "generator": "phantom stand-in",
                "seed": str(i),
            }
        )
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SYNTHETIC_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_phantom(root / "real", patients=8, seed=11, size=64, lesion_fraction=0.75)
    other = write_phantom(root / "other", patients=8, seed=12, size=64, lesion_fraction=0.75)
    stand_in_synthetic(other, root / "synthetic")
    return root


def count(engine, model) -> int:
    with transaction(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def study_named(engine, name: str) -> int:
    with transaction(engine) as session:
        return session.scalar(select(Study.id).where(Study.name == name))


def answer_all(engine, reader: int) -> None:
    """Answer every case of a reader's reading with the first option of each question."""
    while (view := next_case(engine, reader)) is not None:
        record_answer(
            engine, reader, view.public_id, {q.id: q.values[0] for q in view.questions}, 1.0
        )


def test_seed_demo_opens_an_educational_study_with_a_public_code(engine, demo_dir, tmp_path):
    demo = seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    assert demo.created and demo.code == DEMO_CODE
    with transaction(engine) as session:
        study = session.get(Study, demo.study_id)
        assert (study.status, study.feedback, study.allow_revisit) == ("open", "at_end", True)
        assert study.readers == []  # nobody reads until a visitor signs in
        cases = session.scalars(select(Case).where(Case.study_id == demo.study_id)).all()
        main = [c for c in cases if not c.practice]
        assert len(main) == 20 and sum(c.practice for c in cases) == 2
        for sequence in ("T2W", "ADC"):
            cells = sorted((c.origin, c.lesion) for c in main if c.sequence == sequence)
            assert cells == sorted([(o, les) for o in ("real", "synthetic") for les in (0, 1)] * 2)
        paired = [c for c in main if c.kind == "paired"]
        assert len(paired) == 4 and {c.origin for c in paired} == {"real", "synthetic"}
        # The two practice cases show both answers of both questions.
        practice = [(c.origin, c.lesion) for c in cases if c.practice]
        assert {o for o, _ in practice} == {"real", "synthetic"}
        assert {les for _, les in practice} == {0, 1}
    reader = sign_in_with_code(engine, DEMO_CODE)
    view = next_case(engine, reader)
    assert view is not None and view.practice
    assert demo_code_if_active(engine) == DEMO_CODE


def test_the_demo_asks_single_and_paired_cases_what_its_instructions_say(
    engine, demo_dir, tmp_path
):
    seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    reader = sign_in_with_code(engine, DEMO_CODE)
    asked: dict[str, set[str]] = {}
    while (view := next_case(engine, reader)) is not None:
        asked.setdefault(view.kind.value, set()).update(q.kind.value for q in view.questions)
        record_answer(
            engine, reader, view.public_id, {q.id: q.values[0] for q in view.questions}, 1
        )
    assert asked == {
        "single": {"real_or_synthetic", "confidence", "lesion_present"},
        "paired": {"lesion_present", "likert_realism"},
    }


def test_every_sign_in_with_the_demo_code_is_a_reading_of_its_own(engine, demo_dir, tmp_path):
    demo = seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    first = sign_in_with_code(engine, DEMO_CODE)
    answer_all(engine, first)
    assert reader_progress(engine, first).finished
    # A second visitor, after the first finished: a fresh start, not the first one's score.
    second = sign_in_with_code(engine, DEMO_CODE)
    assert second != first
    progress = reader_progress(engine, second)
    assert (progress.done, progress.practice_done, progress.finished) == (0, 0, False)
    view = next_case(engine, second)
    assert view is not None and view.answers == {}
    # Two visitors reading at once do not share progress.
    third = sign_in_with_code(engine, DEMO_CODE)
    record_answer(engine, second, view.public_id, {q.id: q.values[0] for q in view.questions}, 1)
    assert reader_progress(engine, third).practice_done == 0
    assert visitor_count(engine, demo.study_id) == VisitorCount(visitors=3, finished=1)
    with transaction(engine) as session:
        kinds = session.scalars(select(Reader.kind).where(Reader.study_id == demo.study_id)).all()
        assert set(kinds) == {ReaderKind.VISITOR}


def test_idle_visitors_who_did_not_finish_are_removed(engine, demo_dir, tmp_path):
    demo = seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    finished, stopped, recent = (sign_in_with_code(engine, DEMO_CODE) for _ in range(3))
    answer_all(engine, finished)
    view = next_case(engine, stopped)
    record_answer(engine, stopped, view.public_id, {q.id: q.values[0] for q in view.questions}, 1)
    long_ago = utcnow() - timedelta(hours=30)
    with transaction(engine) as session:
        for reader in (finished, stopped):
            session.execute(update(Reader).where(Reader.id == reader).values(created_at=long_ago))
            session.execute(
                update(Answer).where(Answer.reader_id == reader).values(last_saved_at=long_ago)
            )
    assert remove_idle_visitors(engine, idle=timedelta(hours=24)) == 1
    with transaction(engine) as session:
        left = set(session.scalars(select(Reader.id).where(Reader.study_id == demo.study_id)))
        assert left == {finished, recent}
        assert session.scalar(select(func.count()).where(Answer.reader_id == stopped)) == 0


def test_the_demo_code_opens_nothing_once_the_demo_is_closed(engine, demo_dir, tmp_path):
    demo = seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    close_study(engine, demo.study_id)
    with pytest.raises(SignInError, match="not open"):
        sign_in_with_code(engine, DEMO_CODE)


def test_the_simulated_study_fills_every_analysis_and_says_it_is_simulated(
    engine, demo_dir, tmp_path
):
    seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    study_id = study_named(engine, SIMULATED_STUDY_NAME)
    summary = next(s for s in list_studies(engine) if s.id == study_id)
    assert summary.simulated and summary.status == "closed"
    assert summary.readers == SIMULATED_READERS and summary.repeated_cases == 4
    tidy = tidy_answers(engine, study_id)
    # Every reader answered every required question of every case.
    per_reader = tidy.groupby("reader")["case_id"].nunique()
    assert (per_reader == summary.cases + summary.repeated_cases).all()
    report = build_report(tidy)
    assert report.notes == {}
    for table in (report.per_reader, report.auc, report.agreement_pairs, report.likert_summary):
        assert not table.empty
    assert report.mrmc is not None and not report.agreement_intra.empty
    readers, *_ = methods_text(study_context(engine, study_id), report)
    assert "simulated" in readers and "No person read this study" in readers


def test_seeding_again_changes_nothing(engine, demo_dir, tmp_path):
    store = AssetStore(tmp_path / "assets")
    first = seed_demo(engine, store=store, demo_dir=demo_dir)
    assets = count(engine, Asset)
    again = seed_demo(engine, store=store, demo_dir=demo_dir)
    assert (again.study_id, again.created) == (first.study_id, False)
    assert count(engine, Asset) == assets and count(engine, Study) == 2


def test_only_an_empty_database_is_seeded_automatically(engine, demo_dir, tmp_path):
    store = AssetStore(tmp_path / "assets")
    seed_demo(engine, store=store, demo_dir=demo_dir)
    assert seed_demo_if_empty(engine, demo_dir=demo_dir) is None


def test_the_demo_code_is_not_offered_once_the_study_is_closed(engine, demo_dir, tmp_path):
    demo = seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    close_study(engine, demo.study_id)
    assert demo_code_if_active(engine) is None


def test_missing_demo_data_is_a_clear_error_and_seeds_nothing(engine, tmp_path):
    with pytest.raises(DemoError, match="make demo-assets"):
        seed_demo(engine, demo_dir=tmp_path / "nowhere")
    assert count(engine, Study) == 0
