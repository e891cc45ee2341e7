"""Machine realism checks of synthetic images against real ones (`python -m synth evaluate`).

Three questions, each answered on images as readers see them (canonical arrays fitted to one
square size with `study.imaging.render.fit_square`):

- Classifier two-sample test (C2ST; Lopez-Paz & Oquab, ICLR 2017): can a small CNN tell real
  from synthetic? Real images are grouped by patient, synthetic ones by pair key (or one group
  per image), and k-fold cross-validation over those groups gives every image an out-of-fold
  score. AUC 0.5 means indistinguishable; its 95% interval is DeLong's (DeLong et al. 1988),
  from `study.stats.roc`, the one implementation the reader studies use too.
- Memorisation (with training images): each image's highest zero-mean normalised
  cross-correlation (NCC) with any training image. Synthetic images are compared with held-out
  real ones; a synthetic image closer to the training set than every held-out real image is
  counted as a likely copy.
- Conditioning fidelity: CNNs trained on real images to recognise lesion and sequence, applied
  to the synthetic images; agreement with the labels they were generated for. Each classifier
  is also scored on real images it never saw (the held-out real images when it learns from the
  training images, else a patient split of the real ones): the agreement a perfect generator
  would get, without which a synthetic agreement cannot be read. The lesion classifier has one
  head per sequence (a lesion is dark on T2W and ADC, bright on DWI) and looks at the centre of
  the field of view, where the prostate lies, at a finer size than the other checks.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn
from torch.nn import functional as F

from study.imaging.manifest import load_manifest
from study.imaging.render import fit_square
from study.imaging.types import Lesion, Origin, Sequence
from study.stats.roc import delong_auc
from synth.contract import EvaluateRequest, option_spec
from synth.errors import SynthError

ProgressCallback = Callable[[int, int], None]

# The command line's defaults, declared once in the contract.
DEFAULT_SIZE: int = option_spec(EvaluateRequest, "size").default
DEFAULT_FOLDS: int = option_spec(EvaluateRequest, "folds").default
DEFAULT_EPOCHS: int = option_spec(EvaluateRequest, "epochs").default
DEFAULT_LESION_SIZE: int = option_spec(EvaluateRequest, "lesion_size").default
DEFAULT_LESION_FIELD: float = option_spec(EvaluateRequest, "lesion_field").default
BATCH_SIZE = 16
LEARNING_RATE = 2e-3
C2ST_WIDTHS = (16, 32, 64)
FIDELITY_WIDTHS = (32, 64, 128, 128)
# Without training images, the share of real patients kept from a fidelity classifier to score it.
REFERENCE_FOLDS = 5
SEQUENCE_HEADS = {sequence: index for index, sequence in enumerate(Sequence)}
# Rows of the NCC matrix computed at once: bounds memory at CHUNK x n_train floats.
NCC_CHUNK = 1024


@dataclass(frozen=True)
class ImageSet:
    """The images of one manifest at a common square size, with their labels and groups;
    `lesion_images` are the centre crops the lesion classifier sees."""

    images: np.ndarray
    lesion_images: np.ndarray
    sequences: list[Sequence]
    lesions: list[Lesion]
    patient_ids: list[str]
    groups: list[str]
    # Which image each row is: its manifest path ("path#slice" for a slice of a volume) and
    # the source digest the importer stores it under.
    refs: list[str] = field(default_factory=list)
    source_sha256s: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def take(self, rows: np.ndarray) -> ImageSet:
        """The given rows, in order."""
        return ImageSet(
            images=self.images[rows],
            lesion_images=self.lesion_images[rows],
            sequences=[self.sequences[i] for i in rows],
            lesions=[self.lesions[i] for i in rows],
            patient_ids=[self.patient_ids[i] for i in rows],
            groups=[self.groups[i] for i in rows],
            refs=[self.refs[i] for i in rows] if self.refs else [],
            source_sha256s=[self.source_sha256s[i] for i in rows] if self.source_sha256s else [],
        )


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
    lesion_agreement_heldout_real: float | None
    sequence_agreement_heldout_real: float | None
    n_real: int
    n_synthetic: int
    # Each image's out-of-fold C2ST score: (manifest ref, origin, source sha256, score).
    image_scores: tuple[tuple[str, str, str, float], ...] = ()

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
            "lesion_agreement_heldout_real": self.lesion_agreement_heldout_real,
            "sequence_agreement_heldout_real": self.sequence_agreement_heldout_real,
            "n_real": self.n_real,
            "n_synthetic": self.n_synthetic,
            "n_train": memorisation.n_train if memorisation else None,
        }


def centre_crop(image: np.ndarray, field: float) -> np.ndarray:
    """The centred square of `field` times the side of a square image."""
    side = image.shape[-1]
    keep = max(1, round(side * field))
    start = (side - keep) // 2
    return image[start : start + keep, start : start + keep]


def load_image_set(
    manifest: Path,
    origin: Origin,
    size: int,
    *,
    lesion_size: int = DEFAULT_LESION_SIZE,
    lesion_field: float = DEFAULT_LESION_FIELD,
) -> ImageSet:
    """Every slice of `manifest`, fitted to size x size, and the centre `lesion_field` of it
    fitted to lesion_size x lesion_size; all rows must be of `origin`.

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
        elif s.pair_key:
            groups.append(f"pair:{s.pair_key}")
        else:
            groups.append(f"image:{s.row.line}:{s.slice_index}")
    images = np.stack([fit_square(s.canonical, size) for s in slices]).astype(np.float32)
    lesion_images = np.stack(
        [centre_crop(fit_square(s.canonical, lesion_size), lesion_field) for s in slices]
    ).astype(np.float32)
    per_row: dict[int, int] = {}
    for s in slices:
        per_row[s.row.line] = per_row.get(s.row.line, 0) + 1
    return ImageSet(
        images=images,
        lesion_images=lesion_images,
        sequences=[s.row.sequence for s in slices],
        lesions=[s.lesion for s in slices],
        patient_ids=[s.row.patient_id for s in slices],
        groups=groups,
        refs=[
            str(s.row.path) if per_row[s.row.line] == 1 else f"{s.row.path}#{s.slice_index}"
            for s in slices
        ],
        source_sha256s=[s.source_sha256 for s in slices],
    )


class SmallCNN(nn.Module):
    """Conv-GroupNorm-ReLU-pool blocks of the given widths, global max pool, a linear head per
    group of images (one group unless told otherwise).

    Group norm, unlike batch norm, has no running statistics: after the few hundred steps these
    classifiers get, batch norm's estimates made real-vs-noise scores overlap (AUC 0.95 instead
    of 1.0). The global max keeps a small local finding (a lesion, an artefact) as visible as a
    large one.
    """

    def __init__(
        self, n_classes: int, widths: tuple[int, ...] = C2ST_WIDTHS, n_heads: int = 1
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 1
        for width in widths:
            blocks += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.GroupNorm(4, width),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.n_classes = n_classes
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, n_classes * n_heads)

    def forward(self, images: torch.Tensor, heads: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of each image from its head (`heads`, default all 0)."""
        features = self.features(images.unsqueeze(1) - 0.5)
        logits = self.head(features.amax(dim=(2, 3))).view(len(images), -1, self.n_classes)
        rows = torch.arange(len(images))
        return logits[rows, heads if heads is not None else torch.zeros_like(rows)]


def epoch_steps(n_images: int, epochs: int) -> int:
    """Optimisation steps of `epochs` passes over `n_images` in batches of BATCH_SIZE."""
    return epochs * math.ceil(n_images / BATCH_SIZE)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    steps: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
    heads: np.ndarray | None = None,
    n_heads: int = 1,
    widths: tuple[int, ...] = C2ST_WIDTHS,
    one_cycle: bool = False,
) -> SmallCNN:
    """A SmallCNN trained for `steps` batches with class-balanced cross-entropy (Adam, random
    flips), seeded; each pass over the images is a fresh permutation, after which `on_epoch`
    is called. `heads` gives each image's head when there are several. `one_cycle` warms the
    learning rate up and anneals it (better for longer runs; a two-epoch run learns less).

    Balanced weights make the classifier judge each class on its own merit, so that a label
    ratio that differs between real and synthetic images does not bias agreement. A number of
    steps rather than epochs lets two training sets of different sizes get the same training.
    """
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(n_classes, widths, n_heads)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    schedule = (
        torch.optim.lr_scheduler.OneCycleLR(optimiser, LEARNING_RATE, total_steps=steps)
        if one_cycle
        else None
    )
    loss_weights = torch.tensor(weights, dtype=torch.float32)
    x_all = torch.from_numpy(images)
    y_all = torch.from_numpy(labels.astype(np.int64))
    h_all = torch.from_numpy(heads if heads is not None else np.zeros(len(labels), np.int64))
    rng = np.random.default_rng(seed)
    model.train()
    done = 0
    while done < steps:
        order = rng.permutation(len(labels))
        for start in range(0, len(order), BATCH_SIZE):
            if done == steps:
                break
            done += 1
            batch = torch.from_numpy(order[start : start + BATCH_SIZE])
            x = x_all[batch]
            if rng.random() < 0.5:
                x = x.flip(2)
            loss = F.cross_entropy(model(x, h_all[batch]), y_all[batch], weight=loss_weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if schedule:
                schedule.step()
        if on_epoch:
            on_epoch()
    model.eval()
    return model


@torch.no_grad()
def predict_probabilities(
    model: SmallCNN, images: np.ndarray, heads: np.ndarray | None = None
) -> np.ndarray:
    """Class probabilities, shape (n, n_classes), each image from its head (default 0)."""
    x_all = torch.from_numpy(images)
    h_all = torch.from_numpy(heads if heads is not None else np.zeros(len(images), np.int64))
    parts = [
        torch.softmax(model(x_all[start : start + 256], h_all[start : start + 256]), dim=1)
        for start in range(0, len(images), 256)
    ]
    return torch.cat(parts).numpy()


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
) -> tuple[float, tuple[float, float], np.ndarray]:
    """Out-of-fold AUC of a real-vs-synthetic CNN (synthetic positive), its 95% DeLong CI, and
    every image's out-of-fold score (probability synthetic; real images first, as given).

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
            images[train],
            labels[train],
            2,
            steps=epoch_steps(len(train), epochs),
            seed=seed + fold,
            on_epoch=on_epoch,
        )
        scores[test] = predict_probabilities(model, images[test])[:, 1]
    result = delong_auc(scores, labels == 1)
    return result.auc, (result.low, result.high), scores


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


@dataclass(frozen=True)
class Labelled:
    """Images to classify, their labels, and the head that judges each one."""

    images: np.ndarray
    labels: list[Any]
    heads: np.ndarray


@dataclass(frozen=True)
class Agreement:
    """Share of images a classifier gives the label they carry: the synthetic images, and real
    ones it did not learn from (None where there are none to judge)."""

    synthetic: float | None
    heldout_real: float | None


def label_agreement(
    fit: Labelled,
    synthetic: Labelled,
    heldout_real: Labelled | None,
    *,
    n_heads: int,
    epochs: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> Agreement:
    """Agreement of a CNN trained on `fit` with the labels of `synthetic` and `heldout_real`;
    both None when `fit` holds fewer than two labels. Labels unseen in `fit` count as misses.
    """
    classes = sorted(set(fit.labels))
    if len(classes) < 2:
        return Agreement(None, None)
    index = {label: i for i, label in enumerate(classes)}
    model = train_classifier(
        fit.images,
        np.array([index[label] for label in fit.labels], np.int64),
        len(classes),
        steps=epoch_steps(len(fit.labels), epochs),
        seed=seed,
        on_epoch=on_epoch,
        heads=fit.heads,
        n_heads=n_heads,
        widths=FIDELITY_WIDTHS,
        one_cycle=True,
    )

    def agreement(judged: Labelled | None) -> float | None:
        if judged is None or not judged.labels:
            return None
        predicted = predict_probabilities(model, judged.images, judged.heads).argmax(axis=1)
        hits = [classes[p] == label for p, label in zip(predicted, judged.labels, strict=True)]
        return float(np.mean(hits))

    return Agreement(agreement(synthetic), agreement(heldout_real))


def lesion_task(images: ImageSet) -> Labelled:
    """The rows of known lesion status, as lesion crops judged by their sequence's head."""
    rows = [i for i, lesion in enumerate(images.lesions) if lesion != Lesion.UNKNOWN]
    heads = np.array([SEQUENCE_HEADS[images.sequences[i]] for i in rows], np.int64)
    return Labelled(images.lesion_images[rows], [images.lesions[i] for i in rows], heads)


def sequence_task(images: ImageSet) -> Labelled:
    """Every row, labelled with its sequence, one head."""
    return Labelled(images.images, list(images.sequences), np.zeros(len(images), np.int64))


def patient_folds(real: ImageSet, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows to learn from, rows to score) of each of `folds` folds of `real`: every patient's
    rows scored in one fold, never split between learning and scoring; stratified by lesion
    status, shuffled with `seed`. Needs at least `folds` patients."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(real.images, [str(x) for x in real.lesions], real.patient_ids))


def reference_split(real: ImageSet, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(rows to learn from, rows to score) of `real`, split by patient and stratified by lesion
    status, about one patient in REFERENCE_FOLDS scored; None with fewer than two patients."""
    patients = len(set(real.patient_ids))
    if patients < 2:
        return None
    return patient_folds(real, min(REFERENCE_FOLDS, patients), seed)[0]


def conditioning_fidelity(
    real: ImageSet,
    synthetic: ImageSet,
    train: ImageSet | None = None,
    *,
    epochs: int,
    seed: int,
    on_epoch: Callable[[], None] | None = None,
) -> tuple[Agreement, Agreement]:
    """(lesion, sequence) agreement of classifiers trained on real images: on the training
    images when given (scored on all of `real`), else on a patient split of `real`."""
    if train is not None:
        fit, heldout = train, real
    else:
        split = reference_split(real, seed)
        fit, heldout = (real, None) if split is None else (real.take(split[0]), real.take(split[1]))
    lesion = label_agreement(
        lesion_task(fit),
        lesion_task(synthetic),
        lesion_task(heldout) if heldout else None,
        n_heads=len(SEQUENCE_HEADS),
        epochs=epochs,
        seed=seed,
        on_epoch=on_epoch,
    )
    sequence = label_agreement(
        sequence_task(fit),
        sequence_task(synthetic),
        sequence_task(heldout) if heldout else None,
        n_heads=1,
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
    lesion_size: int = DEFAULT_LESION_SIZE,
    lesion_field: float = DEFAULT_LESION_FIELD,
    progress: ProgressCallback | None = None,
) -> Evaluation:
    """All three checks; `progress(done, total)` counts training epochs of every classifier."""
    if size < 8:
        raise SynthError(f"--size {size} is too small: use at least 8 pixels")
    if folds < 2:
        raise SynthError(f"--folds {folds} is too few: use at least 2")
    if epochs < 1:
        raise SynthError(f"--epochs {epochs} is too few: use at least 1")
    if not 0 < lesion_field <= 1:
        raise SynthError(f"--lesion-field {lesion_field} is not a share of the image: use (0, 1]")
    if round(lesion_size * lesion_field) < 8:
        raise SynthError(
            f"--lesion-size {lesion_size} with --lesion-field {lesion_field} leaves a crop under "
            "8 pixels: use a larger size or field"
        )
    views = {"size": size, "lesion_size": lesion_size, "lesion_field": lesion_field}
    real = load_image_set(real_manifest, Origin.REAL, **views)
    synthetic = load_image_set(synthetic_manifest, Origin.SYNTHETIC, **views)
    train = load_image_set(train_manifest, Origin.REAL, **views) if train_manifest else None
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
    auc, interval, scores = c2st(
        real, synthetic, folds=folds, epochs=epochs, seed=seed, on_epoch=on_epoch
    )
    image_scores = tuple(
        (ref, str(origin), sha, float(score))
        for (ref, sha, origin), score in zip(
            [(r, h, Origin.REAL) for r, h in zip(real.refs, real.source_sha256s, strict=True)]
            + [
                (r, h, Origin.SYNTHETIC)
                for r, h in zip(synthetic.refs, synthetic.source_sha256s, strict=True)
            ],
            scores,
            strict=True,
        )
    )
    lesion, sequence = conditioning_fidelity(
        real, synthetic, train, epochs=epochs, seed=seed, on_epoch=on_epoch
    )
    if progress and done < total:  # a fidelity classifier that could not be trained
        progress(total, total)
    return Evaluation(
        c2st_auc=auc,
        c2st_auc_ci=interval,
        memorisation=memorised,
        lesion_agreement=lesion.synthetic,
        sequence_agreement=sequence.synthetic,
        lesion_agreement_heldout_real=lesion.heldout_real,
        sequence_agreement_heldout_real=sequence.heldout_real,
        n_real=len(real),
        n_synthetic=len(synthetic),
        image_scores=image_scores,
    )


SCORE_COLUMNS = ("case_ref", "origin", "source_sha256", "score")


def write_image_scores(evaluation: Evaluation, path: Path) -> None:
    """Each image's out-of-fold C2ST score as CSV (SCORE_COLUMNS): a machine reader's scores,
    which `python -m study add-machine` imports into a study (matched by source_sha256)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCORE_COLUMNS)
        for ref, origin, sha, score in evaluation.image_scores:
            writer.writerow([ref, origin, sha, repr(score)])


def format_table(evaluation: Evaluation) -> str:
    """A readable summary of `evaluation`."""

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lo, hi = evaluation.c2st_auc_ci
    lines = [
        f"images: {evaluation.n_real} real, {evaluation.n_synthetic} synthetic",
        f"C2ST AUC (0.5 = indistinguishable)   {evaluation.c2st_auc:.3f}  "
        f"(95% CI {lo:.3f}-{hi:.3f})",
        f"lesion agreement                     {number(evaluation.lesion_agreement)}  "
        f"(held-out real: {number(evaluation.lesion_agreement_heldout_real)})",
        f"sequence agreement                   {number(evaluation.sequence_agreement)}  "
        f"(held-out real: {number(evaluation.sequence_agreement_heldout_real)})",
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
