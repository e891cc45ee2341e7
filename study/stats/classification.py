"""Binary calls against the truth: confusion counts, rates with intervals, d' and c.

The positive class is named by the caller (the tables name it in every row): "synthetic" for
real-or-synthetic questions, "lesion" for lesion questions.

References
- Macmillan NA, Creelman CD (2005). Detection Theory: A User's Guide, 2nd ed. Erlbaum.
  d' = z(H) - z(F) (chapter 1), c = -(z(H) + z(F))/2 (chapter 2); for two-alternative
  forced choice d' = (z(H) - z(F))/sqrt(2) (chapter 7).
- Macmillan NA, Kaplan HL (1985). Detection theory analysis of group data. Psychological
  Bulletin 98:185-199: rates of 0 and 1 become 1/(2N) and 1 - 1/(2N).

Example:
    >>> d, c = d_prime_criterion(hits=8, n_signal=10, false_alarms=2, n_noise=10)
    >>> round(d, 4), round(abs(c), 12)
    (1.6832, 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from study.stats import StatsError
from study.stats.proportions import binomial_test, clopper_pearson_interval, wilson_interval


@dataclass(frozen=True)
class ConfusionCounts:
    """Counts of a binary call against the truth, for one positive class."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.tn + self.fp

    @property
    def correct(self) -> int:
        return self.tp + self.tn


@dataclass(frozen=True)
class Proportion:
    """k of n with its estimate and Wilson interval; nan throughout when n is 0."""

    k: int
    n: int
    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class BinaryMetrics:
    """Everything a metrics table reports for one group of binary calls."""

    counts: ConfusionCounts
    accuracy: Proportion
    accuracy_exact_low: float
    accuracy_exact_high: float
    accuracy_p_value: float
    sensitivity: Proportion
    specificity: Proportion
    ppv: Proportion
    npv: Proportion
    d_prime: float
    criterion_c: float


def confusion_counts(
    truth: Sequence[bool] | np.ndarray, called: Sequence[bool] | np.ndarray
) -> ConfusionCounts:
    """Count true/false positives/negatives of `called` (True: positive) against `truth`."""
    truth_array = np.asarray(truth, dtype=bool)
    called_array = np.asarray(called, dtype=bool)
    if truth_array.shape != called_array.shape or truth_array.ndim != 1:
        raise StatsError(
            f"truth and calls must be two equally long lists, not shapes "
            f"{truth_array.shape} and {called_array.shape}"
        )
    return ConfusionCounts(
        tp=int(np.sum(truth_array & called_array)),
        fp=int(np.sum(~truth_array & called_array)),
        tn=int(np.sum(~truth_array & ~called_array)),
        fn=int(np.sum(truth_array & ~called_array)),
    )


def proportion(k: int, n: int, confidence: float = 0.95) -> Proportion:
    """k of n with the Wilson interval (nan estimate and interval when n is 0)."""
    low, high = wilson_interval(k, n, confidence)
    return Proportion(k, n, k / n if n else math.nan, low, high)


def corrected_rate(k: int, n: int) -> float:
    """k/n, with 0 and 1 replaced by 1/(2n) and 1 - 1/(2n) (Macmillan & Kaplan 1985)."""
    if n == 0:
        return math.nan
    if k == 0:
        return 1 / (2 * n)
    if k == n:
        return 1 - 1 / (2 * n)
    return k / n


def d_prime_criterion(
    hits: int,
    n_signal: int,
    false_alarms: int,
    n_noise: int,
    *,
    two_alternative: bool = False,
) -> tuple[float, float]:
    """Sensitivity index d' and criterion c from hit and false-alarm counts.

    d' = z(H) - z(F) and c = -(z(H) + z(F))/2 with the 1/(2N) correction for rates of 0 and 1.
    With `two_alternative` (a forced choice between two images), d' = (z(H) - z(F))/sqrt(2), the
    yes/no-equivalent sensitivity; c then measures a bias towards one side.
    Returns (nan, nan) when either class is empty.
    """
    if n_signal == 0 or n_noise == 0:
        return math.nan, math.nan
    # special.ndtri is stats.norm.ppf without its per-call overhead (tables call this per row).
    z_hit = float(special.ndtri(corrected_rate(hits, n_signal)))
    z_false_alarm = float(special.ndtri(corrected_rate(false_alarms, n_noise)))
    d = z_hit - z_false_alarm
    if two_alternative:
        d /= math.sqrt(2)
    return d, -(z_hit + z_false_alarm) / 2


def binary_metrics(
    counts: ConfusionCounts,
    *,
    confidence: float = 0.95,
    chance: float = 0.5,
    two_alternative: bool = False,
) -> BinaryMetrics:
    """Accuracy (Wilson and Clopper-Pearson intervals, exact binomial test against `chance`),
    sensitivity, specificity, PPV and NPV (Wilson intervals), d' and c."""
    exact_low, exact_high = clopper_pearson_interval(counts.correct, counts.n, confidence)
    p_value = binomial_test(counts.correct, counts.n, chance) if counts.n else math.nan
    d, c = d_prime_criterion(
        counts.tp, counts.positives, counts.fp, counts.negatives, two_alternative=two_alternative
    )
    return BinaryMetrics(
        counts=counts,
        accuracy=proportion(counts.correct, counts.n, confidence),
        accuracy_exact_low=exact_low,
        accuracy_exact_high=exact_high,
        accuracy_p_value=p_value,
        sensitivity=proportion(counts.tp, counts.positives, confidence),
        specificity=proportion(counts.tn, counts.negatives, confidence),
        ppv=proportion(counts.tp, counts.tp + counts.fp, confidence),
        npv=proportion(counts.tn, counts.tn + counts.fn, confidence),
        d_prime=d,
        criterion_c=c,
    )
