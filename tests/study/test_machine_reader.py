"""A machine's scores imported as a reader: matched by digest, path or file name, its calls
stored as answers, its scores kept; every refusal leaves the study unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from study.cli import main
from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.machine_reader import MachineReaderError, add_machine_reader
from study.models import Answer, Asset, MachineScore, Reader, ReaderKind
from study.questions import TEMPLATES
from study.storage import AssetStore

SIZE = 16


def make_study(engine, tmp_path, store: AssetStore) -> int:
    """Four real and four synthetic T2W pictures in an eight-case seed-protocol study."""
    rng = np.random.default_rng(1)
    rows = ["path,origin,sequence,lesion,patient_id"]
    for i in range(8):
        origin = "real" if i < 4 else "synthetic"
        Image.fromarray((rng.random((SIZE, SIZE)) * 60000).astype(np.uint16)).save(
            tmp_path / f"img-{i}.png"
        )
        rows.append(f"img-{i}.png,{origin},T2W,{i % 2},{'P' + str(i) if i < 4 else ''}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    import_manifest(engine, tmp_path / "manifest.csv", store=store)
    plan = StudyPlan(
        "Machine", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 8, lesion_share=None),)
    )
    return create_study(engine, plan)


@pytest.fixture
def study(engine, tmp_path) -> int:
    return make_study(engine, tmp_path, AssetStore(tmp_path / "assets"))


def scores_by_name(tmp_path, scores: dict[int, float]) -> str:
    return "case_ref,score\n" + "".join(f"img-{i}.png,{s}\n" for i, s in scores.items())


def machine_rows(engine):
    with transaction(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(Reader)),
            session.scalar(select(func.count()).select_from(MachineScore)),
        )


def test_scores_by_file_name_become_a_machine_readers_answers(engine, study, tmp_path):
    scores = {i: 0.1 * i for i in range(8)}
    path = tmp_path / "scores.csv"
    path.write_text(scores_by_name(tmp_path, scores) + "elsewhere.png,0.9\n")
    result = add_machine_reader(engine, study, path, "CNN")
    assert (result.cases, result.rows_used, result.rows_ignored) == (8, 8, 1)
    with transaction(engine) as session:
        machine = session.get(Reader, result.reader_id)
        assert machine.kind == ReaderKind.MACHINE and machine.code_hash is None
        stored = sorted(
            session.scalars(select(MachineScore.score).where(MachineScore.reader_id == machine.id))
        )
        answers = sorted(
            session.scalars(select(Answer.value).where(Answer.reader_id == machine.id))
        )
    assert stored == pytest.approx(sorted(scores.values()))
    # Scores 0.5, 0.6, 0.7 are at or above the threshold: three synthetic calls.
    assert answers == ["real"] * 5 + ["synthetic"] * 3


def test_scores_by_digest_take_precedence_over_names(engine, study, tmp_path):
    with transaction(engine) as session:
        digests = dict(session.execute(select(Asset.source_path, Asset.source_sha256)).all())
    lines = "".join(f"renamed.png,{0.3},{sha}\n" for sha in digests.values())
    (tmp_path / "scores.csv").write_text("case_ref,score,source_sha256\n" + lines)
    result = add_machine_reader(engine, study, tmp_path / "scores.csv", "by digest")
    assert result.rows_used == 8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("ref,score\nimg-0.png,1\n", "no column case_ref"),
        ("case_ref,score\nimg-0.png,high\n", "line 2 has score 'high'"),
        ("case_ref,score\nimg-0.png,inf\n", "scores are finite numbers"),
        ("case_ref,score\n,0.5\n", "line 2 names no image"),
        ("case_ref,score\n", "no scores"),
        ("case_ref,score\nimg-0.png,0.5\n", r"no score for .*img-[1-7]\.png \(case [0-9a-f]+\)"),
        ("case_ref,score\nimg-0.png,0.5\nimg-0.png,0.6\n", "scored differently"),
    ],
)
def test_bad_scores_are_refused_and_change_nothing(engine, study, tmp_path, content, message):
    (tmp_path / "scores.csv").write_text(content)
    before = machine_rows(engine)
    with pytest.raises(MachineReaderError, match=message):
        add_machine_reader(engine, study, tmp_path / "scores.csv", "CNN")
    assert machine_rows(engine) == before


def test_a_name_in_use_and_a_missing_file_are_refused(engine, study, tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text(scores_by_name(tmp_path, {i: 0.5 for i in range(8)}))
    add_machine_reader(engine, study, path, "CNN")
    with pytest.raises(MachineReaderError, match="already has a reader 'CNN'"):
        add_machine_reader(engine, study, path, "CNN")
    with pytest.raises(MachineReaderError, match="no such file"):
        add_machine_reader(engine, study, tmp_path / "missing.csv", "other")


def test_the_command_line_adds_the_machine_or_says_why_not(data_dir, tmp_path, capsys):
    from study.db import open_database

    engine = open_database()
    make_study(engine, tmp_path, AssetStore())
    engine.dispose()
    path = tmp_path / "scores.csv"
    path.write_text(scores_by_name(tmp_path, {i: 0.9 for i in range(8)}))
    assert main(["add-machine", "--study", "Machine", "--scores", str(path), "--name", "CNN"]) == 0
    assert "machine reader 'CNN' added to study 'Machine': 8 cases" in capsys.readouterr().out
    assert main(["add-machine", "--study", "Machine", "--scores", str(path), "--name", "CNN"]) == 1
    assert "already has a reader 'CNN'" in capsys.readouterr().err
