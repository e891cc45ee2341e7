"""Blinding audit: can trivial features of the display PNGs tell real images from synthetic ones?

Readers see only display renders: same size, mode, empty metadata and, since `render_png`
writes uncompressed PNGs, the same byte length for every asset; yet the pixels themselves still
differ. If a simple classifier, given only cues a reader could pick up without reading the image
(file size, brightness, contrast, the gray level histogram, the border), tells the origins apart
out of sample, the study is not blind.

Method:
1. Features (`FEATURE_NAMES`) of what a reader's browser receives for every image at the
   default view: the asset's canonical array rendered by `render_png` at the configured size,
   exactly as `study.rendering` does. Not the stored display file: it was made at import, at the
   render size of that day and by the encoder of that day (before uncompressed renders, its
   length followed its content), so it can differ from what readers get now.
2. A standardised logistic regression scored out of fold: stratified group K-fold with the
   patient as group (an asset without a patient is its own group), so that no patient is seen
   both in training and in testing. Folds and permutations are seeded.
3. The AUC of the pooled out-of-fold scores (synthetic is the positive class), with DeLong's
   95% interval, and a one-sided permutation test: the whole cross-validation is repeated with
   the origins permuted (among groups when every group has one origin, so that the clustering
   of slices within a patient is kept under the null), p = (1 + #{AUC_perm >= AUC}) / (1 + B).
4. Steps 2-3 run on all images pooled and again within each sequence (T2W, ADC, DWI, other):
   a cue can separate the origins within every sequence yet cancel out when they are pooled
   (T2W synthetic brighter, ADC synthetic darker), and readers see one sequence at a time. A
   scope with fewer than `MIN_PER_ORIGIN` images or `MIN_GROUPS_PER_ORIGIN` groups of either
   origin gets the verdict "too few images to tell".
5. Verdict per scope: a cue when p < alpha; the audit warns when any scope has one. Each scope
   is tested at alpha without a correction for the several scopes, so that a real cue within
   one sequence is not diluted: the audit errs towards warning, a false alarm costing a look at
   the features and a missed cue costing the study its blinding. The permutation test decides
   because it is valid for cross-validated, clustered scores; DeLong's interval treats the
   pooled scores as independent and is shown as a description of the effect.

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

from study import settings
from study.db import transaction
from study.imaging.canonical import canonical_from_bytes
from study.imaging.errors import VTTError
from study.imaging.render import render_png
from study.imaging.types import Origin, Sequence
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
POOLED = "all sequences"


class BlindingAuditError(VTTError):
    """An audit that cannot run (an unknown study, a canonical file missing from the store)."""


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
class Separation:
    """The separability analysis of one scope: all audited images pooled, or one sequence's."""

    scope: str
    n_real: int
    n_synthetic: int
    n_groups: int
    auc: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    features: tuple[FeatureSummary, ...]
    verdict: Verdict
    message: str
    roc_fpr: tuple[float, ...] = ()
    roc_tpr: tuple[float, ...] = ()

    @property
    def warning(self) -> bool:
        return self.verdict == Verdict.CUE_FOUND


@dataclass(frozen=True)
class AuditResult:
    """The pooled analysis, one per sequence present, and the audit's verdict over them all."""

    pooled: Separation
    by_sequence: tuple[Separation, ...]
    permutations: int
    alpha: float

    @property
    def separating(self) -> tuple[Separation, ...]:
        """The scopes (pooled first, then sequences) where a cue separates the origins."""
        return tuple(s for s in (self.pooled, *self.by_sequence) if s.warning)

    @property
    def warning(self) -> bool:
        """True when real and synthetic separate pooled or within any sequence."""
        return bool(self.separating)

    @property
    def verdict(self) -> Verdict:
        """A cue when any scope has one; else the pooled verdict (no cue, or too few images)."""
        if self.warning:
            return Verdict.CUE_FOUND
        return self.pooled.verdict

    @property
    def message(self) -> str:
        """Each separating scope's message, or the pooled one and the sequences left unchecked."""
        if self.warning:
            return " ".join(s.message for s in self.separating)
        unchecked = [s.scope for s in self.by_sequence if s.verdict == Verdict.TOO_FEW]
        if self.pooled.verdict == Verdict.TOO_FEW or not unchecked:
            return self.pooled.message
        return (
            f"{self.pooled.message} Too few images to check these sequences on their own: "
            f"{', '.join(unchecked)}."
        )


def display_features(png: bytes) -> np.ndarray:
    """The features of `FEATURE_NAMES` for one display PNG (its length in bytes included)."""
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


def _audited_assets(
    engine: Engine, study_id: int | None
) -> list[tuple[int, Origin, Sequence, str, str]]:
    """(id, origin, sequence, patient id, canonical sha256) of the assets to audit."""
    query = select(Asset.id, Asset.origin, Asset.sequence, Asset.patient_id, Asset.canonical_sha256)
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


def _received_png(store: AssetStore, asset_id: int, canonical_sha: str, size: int) -> bytes:
    """The PNG a reader's browser receives for this asset at the default view."""
    path = store.path(canonical_sha, ".npy")
    if not path.is_file():
        raise BlindingAuditError(
            f"the canonical image of asset {asset_id} is missing from the asset store "
            f"({path}); restore the store or import the image again"
        )
    return render_png(canonical_from_bytes(path.read_bytes()), size=size)


def _separation(
    scope: str,
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    seed: int,
    permutations: int,
    alpha: float,
) -> Separation:
    """The analysis of one scope; `scope` names it in the message ("all sequences", "T2W")."""
    n_synthetic = int(labels.sum())
    n_real = len(labels) - n_synthetic
    groups_per_origin = [len(np.unique(groups[labels == k])) for k in (0, 1)]
    summaries = _feature_summaries(features, labels)
    common = {
        "scope": scope,
        "n_real": n_real,
        "n_synthetic": n_synthetic,
        "n_groups": len(np.unique(groups)),
        "features": summaries,
    }
    where = "Pooled over all sequences" if scope == POOLED else f"Within {scope}"
    if min(n_real, n_synthetic) < MIN_PER_ORIGIN or min(groups_per_origin) < MIN_GROUPS_PER_ORIGIN:
        return Separation(
            **common,
            auc=None,
            ci=None,
            p_value=None,
            verdict=Verdict.TOO_FEW,
            message=(
                f"{where}: the audit needs at least {MIN_PER_ORIGIN} real and {MIN_PER_ORIGIN} "
                f"synthetic images from at least {MIN_GROUPS_PER_ORIGIN} patients (or unlinked "
                f"images) each; there are {n_real} real and {n_synthetic} synthetic."
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
            f"{where}, a classifier given only trivial cues tells real from synthetic images "
            f"apart (AUC {auc:.2f}, permutation p = {p_value:.3g}): readers could do the same "
            f"without judging realism. The strongest single cue is {strongest.name} (AUC "
            f"{strongest.auc:.2f}); match it between the origins before running the study."
        )
    else:
        message = (
            f"{where}, no trivial cue separates real from synthetic images beyond chance (AUC "
            f"{auc:.2f}, permutation p = {p_value:.3g})."
        )
    return Separation(
        **common,
        auc=auc,
        ci=(interval.low, interval.high),
        p_value=p_value,
        verdict=Verdict.CUE_FOUND if cue else Verdict.NO_CUE,
        message=message,
        roc_fpr=tuple(roc["fpr"].tolist()),
        roc_tpr=tuple(roc["tpr"].tolist()),
    )


def audit_assets(
    engine: Engine,
    store: AssetStore,
    *,
    study_id: int | None = None,
    seed: int = 0,
    permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = DEFAULT_ALPHA,
) -> AuditResult:
    """Audit what readers receive for the library's images, or for one study's, pooled and
    within each sequence present."""
    assets = _audited_assets(engine, study_id)
    size = settings.render_size()
    rows = [
        display_features(_received_png(store, asset_id, canonical_sha, size))
        for asset_id, _, _, _, canonical_sha in assets
    ]
    features = np.array(rows).reshape(len(rows), len(FEATURE_NAMES))
    labels = np.array([origin == Origin.SYNTHETIC for _, origin, _, _, _ in assets], dtype=int)
    sequences = np.array([str(sequence) for _, _, sequence, _, _ in assets])
    groups = np.array(
        [
            f"patient:{patient}" if patient else f"asset:{asset_id}"
            for asset_id, _, _, patient, _ in assets
        ]
    )
    options = {"seed": seed, "permutations": permutations, "alpha": alpha}
    by_sequence = []
    for sequence in Sequence:
        within = sequences == sequence
        if within.any():
            by_sequence.append(
                _separation(
                    str(sequence), features[within], labels[within], groups[within], **options
                )
            )
    return AuditResult(
        pooled=_separation(POOLED, features, labels, groups, **options),
        by_sequence=tuple(by_sequence),
        permutations=permutations,
        alpha=alpha,
    )


def audit_figure(result: AuditResult) -> go.Figure:
    """Out-of-fold ROC curves (pooled and per sequence) next to each feature's own AUC per scope
    (0.5 means no cue); scopes with too few images are left out."""
    analysed = [s for s in (result.pooled, *result.by_sequence) if s.auc is not None]
    figure = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.4, 0.6],
        subplot_titles=("Classifier on all features (out of fold)", "Each feature alone"),
    )
    for separation in analysed:
        figure.add_trace(
            go.Scatter(
                x=separation.roc_fpr,
                y=separation.roc_tpr,
                mode="lines",
                name=f"{separation.scope}: AUC {separation.auc:.2f}",
                legendgroup=separation.scope,
            ),
            row=1,
            col=1,
        )
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "gray"},
            name="chance",
            showlegend=False,
        ),
        row=1,
        col=1,
    )
    for separation in analysed:
        figure.add_trace(
            go.Bar(
                x=[s.auc for s in separation.features],
                y=[s.name for s in separation.features],
                orientation="h",
                name=f"{separation.scope}: feature AUC",
                legendgroup=separation.scope,
                customdata=[[s.real_mean, s.synthetic_mean] for s in separation.features],
                hovertemplate=f"{separation.scope}, "
                "%{y}: AUC %{x:.2f}<br>real mean %{customdata[0]:.3g}, "
                "synthetic mean %{customdata[1]:.3g}<extra></extra>",
            ),
            row=1,
            col=2,
        )
    figure.add_vline(x=0.5, line_dash="dot", line_color="gray", row=1, col=2)
    figure.update_xaxes(title_text="false positive rate (real called synthetic)", row=1, col=1)
    figure.update_yaxes(title_text="true positive rate (synthetic found)", row=1, col=1)
    figure.update_xaxes(title_text="AUC, synthetic as positive", range=[0, 1], row=1, col=2)
    figure.update_layout(
        barmode="group", height=450 + 60 * max(0, len(analysed) - 1), margin={"t": 40}
    )
    return figure
