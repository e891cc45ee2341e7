"""Fixtures for the browser tests: a study seeded through the importer, the app served by
`streamlit run` in a subprocess, and headless Debian Chromium through Playwright."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from app_server import AppServer

from study.db import open_database
from study.design import SingleBlock, StudyPlan, create_study, open_study
from study.imaging.canonical import write_canonical_png
from study.imaging.types import Sequence
from study.importer import import_manifest
from study.questions import TEMPLATES
from study.readers import add_reader

ROOT = Path(__file__).resolve().parents[2]
ROOT_CONFTEST = ROOT / "tests" / "conftest.py"
CHROMIUM = Path("/usr/bin/chromium")


@dataclass(frozen=True)
class SeededStudy:
    study_id: int
    code: str
    data_dir: Path
    source_files: tuple[Path, ...]
    patient_ids: tuple[str, ...]


@pytest.fixture
def instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's data folder for this test (its SQLite database and assets), set for the
    test's own process too."""
    data_dir = tmp_path / "instance"
    monkeypatch.setenv("VTT_DATA_DIR", str(data_dir))
    monkeypatch.delenv("VTT_DATABASE_URL", raising=False)
    return data_dir


@pytest.fixture
def seeded_study(tmp_path: Path, instance_dir: Path) -> SeededStudy:
    """Eight T2W images (generated, written as PNGs, imported) in an open four-case study."""
    data_dir = instance_dir
    sources = tmp_path / "sources"
    sources.mkdir()
    rows, files, patients = [], [], []
    rng = np.random.default_rng(5)
    for i, (origin, lesion) in enumerate(
        [(o, lesion) for o in ("real", "synthetic") for lesion in (1, 0)] * 2
    ):
        patient = f"PATIENT-QZX-{i:03d}"
        path = sources / f"scan-{origin}-{patient}-{i}.png"
        write_canonical_png(rng.random((48, 48)), path)
        rows.append(
            {
                "path": path.name,
                "origin": origin,
                "sequence": "T2W",
                "lesion": lesion,
                "patient_id": patient,
                "intensity": "canonical",
            }
        )
        files.append(path)
        patients.append(patient)
    manifest = sources / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    engine = open_database()
    import_manifest(engine, manifest)
    plan = StudyPlan("Browser study", TEMPLATES["Seed protocol"], (SingleBlock(Sequence.T2W, 4),))
    study_id = create_study(engine, plan)
    open_study(engine, study_id)
    code = add_reader(engine, study_id, "browser reader").code
    engine.dispose()
    return SeededStudy(study_id, code, data_dir, tuple(files), tuple(patients))


@pytest.fixture
def app_url(seeded_study: SeededStudy, tmp_path: Path) -> Iterator[str]:
    """The app served by `streamlit run app.py` on a free port, with the study's data dir."""
    server = AppServer({"VTT_DATA_DIR": str(seeded_study.data_dir)}, tmp_path / "streamlit.log")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def browser(request: pytest.FixtureRequest):
    """Headless Debian Chromium; skips where it is missing, except under CI=true."""
    # Every conftest is imported as "conftest"; pytest registers each under its path.
    suite = request.config.pluginmanager.get_plugin(str(ROOT_CONFTEST))
    suite.require(CHROMIUM.exists(), f"{CHROMIUM} is not installed (make browser installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()
