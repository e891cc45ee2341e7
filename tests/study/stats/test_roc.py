"""Empirical AUC against scikit-learn, DeLong by hand and against a bootstrap."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

import study.stats.roc as roc
from study.stats import StatsError
from study.stats.roc import (
    auc_table,
    delong_auc,
    empirical_auc,
    mrmc_long_frame,
    ordinal_scores,
    roc_curve_points,
)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(roc).failed == 0


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_scikit_learn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random(120) < 0.4
    scores = rng.integers(-5, 6, size=120) + truth * rng.integers(0, 4, size=120)
    assert empirical_auc(scores, truth) == pytest.approx(roc_auc_score(truth, scores), abs=1e-14)


def test_delong_by_hand() -> None:
    # Positives 3, 5; negatives 1, 3, 4. psi(x, y) = 1 if x > y, 1/2 if tied, 0 otherwise.
    # V10(3) = (1 + 1/2 + 0)/3 = 1/2, V10(5) = 3/3 = 1            -> AUC = 3/4
    # V01(1) = (1 + 1)/2 = 1, V01(3) = (1/2 + 1)/2 = 3/4, V01(4) = (0 + 1)/2 = 1/2
    # S10 = var(1/2, 1) = 1/8; S01 = var(1, 3/4, 1/2) = 1/16 (divisors m-1, n-1)
    # Var = S10/2 + S01/3 = 1/16 + 1/48 = 1/12
    result = delong_auc([3, 5, 1, 3, 4], [True, True, False, False, False])
    assert result.auc == 0.75
    assert result.variance == pytest.approx(1 / 12, abs=1e-15)
    assert result.se == pytest.approx(np.sqrt(1 / 12))
    assert (result.n_positive, result.n_negative) == (2, 3)


def test_delong_variance_agrees_with_a_stratified_bootstrap() -> None:
    rng = np.random.default_rng(42)
    positives = rng.normal(1.0, 1.0, 150)
    negatives = rng.normal(0.0, 1.0, 200)
    scores = np.concatenate([positives, negatives])
    truth = np.r_[np.ones(150, bool), np.zeros(200, bool)]
    result = delong_auc(scores, truth)
    # Bootstrap AUCs from rank sums (Mann-Whitney), 2000 resamples of each class at once.
    resampled = np.concatenate(
        [rng.choice(positives, (2000, 150)), rng.choice(negatives, (2000, 200))], axis=1
    )
    rank_sums = stats.rankdata(resampled, axis=1)[:, :150].sum(axis=1)
    boot = (rank_sums - 150 * 151 / 2) / (150 * 200)
    assert result.se == pytest.approx(boot.std(ddof=1), rel=0.1)


def test_delong_needs_two_cases_of_each_class() -> None:
    with pytest.raises(StatsError, match="two positive"):
        delong_auc([1, 2, 3], [True, False, False])


def test_roc_points_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    truth = rng.random(60) < 0.5
    scores = rng.integers(-5, 6, size=60)
    points = roc_curve_points(scores, truth)
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    assert points["fpr"].to_numpy() == pytest.approx(fpr)
    assert points["tpr"].to_numpy() == pytest.approx(tpr)
    assert np.trapezoid(points["tpr"], points["fpr"]) == pytest.approx(empirical_auc(scores, truth))


def _readings(tidy_frame, reader: str, readings: list[tuple[int, str, str, int]]):
    rows = []
    for case_id, origin, call, confidence in readings:
        rows.append({"reader": reader, "case_id": case_id, "origin": origin, "value": call})
        rows.append(
            {
                "reader": reader,
                "case_id": case_id,
                "origin": origin,
                "question_kind": "confidence",
                "question_id": 2,
                "value": str(confidence),
            }
        )
    return tidy_frame(rows)


READINGS = [
    (1, "real", "real", 5),
    (2, "real", "synthetic", 2),
    (3, "real", "real", 3),
    (4, "synthetic", "synthetic", 4),
    (5, "synthetic", "real", 1),
    (6, "synthetic", "synthetic", 5),
    (7, "mixed", "synthetic", 5),
]


def test_ordinal_scores_pair_calls_with_confidence(tidy_frame) -> None:
    tidy = _readings(tidy_frame, "A", READINGS)
    scores = ordinal_scores(tidy).set_index("case_id")
    assert scores["score"].to_dict() == {1: -5, 2: 2, 3: -3, 4: 4, 5: -1, 6: 5}
    assert scores["truth"].to_dict() == {1: False, 2: False, 3: False, 4: True, 5: True, 6: True}
    table = auc_table(tidy)
    expected = roc_auc_score([0, 0, 0, 1, 1, 1], [-5, 2, -3, 4, -1, 5])
    assert table.loc[0, "auc"] == pytest.approx(expected)
    assert table.loc[0, "positive_class"] == "synthetic"


def test_several_confidence_questions_must_be_told_apart(tidy_frame) -> None:
    tidy = _readings(tidy_frame, "A", READINGS)
    other = tidy[tidy["question_kind"] == "confidence"].assign(question_id=3, value="1")
    both = pd.concat([tidy, other], ignore_index=True)
    with pytest.raises(StatsError, match="confidence_question_id"):
        ordinal_scores(both)
    assert ordinal_scores(both, confidence_question_id=3)["score"].abs().max() == 1


def test_mrmc_long_frame(tidy_frame) -> None:
    tidy = pd.concat([_readings(tidy_frame, "A", READINGS), _readings(tidy_frame, "B", READINGS)])
    long = mrmc_long_frame(tidy)
    assert list(long.columns) == ["reader", "treatment", "case", "truth", "rating"]
    assert set(long["treatment"]) == {"all"}
    assert len(long) == 12


def test_a_reader_with_too_few_cases_keeps_a_row_without_an_interval(tidy_frame) -> None:
    few = [(1, "real", "real", 5), (2, "real", "synthetic", 2), (3, "synthetic", "synthetic", 4)]
    one_class = [(1, "real", "real", 5), (2, "real", "synthetic", 2)]
    tidy = pd.concat(
        [
            _readings(tidy_frame, "A", READINGS),
            _readings(tidy_frame, "B", few),
            _readings(tidy_frame, "C", one_class),
        ]
    )
    table = auc_table(tidy).set_index("reader")
    assert table.loc["A", "auc_low"] > 0 and table.loc["A", "se"] > 0
    # B: one synthetic image (score 4) above both real ones (-5, 2): AUC 1, no interval.
    assert table.loc["B", ["n_positive", "n_negative", "auc"]].tolist() == [1, 2, 1.0]
    assert table.loc["B", ["se", "auc_low", "auc_high"]].isna().all()
    # C rated no synthetic image: no AUC either.
    assert table.loc["C", ["auc", "se", "auc_low", "auc_high"]].isna().all()
