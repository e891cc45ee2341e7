"""The lesion-mask condition: trained with mask dropout, sampled with a mask file or `auto`, the
mask written beside each image as its ground truth; old checkpoints untouched (tiny model, CPU)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from study.imaging.lesions import DEFAULT_MIN_LESION_VOXELS
from study.imaging.manifest import load_manifest, read_manifest, write_manifest
from study.imaging.types import Lesion, Sequence
from synth.checkpoint import Generator, load_checkpoint
from synth.contract import TrainRequest, read_checkpoint_info
from synth.data import BatchSampler, TrainingSet
from synth.errors import SynthError
from synth.lesion_masks import auto_lesion_mask, read_lesion_mask
from synth.model import IN_CHANNELS, MASK_CHANNELS
from synth.sample import sample_images, write_samples
from synth.text import Vocabulary
from synth.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[2]
DEMO_STUDENT = ROOT / "data" / "demo" / "student"
SIZE = 32
# The smallest size at which the phantom's lesions reach the importer's 10 pixels.
AUTO_SIZE = 64
LESION = "A T2 image of a prostate with a lesion"
HEALTHY = "A T2 image of a prostate without lesion"
FAST = {"steps": 2}


def spot(centre: tuple[int, int] = (18, 14), radius: int = 3) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2).astype(np.uint8)


def masked_training_set(patients: int = 4) -> TrainingSet:
    """A bright disc per slice, a dark spot where the mask says for lesion slices; the odd
    patients' slices have no mask (unknown)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    gland = (xx - SIZE / 2) ** 2 + (yy - SIZE / 2) ** 2 < 9**2
    images, sequences, lesions, keys, indices, masks = [], [], [], [], [], []
    for patient in range(patients):
        for index, has_lesion in enumerate((True, False)):
            lesion = spot((14 + 2 * patient, 13 + index)) if has_lesion else spot(radius=0)
            image = 0.1 + 0.5 * gland - 0.3 * lesion + rng.normal(0, 0.02, (SIZE, SIZE))
            images.append(np.clip(image, 0, 1))
            sequences.append(Sequence.T2W)
            lesions.append(Lesion.YES if has_lesion else Lesion.NO)
            keys.append(f"patient-{patient}")
            indices.append(index)
            masks.append(lesion if patient % 2 == 0 else None)
    return TrainingSet.from_arrays(
        np.stack(images), sequences, lesions, keys, indices, "0" * 64, masks
    )


def mask_config(out: Path, **changes) -> TrainRequest:
    options = {
        "out": out,
        "steps": 40,
        "batch": 4,
        "device": "cpu",
        "model": "tiny",
        "size": SIZE,
        "lr": 2e-3,
        "warmup_steps": 5,
        "log_every": 1,
        "save_every": 1000,
        "mask_channel": True,
    }
    return TrainRequest(**{**options, **changes})


@pytest.fixture(scope="module")
def masked(tmp_path_factory) -> Generator:
    out = train(mask_config(tmp_path_factory.mktemp("masked")), masked_training_set())
    return load_checkpoint(out)


def mask_file(folder: Path, labels: np.ndarray, name: str = "mask.png") -> Path:
    Image.fromarray(labels).save(folder / name)
    return folder / name


def written(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_the_training_set_keeps_known_masks_and_marks_the_others_unknown() -> None:
    training_set = masked_training_set()
    assert training_set.mask_known.tolist() == [True, True, False, False] * 2
    assert training_set.lesion_masks[0].sum() == spot((14, 13)).sum()
    assert not training_set.lesion_masks[1].any() and not training_set.lesion_masks[2].any()
    sampler = BatchSampler(
        training_set,
        Vocabulary.from_templates(),
        24,
        "cpu",
        prompt_dropout=0.0,
        condition_dropout=0.0,
        unknown_word_rate=0.0,
        mask_dropout=0.5,
    )
    batch = sampler.sample(400, torch.Generator().manual_seed(0))
    known = batch.lesion_mask_known.bool()
    # Half the slices have masks, and half of those are dropped: about a quarter stay known.
    assert 0.15 < known.float().mean() < 0.35
    assert not batch.lesion_mask[~known].any()
    assert batch.lesion_mask[known].sum() > 0


def test_training_with_the_mask_channel_reduces_the_loss_and_records_it(masked) -> None:
    lines = (masked.directory / "loss.csv").read_text().splitlines()[1:]
    losses = [float(line.split(",")[1]) for line in lines]
    assert np.mean(losses[-10:]) < np.mean(losses[:10])
    config = json.loads((masked.directory / "config.json").read_text())
    assert config["model"]["mask_channel"] is True
    assert config["training"]["mask_dropout"] == 0.3
    assert config["training"]["masked_images"] == 4
    assert read_checkpoint_info(masked.directory).mask_channel
    assert masked.network.unet.conv_in.in_channels == IN_CHANNELS + MASK_CHANNELS


def test_the_mask_channel_needs_masks_and_a_resumed_run_keeps_its_channels(tmp_path) -> None:
    unmasked = masked_training_set()
    unmasked = TrainingSet.from_arrays(
        unmasked.images.numpy(),
        unmasked.sequences,
        unmasked.lesions,
        ["p"] * len(unmasked),
        list(range(len(unmasked))),
        "0" * 64,
    )
    with pytest.raises(SynthError, match="none of the training slices has a lesion mask"):
        train(mask_config(tmp_path / "none"), unmasked)
    train(mask_config(tmp_path / "plain", steps=1, mask_channel=False), unmasked)
    with pytest.raises(SynthError, match="has no lesion-mask channel"):
        train(mask_config(tmp_path / "plain", steps=2, resume=True), unmasked)


def test_sampling_with_and_without_a_mask(masked) -> None:
    lesion = spot()
    with_mask, unknown = sample_images(
        masked, [LESION] * 2, [3, 3], lesion_masks=[lesion, None], **FAST
    )
    alone = sample_images(masked, [LESION], [3], **FAST)
    assert with_mask.shape == (SIZE, SIZE) and np.isfinite(with_mask).all()
    # Left out, every mask is unknown; given, it changes the image.
    assert np.array_equal(unknown, alone[0])
    assert not np.array_equal(with_mask, unknown)


def test_a_mask_file_is_written_recorded_and_imported_as_the_images_truth(masked, tmp_path) -> None:
    labels = spot() * 2  # any lesion label counts
    manifest = write_samples(
        masked,
        LESION,
        2,
        tmp_path / "out",
        lesion_mask=str(mask_file(tmp_path, labels)),
        **FAST,
    )
    rows = read_manifest(manifest)
    assert [row.mask for row in rows] == [
        tmp_path / "out" / "masks" / "t2w-0.png",
        tmp_path / "out" / "masks" / "t2w-1.png",
    ]
    slices = load_manifest(manifest)
    assert [item.lesion for item in slices] == [Lesion.YES, Lesion.YES]
    for item in slices:
        assert np.array_equal(item.mask, labels)
        assert sum(outline.voxels for outline in item.lesions) == labels.astype(bool).sum()


def test_auto_draws_a_phantom_lesion_in_the_gland_for_lesion_prompts_and_none_otherwise(
    masked, tmp_path
) -> None:
    first, second = (auto_lesion_mask(seed, AUTO_SIZE, Lesion.YES) for seed in (0, 1))
    assert first.shape == (AUTO_SIZE, AUTO_SIZE) and first.dtype == np.uint8
    assert all(mask.sum() >= DEFAULT_MIN_LESION_VOXELS for mask in (first, second))
    assert not np.array_equal(first, second)
    assert np.array_equal(first, auto_lesion_mask(0, AUTO_SIZE, Lesion.YES))
    # The phantom's lesion lies in its gland, about the middle of the field of view.
    rows, columns = np.nonzero(first)
    assert AUTO_SIZE / 4 < rows.mean() < 3 * AUTO_SIZE / 4
    assert AUTO_SIZE / 4 < columns.mean() < 3 * AUTO_SIZE / 4
    healthy = write_samples(masked, HEALTHY, 1, tmp_path / "healthy", lesion_mask="auto", **FAST)
    (item,) = load_manifest(healthy)
    assert item.lesion == Lesion.NO and not item.mask.any()
    # At 32 px the phantom's lesions are too small to import as lesions.
    with pytest.raises(SynthError, match="fewer than 10 pixels at 32 px"):
        write_samples(masked, LESION, 1, tmp_path / "lesion", lesion_mask="auto", **FAST)
    assert not (tmp_path / "lesion").exists()


@pytest.mark.parametrize(
    ("labels", "prompt", "problem"),
    [
        (
            np.zeros((16, 16), np.uint8),
            LESION,
            f"the lesion mask is 16 x 16 pixels, but the checkpoint makes {SIZE} x {SIZE} images",
        ),
        (
            np.zeros((SIZE, SIZE), np.uint8),
            LESION,
            "the lesion mask is empty, but the prompt asks for a lesion",
        ),
        (
            spot(),
            HEALTHY,
            f"the lesion mask marks {spot().sum()} lesion pixels, but the prompt "
            "asks for no lesion",
        ),
    ],
)
def test_a_mask_file_that_does_not_fit_is_refused_naming_it(
    masked, tmp_path, labels, prompt, problem
) -> None:
    path = mask_file(tmp_path, labels)
    with pytest.raises(SynthError, match="^" + re.escape(f"{path}: {problem}")):
        write_samples(masked, prompt, 1, tmp_path / "out", lesion_mask=str(path), **FAST)
    assert not (tmp_path / "out").exists()


def test_paired_images_take_their_t2w_slices_masks(masked, tmp_path) -> None:
    t2w = np.clip(masked_training_set().images[0].numpy(), 0, 1)
    Image.fromarray((t2w * 65535).astype(np.uint16)).save(tmp_path / "t2w.png")
    mask_file(tmp_path, spot(), "t2w-mask.png")
    condition = write_manifest(
        tmp_path / "condition.csv",
        [
            {
                "path": "t2w.png",
                "origin": "real",
                "sequence": "T2W",
                "lesion": "",
                "patient_id": "P1",
                "intensity": "canonical",
                "mask": "t2w-mask.png",
            }
        ],
    )
    manifest = write_samples(
        masked,
        "An ADC image of a prostate",
        1,
        tmp_path / "out",
        condition_manifest=condition,
        **FAST,
    )
    (item,) = load_manifest(manifest)
    assert item.lesion == Lesion.YES and np.array_equal(item.mask, spot())
    with pytest.raises(SynthError, match=re.escape(f"{condition}: T2W slice 0 of 'P1': its")):
        write_samples(
            masked,
            "An ADC image of a prostate without lesion",
            1,
            tmp_path / "healthy",
            condition_manifest=condition,
        )
    assert not (tmp_path / "healthy").exists()
    with pytest.raises(SynthError, match="with --condition-manifest each image takes the mask"):
        write_samples(
            masked,
            "An ADC image of a prostate",
            1,
            tmp_path / "again",
            condition_manifest=condition,
            lesion_mask="auto",
        )


def test_old_checkpoints_have_three_input_channels_and_refuse_a_mask(tmp_path) -> None:
    student = load_checkpoint(DEMO_STUDENT)
    assert not student.config.mask_channel and not read_checkpoint_info(DEMO_STUDENT).mask_channel
    assert student.network.unet.conv_in.in_channels == IN_CHANNELS
    # Its input is exactly what it was trained on: image, condition, condition-present.
    noisy = torch.randn(1, 1, 128, 128, generator=torch.Generator().manual_seed(0))
    text = student.network.encode_prompt(
        student.vocabulary.encode_batch(["ADC image of a prostate"], student.config.max_tokens)
    )
    condition, present = torch.full_like(noisy, 0.2), torch.ones(1)
    with torch.inference_mode():
        output = student.network.denoise(noisy, torch.tensor([500]), text, condition, present)
        direct = student.network.unet(
            torch.cat([noisy, condition, torch.ones_like(noisy)], dim=1),
            torch.tensor([500]),
            class_labels=text,
        ).sample
    assert torch.equal(output, direct)
    with pytest.raises(SynthError, match=re.escape(f"{DEMO_STUDENT}: this checkpoint has no")):
        write_samples(student, LESION, 1, tmp_path / "out", lesion_mask="auto")
    assert not (tmp_path / "out").exists()
    manifest = write_samples(student, LESION, 1, tmp_path / "plain", sampler="ddim", steps=2)
    assert [row.mask for row in read_manifest(manifest)] == [None]


@pytest.mark.slow
def test_the_command_line_samples_with_a_mask_and_refuses_it_for_an_old_checkpoint(
    masked, tmp_path
) -> None:
    path = mask_file(tmp_path, spot())
    common = [sys.executable, "-m", "synth", "sample", "--prompt", LESION, "--steps", "2"]
    mask_options = ["--lesion-mask", str(path), "--device", "cpu"]
    done = subprocess.run(
        [
            *common,
            "--checkpoint",
            str(masked.directory),
            "--out",
            str(tmp_path / "out"),
            *mask_options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert written(tmp_path / "out") == ["images/t2w-0.png", "manifest.csv", "masks/t2w-0.png"]
    refused = subprocess.run(
        [*common, "--checkpoint", str(DEMO_STUDENT), "--out", str(tmp_path / "old"), *mask_options],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert f"{DEMO_STUDENT}: this checkpoint has no lesion-mask channel" in refused.stderr
    assert not (tmp_path / "old").exists()


def test_a_nifti_mask_of_one_slice_is_read_as_the_app_shows_it(tmp_path) -> None:
    labels = spot()
    # NIfTI's first axis is the column, its second the row (as the phantom writes them).
    image = nib.Nifti1Image(labels.T[:, :, None], np.diag([-1.0, -1.0, 1.0, 1.0]))
    nib.save(image, tmp_path / "mask.nii.gz")
    read = read_lesion_mask(tmp_path / "mask.nii.gz", SIZE, Lesion.YES)
    assert read.shape == (SIZE, SIZE) and np.array_equal(read, labels)
    with pytest.raises(SynthError, match="--mask-dropout must be in"):
        TrainRequest(out=tmp_path, mask_dropout=1.0)
