"""Confusion counts and rates against scikit-learn; d' and c against textbook values."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_score, recall_score
from statsmodels.stats.proportion import proportion_confint

import study.stats.classification as classification
from study.stats.classification import (
    binary_metrics,
    confusion_counts,
    corrected_rate,
    d_prime_criterion,
)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(classification).failed == 0


def test_rates_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(200) < 0.4
    called = np.where(rng.random(200) < 0.7, truth, ~truth)
    counts = confusion_counts(truth, called)
    tn, fp, fn, tp = confusion_matrix(truth, called).ravel()
    assert (counts.tp, counts.fp, counts.tn, counts.fn) == (tp, fp, tn, fn)
    metrics = binary_metrics(counts)
    assert metrics.accuracy.estimate == pytest.approx(accuracy_score(truth, called))
    assert metrics.sensitivity.estimate == pytest.approx(recall_score(truth, called))
    assert metrics.specificity.estimate == pytest.approx(recall_score(~truth, ~called))
    assert metrics.ppv.estimate == pytest.approx(precision_score(truth, called))
    assert metrics.npv.estimate == pytest.approx(precision_score(~truth, ~called))
    for rate, k, n in [(metrics.sensitivity, tp, tp + fn), (metrics.npv, tn, tn + fn)]:
        assert (rate.low, rate.high) == pytest.approx(
            proportion_confint(k, n, method="wilson"), abs=1e-12
        )
    assert (metrics.accuracy_exact_low, metrics.accuracy_exact_high) == pytest.approx(
        proportion_confint(tp + tn, 200, method="beta"), abs=1e-10
    )


def test_textbook_d_prime() -> None:
    # Macmillan & Creelman: H = 0.8, F = 0.2 gives d' = 2 z(0.8) = 1.6832 and c = 0.
    d, c = d_prime_criterion(80, 100, 20, 100)
    assert round(d, 4) == 1.6832
    assert c == pytest.approx(0.0, abs=1e-12)
    # H = 0.9, F = 0.3: z = 1.2816 and -0.5244, d' = 1.8060, c = -0.3786 (liberal).
    d, c = d_prime_criterion(9, 10, 3, 10)
    assert round(d, 4) == 1.8060
    assert round(c, 4) == -0.3786


def test_extreme_rates_use_the_half_count_correction() -> None:
    assert corrected_rate(10, 10) == pytest.approx(0.95)
    assert corrected_rate(0, 10) == pytest.approx(0.05)
    d, c = d_prime_criterion(10, 10, 0, 10)
    assert d == pytest.approx(2 * 1.6448536269514722)
    assert c == pytest.approx(0.0, abs=1e-12)


def test_forced_choice_d_prime_is_scaled_by_root_two() -> None:
    yes_no, _ = d_prime_criterion(8, 10, 2, 10)
    forced, _ = d_prime_criterion(8, 10, 2, 10, two_alternative=True)
    assert forced == pytest.approx(yes_no / math.sqrt(2))


def test_empty_classes_give_nan_not_errors() -> None:
    metrics = binary_metrics(confusion_counts([True, True], [True, False]))
    assert math.isnan(metrics.specificity.estimate)
    assert math.isnan(metrics.d_prime)
    assert metrics.sensitivity.estimate == 0.5
    assert metrics.accuracy_p_value == pytest.approx(1.0)
