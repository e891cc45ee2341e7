"""Kappas against scikit-learn and statsmodels; tidy-frame agreement tables."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

import study.stats.agreement as agreement
from study.stats import StatsError
from study.stats.agreement import (
    cohen_kappa,
    fleiss_kappa,
    group_agreement,
    intra_reader_agreement,
    ordered_labels,
    pairwise_agreement,
    percent_agreement,
)
from study.stats.tables import POOLED


def test_docstring_examples_run() -> None:
    assert doctest.testmod(agreement).failed == 0


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_matches_scikit_learn(weights: str | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, size=60)
    b = np.where(rng.random(60) < 0.6, a, rng.integers(1, 6, size=60))
    expected = cohen_kappa_score(a, b, weights=weights)
    assert cohen_kappa(list(a), list(b), weights=weights) == pytest.approx(expected, abs=1e-12)


def test_cohen_kappa_of_text_answers_matches_scikit_learn() -> None:
    a = ["real", "synthetic", "real", "real", "synthetic", "real", "synthetic", "real"]
    b = ["real", "synthetic", "synthetic", "real", "synthetic", "real", "real", "real"]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert percent_agreement(a, b) == 0.75


def test_cohen_kappa_is_undefined_for_one_label() -> None:
    assert math.isnan(cohen_kappa(["yes", "yes"], ["yes", "yes"]))
    with pytest.raises(StatsError):
        cohen_kappa(["yes"], ["yes", "no"])


def test_weighted_kappa_weighs_by_position_on_the_whole_scale() -> None:
    # Level 3 is never given: on the whole scale 2 and 4 are two steps apart, not one.
    a, b = ["1", "2", "4", "5", "2", "4"], ["1", "4", "4", "5", "2", "5"]
    scale = ["1", "2", "3", "4", "5"]
    for weights in ("linear", "quadratic"):
        expected = cohen_kappa_score(
            [int(x) for x in a], [int(x) for x in b], weights=weights, labels=[1, 2, 3, 4, 5]
        )
        assert cohen_kappa(a, b, weights=weights, labels=scale) == pytest.approx(
            expected, abs=1e-12
        )
        assert cohen_kappa(a, b, weights=weights) != pytest.approx(expected)
    # By hand: sum(w O) = 2 + 1 = 3 and sum(w E) = 60 / 6 = 10 on the positions 0, 1, 3, 4.
    assert cohen_kappa(a, b, weights="linear", labels=scale) == pytest.approx(0.7, abs=1e-12)


def test_cohen_kappa_takes_labels_of_any_type_and_refuses_unknown_weights() -> None:
    mixed = [1, "a", 1, "a"]
    assert cohen_kappa(mixed, [1, "a", "a", "a"]) == pytest.approx(0.5)
    assert math.isnan(cohen_kappa([], []))
    with pytest.raises(StatsError, match="'cubic'"):
        cohen_kappa(["a", "b"], ["a", "b"], weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(StatsError, match="'c' is not among the labels"):
        cohen_kappa(["a", "b"], ["a", "c"], labels=["a", "b"])


def test_labels_sort_as_numbers_when_they_are_numbers() -> None:
    assert ordered_labels(["10", "9", "2"]) == ["2", "9", "10"]
    assert ordered_labels(["right", "left"]) == ["left", "right"]


@pytest.mark.parametrize("seed", [0, 1])
def test_fleiss_kappa_matches_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, size=40)
    ratings = np.stack(
        [np.where(rng.random(40) < 0.7, truth, rng.integers(0, 3, size=40)) for _ in range(4)],
        axis=1,
    )
    counts, _ = aggregate_raters(ratings)
    assert fleiss_kappa(counts) == pytest.approx(statsmodels_fleiss_kappa(counts), abs=1e-12)


def test_fleiss_kappa_needs_equal_raters_per_item() -> None:
    with pytest.raises(StatsError, match="same number"):
        fleiss_kappa([[2, 0], [1, 2]])


def _reader_answers(tidy_frame, answers: dict[str, list[str]], **extra):
    rows = [
        {"reader": reader, "case_id": case, "value": value, **extra}
        for reader, values in answers.items()
        for case, value in enumerate(values, start=1)
    ]
    return tidy_frame(rows)


def test_pairwise_and_group_agreement_from_the_tidy_frame(tidy_frame) -> None:
    answers = {
        "A": ["real", "synthetic", "real", "real", "synthetic", "real"],
        "B": ["real", "synthetic", "synthetic", "real", "synthetic", "real"],
        "C": ["synthetic", "synthetic", "real", "real", "real", "real"],
    }
    tidy = _reader_answers(tidy_frame, answers)
    practice = _reader_answers(tidy_frame, {"A": ["synthetic"] * 6}, practice=True)
    table = pairwise_agreement(pd.concat([tidy, practice]), "real_or_synthetic")
    assert list(zip(table["reader_a"], table["reader_b"], strict=True)) == [
        ("A", "B"),
        ("A", "C"),
        ("B", "C"),
    ]
    for _, row in table.iterrows():
        a, b = answers[row["reader_a"]], answers[row["reader_b"]]
        assert row["n"] == 6
        assert row["kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
        assert row["percent_agreement"] == pytest.approx(np.mean(np.array(a) == np.array(b)))
    group = group_agreement(tidy, "real_or_synthetic")
    counts, _ = aggregate_raters(np.array(list(answers.values())).T)
    assert group["fleiss_kappa"] == pytest.approx(statsmodels_fleiss_kappa(counts), abs=1e-12)
    assert group["n_readers"] == 3
    assert group["n_cases"] == 6


def test_pairwise_agreement_uses_cases_both_readers_answered(tidy_frame) -> None:
    tidy = _reader_answers(
        tidy_frame,
        {"A": ["1", "2", "3", "4"], "B": ["1", "2", "4"]},
        question_kind="likert_realism",
    )
    row = pairwise_agreement(tidy, "likert_realism", weights="linear").iloc[0]
    assert row["n"] == 3
    expected = cohen_kappa_score([1, 2, 3], [1, 2, 4], weights="linear", labels=[1, 2, 3, 4])
    assert row["kappa"] == pytest.approx(expected, abs=1e-12)


def test_intra_reader_agreement_pairs_repeats_with_first_readings(tidy_frame) -> None:
    first = _reader_answers(
        tidy_frame, {"A": ["yes", "no", "yes", "no"], "B": ["yes", "yes", "no", "no"]}
    )
    again = _reader_answers(
        tidy_frame, {"A": ["yes", "no", "no", "no"], "B": ["yes", "yes", "no", "no"]}, repeat=True
    )
    tidy = pd.concat([first, again]).assign(question_kind="lesion_present")
    table = intra_reader_agreement(tidy, "lesion_present").set_index("reader")
    assert table.loc["A", "n"] == 4
    assert table.loc["A", "percent_agreement"] == 0.75
    assert table.loc["A", "kappa"] == pytest.approx(
        cohen_kappa_score(["yes", "no", "yes", "no"], ["yes", "no", "no", "no"])
    )
    assert table.loc["B", "kappa"] == pytest.approx(1.0)
    assert table.loc[POOLED, "n"] == 8
    # Repeats never enter inter-reader agreement.
    assert pairwise_agreement(tidy, "lesion_present").iloc[0]["n"] == 4


def test_intra_reader_agreement_follows_repeat_of(tidy_frame) -> None:
    # The database shows a repeat as a case of its own (ids 11-13) pointing to the original.
    first = _reader_answers(tidy_frame, {"A": ["real", "synthetic", "real"]})
    again = _reader_answers(tidy_frame, {"A": ["real", "real", "real"]}, repeat=True)
    again["case_id"] += 10
    first["repeat_of"] = pd.NA
    again["repeat_of"] = again["case_id"] - 10
    table = intra_reader_agreement(pd.concat([first, again]), "real_or_synthetic")
    row = table.set_index("reader").loc["A"]
    assert row["n"] == 3
    assert row["percent_agreement"] == pytest.approx(2 / 3)


def test_weighted_kappa_uses_the_whole_scale_of_the_question(tidy_frame) -> None:
    # Ratings 1, 2, 4, 5 and 2, 1, 5, 4 on a 1-5 scale that nobody answered 3 on. Every pair
    # is one step apart, so the observed linear disagreement is 1 per unit. By chance (each
    # rater uses each of the four levels once) it is the mean distance between the positions
    # 0, 1, 3, 4 of the whole scale: (8 + 6 + 6 + 8)/16 = 1.75, so kappa = 1 - 1/1.75 = 3/7.
    # On the used levels alone (positions 0, 1, 2, 3) chance would give (6 + 4 + 4 + 6)/16 =
    # 1.25 and kappa 1 - 1/1.25 = 0.2.
    tidy = _reader_answers(
        tidy_frame,
        {"A": ["1", "2", "4", "5"], "B": ["2", "1", "5", "4"]},
        question_kind="likert_realism",
    )
    scale = ["1", "2", "3", "4", "5"]
    whole = pairwise_agreement(tidy, "likert_realism", weights="linear", labels=scale)
    assert whole.iloc[0]["kappa"] == pytest.approx(3 / 7, abs=1e-12)
    used = pairwise_agreement(tidy, "likert_realism", weights="linear")
    assert used.iloc[0]["kappa"] == pytest.approx(0.2, abs=1e-12)
    assert whole.iloc[0]["kappa"] == pytest.approx(
        cohen_kappa_score([1, 2, 4, 5], [2, 1, 5, 4], weights="linear", labels=[1, 2, 3, 4, 5])
    )
    # The same pairs as a repeated reading of one reader.
    first = _reader_answers(tidy_frame, {"A": ["1", "2", "4", "5"]})
    again = _reader_answers(tidy_frame, {"A": ["2", "1", "5", "4"]}, repeat=True)
    repeated = pd.concat([first, again]).assign(question_kind="likert_realism")
    intra = intra_reader_agreement(repeated, "likert_realism", weights="linear", labels=scale)
    assert intra.set_index("reader").loc["A", "kappa"] == pytest.approx(3 / 7, abs=1e-12)


def test_answers_off_the_scale_are_refused(tidy_frame) -> None:
    tidy = _reader_answers(
        tidy_frame, {"A": ["1", "6"], "B": ["1", "2"]}, question_kind="likert_realism"
    )
    with pytest.raises(StatsError, match="answer '6' is not on the question's scale"):
        pairwise_agreement(tidy, "likert_realism", weights="linear", labels=["1", "2", "3"])
    with pytest.raises(StatsError, match="must differ from each other"):
        intra_reader_agreement(tidy, "likert_realism", labels=["1", "1", "2"])
