"""Blinding audit: can trivial features of the display PNGs tell real images from synthetic ones?

Readers see only display renders (same size, mode and empty metadata for every asset), yet the
pixels themselves, and so the PNG's byte size, still differ. If a simple classifier, given only
cues a reader could pick up without reading the image (file size, brightness, contrast, the gray
level histogram, the border), tells the origins apart out of sample, the study is not blind.

Method:
1. Features of every display PNG (`FEATURE_NAMES`).
2. A standardised logistic regression scored out of fold: stratified group K-fold with the
   patient as group (an asset without a patient is its own group), so that no patient is seen
   both in training and in testing. Folds and permutations are seeded.
3. The AUC of the pooled out-of-fold scores (synthetic is the positive class), with DeLong's
   95% interval, and a one-sided permutation test: the whole cross-validation is repeated with
   the origins permuted (among groups when every group has one origin, so that the clustering
   of slices within a patient is kept under the null), p = (1 + #{AUC_perm >= AUC}) / (1 + B).
4. Verdict: a warning when p < alpha. The permutation test decides because it is valid for
   cross-validated, clustered scores; DeLong's interval treats the pooled scores as independent
   and is shown as a description of the effect.

References: Ojala M, Garriga GC (2010). Permutation tests for studying classifier performance.
JMLR 11:1833-1863 (test 1: permuted labels, whole cross-validation repeated).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sqlalchemy import Engine, select

from study.db import transaction
from study.imaging.errors import VTTError
from study.imaging.types import Origin
from study.models import Asset, Case, CaseAsset, Study
from study.stats.roc import delong_auc, empirical_auc, roc_curve_points
from study.storage import AssetStore

HISTOGRAM_BINS = 8
FEATURE_NAMES: tuple[str, ...] = (
    "file size (bytes)",
    "mean gray level",
    "gray level standard deviation",
    *(
        f"histogram {256 // HISTOGRAM_BINS * i}-{256 // HISTOGRAM_BINS * (i + 1) - 1}"
        for i in range(HISTOGRAM_BINS)
    ),
    "border mean",
    "border standard deviation",
    "black pixel share",
    "white pixel share",
)
# The border is the outer 1/16 of the side on every edge (padding bars and vignettes live there).
BORDER_FRACTION = 16
MAX_FOLDS = 5
# Fewer images of either origin than this cannot support a cross-validated verdict.
MIN_PER_ORIGIN = 6
MIN_GROUPS_PER_ORIGIN = 2
DEFAULT_PERMUTATIONS = 200
DEFAULT_ALPHA = 0.05


class BlindingAuditError(VTTError):
    """An audit that cannot run (an unknown study, a display file missing from the store)."""


class Verdict(StrEnum):
    NO_CUE = "no cue found"
    CUE_FOUND = "real and synthetic are separable"
    TOO_FEW = "too few images to tell"


@dataclass(frozen=True)
class FeatureSummary:
    """One feature: its mean per origin and how well it alone separates them (0.5: not at all;
    above 0.5 synthetic images score higher, below 0.5 lower)."""

    name: str
    real_mean: float
    synthetic_mean: float
    auc: float


@dataclass(frozen=True)
class AuditResult:
    n_real: int
    n_synthetic: int
    n_groups: int
    auc: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    permutations: int
    alpha: float
    features: tuple[FeatureSummary, ...]
    verdict: Verdict
    message: str
    roc_fpr: tuple[float, ...] = ()
    roc_tpr: tuple[float, ...] = ()

    @property
    def warning(self) -> bool:
        return self.verdict == Verdict.CUE_FOUND


def display_features(png: bytes) -> np.ndarray:
    """The features of `FEATURE_NAMES` for one display PNG."""
    with Image.open(io.BytesIO(png)) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    side = max(1, min(pixels.shape) // BORDER_FRACTION)
    ring = np.ones(pixels.shape, dtype=bool)
    ring[side:-side, side:-side] = False
    border = pixels[ring]
    histogram = np.histogram(pixels, bins=HISTOGRAM_BINS, range=(0, 256))[0] / pixels.size
    return np.array(
        [
            len(png),
            pixels.mean(),
            pixels.std(),
            *histogram,
            border.mean(),
            border.std(),
            np.mean(pixels == 0),
            np.mean(pixels == 255),
        ]
    )


def _folds(labels: np.ndarray, groups: np.ndarray, seed: int) -> list[tuple[np.ndarray, ...]]:
    n_splits = min(MAX_FOLDS, *(len(np.unique(groups[labels == k])) for k in (0, 1)))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def _out_of_fold_scores(
    features: np.ndarray, labels: np.ndarray, folds: list[tuple[np.ndarray, ...]]
) -> np.ndarray:
    scores = np.zeros(len(labels))
    for train, test in folds:
        if len(np.unique(labels[train])) < 2:
            # A training fold of one origin can only predict that origin's share.
            scores[test] = labels[train].mean()
            continue
        # Standardised on the training fold only; newton-cholesky is exact and, for a few
        # features, much faster than lbfgs, which matters with hundreds of permutations.
        center = features[train].mean(axis=0)
        scale = features[train].std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(solver="newton-cholesky", max_iter=100)
        model.fit((features[train] - center) / scale, labels[train])
        scores[test] = model.predict_proba((features[test] - center) / scale)[:, 1]
    return scores


def _permuted(labels: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Origins permuted among groups when each group has one origin, else among images."""
    names, inverse = np.unique(groups, return_inverse=True)
    per_group = np.zeros(len(names))
    np.maximum.at(per_group, inverse, labels)
    if np.array_equal(per_group[inverse], labels):
        return rng.permutation(per_group)[inverse]
    return rng.permutation(labels)


def separability(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    seed: int = 0,
    permutations: int = DEFAULT_PERMUTATIONS,
) -> tuple[np.ndarray, float, float]:
    """Out-of-fold scores, their AUC and the permutation p-value (labels: 1 = synthetic)."""
    labels = np.asarray(labels, dtype=int)
    folds = _folds(labels, groups, seed)
    scores = _out_of_fold_scores(features, labels, folds)
    auc = empirical_auc(scores, labels == 1)
    rng = np.random.default_rng(seed)
    as_good = 0
    for _ in range(permutations):
        shuffled = _permuted(labels, groups, rng)
        null_scores = _out_of_fold_scores(features, shuffled, _folds(shuffled, groups, seed))
        as_good += empirical_auc(null_scores, shuffled == 1) >= auc
    return scores, auc, (1 + as_good) / (1 + permutations)


def _feature_summaries(features: np.ndarray, labels: np.ndarray) -> tuple[FeatureSummary, ...]:
    synthetic = labels == 1
    return tuple(
        FeatureSummary(
            name,
            float(features[~synthetic, j].mean()) if (~synthetic).any() else float("nan"),
            float(features[synthetic, j].mean()) if synthetic.any() else float("nan"),
            empirical_auc(features[:, j], synthetic)
            if synthetic.any() and (~synthetic).any()
            else float("nan"),
        )
        for j, name in enumerate(FEATURE_NAMES)
    )


def _audited_assets(engine: Engine, study_id: int | None) -> list[tuple[int, Origin, str, str]]:
    """(id, origin, patient id, display sha256) of the assets to audit."""
    query = select(Asset.id, Asset.origin, Asset.patient_id, Asset.display_sha256)
    with transaction(engine) as session:
        if study_id is not None:
            if session.get(Study, study_id) is None:
                raise BlindingAuditError(f"there is no study with id {study_id}")
            query = (
                query.join(CaseAsset, CaseAsset.asset_id == Asset.id)
                .join(Case, Case.id == CaseAsset.case_id)
                .where(Case.study_id == study_id)
                .distinct()
            )
        return [tuple(row) for row in session.execute(query.order_by(Asset.id))]


def audit_assets(
    engine: Engine,
    store: AssetStore,
    *,
    study_id: int | None = None,
    seed: int = 0,
    permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = DEFAULT_ALPHA,
) -> AuditResult:
    """Audit the display renders of the library, or of one study's cases."""
    assets = _audited_assets(engine, study_id)
    rows = []
    for asset_id, _, _, display_sha in assets:
        path = store.path(display_sha, ".png")
        if not path.is_file():
            raise BlindingAuditError(
                f"the display image of asset {asset_id} is missing from the asset store "
                f"({path}); restore the store or import the image again"
            )
        rows.append(display_features(path.read_bytes()))
    features = np.array(rows).reshape(len(rows), len(FEATURE_NAMES))
    labels = np.array([origin == Origin.SYNTHETIC for _, origin, _, _ in assets], dtype=int)
    groups = np.array(
        [
            f"patient:{patient}" if patient else f"asset:{asset_id}"
            for asset_id, _, patient, _ in assets
        ]
    )
    n_synthetic = int(labels.sum())
    n_real = len(labels) - n_synthetic
    groups_per_origin = [len(np.unique(groups[labels == k])) for k in (0, 1)]
    summaries = _feature_summaries(features, labels)
    common = {
        "n_real": n_real,
        "n_synthetic": n_synthetic,
        "n_groups": len(np.unique(groups)),
        "permutations": permutations,
        "alpha": alpha,
        "features": summaries,
    }
    if min(n_real, n_synthetic) < MIN_PER_ORIGIN or min(groups_per_origin) < MIN_GROUPS_PER_ORIGIN:
        return AuditResult(
            **common,
            auc=None,
            ci=None,
            p_value=None,
            verdict=Verdict.TOO_FEW,
            message=(
                f"The audit needs at least {MIN_PER_ORIGIN} real and {MIN_PER_ORIGIN} synthetic "
                f"images from at least {MIN_GROUPS_PER_ORIGIN} patients (or unlinked images) "
                f"each; there are {n_real} real and {n_synthetic} synthetic."
            ),
        )
    scores, auc, p_value = separability(
        features, labels, groups, seed=seed, permutations=permutations
    )
    interval = delong_auc(scores, labels == 1)
    roc = roc_curve_points(scores, labels == 1)
    cue = p_value < alpha
    strongest = max(summaries, key=lambda s: abs(s.auc - 0.5))
    if cue:
        message = (
            f"A classifier given only trivial cues tells real from synthetic images apart "
            f"(AUC {auc:.2f}, permutation p = {p_value:.3g}): readers could do the same without "
            f"judging realism. The strongest single cue is {strongest.name} (AUC "
            f"{strongest.auc:.2f}); match it between the origins before running the study."
        )
    else:
        message = (
            f"No trivial cue separates real from synthetic images beyond chance (AUC "
            f"{auc:.2f}, permutation p = {p_value:.3g})."
        )
    return AuditResult(
        **common,
        auc=auc,
        ci=(interval.low, interval.high),
        p_value=p_value,
        verdict=Verdict.CUE_FOUND if cue else Verdict.NO_CUE,
        message=message,
        roc_fpr=tuple(roc["fpr"].tolist()),
        roc_tpr=tuple(roc["tpr"].tolist()),
    )


def audit_figure(result: AuditResult) -> go.Figure:
    """The out-of-fold ROC curve next to each feature's own AUC (0.5 means no cue)."""
    figure = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.4, 0.6],
        subplot_titles=("Classifier on all features (out of fold)", "Each feature alone"),
    )
    if result.roc_fpr:
        figure.add_trace(
            go.Scatter(
                x=result.roc_fpr, y=result.roc_tpr, mode="lines", name=f"AUC {result.auc:.2f}"
            ),
            row=1,
            col=1,
        )
    figure.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "gray"}, name="chance"
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Bar(
            x=[s.auc for s in result.features],
            y=[s.name for s in result.features],
            orientation="h",
            name="feature AUC",
            customdata=[[s.real_mean, s.synthetic_mean] for s in result.features],
            hovertemplate="%{y}: AUC %{x:.2f}<br>real mean %{customdata[0]:.3g}, "
            "synthetic mean %{customdata[1]:.3g}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    figure.add_vline(x=0.5, line_dash="dot", line_color="gray", row=1, col=2)
    figure.update_xaxes(title_text="false positive rate (real called synthetic)", row=1, col=1)
    figure.update_yaxes(title_text="true positive rate (synthetic found)", row=1, col=1)
    figure.update_xaxes(title_text="AUC, synthetic as positive", range=[0, 1], row=1, col=2)
    figure.update_layout(showlegend=False, height=450, margin={"t": 40})
    return figure
