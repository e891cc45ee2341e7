"""The two sizes of a reproduction: `full`, the seed study's evaluation at the generator's
default size, and `quick`, the same stages small enough to run on a 2-core CPU in minutes (for
tests and for seeing the pipeline work; its numbers are not results)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from synth.contract import TrainSettings

SizeName = Literal["quick", "full"]
# The seed study's sets (Saeed et al.): 32 cases per block, each half synthetic and half with
# lesions, so 8 synthetic images of each sequence and lesion status per block.
STUDY_CASES = 32
SYNTHETIC_PER_CELL = 8
# Lesions are small and rare among slices: half of every training batch shows one, so that the
# generator learns to draw a lesion when asked (the README's advice).
LESION_SHARE = 0.5


@dataclass(frozen=True)
class RunSize:
    """Everything the size decides. `folds` is the augmentation experiment's, and so also the
    fewest patients with and without a lesion held out."""

    name: SizeName
    heldout_share: float
    folds: int
    train: TrainSettings
    sample_steps: int | None
    evaluate_size: int
    evaluate_lesion_size: int
    evaluate_epochs: int
    evaluate_folds: int
    augment_quick: bool


FULL = RunSize(
    name="full",
    heldout_share=0.2,
    folds=5,
    # The default preset (22.6 M parameters, 128 px) for the README's 20,000 steps of 128.
    train=TrainSettings(model="default", steps=20_000, lesion_share=LESION_SHARE),
    sample_steps=None,
    evaluate_size=64,
    evaluate_lesion_size=128,
    evaluate_epochs=8,
    evaluate_folds=5,
    augment_quick=False,
)

QUICK = RunSize(
    name="quick",
    heldout_share=0.2,
    folds=3,
    # The tiny preset at 32 px: a few minutes of CPU; it learns the grey levels, not anatomy.
    train=TrainSettings(
        model="tiny",
        size=32,
        steps=150,
        batch=16,
        warmup_steps=50,
        lesion_share=LESION_SHARE,
        save_every=50,
        log_every=10,
    ),
    sample_steps=8,
    evaluate_size=32,
    evaluate_lesion_size=64,
    evaluate_epochs=2,
    evaluate_folds=3,
    augment_quick=True,
)

SIZES: dict[SizeName, RunSize] = {"quick": QUICK, "full": FULL}
