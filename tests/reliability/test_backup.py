"""Backup and restore: `export_archive` writes every table and asset file to one archive;
`restore_archive` rebuilds the same study, ids included, into an empty SQLite or PostgreSQL
database, whose analysis equals the original's. Damaged archives and non-empty databases are
refused, and a failed restore leaves nothing behind. The command line does the same."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alembic.script import ScriptDirectory
from seeding import add_assets, grid
from sqlalchemy import Engine, func, select

from study.analysis import tidy_answers
from study.backup import BackupError, export_archive, restore_archive
from study.db import alembic_config, make_engine, migrate, transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.mask import mask_to_bytes
from study.imaging.types import Sequence
from study.models import Answer, Asset, Base, Study
from study.questions import TEMPLATES
from study.readers import add_reader, sign_in_with_code
from study.reading import case_at, next_case, record_answer
from study.reports import build_report, report_tables
from study.stats.tables import metrics_table, per_reader_table
from study.storage import AssetStore

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = TEMPLATES["Seed protocol"] + TEMPLATES["Realism rating"]
CHOICES = {
    "real_or_synthetic": ("real", "synthetic"),
    "lesion_present": ("yes", "no"),
    "likert_realism": ("1", "2", "3", "4", "5"),
    "confidence": ("1", "2", "3", "4", "5"),
}


def build_study(engine: Engine, store: AssetStore) -> dict[str, str]:
    """A study with practice and repeated cases, three readers who answered (one changed some
    answers, one stopped half-way); returns alias -> access code."""
    asset_ids = add_assets(engine, grid([Sequence.T2W], 6), store=store)
    # One asset has a lesion mask: its file travels with the archive like the images'.
    mask = np.zeros((32, 32), np.uint16)
    mask[10:14, 12:16] = 3
    mask_sha256, _ = store.put(mask_to_bytes(mask), ".npy")
    with transaction(engine) as session:
        session.get(Asset, asset_ids[0]).mask_sha256 = mask_sha256
    plan = StudyPlan(
        "Backup study",
        QUESTIONS,
        (SingleBlock(Sequence.T2W, 16),),
        allow_revisit=True,
        practice_cases=1,
        repeated_cases=2,
        settings={"positive_class": "synthetic"},
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    rng = random.Random(7)
    codes = {}
    for alias, share in (("alpha", 1.0), ("beta", 1.0), ("gamma", 0.5)):
        issued = add_reader(engine, study_id, alias, experience_years=4.0, specialty="radiology")
        codes[alias] = issued.code
        reader = issued.reader_id
        for _ in range(int(19 * share)):  # 1 practice case, 16 cases, 2 repeats
            view = next_case(engine, reader)
            values = {q.id: rng.choice(CHOICES[q.kind.value]) for q in view.questions}
            record_answer(engine, reader, view.public_id, values, rng.uniform(2, 20))
        if alias == "alpha":
            first = case_at(engine, reader, 1)
            changed = {q.id: rng.choice(CHOICES[q.kind.value]) for q in first.questions}
            record_answer(engine, reader, first.public_id, changed, 3.0)
    return codes


def table_rows(engine: Engine) -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order, times in UTC."""

    def plain(value):
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value

    with engine.connect() as connection:
        return {
            table.name: [
                tuple(plain(v) for v in row)
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
        }


def store_files(store: AssetStore) -> dict[str, bytes]:
    return {
        str(p.relative_to(store.root)): p.read_bytes()
        for p in sorted(store.root.rglob("*"))
        if p.is_file()
    }


def analysis(engine: Engine, study_id: int) -> dict[str, pd.DataFrame]:
    """The tidy answers (times in UTC) and the results tables computed from them."""
    tidy = tidy_answers(engine, study_id)
    tidy["saved_at"] = pd.to_datetime(tidy["saved_at"], utc=True)
    binary = tidy[tidy["question_kind"].isin(["real_or_synthetic", "lesion_present"])]
    frames = {
        "tidy": tidy,
        "metrics": metrics_table(binary, by=["question_kind", "reader"]),
        "per_reader": per_reader_table(binary),
    }
    report = build_report(tidy.drop(columns="saved_at"), seed=3)
    frames.update({f"report {name}": table for name, table in report_tables(report).items()})
    return frames


@pytest.fixture
def source(tmp_path: Path) -> tuple[Engine, AssetStore, dict[str, str]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'source.sqlite3'}")
    migrate(engine)
    store = AssetStore(tmp_path / "source-assets")
    codes = build_study(engine, store)
    yield engine, store, codes
    engine.dispose()


def test_restore_rebuilds_an_identical_study(source, engine, tmp_path):
    original, original_store, codes = source
    archive = export_archive(original, tmp_path / "backup" / "all.zip", original_store)
    with zipfile.ZipFile(archive) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
    head = ScriptDirectory.from_config(alembic_config(original)).get_current_head()
    assert manifest["schema_revision"] == head
    assert manifest["tables"]["answers"]["rows"] > 0
    assert len(manifest["assets"]) == len(store_files(original_store))

    store = AssetStore(tmp_path / "restored-assets")
    result = restore_archive(engine, archive, store)
    assert result.rows["answers"] == manifest["tables"]["answers"]["rows"]
    assert result.files == result.files_written == len(manifest["assets"])

    assert table_rows(engine) == table_rows(original)
    assert store_files(store) == store_files(original_store)
    with transaction(original) as session:
        study_id = session.scalar(select(Study.id))
    before, after = analysis(original, study_id), analysis(engine, study_id)
    assert before.keys() == after.keys()
    assert {"report per_reader", "report auc_per_reader", "report likert_summary"} <= set(before)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)

    # The restored study goes on: a reader signs in with their old code and resumes, and new
    # rows get new ids (PostgreSQL's sequences were moved past the restored ids).
    reader = sign_in_with_code(engine, codes["gamma"])
    assert reader == sign_in_with_code(original, codes["gamma"])
    view = next_case(engine, reader)
    assert view == next_case(original, reader)
    values = {q.id: CHOICES[q.kind.value][0] for q in view.questions}
    assert record_answer(engine, reader, view.public_id, values, 5.0)
    add_reader(engine, study_id, "delta")

    # Restoring again is refused: the database is not empty any more.
    rows = table_rows(engine)
    with pytest.raises(BackupError, match="not empty"):
        restore_archive(engine, archive, store)
    assert table_rows(engine) == rows


def rewrite(archive: Path, target: Path, change) -> Path:
    """A copy of `archive` with `change(name, data) -> data` applied to every member."""
    with zipfile.ZipFile(archive) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            new.writestr(name, change(name, old.read(name)))
    return target


def assert_nothing_restored(engine: Engine, store: AssetStore) -> None:
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(Study)) == 0
        assert session.scalar(select(func.count()).select_from(Answer)) == 0
    assert not store_files(store)


def test_a_damaged_archive_is_refused_before_anything_is_written(source, engine, tmp_path):
    original, original_store, _ = source
    archive = export_archive(original, tmp_path / "all.zip", original_store)
    store = AssetStore(tmp_path / "restored-assets")

    def flip_a_byte(name: str, data: bytes) -> bytes:
        if name.startswith("assets/") and name.endswith(".png") and b"IDAT" in data:
            return data[:-20] + bytes([data[-20] ^ 1]) + data[-19:]
        return data

    damaged = rewrite(archive, tmp_path / "damaged.zip", flip_a_byte)
    with pytest.raises(BackupError, match="damaged"):
        restore_archive(engine, damaged, store)
    assert_nothing_restored(engine, store)

    def edit_a_table(name: str, data: bytes) -> bytes:
        return data.replace(b'"alpha"', b'"omega"') if name == "tables/readers.json" else data

    edited = rewrite(archive, tmp_path / "edited.zip", edit_a_table)
    with pytest.raises(BackupError, match=r"readers\.json is damaged"):
        restore_archive(engine, edited, store)
    assert_nothing_restored(engine, store)


def test_a_restore_that_fails_half_way_leaves_nothing(source, engine, tmp_path):
    """Rows that break a constraint (two answers to one question) fail the insert after the
    other tables went in and files were stored: all of it is undone."""
    original, original_store, _ = source
    archive = export_archive(original, tmp_path / "all.zip", original_store)

    def double_an_answer(name: str, data: bytes) -> bytes:
        if name == "tables/answers.json":
            content = json.loads(data)
            twin = list(content["rows"][0])
            twin[content["columns"].index("id")] = 10_000
            content["rows"].append(twin)
            return json.dumps(content).encode()
        return data

    broken = rewrite(archive, tmp_path / "broken.zip", double_an_answer)
    with zipfile.ZipFile(broken) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        body = bundle.read("tables/answers.json")
    manifest["tables"]["answers"].update(
        rows=manifest["tables"]["answers"]["rows"] + 1, sha256=hashlib.sha256(body).hexdigest()
    )
    consistent = rewrite(
        broken,
        tmp_path / "consistent.zip",
        lambda name, data: json.dumps(manifest).encode() if name == "manifest.json" else data,
    )
    store = AssetStore(tmp_path / "restored-assets")
    with pytest.raises(BackupError, match="nothing was restored"):
        restore_archive(engine, consistent, store)
    assert_nothing_restored(engine, store)


def test_command_line_export_all_then_restore(tmp_path):
    source_dir = tmp_path / "source-instance"
    source_engine = make_engine(f"sqlite:///{source_dir / 'vtt.sqlite3'}")
    migrate(source_engine)
    build_study(source_engine, AssetStore(source_dir / "assets"))
    archive = tmp_path / "vtt-backup.zip"

    def study_cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "VTT_DATA_DIR": str(data_dir), "VTT_DATABASE_URL": ""}
        return subprocess.run(
            [sys.executable, "-m", "study", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    exported = study_cli("export", "--all", "--out", str(archive), data_dir=source_dir)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == str(archive)

    target_dir = tmp_path / "target-instance"
    restored = study_cli("restore", str(archive), data_dir=target_dir)
    assert restored.returncode == 0, restored.stderr
    assert "1 studies" in restored.stdout
    target_engine = make_engine(f"sqlite:///{target_dir / 'vtt.sqlite3'}")
    assert table_rows(target_engine) == table_rows(source_engine)
    assert store_files(AssetStore(target_dir / "assets")) == store_files(
        AssetStore(source_dir / "assets")
    )
    source_engine.dispose()
    target_engine.dispose()

    again = study_cli("restore", str(archive), data_dir=target_dir)
    assert again.returncode == 1
    assert again.stderr.startswith("error: the database is not empty")
    missing = study_cli("restore", str(tmp_path / "nothing.zip"), data_dir=target_dir)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: cannot open")
