"""The demo study: seeded from a demo folder, idempotent, with its public reader code."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from study.db import transaction
from study.demo import (
    DEMO_CODE,
    DemoError,
    demo_code_if_active,
    seed_demo,
    seed_demo_if_empty,
)
from study.design import close_study
from study.imaging.canonical import write_canonical_png
from study.imaging.manifest import load_manifest
from study.models import Asset, Case, Study
from study.readers import sign_in_with_code
from study.reading import next_case
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


def test_seed_demo_opens_an_educational_study_with_a_public_reader(engine, demo_dir, tmp_path):
    demo = seed_demo(engine, store=AssetStore(tmp_path / "assets"), demo_dir=demo_dir)
    assert demo.created and demo.code == DEMO_CODE
    with transaction(engine) as session:
        study = session.get(Study, demo.study_id)
        assert (study.status, study.feedback, study.allow_revisit) == ("open", "at_end", True)
        cases = session.scalars(select(Case).where(Case.study_id == demo.study_id)).all()
        main = [c for c in cases if not c.practice]
        assert len(main) == 20 and sum(c.practice for c in cases) == 2
        for sequence in ("T2W", "ADC"):
            cells = sorted((c.origin, c.lesion) for c in main if c.sequence == sequence)
            assert cells == sorted([(o, les) for o in ("real", "synthetic") for les in (0, 1)] * 2)
        paired = [c for c in main if c.kind == "paired"]
        assert len(paired) == 4 and {c.origin for c in paired} == {"real", "synthetic"}
    reader = sign_in_with_code(engine, DEMO_CODE)
    assert next_case(engine, reader) is not None
    assert demo_code_if_active(engine) == DEMO_CODE


def test_seeding_again_changes_nothing(engine, demo_dir, tmp_path):
    store = AssetStore(tmp_path / "assets")
    first = seed_demo(engine, store=store, demo_dir=demo_dir)
    assets = count(engine, Asset)
    again = seed_demo(engine, store=store, demo_dir=demo_dir)
    assert (again.study_id, again.created) == (first.study_id, False)
    assert count(engine, Asset) == assets and count(engine, Study) == 1


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
