"""Machine realism checks of synthetic images against real ones (`python -m synth evaluate`).

Three questions, each answered on images as readers see them (canonical arrays fitted to one
square size with `study.imaging.render.fit_square`):

- Classifier two-sample test (C2ST; Lopez-Paz & Oquab, ICLR 2017): can a small CNN tell real
  from synthetic? Real images are grouped by patient, synthetic ones by pair key (or one group
  per image), and k-fold cross-validation over those groups gives every image an out-of-fold
  score. AUC 0.5 means indistinguishable; its 95% interval is DeLong's (DeLong et al. 1988).
- Memorisation (with training images): each image's highest zero-mean normalised
  cross-correlation (NCC) with any training image. Synthetic images are compared with held-out
  real ones; a synthetic image closer to the training set than every held-out real image is
  counted as a likely copy.
- Conditioning fidelity: CNNs trained on the real images to recognise lesion and sequence,
  applied to the synthetic images; agreement with the labels they were generated for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import norm, rankdata
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn
from torch.nn import functional as F

from study.imaging.manifest import load_manifest
from study.imaging.render import fit_square
from study.imaging.types import Lesion, Origin, Sequence
from synth.errors import SynthError

ProgressCallback = Callable[[int, int], None]

DEFAULT_SIZE = 64
DEFAULT_FOLDS = 5
DEFAULT_EPOCHS = 8
BATCH_SIZE = 16
# Rows of the NCC matrix computed at once: bounds memory at CHUNK x n_train floats.
NCC_CHUNK = 1024


@dataclass(frozen=True)
class ImageSet:
    """The images of one manifest at a common square size, with their labels and groups."""

    images: np.ndarray
    sequences: list[Sequence]
    lesions: list[Lesion]
    patient_ids: list[str]
    groups: list[str]

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class NccSummary:
    p50: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: np.ndarray) -> NccSummary:
        return cls(
            p50=float(np.percentile(values, 50)),
            p95=float(np.percentile(values, 95)),
            max=float(values.max()),
        )


@dataclass(frozen=True)
class Memorisation:
    memorised_count: int
    synthetic: NccSummary
    heldout_real: NccSummary
    n_train: int


@dataclass(frozen=True)
class Evaluation:
    c2st_auc: float
    c2st_auc_ci: tuple[float, float]
    memorisation: Memorisation | None
    lesion_agreement: float | None
    sequence_agreement: float | None
    n_real: int
    n_synthetic: int

    def to_json(self) -> dict[str, Any]:
        """The result as the `--json` object (memorisation keys null without training images)."""
        memorisation = self.memorisation
        return {
            "c2st_auc": self.c2st_auc,
            "c2st_auc_ci": list(self.c2st_auc_ci),
            "memorised_count": memorisation.memorised_count if memorisation else None,
            "nearest_train_ncc": (
                {
                    "synthetic": vars(memorisation.synthetic),
                    "heldout_real": vars(memorisation.heldout_real),
                }
                if memorisation
                else None
            ),
            "lesion_agreement": self.lesion_agreement,
            "sequence_agreement": self.sequence_agreement,
            "n_real": self.n_real,
            "n_synthetic": self.n_synthetic,
            "n_train": memorisation.n_train if memorisation else None,
        }


def load_image_set(manifest: Path, origin: Origin, size: int) -> ImageSet:
    """Every slice of `manifest`, fitted to size x size; all rows must be of `origin`.

    Real images are grouped by patient; synthetic ones by pair key, or alone when it is empty.
    """
    slices = load_manifest(manifest)
    wrong = [s.row.line for s in slices if s.row.origin != origin]
    if wrong:
        raise SynthError(
            f"{manifest}: line {wrong[0]} (and {len(set(wrong)) - 1} more) is not {origin}; "
            f"this option takes a manifest of {origin} images only"
        )
    groups = []
    for s in slices:
        if origin == Origin.REAL:
            groups.append(f"patient:{s.row.patient_id}")
        elif s.row.pair_key:
            groups.append(f"pair:{s.row.pair_key}")
        else:
            groups.append(f"image:{s.row.line}:{s.slice_index}")
    images = np.stack([fit_square(s.canonical, size) for s in slices]).astype(np.float32)
    return ImageSet(
        images=images,
        sequences=[s.row.sequence for s in slices],
        lesions=[s.row.lesion for s in slices],
        patient_ids=[s.row.patient_id for s in slices],
        groups=groups,
    )


class SmallCNN(nn.Module):
    """Three conv-GroupNorm-ReLU-pool blocks (16, 32, 64 channels), global max pool, linear head.

    Group norm, unlike batch norm, has no running statistics: after the few hundred steps these
    classifiers get, batch norm's estimates made real-vs-noise scores overlap (AUC 0.95 instead
    of 1.0). The global max keeps a small local finding (a lesion, an artefact) as visible as a
    large one.
    """

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 1
        for width in (16, 32, 64):
            blocks += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.GroupNorm(4, width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, n_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(images.unsqueeze(1) - 0.5)
        return self.head(features.amax(dim=(2, 3)))


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    epochs: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> SmallCNN:
    """A SmallCNN trained with class-balanced cross-entropy (Adam, random flips), seeded.

    Balanced weights make the classifier judge each class on its own merit, so that a label
    ratio that differs between real and synthetic images does not bias agreement.
    """
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(n_classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_weights = torch.tensor(weights, dtype=torch.float32)
    x_all = torch.from_numpy(images)
    y_all = torch.from_numpy(labels.astype(np.int64))
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(labels))
        for start in range(0, len(order), BATCH_SIZE):
            batch = torch.from_numpy(order[start : start + BATCH_SIZE])
            x = x_all[batch]
            if rng.random() < 0.5:
                x = x.flip(2)
            loss = F.cross_entropy(model(x), y_all[batch], weight=loss_weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if on_epoch:
            on_epoch()
    model.eval()
    return model


@torch.no_grad()
def predict_probabilities(model: SmallCNN, images: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n, n_classes)."""
    x_all = torch.from_numpy(images)
    parts = [
        torch.softmax(model(x_all[start : start + 256]), dim=1)
        for start in range(0, len(images), 256)
    ]
    return torch.cat(parts).numpy()


def delong_auc(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """AUC (P(score of a positive > score of a negative), ties half) and its DeLong variance.

    Placement values by midranks (Sun & Xu 2014): V10_i = (R_i - R^X_i) / n_neg,
    V01_j = 1 - (R_j - R^Y_j) / n_pos; var = s10 / n_pos + s01 / n_neg.
    """
    n_pos, n_neg = len(positive), len(negative)
    ranks = rankdata(np.concatenate([positive, negative]))
    v10 = (ranks[:n_pos] - rankdata(positive)) / n_neg
    v01 = 1.0 - (ranks[n_pos:] - rankdata(negative)) / n_pos
    auc = float(v10.mean())
    s10 = float(np.var(v10, ddof=1)) if n_pos > 1 else 0.0
    s01 = float(np.var(v01, ddof=1)) if n_neg > 1 else 0.0
    return auc, s10 / n_pos + s01 / n_neg


def auc_interval(auc: float, variance: float, level: float = 0.95) -> tuple[float, float]:
    """Wald interval auc +- z * sd, clipped to [0, 1]."""
    half = float(norm.ppf(0.5 + level / 2)) * math.sqrt(variance)
    return max(0.0, auc - half), min(1.0, auc + half)


def c2st_folds(real: ImageSet, synthetic: ImageSet, folds: int) -> int:
    """Folds actually used: at most `folds`, at most the groups of either side."""
    smallest = min(len(set(real.groups)), len(set(synthetic.groups)))
    if smallest < 2:
        raise SynthError(
            "the classifier two-sample test needs at least 2 real patients and 2 synthetic "
            f"groups (pair keys or images); found {len(set(real.groups))} and "
            f"{len(set(synthetic.groups))}"
        )
    return min(folds, smallest)


def c2st(
    real: ImageSet,
    synthetic: ImageSet,
    *,
    folds: int,
    epochs: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> tuple[float, tuple[float, float]]:
    """Out-of-fold AUC of a real-vs-synthetic CNN (synthetic positive) and its 95% DeLong CI.

    Folds split groups, never images, so that no patient (or synthetic pair) is seen in
    training and scored in the same fold.
    """
    n_folds = c2st_folds(real, synthetic, folds)
    images = np.concatenate([real.images, synthetic.images])
    labels = np.concatenate([np.zeros(len(real), np.int64), np.ones(len(synthetic), np.int64)])
    groups = real.groups + synthetic.groups
    scores = np.empty(len(labels))
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(images, labels, groups)):
        model = train_classifier(
            images[train], labels[train], 2, epochs=epochs, seed=seed + fold, on_epoch=on_epoch
        )
        scores[test] = predict_probabilities(model, images[test])[:, 1]
    auc, variance = delong_auc(scores[labels == 1], scores[labels == 0])
    return auc, auc_interval(auc, variance)


def _standardised(images: np.ndarray) -> np.ndarray:
    """Flattened images with zero mean and unit norm (constant images become zeros)."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def nearest_ncc(queries: np.ndarray, references: np.ndarray) -> np.ndarray:
    """For each query image, its highest zero-mean NCC with any reference image.

    The NCC of two standardised images is their dot product, so all pairs are one matrix
    product (in chunks of queries).
    """
    q, r = _standardised(queries), _standardised(references)
    return np.concatenate(
        [(q[start : start + NCC_CHUNK] @ r.T).max(axis=1) for start in range(0, len(q), NCC_CHUNK)]
    )


def memorisation(real: ImageSet, synthetic: ImageSet, train: ImageSet) -> Memorisation:
    """Nearest-training-image NCC of synthetic vs held-out real images, and the likely copies."""
    shared = sorted(set(real.patient_ids) & set(train.patient_ids))
    if shared:
        raise SynthError(
            f"patient {shared[0]} (and {len(shared) - 1} more) is in both --real and --train; "
            "the real images must be held out from training to serve as the memorisation baseline"
        )
    synthetic_ncc = nearest_ncc(synthetic.images, train.images)
    heldout_ncc = nearest_ncc(real.images, train.images)
    return Memorisation(
        memorised_count=int((synthetic_ncc > heldout_ncc.max()).sum()),
        synthetic=NccSummary.of(synthetic_ncc),
        heldout_real=NccSummary.of(heldout_ncc),
        n_train=len(train),
    )


def label_agreement(
    real_images: np.ndarray,
    real_labels: list[Any],
    synthetic_images: np.ndarray,
    synthetic_labels: list[Any],
    *,
    epochs: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> float | None:
    """Fraction of synthetic images whose predicted label (by a CNN trained on the real ones)
    is the label they were generated for; None when the real images hold fewer than two labels
    or there are no synthetic images to judge. Labels unseen in the real images count as misses.
    """
    classes = sorted(set(real_labels))
    if len(classes) < 2 or not synthetic_labels:
        return None
    index = {label: i for i, label in enumerate(classes)}
    labels = np.array([index[label] for label in real_labels], np.int64)
    model = train_classifier(
        real_images, labels, len(classes), epochs=epochs, seed=seed, on_epoch=on_epoch
    )
    predicted = predict_probabilities(model, synthetic_images).argmax(axis=1)
    hits = [classes[p] == label for p, label in zip(predicted, synthetic_labels, strict=True)]
    return float(np.mean(hits))


def conditioning_fidelity(
    real: ImageSet,
    synthetic: ImageSet,
    *,
    epochs: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> tuple[float | None, float | None]:
    """(lesion agreement over synthetic rows with a known lesion label, sequence agreement)."""
    known_real = [i for i, lesion in enumerate(real.lesions) if lesion != Lesion.UNKNOWN]
    known_synthetic = [i for i, lesion in enumerate(synthetic.lesions) if lesion != Lesion.UNKNOWN]
    lesion = label_agreement(
        real.images[known_real],
        [real.lesions[i] for i in known_real],
        synthetic.images[known_synthetic],
        [synthetic.lesions[i] for i in known_synthetic],
        epochs=epochs,
        seed=seed,
        on_epoch=on_epoch,
    )
    sequence = label_agreement(
        real.images,
        real.sequences,
        synthetic.images,
        synthetic.sequences,
        epochs=epochs,
        seed=seed + 1,
        on_epoch=on_epoch,
    )
    return lesion, sequence


def evaluate(
    real_manifest: Path,
    synthetic_manifest: Path,
    train_manifest: Path | None = None,
    *,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    folds: int = DEFAULT_FOLDS,
    epochs: int = DEFAULT_EPOCHS,
    progress: ProgressCallback | None = None,
) -> Evaluation:
    """All three checks; `progress(done, total)` counts training epochs of every classifier."""
    if size < 8:
        raise SynthError(f"--size {size} is too small: use at least 8 pixels")
    if folds < 2:
        raise SynthError(f"--folds {folds} is too few: use at least 2")
    if epochs < 1:
        raise SynthError(f"--epochs {epochs} is too few: use at least 1")
    real = load_image_set(real_manifest, Origin.REAL, size)
    synthetic = load_image_set(synthetic_manifest, Origin.SYNTHETIC, size)
    train = load_image_set(train_manifest, Origin.REAL, size) if train_manifest else None
    total = (c2st_folds(real, synthetic, folds) + 2) * epochs
    done = 0

    def on_epoch() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    if progress:
        progress(0, total)
    memorised = memorisation(real, synthetic, train) if train is not None else None
    auc, interval = c2st(real, synthetic, folds=folds, epochs=epochs, seed=seed, on_epoch=on_epoch)
    lesion, sequence = conditioning_fidelity(
        real, synthetic, epochs=epochs, seed=seed, on_epoch=on_epoch
    )
    if progress and done < total:  # a fidelity classifier that could not be trained
        progress(total, total)
    return Evaluation(
        c2st_auc=auc,
        c2st_auc_ci=interval,
        memorisation=memorised,
        lesion_agreement=lesion,
        sequence_agreement=sequence,
        n_real=len(real),
        n_synthetic=len(synthetic),
    )


def format_table(evaluation: Evaluation) -> str:
    """A readable summary of `evaluation`."""

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lo, hi = evaluation.c2st_auc_ci
    lines = [
        f"images: {evaluation.n_real} real, {evaluation.n_synthetic} synthetic",
        f"C2ST AUC (0.5 = indistinguishable)   {evaluation.c2st_auc:.3f}  "
        f"(95% CI {lo:.3f}-{hi:.3f})",
        f"lesion agreement                     {number(evaluation.lesion_agreement)}",
        f"sequence agreement                   {number(evaluation.sequence_agreement)}",
    ]
    memorised = evaluation.memorisation
    if memorised is None:
        lines.append("memorisation                         n/a (no --train manifest)")
    else:
        lines += [
            f"training images                      {memorised.n_train}",
            "nearest-training NCC                 p50     p95     max",
        ]
        for name, summary in (
            ("  synthetic", memorised.synthetic),
            ("  held-out real", memorised.heldout_real),
        ):
            lines.append(f"{name:<37}{summary.p50:.3f}   {summary.p95:.3f}   {summary.max:.3f}")
        lines.append(f"synthetic above held-out max (copies) {memorised.memorised_count}")
    return "\n".join(lines)
