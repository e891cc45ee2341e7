"""Likert statistics against scipy."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import stats

import study.stats.likert as likert
from study.stats import StatsError
from study.stats.likert import (
    bootstrap_mean_ci,
    likert_distribution,
    likert_real_vs_synthetic,
    likert_summary,
    mann_whitney_u,
)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(likert).failed == 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mann_whitney_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 6, size=int(rng.integers(5, 40)))
    y = np.clip(rng.integers(1, 6, size=int(rng.integers(5, 40))) + 1, 1, 5)
    expected = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    result = mann_whitney_u(x, y)
    assert result.u == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-10)
    assert result.probability_greater == pytest.approx(expected.statistic / (len(x) * len(y)))


def test_mann_whitney_of_identical_constant_groups() -> None:
    assert mann_whitney_u([3, 3], [3, 3, 3]).p_value == 1.0
    with pytest.raises(StatsError):
        mann_whitney_u([], [1])


def test_bootstrap_is_seeded_and_agrees_with_scipy() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(1, 6, size=80)
    first = bootstrap_mean_ci(values, seed=11, n_resamples=20_000)
    assert bootstrap_mean_ci(values, seed=11, n_resamples=20_000) == first
    assert first.mean == pytest.approx(values.mean())
    reference = stats.bootstrap(
        (values,), np.mean, n_resamples=20_000, method="percentile", random_state=5
    ).confidence_interval
    assert first.low == pytest.approx(reference.low, abs=0.02)
    assert first.high == pytest.approx(reference.high, abs=0.02)


def _ratings(tidy_frame, real: list[int], synthetic: list[int]):
    rows = [
        {"case_id": i, "origin": origin, "question_kind": "likert_realism", "value": str(v)}
        for i, (origin, v) in enumerate(
            [("real", v) for v in real] + [("synthetic", v) for v in synthetic]
        )
    ]
    return tidy_frame(rows)


def test_distribution_summary_and_test_from_the_tidy_frame(tidy_frame) -> None:
    real, synthetic = [5, 4, 4, 5, 3, 4], [2, 3, 3, 4, 1, 2, 2]
    tidy = _ratings(tidy_frame, real, synthetic)
    distribution = likert_distribution(tidy)
    assert len(distribution) == 10
    real_rows = distribution[distribution["origin"] == "real"].set_index("rating")
    assert real_rows["count"].to_dict() == {1: 0, 2: 0, 3: 1, 4: 3, 5: 2}
    assert real_rows["proportion"].sum() == pytest.approx(1.0)
    summary = likert_summary(tidy, seed=1).set_index("origin")
    assert summary.loc["synthetic", "mean"] == pytest.approx(np.mean(synthetic))
    assert summary.loc["real", "mean_low"] <= np.mean(real) <= summary.loc["real", "mean_high"]
    result = likert_real_vs_synthetic(tidy)
    expected = stats.mannwhitneyu(real, synthetic, method="asymptotic")
    assert result.p_value == pytest.approx(expected.pvalue)


def test_ratings_outside_one_to_five_are_refused(tidy_frame) -> None:
    with pytest.raises(StatsError, match="1-5"):
        likert_distribution(_ratings(tidy_frame, [6], [1]))
