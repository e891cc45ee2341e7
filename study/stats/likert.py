"""Likert realism ratings (1-5): distributions per origin, Mann-Whitney U, bootstrap means.

References
- Mann HB, Whitney DR (1947). On a test of whether one of two random variables is
  stochastically larger than the other. Annals of Mathematical Statistics 18:50-60.
- Lehmann EL (1975). Nonparametrics: Statistical Methods Based on Ranks, ch. 1: the null
  variance of U with ties, n1 n2/12 [(n + 1) - sum(t^3 - t)/(n (n - 1))].
- Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap, ch. 13 (percentile interval).

Example:
    >>> result = mann_whitney_u([1, 2, 2, 3], [3, 4, 4, 5])
    >>> result.u, round(result.p_value, 4)
    (0.5, 0.0396)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from study.stats import StatsError
from study.stats.tables import analysis_rows, answer_text

LIKERT_LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)


class MannWhitney(NamedTuple):
    """U of the first sample, two-sided p, and U/(n1 n2): P(X > Y) + P(X = Y)/2."""

    u: float
    p_value: float
    probability_greater: float


class MeanInterval(NamedTuple):
    mean: float
    low: float
    high: float


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Mann-Whitney U test (scipy's `mannwhitneyu`), two-sided, normal approximation with tie
    correction and continuity correction (Likert ratings are full of ties, so the exact null
    distribution without ties does not apply).

    U = R_x - n_x (n_x + 1)/2 with average ranks; z = (|U - n_x n_y/2| - 1/2)/sigma.
    """
    first, second = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = len(first), len(second)
    if n1 == 0 or n2 == 0:
        raise StatsError("the Mann-Whitney test needs at least one rating in each group")
    result = stats.mannwhitneyu(
        first, second, use_continuity=True, alternative="two-sided", method="asymptotic"
    )
    u = float(result.statistic)
    return MannWhitney(u, float(result.pvalue), u / (n1 * n2))


def bootstrap_mean_ci(
    values: Sequence[float],
    *,
    seed: int,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
) -> MeanInterval:
    """Mean with a percentile bootstrap interval (Efron & Tibshirani 1993, ch. 13).

    Resampling n values with replacement is drawing multinomial counts of the distinct values
    with their observed frequencies, so each resample costs O(distinct values), not O(n).
    """
    data = np.asarray(values, dtype=float)
    if len(data) == 0:
        return MeanInterval(math.nan, math.nan, math.nan)
    if not 0 < confidence < 1 or n_resamples < 1:
        raise StatsError("a bootstrap needs 0 < confidence < 1 and at least one resample")
    distinct, counts = np.unique(data, return_counts=True)
    rng = np.random.default_rng(seed)
    resampled = rng.multinomial(len(data), counts / len(data), size=n_resamples)
    means = resampled @ distinct / len(data)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return MeanInterval(float(data.mean()), float(low), float(high))


def likert_ratings(tidy: pd.DataFrame, question_kind: str = "likert_realism") -> pd.DataFrame:
    """Analysis rows of one rating question with an integer `rating` column (1-5)."""
    rows = analysis_rows(tidy)
    rows = rows[rows["question_kind"] == question_kind].copy()
    text = answer_text(rows["value"])
    rows = rows[text.notna()]
    rating = pd.to_numeric(text[text.notna()], errors="coerce")
    bad = rating[~rating.isin(LIKERT_LEVELS)]
    if len(bad):
        raise StatsError(
            f"{question_kind} answers must be 1-5; found {text[bad.index[0]]!r} "
            f"(reader {rows.loc[bad.index[0], 'reader']}, case {rows.loc[bad.index[0], 'case_id']})"
        )
    rows["rating"] = rating.astype(int)
    rows["origin"] = answer_text(rows["origin"])
    return rows


def likert_distribution(tidy: pd.DataFrame, question_kind: str = "likert_realism") -> pd.DataFrame:
    """How often each level was given, per origin: columns origin, rating, count, proportion
    (within the origin), every level listed even when never given."""
    rows = likert_ratings(tidy, question_kind)
    out = []
    for origin, group in rows.groupby("origin", sort=True):
        counts = group["rating"].value_counts()
        for level in LIKERT_LEVELS:
            count = int(counts.get(level, 0))
            out.append(
                {
                    "origin": origin,
                    "rating": level,
                    "count": count,
                    "proportion": count / len(group),
                }
            )
    return pd.DataFrame(out, columns=["origin", "rating", "count", "proportion"])


def likert_summary(
    tidy: pd.DataFrame,
    *,
    seed: int,
    question_kind: str = "likert_realism",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per origin: n, mean rating with its percentile bootstrap interval, median.

    The interval resamples ratings as independent; with several readers it reflects case and
    reading variation together, not readers as a random factor.
    """
    rows = likert_ratings(tidy, question_kind)
    out = []
    for origin, group in rows.groupby("origin", sort=True):
        interval = bootstrap_mean_ci(group["rating"], seed=seed, confidence=confidence)
        out.append(
            {
                "origin": origin,
                "n": len(group),
                "mean": interval.mean,
                "mean_low": interval.low,
                "mean_high": interval.high,
                "median": float(group["rating"].median()),
            }
        )
    return pd.DataFrame(out, columns=["origin", "n", "mean", "mean_low", "mean_high", "median"])


def likert_real_vs_synthetic(
    tidy: pd.DataFrame, question_kind: str = "likert_realism"
) -> MannWhitney:
    """Mann-Whitney U of the ratings of real cases (first sample) against synthetic cases.

    `probability_greater` estimates P(a real case is rated more realistic than a synthetic
    one), ties counting half: 0.5 means readers rated them alike.
    """
    rows = likert_ratings(tidy, question_kind)
    real = rows.loc[rows["origin"] == "real", "rating"]
    synthetic = rows.loc[rows["origin"] == "synthetic", "rating"]
    return mann_whitney_u(real.to_numpy(), synthetic.to_numpy())
