"""Lesion masks of generated images: what `synth sample --lesion-mask FILE|auto` conditions on,
checked against the prompt, and written beside each image as its ground truth.

A mask is a 2D label image at the model's size (0 background, any label > 0 lesion), read as
the importer reads the mask of a 2D picture (`study.imaging.mask.read_mask_2d`). It must agree
with the prompt as the importer will judge it (`study.imaging.lesions`, default rule): a lesion
prompt needs at least `DEFAULT_MIN_LESION_VOXELS` lesion pixels, a no-lesion prompt none.

`auto` draws the lesion with the phantom's lesion model (`synth.phantom.make_patient`): a
phantom patient with a lesion, seeded from the image's seed, gives the largest cross-section of
its lesion, inside its gland, fitted to the model's size like the training images. The phantom
lays out its field of view as the training images show it, so the lesion lies where the
generator learned the gland to be. Phantom lesions too small for the importer at the model's
size are passed over (at 64 px about half of them; below about 48 px nearly all, and `auto` is
refused there).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from study.imaging.errors import ImagingError
from study.imaging.lesions import DEFAULT_MIN_LESION_VOXELS
from study.imaging.load import MAX_IMAGE_PIXELS
from study.imaging.mask import read_mask_2d
from study.imaging.types import Lesion
from synth.contract import AUTO_LESION_MASK
from synth.data import fit_mask
from synth.errors import SynthError

MASKS_DIR = "masks"
# Phantom patients tried for one `auto` mask before giving up.
AUTO_TRIES = 64
# The phantom is drawn at this size at least (its smallest is 64 px), then fitted.
AUTO_PHANTOM_SIZE = 128


def lesion_pixels(labels: np.ndarray) -> int:
    return int(np.count_nonzero(labels))


def check_mask_agrees(source: Path | str, labels: np.ndarray, lesion: Lesion) -> None:
    """SynthError naming `source` when the mask contradicts the lesion status asked for."""
    pixels = lesion_pixels(labels)
    if lesion == Lesion.YES and pixels == 0:
        raise SynthError(
            f"{source}: the lesion mask is empty, but the prompt asks for a lesion: give the "
            "lesion's mask, or ask for an image without lesion"
        )
    if lesion == Lesion.YES and pixels < DEFAULT_MIN_LESION_VOXELS:
        raise SynthError(
            f"{source}: the lesion mask has {pixels} lesion pixels, fewer than the "
            f"{DEFAULT_MIN_LESION_VOXELS} that make a lesion when the images are imported: "
            "give a larger lesion"
        )
    if lesion == Lesion.NO and pixels:
        raise SynthError(
            f"{source}: the lesion mask marks {pixels} lesion pixels, but the prompt asks for "
            "no lesion: give an empty mask, or ask for an image with a lesion"
        )


def mask_lesion(labels: np.ndarray) -> Lesion:
    """The lesion status the importer gives an image with this mask (its default rule: fewer
    than `DEFAULT_MIN_LESION_VOXELS` lesion pixels is a slice without lesion)."""
    return Lesion.YES if lesion_pixels(labels) >= DEFAULT_MIN_LESION_VOXELS else Lesion.NO


def check_truth_agrees(source: str, labels: np.ndarray, lesion: Lesion) -> None:
    """SynthError naming `source` when the mask of a conditioning slice would give the image
    another lesion status on import than `lesion` (`mask_lesion`)."""
    positive = mask_lesion(labels) == Lesion.YES
    if lesion != Lesion.UNKNOWN and positive != (lesion == Lesion.YES):
        raise SynthError(
            f"{source}: its lesion mask has {lesion_pixels(labels)} lesion pixels at the "
            f"model's size, so the image would import {'with' if positive else 'without'} a "
            f"lesion, but {'no lesion' if positive else 'a lesion'} is asked for: leave the "
            "lesion out of the prompt (and --lesion) to take each slice's own"
        )


def read_lesion_mask(path: Path, size: int, lesion: Lesion) -> np.ndarray:
    """The labels of the mask file at `path` ([size, size], unsigned), checked."""
    try:
        labels = read_mask_2d(path, max_pixels=MAX_IMAGE_PIXELS)
    except ImagingError as error:
        raise SynthError(str(error)) from error
    if labels.shape != (size, size):
        raise SynthError(
            f"{path}: the lesion mask is {labels.shape[1]} x {labels.shape[0]} pixels, but the "
            f"checkpoint makes {size} x {size} images: give a mask of that size"
        )
    check_mask_agrees(path, labels, lesion)
    return labels


def _phantom_seed(seed: int, attempt: int) -> int:
    digest = hashlib.sha256(f"lesion-mask/{seed}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def auto_lesion_mask(seed: int, size: int, lesion: Lesion) -> np.ndarray:
    """A [size, size] uint8 mask (1: lesion) for an image of `seed` with `lesion`: a phantom
    lesion for YES, empty for NO; the same seed always gives the same mask."""
    if lesion == Lesion.NO:
        return np.zeros((size, size), np.uint8)
    if lesion != Lesion.YES:
        raise SynthError(
            f"--lesion-mask {AUTO_LESION_MASK} needs to know whether there is a lesion: say so "
            "in the prompt or pass --lesion 1|0"
        )
    # Imported here: the phantom is only needed for `auto`.
    from synth.phantom import make_patient

    for attempt in range(AUTO_TRIES):
        patient = make_patient(
            _phantom_seed(seed, attempt), size=max(size, AUTO_PHANTOM_SIZE), lesion=True
        )
        largest = int(patient.lesion.sum(axis=(1, 2)).argmax())
        mask = fit_mask(patient.lesion[largest], size)
        if lesion_pixels(mask) >= DEFAULT_MIN_LESION_VOXELS:
            return mask.astype(np.uint8)
    raise SynthError(
        f"--lesion-mask {AUTO_LESION_MASK}: the phantom's lesions hold fewer than "
        f"{DEFAULT_MIN_LESION_VOXELS} pixels at {size} px (tried {AUTO_TRIES}); use a model of "
        "a larger size, or give a mask file"
    )
