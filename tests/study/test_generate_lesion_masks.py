"""Lesion masks in generate jobs: `auto` asked only of checkpoints with the mask channel, and the
T2W assets' masks handed to paired synthesis in its condition manifest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from study.db import transaction
from study.design import PoolFilter
from study.imaging.manifest import load_manifest
from study.imaging.types import Lesion, Sequence
from study.importer import import_manifest
from study.jobs import (
    GenerateCell,
    SampleOptions,
    TrainingSelection,
    submit_generate,
    submit_training,
)
from study.jobs.states import JobError
from study.jobs.workdirs import write_asset_manifest
from study.models import Asset, Job
from study.storage import AssetStore
from synth.contract import SampleRequest, TrainSettings

ROOT = Path(__file__).resolve().parents[2]
DEMO_STUDENT = ROOT / "data" / "demo" / "student"
CELLS = [
    GenerateCell(Sequence.T2W, Lesion.YES, 1),
    GenerateCell(Sequence.ADC, Lesion.NO, 1),
    GenerateCell(Sequence.DWI, Lesion.UNKNOWN, 1),
]


def test_lesion_masks_are_refused_for_a_checkpoint_without_the_channel(engine, data_dir):
    with pytest.raises(JobError, match=f"{DEMO_STUDENT}: this checkpoint has no lesion-mask"):
        submit_generate(engine, DEMO_STUDENT, CELLS, SampleOptions(lesion_masks="auto"))
    with transaction(engine) as session:
        assert session.scalars(select(Job)).all() == []


def test_auto_lesion_masks_go_to_the_cells_of_known_lesion_status(engine, data_dir, tmp_path):
    checkpoint = tmp_path / "masked"
    shutil.copytree(DEMO_STUDENT, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["model"]["mask_channel"] = True
    (checkpoint / "config.json").write_text(json.dumps(config))
    job_id = submit_generate(engine, checkpoint, CELLS, SampleOptions(lesion_masks="auto"))
    with transaction(engine) as session:
        runs = session.get_one(Job, job_id).params["runs"]
    requests = [SampleRequest.from_json(run["request"]) for run in runs]
    assert [request.lesion_mask for request in requests] == ["auto", "auto", None]
    assert "--lesion-mask" in requests[0].to_args()
    plain = submit_generate(engine, checkpoint, CELLS, SampleOptions())
    with transaction(engine) as session:
        runs = session.get_one(Job, plain).params["runs"]
    assert [run["request"]["lesion_mask"] for run in runs] == [None, None, None]


def test_an_assets_mask_goes_with_it_to_the_generator(engine, tmp_path):
    """Paired synthesis and training read assets through `write_asset_manifest`."""
    image = (np.random.default_rng(0).random((24, 20)) * 60000).astype(np.uint16)
    labels = np.zeros((24, 20), np.uint8)
    labels[5:10, 6:10] = 3
    Image.fromarray(image).save(tmp_path / "t2w.png")
    Image.fromarray(labels).save(tmp_path / "t2w-mask.png")
    (tmp_path / "manifest.csv").write_text(
        "path,origin,sequence,lesion,patient_id,mask\nt2w.png,real,T2W,,P1,t2w-mask.png\n"
    )
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, tmp_path / "manifest.csv", store=store)
    with transaction(engine) as session:
        assets = list(session.scalars(select(Asset)))
        manifest = write_asset_manifest(assets, tmp_path / "work", store)
    (item,) = load_manifest(manifest)
    assert item.lesion == Lesion.YES and np.array_equal(item.mask, labels)


def test_an_asset_whose_mask_says_otherwise_under_the_default_rule_goes_without_it(
    engine, tmp_path
):
    """Imported with --lesion-labels 2, a slice whose mask holds only label 1 has no lesion; the
    default rule would read one from that mask, so the asset keeps its truth without the mask."""
    image = (np.random.default_rng(1).random((24, 20)) * 60000).astype(np.uint16)
    labels = np.zeros((24, 20), np.uint8)
    labels[5:10, 6:10] = 1
    Image.fromarray(image).save(tmp_path / "t2w.png")
    Image.fromarray(labels).save(tmp_path / "t2w-mask.png")
    (tmp_path / "manifest.csv").write_text(
        "path,origin,sequence,lesion,patient_id,mask\nt2w.png,real,T2W,,P1,t2w-mask.png\n"
    )
    store = AssetStore(tmp_path / "assets")
    import_manifest(engine, tmp_path / "manifest.csv", store=store, lesion_labels={2})
    with transaction(engine) as session:
        assets = list(session.scalars(select(Asset)))
        assert [asset.lesion for asset in assets] == [0]
        manifest = write_asset_manifest(assets, tmp_path / "work", store)
    (item,) = load_manifest(manifest)
    assert item.lesion == Lesion.NO and item.mask is None
    assert not (tmp_path / "work" / "masks").exists()


def test_training_with_the_mask_condition_queues_the_assets_masks(engine, data_dir, tmp_path):
    image = (np.random.default_rng(1).random((24, 20)) * 60000).astype(np.uint16)
    labels = np.zeros((24, 20), np.uint8)
    labels[5:10, 6:10] = 1
    Image.fromarray(image).save(tmp_path / "t2w.png")
    Image.fromarray(labels).save(tmp_path / "t2w-mask.png")
    (tmp_path / "manifest.csv").write_text(
        "path,origin,sequence,lesion,patient_id,mask\nt2w.png,real,T2W,,P1,t2w-mask.png\n"
    )
    import_manifest(engine, tmp_path / "manifest.csv")
    selection = TrainingSelection(frozenset(), frozenset(), PoolFilter())
    job_id = submit_training(
        engine, "masked", selection, TrainSettings(model="tiny", steps=1, mask_channel=True)
    )
    with transaction(engine) as session:
        params = session.get(Job, job_id).params
    assert params["request"]["mask_channel"] is True
    (item,) = load_manifest(Path(params["request"]["manifest"]))
    assert np.array_equal(item.mask, labels)
