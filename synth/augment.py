"""Does adding synthetic images to a lesion classifier's training data help it on real patients?
(`python -m synth augment`; the seed study's last row of Table 4.3: 0.704 +- 0.035 trained on
real images, 0.762 +- 0.042 on real + synthetic.)

A slice-level lesion classifier (synth.evaluate's: a small CNN on the centre of the field of
view, one head per sequence) learns from T2W, ADC and DWI slices with a known lesion status,
each slice a sample, as the seed study's lesion tasks read T2W and ADC slices and T2W-DW pairs.
Real patients are split into k folds (stratified by lesion status, never a patient in two
folds); for each fold two classifiers learn, with the same seed and the same number of
optimisation steps (`epochs` passes over the real training images):

- "real": the real images of the other folds;
- "real+synthetic": the same images and every synthetic image, except those made from a held-out
  patient's image (a DWI conditioned on that patient's T2W carries the patient's id).

Both are scored on the held-out fold: accuracy, sensitivity and specificity at probability 0.5,
and the AUC of the probabilities (scikit-learn's roc_auc_score). `repeats` repeats the whole
cross-validation with other fold seeds.

The paired difference (real+synthetic minus real) is summarised by its mean over the folds and a
t interval whose variance is Nadeau and Bengio's corrected one, (1/n + n_test/n_train) s^2
instead of s^2/n (Nadeau & Bengio 2003; Bouckaert & Frank 2004 for repeated k-fold): folds share
most of their training patients, so their differences are correlated and the plain t interval
is too narrow. A bootstrap over five fold differences has too few distinct resamples to give a
95% interval at all.

A classifier must never be tested on a patient that the generator of its synthetic images
learnt from: the generator may have memorised that patient, and the synthetic images would
carry the answer into training. Each synthetic image names its checkpoint (`checkpoint_sha256`),
each checkpoint records its training patients (`synth.contract.TrainingPatients`), and a fold
that would test any of them is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from study.imaging.manifest import read_manifest
from study.imaging.types import Lesion, Origin, Sequence
from synth.checkpoint import find_checkpoints
from synth.contract import (
    AUGMENT_ARMS,
    AUGMENT_METRICS,
    AugmentRequest,
    TrainingPatients,
    read_checkpoint_info,
)
from synth.errors import SynthError
from synth.evaluate import (
    C2ST_WIDTHS,
    FIDELITY_WIDTHS,
    SEQUENCE_HEADS,
    ImageSet,
    Labelled,
    epoch_steps,
    lesion_task,
    load_image_set,
    patient_folds,
    predict_probabilities,
    train_classifier,
)

ProgressCallback = Callable[[int, int], None]

ARMS, METRICS = AUGMENT_ARMS, AUGMENT_METRICS
SEQUENCES = (Sequence.T2W, Sequence.ADC, Sequence.DWI)
CONFIDENCE = 0.95
THRESHOLD = 0.5
# load_image_set also fits every image to a square for the other checks; only the lesion crops
# are used here, so that square is made as small as it may be.
UNUSED_SIZE = 8


@dataclass(frozen=True)
class Fold:
    """One fold of one repeat (both counted from 1): rows of the real images to learn from and
    to test on, and the rows of the synthetic images added to the real ones."""

    repeat: int
    number: int
    train: np.ndarray
    test: np.ndarray
    synthetic: np.ndarray
    test_patients: frozenset[str]

    @property
    def name(self) -> str:
        return f"fold {self.number} of repeat {self.repeat}"


@dataclass(frozen=True)
class FoldResult:
    """Each arm's scores on one fold's held-out patients."""

    repeat: int
    fold: int
    test_patients: int
    n_train_real: int
    n_train_synthetic: int
    n_test: int
    steps: int
    scores: dict[str, dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        return {
            "repeat": self.repeat,
            "fold": self.fold,
            "test_patients": self.test_patients,
            "n_train_real": self.n_train_real,
            "n_train_synthetic": self.n_train_synthetic,
            "n_test": self.n_test,
            "steps": self.steps,
            **self.scores,
        }


@dataclass(frozen=True)
class Difference:
    """Mean paired difference over the folds and its 95% interval."""

    mean: float
    low: float
    high: float


def paired_difference(
    differences: np.ndarray, test_to_train: float, confidence: float = CONFIDENCE
) -> Difference:
    """Mean of the fold differences, with the t interval of Nadeau and Bengio's corrected
    variance (1/n + `test_to_train`) s^2 on n - 1 degrees of freedom.

    >>> d = paired_difference(np.array([0.1, 0.0, 0.2, 0.1, 0.1]), test_to_train=0.25)
    >>> round(d.mean, 3), round(d.low, 3), round(d.high, 3)
    (0.1, -0.032, 0.232)
    """
    n = len(differences)
    mean = float(differences.mean())
    spread = math.sqrt((1 / n + test_to_train) * float(differences.var(ddof=1)))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * spread
    return Difference(mean, mean - half, mean + half)


@dataclass(frozen=True)
class Augmentation:
    """Every fold's result, and the images (and real patients) the experiment used."""

    folds: tuple[FoldResult, ...]
    n_real: int
    n_synthetic: int
    n_patients: int

    def values(self, arm: str, metric: str) -> np.ndarray:
        return np.array([fold.scores[arm][metric] for fold in self.folds])

    def summary(self, arm: str, metric: str) -> tuple[float, float]:
        """(mean, sd) of an arm's metric over the folds."""
        values = self.values(arm, metric)
        return float(values.mean()), float(values.std(ddof=1))

    def difference(self, metric: str) -> Difference:
        """real+synthetic minus real, paired by fold."""
        tested = sum(fold.n_test for fold in self.folds)
        trained = sum(fold.n_train_real for fold in self.folds)
        return paired_difference(
            self.values(ARMS[1], metric) - self.values(ARMS[0], metric), tested / trained
        )

    def to_json(self) -> dict[str, Any]:
        """The result as the `--json` object."""
        arms = {}
        for arm in ARMS:
            arms[arm] = {}
            for metric in METRICS:
                mean, sd = self.summary(arm, metric)
                arms[arm][metric] = {"mean": mean, "sd": sd}
        difference = {}
        for metric in METRICS:
            found = self.difference(metric)
            difference[metric] = {"mean": found.mean, "ci": [found.low, found.high]}
        return {
            "arms": arms,
            "difference": difference,
            "folds": [fold.to_json() for fold in self.folds],
            "n_real": self.n_real,
            "n_synthetic": self.n_synthetic,
        }


def labelled(images: ImageSet) -> ImageSet:
    """The slices the classifier learns from: T2W, ADC or DWI with a known lesion status."""
    rows = [
        i
        for i, (sequence, lesion) in enumerate(zip(images.sequences, images.lesions, strict=True))
        if sequence in SEQUENCES and lesion != Lesion.UNKNOWN
    ]
    return images.take(np.array(rows, dtype=np.int64))


def plan_folds(
    real: ImageSet, synthetic: ImageSet, folds: int, repeats: int, seed: int
) -> list[Fold]:
    """Every fold of every repeat (repeat r splits with seed + r - 1), each adding the synthetic
    images but those carrying a held-out patient's id; SynthError for a fold whose training or
    held-out slices are of one lesion status only."""
    patients = len(set(real.patient_ids))
    if patients < folds:
        raise SynthError(
            f"--folds {folds} needs at least {folds} real patients; --real has {patients}: "
            "use fewer folds"
        )
    planned = []
    for repeat in range(1, repeats + 1):
        for number, (train, test) in enumerate(patient_folds(real, folds, seed + repeat - 1), 1):
            tested = frozenset(real.patient_ids[i] for i in test)
            fold = Fold(
                repeat=repeat,
                number=number,
                train=train,
                test=test,
                synthetic=np.array(
                    [i for i, p in enumerate(synthetic.patient_ids) if p not in tested],
                    dtype=np.int64,
                ),
                test_patients=tested,
            )
            for part, rows in (("held-out", test), ("training", train)):
                if len({real.lesions[i] for i in rows}) < 2:
                    raise SynthError(
                        f"the {part} patients of {fold.name} have slices of one lesion status "
                        "only: use fewer --folds, or real images of more patients with and "
                        "without lesions"
                    )
            planned.append(fold)
    return planned


@dataclass(frozen=True)
class SyntheticSource:
    """A checkpoint that made synthetic images: where it was found (None: not found) and the
    patients it records (None: none recorded)."""

    sha256: str
    checkpoint: Path | None
    patients: TrainingPatients | None


def synthetic_sources(manifest: Path, generators: Path | None) -> tuple[list[SyntheticSource], int]:
    """The checkpoints the synthetic images name, looked up in `generators`, and how many
    images name none."""
    rows = read_manifest(manifest)
    named = sorted({row.provenance.get("checkpoint_sha256", "") for row in rows} - {""})
    unnamed = sum(1 for row in rows if not row.provenance.get("checkpoint_sha256"))
    found = find_checkpoints(generators) if generators is not None and named else {}
    sources = []
    for sha256 in named:
        path = found.get(sha256)
        patients = read_checkpoint_info(path).training_patients if path else None
        # Resolved, so that a message names the checkpoint itself rather than a link to it.
        sources.append(SyntheticSource(sha256, path.resolve() if path else None, patients))
    return sources, unnamed


def check_generators(
    folds: list[Fold],
    sources: list[SyntheticSource],
    unnamed: int,
    *,
    generators: Path | None,
    allow_unrecorded: bool,
) -> None:
    """SynthError when a fold would test a patient that a generator of the synthetic images
    was trained on, or, unless `allow_unrecorded`, when that cannot be checked."""
    unchecked = [f"{unnamed} synthetic image(s) name no checkpoint_sha256"] if unnamed else []
    for source in sources:
        if source.checkpoint is None:
            where = f"under {generators}" if generators else "given (--generators)"
            unchecked.append(f"checkpoint {source.sha256[:12]} is not {where}")
        elif source.patients is None:
            unchecked.append(
                f"checkpoint {source.checkpoint} does not record its training patients"
            )
    if unchecked and not allow_unrecorded:
        raise SynthError(
            "cannot check that no fold tests a patient the generator learnt from: "
            + "; ".join(unchecked)
            + ". Pass --generators with the checkpoints (`synth train` records their patients), "
            "or --allow-unrecorded to run unchecked"
        )
    for fold in folds:
        for source in sources:
            if source.patients is None:
                continue
            seen = [patient for patient in fold.test_patients if patient in source.patients]
            if seen:
                raise SynthError(
                    f"{fold.name} would test {len(seen)} patient(s) that checkpoint "
                    f"{source.checkpoint} (sha256 {source.sha256[:12]}) was trained on: the "
                    "synthetic images may carry them into training. Leave the generator's "
                    "training patients out of --real, or use a generator trained without them"
                )


def _joined(parts: list[Labelled]) -> Labelled:
    return Labelled(
        np.concatenate([part.images for part in parts]),
        [label for part in parts for label in part.labels],
        np.concatenate([part.heads for part in parts]),
    )


def _classes(task: Labelled) -> np.ndarray:
    return np.array([label == Lesion.YES for label in task.labels], dtype=np.int64)


def _scores(probability: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    called = probability >= THRESHOLD
    lesion = truth == 1
    return {
        "accuracy": float((called == lesion).mean()),
        "sensitivity": float(called[lesion].mean()),
        "specificity": float((~called[~lesion]).mean()),
        "auc": float(roc_auc_score(lesion, probability)),
    }


def augment(request: AugmentRequest, progress: ProgressCallback | None = None) -> Augmentation:
    """The experiment `request` asks for; `progress(done, total)` counts classifiers trained."""
    epochs, lesion_size = request.classifier_training()
    if round(lesion_size * request.lesion_field) < 8:
        raise SynthError(
            f"--lesion-size {lesion_size} with --lesion-field {request.lesion_field} leaves a "
            "crop under 8 pixels: use a larger size or field"
        )
    views = {"lesion_size": lesion_size, "lesion_field": request.lesion_field}
    real = labelled(load_image_set(request.real, Origin.REAL, UNUSED_SIZE, **views))
    synthetic = labelled(load_image_set(request.synthetic, Origin.SYNTHETIC, UNUSED_SIZE, **views))
    if not len(synthetic):
        raise SynthError(
            f"{request.synthetic}: no T2W, ADC or DWI image with a lesion status (1 or 0) to add"
        )
    folds = plan_folds(real, synthetic, request.folds, request.repeats, request.seed)
    sources, unnamed = synthetic_sources(request.synthetic, request.generators)
    check_generators(
        folds,
        sources,
        unnamed,
        generators=request.generators,
        allow_unrecorded=request.allow_unrecorded,
    )

    widths = C2ST_WIDTHS if request.quick else FIDELITY_WIDTHS
    real_task, synthetic_task = lesion_task(real), lesion_task(synthetic)
    total, done = len(ARMS) * len(folds), 0
    if progress:
        progress(0, total)
    results = []
    for index, fold in enumerate(folds):
        train = Labelled(
            real_task.images[fold.train],
            [real_task.labels[i] for i in fold.train],
            real_task.heads[fold.train],
        )
        added = Labelled(
            synthetic_task.images[fold.synthetic],
            [synthetic_task.labels[i] for i in fold.synthetic],
            synthetic_task.heads[fold.synthetic],
        )
        test = Labelled(
            real_task.images[fold.test],
            [real_task.labels[i] for i in fold.test],
            real_task.heads[fold.test],
        )
        # Equal steps, so that the synthetic arm gains images, not training; equal seeds, so
        # that both arms start from the same weights.
        steps = epoch_steps(len(fold.train), epochs)
        scores = {}
        for arm, fit in zip(ARMS, (train, _joined([train, added])), strict=True):
            model = train_classifier(
                fit.images,
                _classes(fit),
                2,
                steps=steps,
                seed=request.seed + index,
                heads=fit.heads,
                n_heads=len(SEQUENCE_HEADS),
                widths=widths,
                one_cycle=True,
            )
            probability = predict_probabilities(model, test.images, test.heads)[:, 1]
            scores[arm] = _scores(probability, _classes(test))
            done += 1
            if progress:
                progress(done, total)
        results.append(
            FoldResult(
                repeat=fold.repeat,
                fold=fold.number,
                test_patients=len(fold.test_patients),
                n_train_real=len(fold.train),
                n_train_synthetic=len(fold.synthetic),
                n_test=len(fold.test),
                steps=steps,
                scores=scores,
            )
        )
    return Augmentation(
        folds=tuple(results),
        n_real=len(real),
        n_synthetic=len(synthetic),
        n_patients=len(set(real.patient_ids)),
    )


def format_table(augmentation: Augmentation) -> str:
    """A readable report: both arms as mean +- sd over the folds, the paired difference with its
    95% interval, and a table of the folds."""
    folds = augmentation.folds
    repeats = max(fold.repeat for fold in folds)
    lines = [
        f"lesion classifier, slice level: {augmentation.n_real} real images of "
        f"{augmentation.n_patients} patients, {augmentation.n_synthetic} synthetic; "
        f"{len(folds) // repeats} folds x {repeats} repeat(s)",
        f"{'':<13}{'real':<17}{'real+synthetic':<17}difference (95% CI)",
    ]
    for metric in METRICS:
        cells = [
            "{:.3f} +- {:.3f}".format(*augmentation.summary(arm, metric)).ljust(17) for arm in ARMS
        ]
        found = augmentation.difference(metric)
        lines.append(
            f"{metric:<13}{''.join(cells)}{found.mean:+.3f} ({found.low:+.3f} to {found.high:+.3f})"
        )
    lines += [
        f"difference: real+synthetic minus real, t interval over the {len(folds)} paired fold "
        "differences, variance corrected for the training patients folds share "
        "(Nadeau & Bengio 2003)",
        "",
        "repeat fold patients train real train synthetic test steps  "
        + "  ".join(f"{metric[:4]} r / r+s" for metric in METRICS),
    ]
    for fold in folds:
        cells = "  ".join(
            f"{fold.scores[ARMS[0]][metric]:.2f} / {fold.scores[ARMS[1]][metric]:.2f}".ljust(12)
            for metric in METRICS
        )
        lines.append(
            f"{fold.repeat:>6} {fold.fold:>4} {fold.test_patients:>8} {fold.n_train_real:>10} "
            f"{fold.n_train_synthetic:>15} {fold.n_test:>4} {fold.steps:>5}  {cells}".rstrip()
        )
    return "\n".join(lines)
