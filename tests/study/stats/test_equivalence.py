"""Equivalence with chance: the exact binomial TOST against statsmodels, the decision rules,
the readers' mean against the OR analysis of `study.stats.mrmc`, the tables built from tidy
answers, and the half-widths of the sequential design."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import binom_tost, proportion_confint

import study.stats.equivalence as equivalence
from study.stats import StatsError
from study.stats.equivalence import (
    MEAN_OF_READERS,
    Verdict,
    conclusion,
    decide,
    equivalence_table,
    halfwidth_table,
    reader_equivalence,
    readers_mean_equivalence,
)
from study.stats.mrmc import mrmc_data, obuchowski_rockette
from study.stats.proportions import binomial_test


def test_docstring_examples_run() -> None:
    assert doctest.testmod(equivalence).failed == 0


@pytest.mark.parametrize(("correct", "n"), [(0, 10), (16, 32), (19, 32), (50, 100), (97, 100)])
def test_reader_tost_is_statsmodels_exact_binomial_tost(correct: int, n: int) -> None:
    result = reader_equivalence(correct, n, margin=0.10)
    expected, _, _ = binom_tost(correct, n, 0.40, 0.60)
    assert result.p_tost == pytest.approx(float(expected), rel=1e-12)
    assert (result.tost_low, result.tost_high) == pytest.approx(
        proportion_confint(correct, n, alpha=0.10, method="beta"), abs=1e-12
    )
    assert (result.low, result.high) == pytest.approx(
        proportion_confint(correct, n, alpha=0.05, method="beta"), abs=1e-12
    )
    assert result.accuracy == correct / n


@pytest.mark.parametrize("n", [32, 100, 257])
def test_the_interval_rule_and_the_tost_p_value_agree_for_every_count(n: int) -> None:
    for correct in range(n + 1):
        result = reader_equivalence(correct, n, margin=0.10)
        assert (result.verdict == Verdict.EQUIVALENT) == (result.p_tost <= 0.05), correct
        # The 95% exact interval excludes 0.5 exactly when the exact test rejects 0.5.
        excludes = result.low > 0.5 or result.high < 0.5
        assert excludes == (binomial_test(correct, n) < 0.05), correct


def test_fifty_of_a_hundred_is_indistinguishable_and_thirty_two_cases_are_too_few() -> None:
    # 90% Clopper-Pearson interval of 50/100: 0.414-0.586, inside [0.4, 0.6].
    even = reader_equivalence(50, 100)
    assert (round(even.tost_low, 4), round(even.tost_high, 4)) == (0.4136, 0.5864)
    assert even.conclusion == "indistinguishable within ±0.10"
    # 16/32: 0.35-0.65 (90%) leaves the band, 0.32-0.68 (95%) holds 0.5.
    assert reader_equivalence(16, 32).conclusion == "inconclusive: more cases needed"
    # 26/32 right, and 6/32 right (readers who call real images synthetic): both tell apart.
    assert reader_equivalence(26, 32).verdict == Verdict.DISTINGUISHABLE
    assert reader_equivalence(6, 32).verdict == Verdict.DISTINGUISHABLE
    # A wider margin makes 16/32 indistinguishable.
    assert reader_equivalence(16, 32, margin=0.2).conclusion == "indistinguishable within ±0.20"


def test_decision_rules() -> None:
    # Within the band (closed at its ends): equivalent, even when 0.5 is excluded at 95%.
    assert decide((0.40, 0.60), (0.38, 0.62), 0.10) == Verdict.EQUIVALENT
    assert decide((0.52, 0.58), (0.51, 0.59), 0.10) == Verdict.EQUIVALENT
    assert decide((0.52, 0.61), (0.51, 0.62), 0.10) == Verdict.DISTINGUISHABLE
    assert decide((0.20, 0.45), (0.18, 0.49), 0.10) == Verdict.DISTINGUISHABLE
    assert decide((0.35, 0.62), (0.33, 0.65), 0.10) == Verdict.INCONCLUSIVE
    assert decide((math.nan, math.nan), (math.nan, math.nan), 0.10) == Verdict.INCONCLUSIVE
    assert conclusion(Verdict.EQUIVALENT, 0.05) == "indistinguishable within ±0.05"
    assert conclusion(Verdict.DISTINGUISHABLE, 0.05) == "distinguishable"


def correctness(seed: int, readers: int, cases: int, accuracy: float = 0.6) -> pd.DataFrame:
    """One row per reading: reader, case, correct (true with probability `accuracy`)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        [
            {"reader": f"R{r}", "case": f"c{c}", "correct": bool(rng.random() < accuracy)}
            for r in range(readers)
            for c in range(cases)
        ]
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_readers_mean_is_the_or_analysis_of_right_and_wrong_calls(seed: int) -> None:
    calls = correctness(seed, readers=5, cases=40)
    mean = readers_mean_equivalence(calls, margin=0.10, alpha=0.05)
    # An independent route through study.stats.mrmc: accuracy is the sensitivity of 0/1
    # ratings of cases that are all "positive", every case left out in turn.
    long = pd.DataFrame(
        {
            "reader": calls["reader"],
            "treatment": "all",
            "case": calls["case"],
            "truth": 1,
            "rating": calls["correct"].astype(float),
        }
    )
    for alpha, (low, high) in (
        (0.10, (mean.equivalence.tost_low, mean.equivalence.tost_high)),
        (0.05, (mean.equivalence.low, mean.equivalence.high)),
    ):
        result = obuchowski_rockette(
            mrmc_data(long), "sensitivity", threshold=0.5, confidence=1 - alpha
        )
        expected = result.rrrc.treatments["all"]
        assert (mean.equivalence.accuracy, mean.se, mean.df) == pytest.approx(
            (expected.fom, expected.se, expected.df), rel=1e-12
        )
        assert (low, high) == pytest.approx((expected.low, expected.high), rel=1e-12)
    t = stats.t(mean.df)
    m, se = mean.equivalence.accuracy, mean.se
    expected_p = max(t.sf((m - 0.4) / se), t.cdf((m - 0.6) / se))
    assert mean.equivalence.p_tost == pytest.approx(expected_p, rel=1e-10)
    assert (mean.equivalence.verdict == Verdict.EQUIVALENT) == (expected_p <= 0.05)


def test_readers_mean_keeps_the_readers_who_read_every_case() -> None:
    calls = correctness(3, readers=4, cases=30)
    unfinished = calls[~((calls["reader"] == "R2") & (calls["case"].isin(["c0", "c5"])))]
    mean = readers_mean_equivalence(unfinished)
    assert mean.block.readers == ("R0", "R1", "R3") and mean.block.readers_left_out == ("R2",)
    assert len(mean.block.cases) == 30
    alone = readers_mean_equivalence(calls[calls["reader"] != "R2"])
    assert mean.equivalence == alone.equivalence


def test_readers_mean_without_variance_has_no_interval() -> None:
    calls = correctness(0, readers=3, cases=10).assign(correct=True)
    mean = readers_mean_equivalence(calls)
    assert mean.equivalence.accuracy == 1.0 and mean.reason and "zero variance" in mean.reason
    assert math.isnan(mean.equivalence.low) and math.isnan(mean.equivalence.p_tost)
    assert mean.equivalence.verdict == Verdict.INCONCLUSIVE


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: reader_equivalence(5, 4), "0 <= correct <= n"),
        (lambda: reader_equivalence(0, 0), "n >= 1"),
        (lambda: reader_equivalence(5, 10, margin=0.5), "margin must lie strictly between"),
        (lambda: reader_equivalence(5, 10, margin=0), "margin must lie strictly between"),
        (lambda: reader_equivalence(5, 10, alpha=0.5), "alpha must lie strictly between"),
        (
            lambda: readers_mean_equivalence(correctness(0, readers=1, cases=5)),
            "at least two readers, not 1",
        ),
        (
            lambda: readers_mean_equivalence(correctness(0, readers=3, cases=1)),
            "at least two cases read by every reader kept, not 1",
        ),
        (
            lambda: readers_mean_equivalence(
                pd.concat([correctness(0, readers=2, cases=3)] * 2, ignore_index=True)
            ),
            "reader R0 read case c0 more than once",
        ),
        (lambda: halfwidth_table(pd.DataFrame(), 0.6), "target half-width lies strictly"),
    ],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(StatsError, match=message):
        call()


def realism_answers(tidy_frame, readers: dict[str, list[bool]], kind="real_or_synthetic"):
    """Tidy rows: each reader's calls of alternating real and synthetic cases, right or not."""
    rows = []
    for reader, right in readers.items():
        for case, is_right in enumerate(right):
            origin = "synthetic" if case % 2 else "real"
            wrong = "real" if origin == "synthetic" else "synthetic"
            if kind == "which_is_real":
                rows.append(
                    {
                        "reader": reader,
                        "case_id": case,
                        "question_kind": kind,
                        "value": "left" if is_right else "right",
                        "correct_side": "left",
                        "origin": "mixed",
                    }
                )
            else:
                value = origin if is_right else wrong
                rows.append({"reader": reader, "case_id": case, "value": value, "origin": origin})
    return tidy_frame(rows)


def test_equivalence_table_has_every_reader_and_their_mean(tidy_frame) -> None:
    tidy = pd.concat(
        [
            realism_answers(tidy_frame, {"A": [True] * 12 + [False] * 8, "B": [True] * 10 * 2}),
            realism_answers(tidy_frame, {"A": [True, False] * 5}, kind="which_is_real"),
        ],
        ignore_index=True,
    )
    result = equivalence_table(tidy, margin=0.15)
    table = result.table.set_index(["question_kind", "reader"])
    a = table.loc[("real_or_synthetic", "A")]
    expected = reader_equivalence(12, 20, margin=0.15)
    assert (a["n"], a["correct"], a["p_tost"], a["conclusion"]) == (
        20,
        12,
        pytest.approx(expected.p_tost),
        expected.conclusion,
    )
    mean = table.loc[("real_or_synthetic", MEAN_OF_READERS)]
    assert (mean["readers"], mean["n"], mean["accuracy"]) == (2, 20, pytest.approx(0.8))
    assert mean["method"] == "OR random readers and cases" and mean["margin"] == 0.15
    assert table.loc[("which_is_real", "A"), "accuracy"] == 0.5
    assert result.notes == {
        "which_is_real": "no readers' mean: a fully crossed block needs at least two readers, not 1"
    }
    assert not result.left_out


def test_halfwidths_against_a_target() -> None:
    rows = pd.DataFrame(
        {
            "question_kind": "real_or_synthetic",
            "reader": ["A", "B", MEAN_OF_READERS],
            "n": [100, 20, 20],
            "accuracy": [0.5, 0.5, 0.5],
            "halfwidth": [0.099, 0.22, math.nan],
        }
    )
    widths = halfwidth_table(rows, 0.10)
    assert widths["reached"].tolist() == [True, False, False]
    assert halfwidth_table(rows, None)["reached"].tolist() == [False] * 3
    # The half-width of 50 of 100 right is half the exact 95% interval's width.
    result = reader_equivalence(50, 100)
    low, high = proportion_confint(50, 100, alpha=0.05, method="beta")
    assert result.halfwidth == pytest.approx((high - low) / 2)
