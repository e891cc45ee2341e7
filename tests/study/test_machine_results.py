"""A machine reader in a study's results: compared with the people in its own section, kept
out of the people's tables unless the filter counts it, exported with the tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import select

from study.db import transaction
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.machine_reader import add_machine_reader
from study.models import Asset
from study.questions import TEMPLATES
from study.readers import add_reader
from study.report.data import read_study
from study.report.html import report_html
from study.report.machine import machine_blocks
from study.report.model import export_tables, study_report
from study.reports import Filters
from study.simulate import simulate_answers
from study.storage import AssetStore

CASES = 16


@pytest.fixture
def rated_study(engine, tmp_path):
    """Sixteen T2W pictures (eight real, eight synthetic) read by three simulated people with
    confidence ratings, and a machine that scores every synthetic image higher than every real
    one but one (a real image scored 0.95)."""
    rng = np.random.default_rng(2)
    rows = ["path,origin,sequence,lesion,patient_id"]
    for i in range(CASES):
        origin = "real" if i < CASES // 2 else "synthetic"
        Image.fromarray((rng.random((12, 12)) * 60000).astype(np.uint16)).save(
            tmp_path / f"img-{i}.png"
        )
        rows.append(f"img-{i}.png,{origin},T2W,{i % 2},{'P' + str(i) if origin == 'real' else ''}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, tmp_path / "manifest.csv", store=store)
    plan = StudyPlan(
        "Machine study",
        (TEMPLATES["Seed protocol"][0], TEMPLATES["Realism rating"][1]),
        (SingleBlock(Sequence.T2W, CASES, lesion_share=None),),
    )
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    for alias in ("A", "B", "C"):
        add_reader(engine, study_id, alias)
    simulate_answers(engine, study_id, seed=7)
    with transaction(engine) as session:
        names = {
            path.rsplit("/", 1)[-1]: origin
            for path, origin in session.execute(select(Asset.source_path, Asset.origin))
        }
    lines = ["case_ref,score"]
    for name, origin in sorted(names.items()):
        score = 0.8 if origin == "synthetic" else 0.2
        lines.append(f"{name},{0.95 if name == 'img-0.png' else score}")
    (tmp_path / "scores.csv").write_text("\n".join(lines) + "\n")
    add_machine_reader(engine, study_id, tmp_path / "scores.csv", "CNN")
    return study_id, store


def test_the_machine_is_compared_with_the_people_and_kept_out_of_their_tables(engine, rated_study):
    study_id, store = rated_study
    data = read_study(engine, study_id, store=store)
    report = study_report(data)
    (machine,) = report.machines
    # 8 synthetic at 0.8 vs 7 real at 0.2 and one at 0.95: AUC = (8 * 7) / 64.
    assert (machine.machine, machine.n_cases) == ("CNN", CASES)
    assert machine.auc == pytest.approx(56 / 64)
    # Calls at 0.5: every synthetic right, one real wrong.
    assert machine.accuracy == pytest.approx(15 / 16)
    comparison = machine.comparison
    assert comparison is not None and comparison.readers == ("A", "B", "C")
    assert comparison.difference.fom == pytest.approx(comparison.reader_aucs.mean() - 56 / 64)
    assert set(report.tables.per_reader["reader"]) >= {"A", "B", "C"}
    assert "CNN" not in set(report.tables.per_reader["reader"])
    blocks = machine_blocks(report)
    assert [type(b).__name__ for b in blocks] == ["Paragraph", "Table", "Caption"]
    assert "the readers' mean AUC minus the machine's is" in blocks[2].text
    assert "on 16 cases and 3 readers" in blocks[2].text

    counted = study_report(data, Filters(machines=True))
    assert "CNN" in set(counted.tables.per_reader["reader"])
    assert "machine readers included" in counted.tables.filters.describe()
    # The people's MRMC never includes the machine.
    assert counted.tables.mrmc.result.readers == ("A", "B", "C")

    assert "Radiologists vs the machine is a random-reader" in report_html(report)
    tables = export_tables(report)
    machines = tables["machines"]
    assert machines.loc[0, "machine_auc"] == pytest.approx(56 / 64)
    assert list(machines.columns[:6]) == [
        "machine",
        "cases",
        "machine_auc",
        "auc_low",
        "auc_high",
        "machine_accuracy",
    ]


def test_a_study_without_machines_has_no_machine_section(engine, tmp_path):
    image = (np.random.default_rng(0).random((12, 12)) * 60000).astype(np.uint16)
    Image.fromarray(image).save(tmp_path / "a.png")
    (tmp_path / "m.csv").write_text("path,origin,sequence,lesion,patient_id\na.png,real,T2W,0,P\n")
    import_manifest(engine, tmp_path / "m.csv", store=AssetStore(tmp_path / "s"))
    plan = StudyPlan(
        "Plain", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 1, 0.0, None),)
    )
    study_id = create_study(engine, plan)
    data = read_study(engine, study_id)
    assert data.machine_scores.empty and data.localisation is None
    report = study_report(data)
    assert report.machines == () and machine_blocks(report) == ()
    assert "machines" not in export_tables(report)
    assert isinstance(data.machine_scores, pd.DataFrame)
