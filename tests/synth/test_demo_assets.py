"""The demo-asset pipeline end to end with a tiny model: resumable, complete, importable."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from study.imaging import write_canonical_png
from study.imaging.manifest import load_manifest, read_manifest
from synth.checkpoint import checkpoint_sha256, load_checkpoint
from synth.contract import DemoAssetsRequest, Sampling, read_checkpoint_info
from synth.demo_assets import build_demo_assets, merge_manifests, trained_steps
from synth.sample import write_samples

# PyTorch on one thread (tests/synth/conftest.py): the pipeline trains, distils and samples in
# this process, several times slower on two threads when the other core is busy.
pytestmark = pytest.mark.usefixtures("one_thread")


def rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_merge_manifests_keeps_the_cells_and_makes_paths_relative_to_the_target(tmp_path: Path):
    sha = "ab" * 32
    parts = {}
    for name, condition in (("t2w", ""), ("dwi", sha)):
        (tmp_path / name / "images").mkdir(parents=True)
        write_canonical_png(np.zeros((8, 8)), tmp_path / name / "images" / "a.png")
        parts[name] = tmp_path / name / "manifest.csv"
        parts[name].write_text(
            "path,origin,sequence,lesion,patient_id,intensity,seed,condition_sha256\r\n"
            f"images/a.png,synthetic,{name.upper()},1,,canonical,3,{condition}\r\n"
        )

    merged = merge_manifests(parts, tmp_path / "manifest.csv")

    assert merged.read_text() == (
        "path,origin,sequence,lesion,patient_id,intensity,seed,condition_sha256\n"
        "t2w/images/a.png,synthetic,T2W,1,,canonical,3,\n"
        f"dwi/images/a.png,synthetic,DWI,1,,canonical,3,{sha}\n"
    )
    assert [r.path for r in read_manifest(merged)] == [
        tmp_path / "t2w" / "images" / "a.png",
        tmp_path / "dwi" / "images" / "a.png",
    ]


@pytest.mark.slow
def test_pipeline_resumes_training_and_writes_an_importable_demo(tmp_path: Path):
    plan = DemoAssetsRequest(
        out=tmp_path / "demo",
        work=tmp_path / "work",
        model="tiny",
        size=64,
        steps=2,
        batch=4,
        warmup=1,
        train_patients=2,
        demo_patients=2,
        per_group=1,
        distill_trajectories=8,
        distill_steps=2,
        progress="jsonl",
    )
    assert build_demo_assets(plan) is True
    assert trained_steps(tmp_path / "work" / "checkpoint") == 2
    first_student = checkpoint_sha256(tmp_path / "demo" / "student")
    # More steps asked of the same work folder: training goes on from step 2, not from 0.
    assert build_demo_assets(DemoAssetsRequest(**{**plan.__dict__, "steps": 4})) is True
    assert trained_steps(tmp_path / "work" / "checkpoint") == 4

    generator = load_checkpoint(tmp_path / "demo" / "checkpoint")
    assert generator.training["steps"] == 4
    # The student follows its teacher: distilled again from the generator trained further.
    student = load_checkpoint(tmp_path / "demo" / "student")
    assert student.training["distilled_from"] == generator.sha256
    info = read_checkpoint_info(tmp_path / "demo" / "student")
    assert info.recommended_sampling() == Sampling("ddim", 4, 1.0)
    assert student.sha256 != first_student
    assert {p.suffix for p in (tmp_path / "demo" / "checkpoint").iterdir()} >= {".safetensors"}
    assert not (tmp_path / "demo" / "real" / "volumes").exists()

    synthetic = rows(tmp_path / "demo" / "synthetic" / "manifest.csv")
    groups = [(r["sequence"], r["lesion"]) for r in synthetic]
    assert sorted(groups) == sorted(
        [("T2W", "1"), ("T2W", "0"), ("ADC", "1"), ("ADC", "0"), ("DWI", "1"), ("DWI", "0")]
    )
    assert {r["checkpoint_sha256"] for r in synthetic} == {generator.sha256}
    dwi = {r["pair_key"] for r in synthetic if r["sequence"] == "DWI"}
    t2w = {r["pair_key"] for r in synthetic if r["sequence"] == "T2W"}
    assert dwi and dwi <= t2w, "each synthetic DWI pairs with a synthetic T2W"
    for part in ("real", "synthetic"):
        assert load_manifest(tmp_path / "demo" / part / "manifest.csv")


BUNDLED = Path(__file__).resolve().parents[2] / "data" / "demo"


@pytest.mark.slow
def test_the_bundled_demo_checkpoint_samples_on_cpu_with_full_provenance(tmp_path: Path):
    generator = load_checkpoint(BUNDLED / "checkpoint", "cpu")
    manifest = write_samples(
        generator,
        "ADC image of a prostate without lesion",
        1,
        tmp_path / "out",
        seed=5,
        steps=2,
        device="cpu",
    )
    (row,) = rows(manifest)
    assert (row["origin"], row["intensity"], row["sequence"], row["lesion"]) == (
        "synthetic",
        "canonical",
        "ADC",
        "0",
    )
    assert row["checkpoint_sha256"] == generator.sha256 == checkpoint_sha256(BUNDLED / "checkpoint")
    assert (row["prompt"], row["seed"], row["sampler"], row["steps"]) == (
        "ADC image of a prostate without lesion",
        "5",
        "dpmpp",
        "2",
    )
    assert row["generator"] and row["guidance"]
    (image,) = load_manifest(manifest)
    assert image.canonical.shape == (generator.config.image_size,) * 2


@pytest.mark.slow
def test_the_bundled_demo_images_are_complete_and_importable():
    real = load_manifest(BUNDLED / "real" / "manifest.csv")
    synthetic = load_manifest(BUNDLED / "synthetic" / "manifest.csv")
    assert {s.row.origin for s in real} == {"real"}
    assert {s.row.origin for s in synthetic} == {"synthetic"}
    for images in (real, synthetic):
        cells = {(s.row.sequence.value, s.row.lesion.value) for s in images}
        assert {(q, les) for q in ("T2W", "ADC", "DWI") for les in ("0", "1")} <= cells
