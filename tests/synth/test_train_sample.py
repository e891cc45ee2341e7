"""Training and sampling end to end on a tiny model (32 px, two levels), on the CPU."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from study.imaging.manifest import load_manifest
from study.imaging.types import Intensity, Lesion, Origin, Sequence
from synth.checkpoint import Generator, checkpoint_sha256, load_checkpoint, load_training_state
from synth.contract import read_checkpoint_info
from synth.data import TrainingSet
from synth.errors import SynthError
from synth.phantom import write_phantom
from synth.sample import sample_images, write_samples
from synth.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
SIZE = 32
PROMPT = "A T2 image of a prostate with a lesion"
FAST = {"steps": 2, "batch_size": 4}


def toy_training_set(patients: int = 4, slices: int = 2) -> TrainingSet:
    """Disc-shaped 'glands' per patient and slice, T2W/ADC/DWI paired, half with a lesion."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    images, sequences, lesions, keys, indices = [], [], [], [], []
    brightness = {Sequence.T2W: (0.5, -0.3), Sequence.ADC: (0.6, -0.4), Sequence.DWI: (0.3, 0.5)}
    for patient in range(patients):
        has_lesion = patient % 2 == 0
        for index in range(slices):
            radius = 8 + patient + 2 * index
            gland = (xx - SIZE / 2) ** 2 + (yy - SIZE / 2) ** 2 < radius**2
            spot = (xx - SIZE / 2 - 3) ** 2 + (yy - SIZE / 2 + 2) ** 2 < 9
            for sequence, (level, contrast) in brightness.items():
                image = 0.1 + level * gland + (contrast * spot if has_lesion else 0)
                image = image + rng.normal(0, 0.02, (SIZE, SIZE))
                images.append(np.clip(image, 0, 1))
                sequences.append(sequence)
                lesions.append(Lesion.YES if has_lesion else Lesion.NO)
                keys.append(f"patient-{patient}")
                indices.append(index)
    return TrainingSet.from_arrays(np.stack(images), sequences, lesions, keys, indices, "0" * 64)


def tiny_config(out: Path, **changes) -> TrainConfig:
    options = {
        "out": out,
        "steps": 60,
        "batch": 4,
        "device": "cpu",
        "model": "tiny",
        "lr": 2e-3,
        "warmup_steps": 5,
        "log_every": 1,
        "save_every": 1000,
    }
    return TrainConfig(**{**options, **changes})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Generator:
    out = train(tiny_config(tmp_path_factory.mktemp("tiny")), toy_training_set())
    return load_checkpoint(out)


def test_training_set_pairs_dwi_and_adc_with_t2w() -> None:
    training_set = toy_training_set(patients=1, slices=2)
    assert training_set.sequences[:3] == (Sequence.T2W, Sequence.ADC, Sequence.DWI)
    assert training_set.condition_index.tolist() == [-1, 0, 0, -1, 3, 3]
    with pytest.raises(SynthError, match="canonical"):
        TrainingSet.from_arrays(
            np.full((1, 4, 4), 2.0), [Sequence.T2W], [Lesion.NO], [""], [0], "0" * 64
        )


def test_training_reduces_the_loss(trained: Generator) -> None:
    rows = list(csv.DictReader((trained.directory / "loss.csv").open()))
    losses = [float(row["loss"]) for row in rows]
    assert [int(row["step"]) for row in rows] == list(range(1, 61))
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    assert trained.training["steps"] == 60
    assert trained.training["training_manifest_sha256"] == "0" * 64


def test_the_checkpoint_holds_the_ema_of_the_weights(trained: Generator) -> None:
    """The saved weights are the EMA's (diffusers' EMAModel, one update per step), not the
    raw weights that training goes on from."""
    state = load_training_state(trained.directory)
    assert state["ema"]["optimization_step"] == trained.training["ema_updates"] == 60
    names = [name for name, _ in trained.network.named_parameters()]
    averaged = dict(zip(names, state["ema"]["shadow_params"], strict=True))
    saved = trained.network.state_dict()
    assert all(torch.equal(saved[name], averaged[name]) for name in names)
    assert not all(torch.equal(saved[name], state["network"][name]) for name in names)


def test_sampling_is_deterministic_and_depends_on_the_seed(trained: Generator) -> None:
    first = sample_images(trained, [PROMPT] * 2, [5, 6], **FAST)
    again = sample_images(trained, [PROMPT] * 2, [5, 6], **FAST)
    assert first.shape == (2, SIZE, SIZE) and first.dtype == np.float32
    assert first.min() >= 0 and first.max() <= 1
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[0], first[1])


def test_each_image_depends_on_its_own_seed_only(trained: Generator) -> None:
    batch = sample_images(trained, [PROMPT, "ADC, no lesion", PROMPT], [10, 11, 12], **FAST)
    alone = sample_images(trained, [PROMPT], [12], **FAST)
    np.testing.assert_array_equal(batch[2], alone[0])
    other_batch = sample_images(trained, [PROMPT] * 3, [12, 13, 14], steps=2, batch_size=1)
    np.testing.assert_array_equal(other_batch[0], alone[0])


def test_a_prompt_never_seen_in_training_still_works(trained: Generator) -> None:
    unseen = "Please synthesise a diffusion weighted slice showing a tumour"
    ids = trained.vocabulary.encode(unseen, trained.config.max_tokens)
    assert 1 in ids and ids.count(1) < len(unseen.split())
    images = sample_images(trained, [unseen], [3], **FAST)
    assert images.shape == (1, SIZE, SIZE) and np.isfinite(images).all()
    assert not np.array_equal(images, sample_images(trained, [PROMPT], [3], **FAST))


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp"])
def test_both_samplers_with_and_without_guidance(trained: Generator, sampler: str) -> None:
    plain = sample_images(trained, [PROMPT], [1], sampler=sampler, steps=3, guidance=1.0)
    guided = sample_images(trained, [PROMPT], [1], sampler=sampler, steps=3, guidance=3.0)
    for images in (plain, guided):
        assert images.shape == (1, SIZE, SIZE) and images.dtype == np.float32
        assert images.min() >= 0 and images.max() <= 1
    assert not np.array_equal(plain, guided)


def test_image_conditioning_uses_the_condition(trained: Generator) -> None:
    training_set = toy_training_set()
    first, second = training_set.images[0].numpy(), training_set.images[9].numpy()
    prompts = ["DWI of a prostate with a lesion"] * 2
    images = sample_images(trained, prompts, [4, 4], condition=np.stack([first, second]), **FAST)
    assert not np.array_equal(images[0], images[1])
    broadcast = sample_images(trained, prompts[:1], [4], condition=first, **FAST)
    np.testing.assert_array_equal(broadcast[0], images[0])
    with pytest.raises(SynthError, match="fit_square"):
        sample_images(trained, prompts[:1], [4], condition=np.zeros((8, 8)), **FAST)


def test_sampling_rejects_bad_requests(trained: Generator) -> None:
    with pytest.raises(SynthError, match="one seed per prompt"):
        sample_images(trained, [PROMPT], [1, 2])
    with pytest.raises(SynthError, match="unknown sampler"):
        sample_images(trained, [PROMPT], [1], sampler="euler")  # type: ignore[arg-type]
    with pytest.raises(SynthError, match="steps"):
        sample_images(trained, [PROMPT], [1], steps=0)


def test_resume_continues_exactly_where_training_stopped(tmp_path) -> None:
    training_set = toy_training_set(patients=2, slices=1)
    straight = train(tiny_config(tmp_path / "straight", steps=8), training_set)
    chunked = tmp_path / "chunked"
    train(tiny_config(chunked, steps=4), training_set)
    assert load_training_state(chunked)["step"] == 4
    with pytest.raises(SynthError, match="already holds a checkpoint"):
        train(tiny_config(chunked, steps=8), training_set)
    with pytest.raises(SynthError, match="--model small differs"):
        train(tiny_config(chunked, steps=8, resume=True, model="small"), training_set)
    train(tiny_config(chunked, steps=8, resume=True, model=None), training_set)
    assert load_training_state(chunked)["step"] == 8
    assert checkpoint_sha256(chunked) == checkpoint_sha256(straight)
    steps = [row["step"] for row in csv.DictReader((chunked / "loss.csv").open())]
    assert steps == [str(step) for step in range(1, 9)]


def test_time_limit_stops_at_a_logged_step_and_saves(tmp_path) -> None:
    training_set = toy_training_set(patients=1, slices=1)
    out = train(tiny_config(tmp_path, steps=50, log_every=2, max_minutes=1e-6), training_set)
    assert load_training_state(out)["step"] == 2
    assert load_checkpoint(out).training["steps"] == 2


def test_half_precision_checkpoint_samples_like_the_full_one(tmp_path) -> None:
    training_set = toy_training_set(patients=2, slices=1)
    full = load_checkpoint(train(tiny_config(tmp_path / "full", steps=3), training_set))
    half = load_checkpoint(train(tiny_config(tmp_path / "half", steps=3, half=True), training_set))
    assert half.sha256 != full.sha256
    a = sample_images(full, [PROMPT], [0], **FAST)
    b = sample_images(half, [PROMPT], [0], **FAST)
    np.testing.assert_allclose(a, b, atol=0.02)
    assert sum(p.stat().st_size for p in (tmp_path / "half").glob("*.safetensors")) < sum(
        p.stat().st_size for p in (tmp_path / "full").glob("*.safetensors")
    )


def test_a_checkpoint_records_the_patients_of_its_training_manifest(
    trained: Generator, tmp_path
) -> None:
    manifest = write_phantom(tmp_path / "phantom", patients=2, seed=5, size=64, slices=3)
    out = train(tiny_config(tmp_path / "checkpoint", steps=1, size=32, manifest=manifest))
    patients = read_checkpoint_info(out).training_patients
    assert patients is not None and len(patients) == 2
    assert "PH5-0001" in patients and "PH5-0002" in patients and "PH5-0003" not in patients
    recorded = json.loads((out / "config.json").read_text())["training"]["patients"]
    assert not any("PH5" in digest for digest in recorded["sha256"])
    # Trained on images passed in Python, a checkpoint knows no patients and records none.
    assert "patients" not in trained.training
    assert read_checkpoint_info(trained.directory).training_patients is None


def test_write_samples_records_full_provenance(trained: Generator, tmp_path) -> None:
    manifest = write_samples(
        trained, "ADC image of a prostate with no lesion", 3, tmp_path, seed=7, steps=2
    )
    rows = list(csv.DictReader(manifest.open()))
    # The columns the images fill: no condition, no slice of it.
    assert list(rows[0]) == [
        *("path", "origin", "sequence", "lesion", "patient_id", "pair_key", "intensity"),
        *("generator", "prompt", "seed", "checkpoint_sha256", "sampler", "steps", "guidance"),
    ]
    assert [row["seed"] for row in rows] == ["7", "8", "9"]
    for row in rows:
        assert row["origin"] == "synthetic" and row["intensity"] == "canonical"
        assert (row["sequence"], row["lesion"]) == ("ADC", "0")
        assert row["patient_id"] == "" and row["pair_key"] == f"syn-{row['seed']}"
        assert row["checkpoint_sha256"] == trained.sha256
        assert (row["sampler"], row["steps"], row["guidance"]) == ("dpmpp", "2", "3.0")
        assert row["generator"] == "vtt-synth-diffusion/tiny"
    imported = load_manifest(manifest)
    direct = sample_images(trained, ["ADC image of a prostate with no lesion"], [8], steps=2)
    assert imported[1].row.origin == Origin.SYNTHETIC
    assert imported[1].row.intensity == Intensity.CANONICAL
    np.testing.assert_allclose(imported[1].canonical, direct[0], atol=1 / 65535)
    with pytest.raises(SynthError, match="already exists"):
        write_samples(trained, PROMPT, 1, tmp_path, steps=2)


def test_write_samples_needs_the_labels(trained: Generator, tmp_path) -> None:
    with pytest.raises(SynthError, match="cannot tell the sequence"):
        write_samples(trained, "a prostate with a lesion", 1, tmp_path / "a", steps=2)
    with pytest.raises(SynthError, match="whether there is a lesion"):
        write_samples(trained, "a T2 prostate", 1, tmp_path / "b", steps=2)
    manifest = write_samples(
        trained,
        "a prostate",
        1,
        tmp_path / "c",
        steps=2,
        sequence=Sequence.DWI,
        lesion=Lesion.UNKNOWN,
    )
    row = next(csv.DictReader(manifest.open()))
    assert (row["sequence"], row["lesion"]) == ("DWI", "")


def _write_real_manifest(path: Path, data: Path, sequences: tuple[str, ...]) -> Path:
    patient = data / "prostatex" / "ProstateX-0000"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "origin", "sequence", "lesion", "patient_id", "pair_key"])
        for folder, sequence in (("t2w", "T2W"), ("adc", "ADC"), ("hbv", "DWI")):
            if sequence in sequences:
                row = [patient / folder, "real", sequence, "0", "ProstateX-0000", "px0"]
                writer.writerow(row)
    return path


def _synth(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synth", *arguments],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_command_line_trains_on_real_dicom_and_samples_conditioned(
    shared_data: Path, tmp_path
) -> None:
    training = _write_real_manifest(tmp_path / "train.csv", shared_data, ("T2W", "ADC", "DWI"))
    condition = _write_real_manifest(tmp_path / "t2w.csv", shared_data, ("T2W",))
    checkpoint = tmp_path / "checkpoint"
    done = _synth(
        "train",
        *("--manifest", str(training), "--out", str(checkpoint), "--model", "tiny"),
        *("--steps", "3", "--batch", "4", "--device", "cpu", "--progress", "jsonl"),
    )
    assert done.returncode == 0, done.stderr
    assert (
        done.stdout.strip().splitlines()[-1] == f"saved checkpoint at step 3 of 3 to {checkpoint}"
    )
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "done" and events[-1]["done"] == 3
    assert [event["done"] for event in events if event["event"] == "progress"] == [3]
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["training"]["images"] == 30 and config["training"]["steps"] == 3
    assert "ProstateX-0000" in read_checkpoint_info(checkpoint).training_patients

    out = tmp_path / "samples"
    done = _synth(
        "sample",
        *("--checkpoint", str(checkpoint), "--prompt", "high-b DWI of a prostate"),
        *("--n", "1", "--steps", "2", "--out", str(out), "--condition-manifest", str(condition)),
        *("--progress", "jsonl", "--seed", "100"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"wrote 10 images to {out}"
    rows = list(csv.DictReader((out / "manifest.csv").open()))
    t2w_slices = load_manifest(condition)
    assert [row["condition_sha256"] for row in rows] == [s.source_sha256 for s in t2w_slices]
    assert [row["slice_index"] for row in rows] == [str(s.slice_index) for s in t2w_slices]
    for row in rows:
        assert (row["sequence"], row["lesion"]) == ("DWI", "0")
        assert (row["patient_id"], row["pair_key"]) == ("ProstateX-0000", "px0")
        assert row["checkpoint_sha256"] == checkpoint_sha256(checkpoint)
    assert len(load_manifest(out / "manifest.csv")) == 10

    refused = _synth(
        "sample",
        *("--checkpoint", str(checkpoint), "--prompt", "a prostate", "--out", str(tmp_path / "x")),
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: cannot tell the sequence")
