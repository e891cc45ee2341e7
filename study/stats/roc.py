"""ROC analysis of real/synthetic calls rated with confidence.

With confidence c in 1..5, the ordinal score of a reading is c when the reader called the image
synthetic and -c when real: ten levels from "surely real" (-5) to "surely synthetic" (5). The
truth is origin == synthetic (the positive class).

References
- Hanley JA, McNeil BJ (1982). The meaning and use of the area under a ROC curve. Radiology
  143:29-36: the trapezoidal AUC equals the Mann-Whitney statistic U/(m n).
- DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two or more
  correlated ROC curves: a nonparametric approach. Biometrics 44:837-845: with placement
  values V10(X_i) = mean_j psi(X_i, Y_j) and V01(Y_j) = mean_i psi(X_i, Y_j),
  Var(AUC) = S10/m + S01/n (S: sample variances of the placement values).

Example (3 and 5 positive, 1, 3 and 4 negative; worked out in tests/study/stats/test_roc.py):
    >>> result = delong_auc([3, 5, 1, 3, 4], [True, True, False, False, False])
    >>> result.auc, round(result.variance, 6)
    (0.75, 0.083333)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from study.stats import StatsError
from study.stats.tables import POSITIVE_CLASS, analysis_rows, answer_text


class AucResult(NamedTuple):
    """Empirical AUC with its DeLong variance, standard error and Wald interval (clipped to
    [0, 1])."""

    auc: float
    variance: float
    se: float
    low: float
    high: float
    n_positive: int
    n_negative: int


def _split(
    scores: Sequence[float] | np.ndarray, truth: Sequence[bool] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(scores, dtype=float)
    positive = np.asarray(truth, dtype=bool)
    if values.shape != positive.shape or values.ndim != 1:
        raise StatsError("scores and truth must be two equally long lists")
    if np.isnan(values).any():
        raise StatsError("scores must not be missing")
    return values[positive], values[~positive]


def placement_values(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong placement values in O(n log n) by binary search in the sorted other class.

    V10 of a positive: the share of negatives scored below it, ties counting half.
    V01 of a negative: the share of positives scored above it, ties counting half.
    Both average to the AUC.
    """
    sorted_negatives = np.sort(negatives)
    sorted_positives = np.sort(positives)
    below = np.searchsorted(sorted_negatives, positives, side="left")
    below_or_tied = np.searchsorted(sorted_negatives, positives, side="right")
    v10 = (below + below_or_tied) / (2 * len(negatives))
    under = np.searchsorted(sorted_positives, negatives, side="left")
    under_or_tied = np.searchsorted(sorted_positives, negatives, side="right")
    v01 = 1 - (under + under_or_tied) / (2 * len(positives))
    return v10, v01


def empirical_auc(
    scores: Sequence[float] | np.ndarray, truth: Sequence[bool] | np.ndarray
) -> float:
    """Trapezoidal (Wilcoxon) AUC: P(positive scored higher) + P(tie)/2."""
    positives, negatives = _split(scores, truth)
    if len(positives) == 0 or len(negatives) == 0:
        raise StatsError("an AUC needs at least one positive and one negative case")
    v10, _ = placement_values(positives, negatives)
    return float(v10.mean())


def delong_auc(
    scores: Sequence[float] | np.ndarray,
    truth: Sequence[bool] | np.ndarray,
    *,
    confidence: float = 0.95,
) -> AucResult:
    """Empirical AUC with DeLong's (1988) variance: S10/m + S01/n, both with divisor m-1 and
    n-1. Needs at least two positive and two negative cases."""
    positives, negatives = _split(scores, truth)
    m, n = len(positives), len(negatives)
    if m < 2 or n < 2:
        raise StatsError(
            f"DeLong's variance needs at least two positive and two negative cases, not {m} and {n}"
        )
    v10, v01 = placement_values(positives, negatives)
    auc = float(v10.mean())
    variance = float(v10.var(ddof=1) / m + v01.var(ddof=1) / n)
    se = math.sqrt(variance)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    return AucResult(auc, variance, se, max(0.0, auc - z * se), min(1.0, auc + z * se), m, n)


def roc_curve_points(
    scores: Sequence[float] | np.ndarray, truth: Sequence[bool] | np.ndarray
) -> pd.DataFrame:
    """Empirical ROC operating points, calling positive every score >= threshold.

    Columns threshold, fpr, tpr; thresholds from +inf (nothing positive, (0, 0)) down through
    every distinct score (the last gives (1, 1)). Joining the points with straight lines gives
    the curve whose area is `empirical_auc`.
    """
    positives, negatives = _split(scores, truth)
    if len(positives) == 0 or len(negatives) == 0:
        raise StatsError("an ROC curve needs at least one positive and one negative case")
    thresholds = np.unique(np.concatenate([positives, negatives]))[::-1]
    sorted_positives, sorted_negatives = np.sort(positives), np.sort(negatives)
    tpr = 1 - np.searchsorted(sorted_positives, thresholds, side="left") / len(positives)
    fpr = 1 - np.searchsorted(sorted_negatives, thresholds, side="left") / len(negatives)
    return pd.DataFrame(
        {
            "threshold": np.concatenate([[np.inf], thresholds]),
            "fpr": np.concatenate([[0.0], fpr]),
            "tpr": np.concatenate([[0.0], tpr]),
        }
    )


def ordinal_scores(
    tidy: pd.DataFrame, *, confidence_question_id: int | None = None
) -> pd.DataFrame:
    """One row per reader x case with a real/synthetic call and its confidence.

    Columns reader, case_id, sequence, origin, truth (origin == synthetic), call, confidence,
    score (confidence if called synthetic, else -confidence). Practice rows, repeated
    presentations and mixed-origin cases are left out, and so are readings lacking either
    answer. When a study asks several confidence questions, `confidence_question_id` names the
    one that rates the real/synthetic call.
    """
    rows = analysis_rows(tidy)
    rows = rows.assign(answer=answer_text(rows["value"]), origin=answer_text(rows["origin"]))
    rows = rows[rows["answer"].notna() & rows["origin"].isin(["real", "synthetic"])]
    unit = ["reader", "case_id"]
    calls = rows[rows["question_kind"] == "real_or_synthetic"]
    confidences = rows[rows["question_kind"] == "confidence"]
    if confidence_question_id is not None:
        confidences = confidences[confidences["question_id"] == confidence_question_id]
    elif confidences["question_id"].nunique() > 1:
        raise StatsError(
            "the study asks several confidence questions "
            f"({', '.join(map(str, sorted(confidences['question_id'].unique())))}); "
            "name the one that rates the real/synthetic call with confidence_question_id"
        )
    for name, part in (("real_or_synthetic", calls), ("confidence", confidences)):
        if part.duplicated(unit).any():
            first = part[part.duplicated(unit)].iloc[0]
            raise StatsError(
                f"reader {first['reader']} has more than one {name} answer for case "
                f"{first['case_id']}"
            )
    bad_calls = calls[~calls["answer"].isin(["real", "synthetic"])]
    if len(bad_calls):
        raise StatsError(
            f"real_or_synthetic answers must be 'real' or 'synthetic', "
            f"found {bad_calls['answer'].iloc[0]!r}"
        )
    level = pd.to_numeric(confidences["answer"], errors="coerce")
    out_of_range = confidences["answer"][~level.isin([1, 2, 3, 4, 5])]
    if len(out_of_range):
        raise StatsError(f"confidence answers must be 1-5, found {out_of_range.iloc[0]!r}")
    joined = calls[[*unit, "sequence", "origin", "answer"]].merge(
        confidences.assign(confidence=level.astype(int))[[*unit, "confidence"]], on=unit
    )
    called_synthetic = joined["answer"] == "synthetic"
    return pd.DataFrame(
        {
            "reader": joined["reader"],
            "case_id": joined["case_id"],
            "sequence": joined["sequence"],
            "origin": joined["origin"],
            "truth": joined["origin"] == "synthetic",
            "call": joined["answer"],
            "confidence": joined["confidence"],
            "score": np.where(called_synthetic, joined["confidence"], -joined["confidence"]),
        }
    )


def auc_table(
    tidy: pd.DataFrame,
    *,
    confidence: float = 0.95,
    confidence_question_id: int | None = None,
) -> pd.DataFrame:
    """Per reader: empirical AUC of the ordinal score with DeLong standard error and interval.

    Columns reader, positive_class, n_positive, n_negative, auc, se, auc_low, auc_high. A
    reader with fewer than two positive or negative cases keeps a row without an interval
    (se, auc_low and auc_high missing; auc missing too without a case of either class), so
    that one such reader does not empty the table. For the readers as a population use
    `study.stats.mrmc` on `mrmc_long_frame(tidy)`.
    """
    scores = ordinal_scores(tidy, confidence_question_id=confidence_question_id)
    rows = []
    for reader, group in scores.groupby("reader", sort=True):
        positive = int(group["truth"].sum())
        negative = len(group) - positive
        if positive >= 2 and negative >= 2:
            result = delong_auc(group["score"], group["truth"], confidence=confidence)
            auc, se, low, high = result.auc, result.se, result.low, result.high
        else:
            defined = positive >= 1 and negative >= 1
            auc = empirical_auc(group["score"], group["truth"]) if defined else math.nan
            se = low = high = math.nan
        rows.append(
            {
                "reader": reader,
                "positive_class": POSITIVE_CLASS["real_or_synthetic"],
                "n_positive": positive,
                "n_negative": negative,
                "auc": auc,
                "se": se,
                "auc_low": low,
                "auc_high": high,
            }
        )
    columns = ["reader", "positive_class", "n_positive", "n_negative", "auc", "se"]
    return pd.DataFrame(rows, columns=[*columns, "auc_low", "auc_high"])


def mrmc_long_frame(
    tidy: pd.DataFrame,
    *,
    treatment: str | None = None,
    confidence_question_id: int | None = None,
) -> pd.DataFrame:
    """The ordinal scores in the long format of `study.stats.mrmc`: reader, treatment, case,
    truth (1 synthetic, 0 real), rating (the ten-level score).

    Without `treatment` every reading belongs to one treatment, "all"; with it, the column of
    that name is the treatment (the analysis then needs every case read in every treatment).
    """
    scores = ordinal_scores(tidy, confidence_question_id=confidence_question_id)
    return pd.DataFrame(
        {
            "reader": scores["reader"].astype(str),
            "treatment": scores[treatment].astype(str) if treatment else "all",
            "case": scores["case_id"].astype(str),
            "truth": scores["truth"].astype(int),
            "rating": scores["score"].astype(float),
        }
    )
