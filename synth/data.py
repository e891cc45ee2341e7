"""The training set, held in memory (on the GPU when training there), and its batch sampler.

Slices are rendered with `study.imaging.render.fit_square`, exactly as readers see them. An ADC
or DWI slice is paired with the T2W slice of the same `pair_key` and slice index; that T2W
slice becomes its condition image. No DataLoader: every batch is a few indexing operations on
tensors already on the device, drawn with the caller's `torch.Generator`.

Lesion masks (for models with the mask channel) come from the manifest's `mask` column: each
slice's labels on its canonical pixels, fitted like the image and thresholded (1 where a lesion
label lies). A slice without a mask trains with an all-zero mask marked unknown, as a mask
withheld by mask dropout, never as "no lesion": only a mask says where a lesion is not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from study.imaging.manifest import load_manifest
from study.imaging.render import fit_square
from study.imaging.types import Lesion, Sequence
from synth.errors import SynthError
from synth.text import CLS, UNK, Vocabulary, prompt_templates

CONDITIONED_SEQUENCES = (Sequence.ADC, Sequence.DWI)


@dataclass(frozen=True)
class TrainingSet:
    images: torch.Tensor  # [N, S, S] float32 in [0, 1]
    sequences: tuple[Sequence, ...]
    lesions: tuple[Lesion, ...]
    condition_index: torch.Tensor  # [N] int64: row of the paired T2W slice, -1 where none
    source_sha256: str
    lesion_masks: torch.Tensor  # [N, S, S] bool: inside a lesion (all False where unknown)
    mask_known: torch.Tensor  # [N] bool: whether the slice has a mask

    @property
    def has_masks(self) -> bool:
        return bool(self.mask_known.any())

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        sequences: SequenceOf[Sequence],
        lesions: SequenceOf[Lesion],
        pair_keys: SequenceOf[str],
        slice_indices: SequenceOf[int],
        source_sha256: str,
        lesion_masks: SequenceOf[np.ndarray | None] | None = None,
    ) -> TrainingSet:
        """From square canonical slices [N, S, S] in [0, 1] and their labels; `lesion_masks`
        holds each slice's [S, S] lesion mask (nonzero inside a lesion), or None where it has
        none (all None when left out)."""
        images = np.asarray(images, dtype=np.float32)
        count = len(images)
        if images.ndim != 3 or images.shape[1] != images.shape[2] or count == 0:
            raise SynthError(f"training images must be [N, S, S] with N > 0, not {images.shape}")
        if not len(sequences) == len(lesions) == len(pair_keys) == len(slice_indices) == count:
            raise SynthError("training images and their labels differ in number")
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise SynthError("training images must be finite and in [0, 1] (canonical arrays)")
        masks = list(lesion_masks) if lesion_masks is not None else [None] * count
        if len(masks) != count:
            raise SynthError("training images and their lesion masks differ in number")
        if any(mask is not None and np.shape(mask) != images.shape[1:] for mask in masks):
            raise SynthError(f"lesion masks must be {list(images.shape[1:])}, as the images")
        t2w_rows = {
            (key, index): row
            for row, (sequence, key, index) in enumerate(
                zip(sequences, pair_keys, slice_indices, strict=True)
            )
            if sequence == Sequence.T2W and key
        }
        condition_index = [
            t2w_rows.get((key, index), -1) if sequence in CONDITIONED_SEQUENCES and key else -1
            for sequence, key, index in zip(sequences, pair_keys, slice_indices, strict=True)
        ]
        return cls(
            images=torch.from_numpy(images.copy()),
            sequences=tuple(Sequence(value) for value in sequences),
            lesions=tuple(Lesion(value) for value in lesions),
            condition_index=torch.tensor(condition_index, dtype=torch.long),
            source_sha256=source_sha256,
            lesion_masks=torch.from_numpy(
                np.stack(
                    [
                        np.zeros(images.shape[1:], bool) if mask is None else np.asarray(mask) > 0
                        for mask in masks
                    ]
                )
            ),
            mask_known=torch.tensor([mask is not None for mask in masks], dtype=torch.bool),
        )


def training_set_from_manifest(path: Path, size: int) -> TrainingSet:
    """Every slice of a manifest (real or phantom, any format `load_manifest` reads)."""
    slices = load_manifest(path, allow_absolute=True)
    if not slices:
        raise SynthError(f"{path}: the manifest lists no slices to train on")
    return TrainingSet.from_arrays(
        np.stack([fit_square(item.canonical, size) for item in slices]),
        [item.row.sequence for item in slices],
        # Each slice's own truth and pair: from its mask and its pairing where the row has them.
        [item.lesion for item in slices],
        [item.pair_key or "" for item in slices],
        [item.slice_index for item in slices],
        hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        [None if item.mask is None else fit_mask(item.mask, size) for item in slices],
    )


def fit_mask(labels: np.ndarray, size: int) -> np.ndarray:
    """A slice's labels fitted to `size` x `size` as `fit_square` fits its image: a boolean
    lesion mask (any label > 0), kept where at least half of a pixel is lesion."""
    return fit_square((np.asarray(labels) > 0).astype(np.float32), size) >= 0.5


@dataclass(frozen=True)
class TrainingBatch:
    images: torch.Tensor  # [B, 1, S, S] in [-1, 1]
    token_ids: torch.Tensor  # [B, L]
    condition: torch.Tensor  # [B, 1, S, S] in [-1, 1]
    condition_mask: torch.Tensor  # [B] 1.0 where the condition counts
    lesion_mask: torch.Tensor  # [B, 1, S, S] 1.0 inside a lesion, 0 elsewhere and where unknown
    lesion_mask_known: torch.Tensor  # [B] 1.0 where the lesion mask counts


class BatchSampler:
    """Random batches with random prompts, prompt dropout (for classifier-free guidance),
    unknown-word replacement, conditioning dropout, lesion-mask dropout and horizontal flips."""

    def __init__(
        self,
        training_set: TrainingSet,
        vocabulary: Vocabulary,
        max_tokens: int,
        device: torch.device | str,
        *,
        prompt_dropout: float,
        condition_dropout: float,
        unknown_word_rate: float,
        lesion_share: float | None = None,
        mask_dropout: float | None = None,
    ) -> None:
        """`lesion_share`: the share of lesion slices in each batch (None: as in the data).
        Lesions are small and often rare among slices; drawing them more often teaches the
        model to draw them when asked. `mask_dropout`: for a model with the mask channel, the
        share of slices whose lesion mask is withheld; None (no mask channel) draws nothing
        for masks, so batches are those of a sampler made before masks were."""
        self.device = torch.device(device)
        self.mask_dropout = mask_dropout
        self.lesion_masks = training_set.lesion_masks.to(self.device).unsqueeze(1)
        self.mask_known = training_set.mask_known.to(self.device)
        self.prompt_dropout = prompt_dropout
        self.condition_dropout = condition_dropout
        self.unknown_word_rate = unknown_word_rate
        self.images = training_set.images.to(self.device).unsqueeze(1) * 2 - 1
        self.condition_index = training_set.condition_index.to(self.device)
        groups = sorted(set(zip(training_set.sequences, training_set.lesions, strict=True)))
        prompts = [prompt_templates(*group) for group in groups]
        self.prompt_tokens = vocabulary.encode_batch(
            [prompt for group in prompts for prompt in group], max_tokens
        ).to(self.device)
        counts = torch.tensor([len(group) for group in prompts])
        self.group_start = (torch.cumsum(counts, 0) - counts).to(self.device)
        self.group_count = counts.to(self.device)
        group_of = {group: number for number, group in enumerate(groups)}
        self.row_group = torch.tensor(
            [
                group_of[pair]
                for pair in zip(training_set.sequences, training_set.lesions, strict=True)
            ],
            device=self.device,
        )
        self.empty_prompt = vocabulary.encode_batch([""], max_tokens).to(self.device)
        self.lesion_share = lesion_share
        if lesion_share is not None:
            if not 0 < lesion_share < 1:
                raise SynthError(f"--lesion-share must be in (0, 1), not {lesion_share}")
            is_lesion = torch.tensor([lesion == Lesion.YES for lesion in training_set.lesions])
            self.lesion_rows = torch.nonzero(is_lesion).flatten().to(self.device)
            self.other_rows = torch.nonzero(~is_lesion).flatten().to(self.device)
            if not len(self.lesion_rows) or not len(self.other_rows):
                raise SynthError(
                    "--lesion-share needs slices with and without a lesion in the training "
                    f"data; it has {len(self.lesion_rows)} with and {len(self.other_rows)} without"
                )

    def _rows(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        def draw(pool_size: int) -> torch.Tensor:
            return torch.randint(pool_size, (batch_size,), generator=generator, device=self.device)

        if self.lesion_share is None:
            return draw(len(self.images))
        lesion = self.lesion_rows[draw(len(self.lesion_rows))]
        other = self.other_rows[draw(len(self.other_rows))]
        pick = torch.rand(batch_size, generator=generator, device=self.device)
        return torch.where(pick < self.lesion_share, lesion, other)

    def sample(self, batch_size: int, generator: torch.Generator) -> TrainingBatch:
        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=generator, device=self.device)

        rows = self._rows(batch_size, generator)
        group = self.row_group[rows]
        choice = (uniform(batch_size) * self.group_count[group]).long()
        tokens = self.prompt_tokens[self.group_start[group] + choice]
        is_word = tokens > CLS
        tokens = torch.where(
            is_word & (uniform(*tokens.shape) < self.unknown_word_rate), UNK, tokens
        )
        drop_prompt = uniform(batch_size) < self.prompt_dropout
        tokens = torch.where(drop_prompt[:, None], self.empty_prompt, tokens)

        paired = self.condition_index[rows]
        keep = (paired >= 0) & (uniform(batch_size) >= self.condition_dropout)
        images = self.images[rows]
        condition = self.images[paired.clamp(min=0)]
        known = torch.zeros(batch_size, dtype=torch.bool, device=self.device)
        if self.mask_dropout is not None:
            known = self.mask_known[rows] & (uniform(batch_size) >= self.mask_dropout)
        lesion_mask = (self.lesion_masks[rows] & known.view(-1, 1, 1, 1)).float()
        flip = (uniform(batch_size) < 0.5).view(-1, 1, 1, 1)
        images = torch.where(flip, images.flip(-1), images)
        condition = torch.where(flip, condition.flip(-1), condition)
        lesion_mask = torch.where(flip, lesion_mask.flip(-1), lesion_mask)
        return TrainingBatch(
            images=images,
            token_ids=tokens,
            condition=condition * keep.view(-1, 1, 1, 1),
            condition_mask=keep.float(),
            lesion_mask=lesion_mask,
            lesion_mask_known=known.float(),
        )
