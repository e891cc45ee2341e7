"""The coordinator's Generate page, through app.py (Streamlit AppTest), with a tiny checkpoint:
single images, paired DWI from imported T2W assets, and a preview."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from seeding import AssetRow, add_assets
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest
from test_app_import import signed_in_coordinator
from tiny_generator import train_tiny_checkpoint

from study.db import transaction
from study.imaging.types import Origin, Sequence
from study.jobs import stop_consumer
from study.models import Asset, Job, JobState
from study.storage import AssetStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def generate_page(
    app_engine, admin_password, data_dir, tiny_checkpoint, monkeypatch
) -> Iterator[AppTest]:
    """The Generate page of a signed-in coordinator, the tiny checkpoint under the data folder.
    The threads that the app's start-up starts in this process to run jobs end with the test."""
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    monkeypatch.delenv("VTT_JOB_BROKER", raising=False)
    shutil.copytree(tiny_checkpoint, data_dir / "checkpoints" / "tiny")
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/generate.py").run()
    assert not app.exception, app.exception
    choice = app.selectbox(key="gen-checkpoint")
    choice.select_index(choice.options.index("tiny")).run()
    app.number_input(key="gen-steps").set_value(2)
    yield app
    stop_consumer()


def wait_for_job(engine, timeout_s: float = 300) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with transaction(engine) as session:
            job = session.scalars(select(Job)).one_or_none()
            if job is not None and job.state not in (JobState.QUEUED, JobState.RUNNING):
                return job
        time.sleep(0.5)
    raise AssertionError(f"the job did not finish within {timeout_s} s")


def synthetic(engine) -> list[Asset]:
    with transaction(engine) as session:
        query = select(Asset).where(Asset.origin == Origin.SYNTHETIC).order_by(Asset.id)
        return list(session.scalars(query))


def test_coordinator_generates_four_images_in_the_background(generate_page, app_engine, data_dir):
    app = generate_page
    assert "training steps" in app.caption[0].value
    assert any("runs on **cpu**" in c.value for c in app.caption)
    app.number_input(key="gen-T2W-1").set_value(4).run()
    next(b for b in app.button if b.label == "Start generating").click().run()
    assert not app.exception, app.exception
    assert any("queued" in s.value for s in app.success)
    job = wait_for_job(app_engine)
    assert job.state == JobState.SUCCEEDED, job.error
    app.run()
    assert any("added 4 assets" in s.value for s in app.success)
    assets = synthetic(app_engine)
    assert len(assets) == 4 and all(a.provenance["steps"] == "2" for a in assets)
    assert not (data_dir / "jobs").exists() or not any((data_dir / "jobs").iterdir())


def test_paired_synthesis_makes_the_dwi_of_chosen_t2w_assets(generate_page, app_engine, data_dir):
    """Two of three imported T2W slices chosen: two DWI images come back, each with the pair
    key, patient and slice of its T2W and provenance naming that T2W asset."""
    rows = [
        AssetRow(Sequence.T2W, Origin.REAL, 1, "P1", "pair-1"),
        AssetRow(Sequence.T2W, Origin.REAL, 0, "P2", "pair-2"),
        AssetRow(Sequence.T2W, Origin.REAL, 0, "P3", "pair-3"),
    ]
    t2w = add_assets(app_engine, rows, store=AssetStore(data_dir / "assets"))
    with transaction(app_engine) as session:
        for index, asset_id in enumerate(t2w):
            session.get_one(Asset, asset_id).slice_index = 7 + index
    app = generate_page
    app.run()
    chosen = [t2w[0], t2w[2]]
    app.multiselect(key="gen-paired-assets").set_value(chosen).run()
    next(b for b in app.button if b.label == "Start paired synthesis").click().run()
    assert not app.exception, app.exception
    assert any("queued" in s.value for s in app.success)
    job = wait_for_job(app_engine)
    assert job.state == JobState.SUCCEEDED, job.error
    made = synthetic(app_engine)
    assert [a.sequence for a in made] == [Sequence.DWI, Sequence.DWI]
    with transaction(app_engine) as session:
        sources = {a.id: a for a in session.scalars(select(Asset).where(Asset.id.in_(chosen)))}
    by_pair = {a.pair_key: a for a in made}
    assert set(by_pair) == {"pair-1", "pair-3"}
    for t2w_id in chosen:
        source = sources[t2w_id]
        dwi = by_pair[source.pair_key]
        assert (dwi.patient_id, dwi.slice_index, dwi.lesion) == (
            source.patient_id,
            source.slice_index,
            source.lesion,
        )
        assert dwi.provenance["condition_sha256"] == source.source_sha256
        assert "DWI" in dwi.provenance["prompt"]


def test_a_preview_shows_two_images_and_imports_nothing(generate_page, app_engine, data_dir):
    app = generate_page
    app.number_input(key="gen-ADC-0").set_value(3).run()
    next(b for b in app.button if b.label == "Preview 2 images").click().run()
    assert not app.exception, app.exception
    [shown] = app.get("image")
    assert shown.captions == ["preview 1", "preview 2"] and all(shown.value)
    with transaction(app_engine) as session:
        assert session.scalar(select(func.count()).select_from(Asset)) == 0
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    # The preview's files lived in a temporary folder, gone with it.
    assert not [path for path in data_dir.iterdir() if path.name.startswith("tmp")]


def test_the_cancel_button_stops_a_running_job(generate_page, app_engine, data_dir):
    app = generate_page
    app.number_input(key="gen-steps").set_value(500)
    app.number_input(key="gen-T2W-0").set_value(4).run()
    next(b for b in app.button if b.label == "Start generating").click().run()
    deadline = time.monotonic() + 120
    while True:
        with transaction(app_engine) as session:
            job = session.scalars(select(Job)).one()
        if job.pid is not None:
            break
        assert time.monotonic() < deadline, "the generator did not start"
        time.sleep(0.2)
    app.run()
    app.button(key=f"cancel-job-{job.id}").click().run()
    assert not app.exception, app.exception
    assert wait_for_job(app_engine).state == JobState.CANCELLED
    assert not [b for b in app.button if b.key == f"cancel-job-{job.id}"]
    assert any("cancelled by the coordinator" in e.value for e in app.error)
    assert synthetic(app_engine) == []


def test_without_a_gpu_the_bundled_student_comes_first_with_its_own_few_steps(
    app_engine, admin_password, monkeypatch
):
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/generate.py").run()
    assert not app.exception, app.exception

    def sampling() -> tuple:
        return (
            app.selectbox(key="gen-sampler").value,
            app.number_input(key="gen-steps").value,
            app.number_input(key="gen-guidance").value,
        )

    choice = app.selectbox(key="gen-checkpoint")
    assert choice.value.name == "demo student (bundled; fast on a CPU)"
    assert sampling() == ("ddim", 4, 1.0)
    assert any("distilled from checkpoint" in c.value for c in app.caption)
    choice.select_index(choice.options.index("demo (bundled)")).run()
    assert sampling() == ("dpmpp", 20, 3.0)


def test_lesion_masks_are_offered_for_checkpoints_with_the_mask_channel(
    app_engine, admin_password, data_dir, monkeypatch
):
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    masked = data_dir / "checkpoints" / "masked"
    shutil.copytree(Path(__file__).resolve().parents[2] / "data" / "demo" / "student", masked)
    config = json.loads((masked / "config.json").read_text())
    config["model"]["mask_channel"] = True
    (masked / "config.json").write_text(json.dumps(config))
    app = signed_in_coordinator(admin_password)
    app.switch_page("pages/generate.py").run()
    assert not app.exception, app.exception

    def lesion_masks() -> list:
        return [radio for radio in app.radio if radio.key == "gen-lesion-masks"]

    assert app.selectbox(key="gen-checkpoint").value.name.startswith("demo student")
    assert lesion_masks() == []
    choice = app.selectbox(key="gen-checkpoint")
    choice.select_index(choice.options.index("masked")).run()
    (offered,) = lesion_masks()
    assert list(offered.options) == ["none", "auto"] and offered.value == "none"
