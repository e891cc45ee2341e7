"""Calibration of readers' confidence in their real/synthetic calls.

A reader who calls an image real or synthetic rates their confidence c on the question's
scale 1..k (the template's: "1 = guessing, 5 = certain"). The scale's ends name
probabilities of being right: guessing between two answers is right half the time, certainty
always. The stated probability of level c is therefore the half-range scale of two-answer
calibration studies (Lichtenstein, Fischhoff & Phillips 1982), linear in between:

    p(c) = 0.5 + 0.5 (c - 1)/(k - 1)          (k = 5: 0.5, 0.625, 0.75, 0.875, 1.0)

Against whether each call was right (y = 1 right, 0 wrong):

- Brier score (Brier 1950): mean (p - y)^2; 0 is perfect, 0.25 is always saying "guessing".
  (scikit-learn's `brier_score_loss`.) Calling a reader's p the probability of "synthetic"
  instead (p when called synthetic, 1 - p when called real) against the truth gives the same
  score, term by term.
- Expected calibration error (Naeini, Cooper & Hauskrecht 2015; Guo et al. 2017):
  ECE = sum_b (n_b / N) |acc_b - p_b|. Binning: one bin per level of the confidence scale
  (k bins): the stated probabilities are discrete, so every reading of a bin states the same
  p_b and no equal-width binning is needed; levels a reader never used are empty bins and add
  nothing.
- Reliability diagram (Murphy & Winkler 1977): acc_b against p_b per level, with the
  diagonal of perfect calibration; each level's share right comes with its Wilson interval.
  Points below the diagonal are overconfidence.

Pooled rows count every reading as independent, as the pooled metrics tables do.

References
- Brier GW (1950). Verification of forecasts expressed in terms of probability. Monthly
  Weather Review 78:1-3.
- Lichtenstein S, Fischhoff B, Phillips LD (1982). Calibration of probabilities: the state of
  the art to 1980. In Kahneman D, Slovic P, Tversky A (eds.), Judgment under uncertainty:
  heuristics and biases, 306-334. Cambridge University Press.
- Murphy AH, Winkler RL (1977). Reliability of subjective probability forecasts of
  precipitation and temperature. Applied Statistics 26:41-47.
- Naeini MP, Cooper GF, Hauskrecht M (2015). Obtaining well calibrated probabilities using
  Bayesian binning. Proceedings of AAAI 29:2901-2907.
- Guo C, Pleiss G, Sun Y, Weinberger KQ (2017). On calibration of modern neural networks.
  Proceedings of the 34th ICML, PMLR 70:1321-1330.

Example (confidence 5 and right, 1 and wrong, on a 1-5 scale):
    >>> stated_probability([5, 1], levels=5).tolist()
    [1.0, 0.5]
    >>> brier_score([True, False], [1.0, 0.5])
    0.125
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from study.stats import StatsError
from study.stats.proportions import wilson_interval
from study.stats.tables import POOLED

DEFAULT_LEVELS = 5
SUMMARY_COLUMNS: tuple[str, ...] = (
    "reader",
    "n",
    "mean_stated",
    "accuracy",
    "overconfidence",
    "brier",
    "ece",
)
BIN_COLUMNS: tuple[str, ...] = (
    "reader",
    "confidence",
    "stated",
    "n",
    "correct",
    "accuracy",
    "accuracy_wilson_low",
    "accuracy_wilson_high",
)


def stated_probability(
    confidence: Sequence[int] | np.ndarray | pd.Series, levels: int = DEFAULT_LEVELS
) -> np.ndarray:
    """The probability of being right that confidence levels 1..`levels` state (module
    docstring); `StatsError` for a level outside the scale."""
    if levels < 2:
        raise StatsError(f"a confidence scale needs at least two levels, not {levels}")
    values = np.asarray(confidence, dtype=float)
    outside = (values < 1) | (values > levels) | (values != np.round(values))
    if outside.any():
        raise StatsError(
            f"confidence {values[outside][0]:g} is not a level of the 1-{levels} scale"
        )
    return 0.5 + 0.5 * (values - 1) / (levels - 1)


def brier_score(
    correct: Sequence[bool] | np.ndarray | pd.Series,
    stated: Sequence[float] | np.ndarray | pd.Series,
) -> float:
    """Mean squared difference between the stated probability and being right (1) or wrong."""
    right = np.asarray(correct, dtype=bool)
    probability = np.asarray(stated, dtype=float)
    if right.shape != probability.shape or right.ndim != 1 or len(right) == 0:
        raise StatsError("a Brier score needs as many stated probabilities as calls, at least one")
    return float(brier_score_loss(right.astype(int), probability, pos_label=1))


def reliability_bins(
    correct: Sequence[bool] | np.ndarray | pd.Series,
    confidence: Sequence[int] | np.ndarray | pd.Series,
    levels: int = DEFAULT_LEVELS,
    *,
    interval: float = 0.95,
) -> pd.DataFrame:
    """One row per level of the scale: confidence, stated, n, correct, accuracy and its
    Wilson interval (nan for a level nobody used)."""
    right = np.asarray(correct, dtype=bool)
    level = np.asarray(confidence, dtype=float)
    if right.shape != level.shape:
        raise StatsError("every call needs its confidence rating")
    stated_probability(level, levels)
    rows = []
    for c in range(1, levels + 1):
        chosen = level == c
        n, k = int(chosen.sum()), int(right[chosen].sum())
        low, high = wilson_interval(k, n, interval)
        rows.append(
            {
                "confidence": c,
                "stated": float(stated_probability([c], levels)[0]),
                "n": n,
                "correct": k,
                "accuracy": k / n if n else np.nan,
                "accuracy_wilson_low": low,
                "accuracy_wilson_high": high,
            }
        )
    return pd.DataFrame(rows, columns=list(BIN_COLUMNS[1:]))


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """sum_b (n_b / N) |acc_b - p_b| over the bins of `reliability_bins` (empty ones add 0)."""
    used = bins[bins["n"] > 0]
    total = used["n"].sum()
    if total == 0:
        raise StatsError("an expected calibration error needs at least one rated call")
    return float((used["n"] / total * (used["accuracy"] - used["stated"]).abs()).sum())


@dataclass(frozen=True)
class CalibrationTables:
    """`summary`: per reader and pooled (`POOLED`), n, mean stated probability, accuracy,
    overconfidence (their difference), Brier score and ECE; `bins`: the reliability diagram's
    points of each (`BIN_COLUMNS`)."""

    summary: pd.DataFrame
    bins: pd.DataFrame


def calibration_tables(
    scores: pd.DataFrame, *, levels: int = DEFAULT_LEVELS, interval: float = 0.95
) -> CalibrationTables:
    """Calibration of every reader, and of all readings pooled, from the confidence-rated
    calls of `study.stats.roc.ordinal_scores` (columns reader, truth, call, confidence)."""
    missing = [c for c in ("reader", "truth", "call", "confidence") if c not in scores.columns]
    if missing:
        raise StatsError(f"the rated calls lack column(s) {', '.join(missing)}")
    if scores.empty:
        raise StatsError("no real/synthetic call was rated with a confidence question")
    calls = scores.assign(
        reader=scores["reader"].astype(str),
        correct=scores["truth"].astype(bool) == (scores["call"] == "synthetic"),
        stated=stated_probability(scores["confidence"], levels),
    )
    groups = [*calls.groupby("reader", sort=True), (POOLED, calls)]
    summary, bins = [], []
    for reader, group in groups:
        levels_of = reliability_bins(
            group["correct"], group["confidence"], levels, interval=interval
        )
        bins.append(levels_of.assign(reader=reader))
        mean_stated, accuracy = float(group["stated"].mean()), float(group["correct"].mean())
        summary.append(
            {
                "reader": reader,
                "n": len(group),
                "mean_stated": mean_stated,
                "accuracy": accuracy,
                "overconfidence": mean_stated - accuracy,
                "brier": brier_score(group["correct"], group["stated"]),
                "ece": expected_calibration_error(levels_of),
            }
        )
    return CalibrationTables(
        pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS)),
        pd.concat(bins, ignore_index=True)[list(BIN_COLUMNS)],
    )
