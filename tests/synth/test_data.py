"""Training batches: lesion-balanced sampling (`synth train --lesion-share`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_sample import tiny_config, toy_training_set

from study.imaging.types import Lesion, Sequence
from synth.data import BatchSampler, TrainingSet
from synth.errors import SynthError
from synth.text import Vocabulary
from synth.train import train


def training_set(lesion_slices: int, total: int = 80) -> TrainingSet:
    images = np.random.default_rng(0).uniform(0, 1, (total, 8, 8))
    lesions = [Lesion.YES] * lesion_slices + [Lesion.NO] * (total - lesion_slices)
    return TrainingSet.from_arrays(
        images, [Sequence.T2W] * total, lesions, [""] * total, list(range(total)), "0" * 64
    )


def sampler(data: TrainingSet, lesion_share: float | None) -> BatchSampler:
    return BatchSampler(
        data,
        Vocabulary.from_templates(),
        24,
        "cpu",
        prompt_dropout=0.0,
        condition_dropout=0.0,
        unknown_word_rate=0.0,
        lesion_share=lesion_share,
    )


def lesion_share(batches: BatchSampler, data: TrainingSet) -> float:
    """The share of lesion slices among 4,000 drawn images, told apart by their pixels."""
    generator = torch.Generator().manual_seed(1)
    drawn = batches.sample(4000, generator).images[:, 0]
    pixels = data.images * 2 - 1
    unflipped = torch.cdist(drawn.flatten(1), pixels.flatten(1)).argmin(1)
    flipped = torch.cdist(drawn.flip(-1).flatten(1), pixels.flatten(1)).argmin(1)
    rows = torch.where((drawn - pixels[unflipped]).abs().amax((1, 2)) < 1e-6, unflipped, flipped)
    return float((rows < 10).float().mean())


def test_lesion_slices_are_drawn_at_the_asked_share():
    data = training_set(lesion_slices=10)  # 12.5% of the slices show a lesion
    assert lesion_share(sampler(data, None), data) == pytest.approx(0.125, abs=0.02)
    assert lesion_share(sampler(data, 0.5), data) == pytest.approx(0.5, abs=0.03)


@pytest.mark.parametrize(
    ("lesion_slices", "fraction", "message"),
    [
        (10, 1.0, r"--lesion-share must be in \(0, 1\), not 1.0"),
        (10, 0.0, r"--lesion-share must be in \(0, 1\), not 0.0"),
        (0, 0.5, "slices with and without a lesion in the training data; it has 0 with and 80"),
        (80, 0.5, "it has 80 with and 0 without"),
    ],
)
def test_a_share_that_cannot_be_drawn_is_refused(lesion_slices, fraction, message):
    with pytest.raises(SynthError, match=message):
        sampler(training_set(lesion_slices), fraction)


def test_training_records_the_lesion_share_in_the_checkpoint(tmp_path: Path):
    out = train(tiny_config(tmp_path / "ckpt", steps=2, lesion_share=0.5), toy_training_set())
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["lesion_share"] == 0.5
