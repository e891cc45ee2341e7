"""Machine evaluation jobs: `synth evaluate` and `synth augment` run in the background on a
study's images (imported phantom patients and the tiny generator's 'synthetic' images), their
--json object kept as the job's result; a generator that saw a tested patient is refused."""

from __future__ import annotations

import csv
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_generator import train_tiny_checkpoint, wait_until_done, work_folders

from study.db import transaction
from study.imaging.manifest import write_manifest
from study.imaging.types import Origin
from study.importer import import_manifest
from study.jobs import (
    JobError,
    JobKind,
    get_job,
    latest_result,
    machine_jobs,
    start_consumer,
    stop_consumer,
    study_images,
    submit_augmentation,
    submit_evaluation,
)
from study.models import Asset, Case, CaseAsset, CaseKind, CaseOrigin, JobState, Study
from study.storage import AssetStore
from synth.checkpoint import checkpoint_sha256
from synth.errors import SynthError
from synth.phantom import write_phantom

pytestmark = pytest.mark.slow

AUGMENT_KEYS = {"arms", "difference", "folds", "n_real", "n_synthetic"}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny generator (trained on phantom patients PH1-0001 and PH1-0002), real images of
    9 other patients, and 4 more patients' images posing as the tiny generator's."""
    root = tmp_path_factory.mktemp("machine")
    checkpoint = train_tiny_checkpoint(root)
    real = write_phantom(root / "real", patients=9, seed=3, size=64, slices=4)
    other = write_phantom(root / "other", patients=4, seed=4, size=64, slices=3)
    with other.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row |= {
            "origin": "synthetic",
            "patient_id": "",
            "generator": "vtt-synth-diffusion/tiny",
            "checkpoint_sha256": checkpoint_sha256(checkpoint),
        }
    return {
        "checkpoint": checkpoint,
        "real": real,
        "trained_on": root / "phantom" / "manifest.csv",
        "synthetic": write_manifest(other.with_name("synthetic.csv"), rows),
    }


@pytest.fixture
def jobs_env(engine, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The app's own queue in `data_dir`, run by this process's threads against `engine`."""
    monkeypatch.setenv("VTT_DEVICE", "cpu")
    monkeypatch.delenv("VTT_JOB_BROKER", raising=False)
    assert start_consumer(engine)
    yield data_dir
    stop_consumer()


def make_study(engine, name: str, origins_and_patients: list[tuple[Origin, set[str]]]) -> int:
    """A study with a single-image case of every asset of the given origin whose patient is
    one of the given ones (an empty id for synthetic images), and a practice case of the first
    other asset, if any."""
    with transaction(engine) as session:
        study = Study(name=name)
        session.add(study)
        session.flush()
        assets = list(session.query(Asset).order_by(Asset.id))
        chosen = [
            asset
            for asset in assets
            for origin, patients in origins_and_patients
            if asset.origin == origin and asset.patient_id in patients
        ]
        practice = [asset for asset in assets if asset not in chosen][:1]
        for position, asset in enumerate([*chosen, *practice]):
            case = Case(
                study_id=study.id,
                public_id=secrets.token_hex(8),
                kind=CaseKind.SINGLE,
                origin=CaseOrigin(asset.origin.value),
                lesion=asset.lesion,
                sequence=asset.sequence.value,
                practice=position == len(chosen),
            )
            case.views = [CaseAsset(asset=asset, viewport="image", position=0)]
            session.add(case)
        return study.id


@pytest.fixture
def studies(engine, jobs_env: Path, phantoms: dict[str, Path]) -> dict[str, int]:
    """'clean': real patients the generator never saw; 'leaky': with its training patients."""
    store = AssetStore(jobs_env / "assets")
    for manifest in (phantoms["real"], phantoms["trained_on"], phantoms["synthetic"]):
        import_manifest(engine, manifest, store=store)
    shutil.copytree(phantoms["checkpoint"], jobs_env / "checkpoints" / "tiny")
    real = {f"PH3-{i:04d}" for i in range(1, 10)}
    return {
        "clean": make_study(engine, "clean", [(Origin.REAL, real), (Origin.SYNTHETIC, {""})]),
        "leaky": make_study(
            engine,
            "leaky",
            [(Origin.REAL, real | {"PH1-0001", "PH1-0002"}), (Origin.SYNTHETIC, {""})],
        ),
    }


def test_a_studys_images_leave_out_its_practice_cases(engine, studies):
    images = study_images(engine, studies["clean"])
    assert (len(images.real), len(images.synthetic), images.patients) == (108, 36, 9)
    assert {asset.patient_id for asset in images.synthetic} == {""}
    leaky = study_images(engine, studies["leaky"])
    assert (len(leaky.real), leaky.patients) == (108 + 18, 11)


def test_an_augment_job_runs_on_a_studys_images_and_keeps_its_json(engine, studies, jobs_env):
    job_id = submit_augmentation(engine, studies["clean"], quick=True, epochs=1, folds=3)
    assert wait_until_done(engine, job_id) == JobState.SUCCEEDED, get_job(engine, job_id).error
    job = get_job(engine, job_id)
    assert set(job.result) == AUGMENT_KEYS
    assert (job.result["n_real"], job.result["n_synthetic"]) == (108, 36)
    assert len(job.result["folds"]) == 3 and job.progress == 1.0
    assert '"unit": "classifier"' in job.log_tail  # progress lines, not the result
    assert job.params["study_id"] == studies["clean"] and "device" not in job.params
    assert job.params["request"]["generators"] == "generators"
    assert work_folders(jobs_env) == []
    assert latest_result(engine, studies["clean"], JobKind.AUGMENT).id == job_id
    assert latest_result(engine, studies["leaky"], JobKind.AUGMENT) is None


def test_an_evaluate_job_keeps_the_realism_checks(engine, studies):
    job_id = submit_evaluation(engine, studies["clean"], folds=2, epochs=1, size=16)
    assert wait_until_done(engine, job_id) == JobState.SUCCEEDED, get_job(engine, job_id).error
    result = get_job(engine, job_id).result
    assert 0 <= result["c2st_auc"] <= 1 and len(result["c2st_auc_ci"]) == 2
    assert (result["n_real"], result["n_synthetic"]) == (108, 36)
    assert [job.id for job in machine_jobs(engine, studies["clean"])] == [job_id]
    assert machine_jobs(engine, studies["leaky"]) == []


def test_an_augment_job_on_patients_the_generator_saw_is_refused(engine, studies, jobs_env):
    job_id = submit_augmentation(engine, studies["leaky"], quick=True, epochs=1, folds=3)
    assert wait_until_done(engine, job_id) == JobState.FAILED
    error = get_job(engine, job_id).error
    assert "would test" in error and "patient(s) that checkpoint" in error, error
    assert "checkpoints/tiny" in error
    assert work_folders(jobs_env) == []


def test_what_cannot_run_is_refused_before_anything_is_written(engine, studies, jobs_env):
    with pytest.raises(SynthError, match="--folds must be at least 2"):
        submit_augmentation(engine, studies["clean"], folds=1)
    with transaction(engine) as session:
        session.add(Study(name="empty"))
        session.flush()
        empty = session.query(Study).filter_by(name="empty").one().id
    with pytest.raises(JobError, match="0 real and 0 synthetic images"):
        submit_evaluation(engine, empty)
    assert work_folders(jobs_env) == []
