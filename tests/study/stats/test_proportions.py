"""Proportions against statsmodels, scipy, Newcombe's worked example and brute force."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

import study.stats.proportions as proportions
from study.stats import StatsError
from study.stats.proportions import (
    binomial_power,
    binomial_test,
    ci_halfwidth,
    clopper_pearson_interval,
    newcombe_difference_interval,
    sample_size_accuracy,
    wilson_interval,
)

COUNTS = [(0, 1), (1, 1), (0, 16), (9, 16), (16, 16), (18, 32), (19, 32), (3, 7), (57, 200)]


def test_docstring_examples_run() -> None:
    assert doctest.testmod(proportions).failed == 0


@pytest.mark.parametrize(("k", "n"), COUNTS)
@pytest.mark.parametrize("confidence", [0.95, 0.90])
def test_wilson_matches_statsmodels(k: int, n: int, confidence: float) -> None:
    expected = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    assert wilson_interval(k, n, confidence) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("k", "n"), COUNTS)
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_clopper_pearson_matches_statsmodels(k: int, n: int, confidence: float) -> None:
    expected = proportion_confint(k, n, alpha=1 - confidence, method="beta")
    assert clopper_pearson_interval(k, n, confidence) == pytest.approx(expected, abs=1e-10)


def test_intervals_are_undefined_without_trials() -> None:
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    assert all(math.isnan(x) for x in clopper_pearson_interval(0, 0))


@pytest.mark.parametrize("n", [1, 2, 7, 16, 32, 33, 100])
@pytest.mark.parametrize("p", [0.5, 0.3, 0.72])
def test_binomial_test_matches_scipy_for_every_count(n: int, p: float) -> None:
    for k in range(n + 1):
        expected = stats.binomtest(k, n, p, alternative="two-sided").pvalue
        assert binomial_test(k, n, p) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_newcombe_worked_example() -> None:
    # Newcombe (1998), Table II example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339.
    difference = newcombe_difference_interval(56, 70, 48, 80)
    assert difference.estimate == pytest.approx(0.2)
    assert round(difference.low, 4) == 0.0524
    assert round(difference.high, 4) == 0.3339


def test_newcombe_second_worked_example() -> None:
    # Newcombe (1998), Table II example (b): 9/10 vs 3/10, method 10: 0.1705 to 0.8090.
    difference = newcombe_difference_interval(9, 10, 3, 10)
    assert round(difference.low, 4) == 0.1705
    assert round(difference.high, 4) == 0.8090


def _brute_force_power(n: int, p1: float, alpha: float = 0.05) -> float:
    """Power of the symmetric exact test at p0 = 0.5, written independently: the p-value of k
    is twice the smaller tail, so reject k <= a or k >= n - a, a the largest count with
    2 P(X <= a) <= alpha."""
    k = np.arange(n + 1)
    tails = np.minimum(stats.binom.cdf(k, n, 0.5), stats.binom.sf(k - 1, n, 0.5))
    reject = np.minimum(2 * tails, 1.0) <= alpha
    return float(stats.binom.pmf(k[reject], n, p1).sum())


@pytest.mark.parametrize("n", [10, 31, 50, 199, 200])
def test_binomial_power_matches_brute_force(n: int) -> None:
    assert binomial_power(n, 0.6) == pytest.approx(_brute_force_power(n, 0.6), abs=1e-12)


@pytest.mark.parametrize(("p1", "power"), [(0.60, 0.80), (0.70, 0.80), (0.75, 0.90)])
def test_sample_size_is_first_n_from_which_power_holds(p1: float, power: float) -> None:
    n = sample_size_accuracy(p1=p1, p0=0.5, power=power, alpha=0.05)
    assert _brute_force_power(n - 1, p1) < power
    assert all(_brute_force_power(m, p1) >= power for m in range(n, 2 * n + 1))


def test_sample_size_of_the_default_question() -> None:
    # Power first reaches 0.80 at n = 199 but drops below it at 200, 202, 205, 207 and 209.
    assert _brute_force_power(199, 0.6) >= 0.8 > _brute_force_power(200, 0.6)
    assert sample_size_accuracy() == 210


def test_sample_size_refuses_an_unreachable_target() -> None:
    with pytest.raises(StatsError, match="max_n"):
        sample_size_accuracy(p1=0.51, max_n=500)
    with pytest.raises(StatsError):
        sample_size_accuracy(p1=0.5, p0=0.5)


def test_ci_halfwidth_is_half_the_wilson_width() -> None:
    low, high = wilson_interval(16, 32)
    assert ci_halfwidth(32, 0.5) == pytest.approx((high - low) / 2, abs=1e-12)
    # The design's claim: 32 images around 0.594 span about 0.42-0.75.
    low, high = wilson_interval(19, 32)
    assert ci_halfwidth(32, 19 / 32) == pytest.approx((high - low) / 2, abs=1e-12)
    assert (round(low, 2), round(high, 2)) == (0.42, 0.74)
    assert ci_halfwidth(400) < ci_halfwidth(100) < ci_halfwidth(32)


@pytest.mark.parametrize(
    "call",
    [
        lambda: wilson_interval(5, 4),
        lambda: wilson_interval(1, 4, confidence=1.0),
        lambda: binomial_test(1, 0),
        lambda: ci_halfwidth(0),
    ],
)
def test_invalid_arguments_fail_loudly(call) -> None:
    with pytest.raises(StatsError):
        call()
