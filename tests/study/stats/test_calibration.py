"""Calibration of confidence: stated probabilities, Brier score and ECE on a hand-computed
example, the reliability bins, and refused input."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

import study.stats.calibration as calibration
from study.stats import StatsError
from study.stats.calibration import (
    brier_score,
    calibration_tables,
    expected_calibration_error,
    reliability_bins,
    stated_probability,
)
from study.stats.tables import POOLED


def test_docstring_examples_run() -> None:
    assert doctest.testmod(calibration).failed == 0


def test_stated_probability_spans_guessing_to_certain() -> None:
    assert stated_probability([1, 2, 3, 4, 5]).tolist() == [0.5, 0.625, 0.75, 0.875, 1.0]
    assert stated_probability([1, 2, 3], levels=3).tolist() == [0.5, 0.75, 1.0]


def scores(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """Rated calls as `ordinal_scores` gives them: (reader, origin, call, confidence)."""
    frame = pd.DataFrame(rows, columns=["reader", "origin", "call", "confidence"])
    return frame.assign(truth=frame["origin"] == "synthetic")


# Reader A: confidence 5 right, 5 wrong, 3 right, 1 wrong, 4 right.
READER_A = [
    ("A", "synthetic", "synthetic", 5),
    ("A", "real", "synthetic", 5),
    ("A", "real", "real", 3),
    ("A", "synthetic", "real", 1),
    ("A", "synthetic", "synthetic", 4),
]


def test_brier_and_ece_by_hand() -> None:
    tables = calibration_tables(scores(READER_A))
    row = tables.summary.set_index("reader").loc["A"]
    # Stated 1, 1, 0.75, 0.5, 0.875 against right 1, 0, 1, 0, 1:
    # Brier = (0 + 1 + 0.0625 + 0.25 + 0.015625)/5 = 0.265625.
    assert row["brier"] == pytest.approx(0.265625, abs=1e-15)
    # Levels 1, 3, 4 one call each (|0 - 0.5|, |1 - 0.75|, |1 - 0.875|), level 5 two calls
    # (|0.5 - 1|), level 2 empty: ECE = (0.5 + 0.25 + 0.125 + 2 x 0.5)/5 = 0.375.
    assert row["ece"] == pytest.approx(0.375, abs=1e-15)
    assert (row["n"], row["mean_stated"], row["accuracy"]) == (5, 0.825, 0.6)
    assert row["overconfidence"] == pytest.approx(0.225)
    bins = tables.bins[tables.bins["reader"] == "A"].set_index("confidence")
    assert bins["n"].tolist() == [1, 0, 1, 1, 2]
    assert bins.loc[5, "accuracy"] == 0.5 and np.isnan(bins.loc[2, "accuracy"])
    assert bins.loc[4, "stated"] == 0.875


def test_brier_is_the_same_as_the_probability_of_synthetic_against_the_truth() -> None:
    rng = np.random.default_rng(0)
    origin = rng.choice(["real", "synthetic"], 200)
    call = np.where(rng.random(200) < 0.7, origin, rng.choice(["real", "synthetic"], 200))
    confidence = rng.integers(1, 6, 200)
    rated = scores(list(zip(["A"] * 200, origin, call, confidence, strict=True)))
    stated = stated_probability(confidence)
    synthetic = np.where(call == "synthetic", stated, 1 - stated)
    expected = brier_score_loss(origin == "synthetic", synthetic)
    row = calibration_tables(rated).summary.iloc[0]
    assert row["brier"] == pytest.approx(expected, abs=1e-12)


def test_pooled_row_counts_every_reading() -> None:
    rated = scores([*READER_A, ("B", "real", "real", 2), ("B", "synthetic", "real", 2)])
    tables = calibration_tables(rated)
    assert tables.summary["reader"].tolist() == ["A", "B", POOLED]
    pooled = tables.summary.iloc[-1]
    assert pooled["n"] == 7 and pooled["accuracy"] == pytest.approx(4 / 7)
    assert tables.bins[tables.bins["reader"] == POOLED]["n"].tolist() == [1, 2, 1, 1, 2]


def test_a_shorter_scale_states_its_own_probabilities() -> None:
    rated = scores([("A", "real", "real", 3), ("A", "real", "synthetic", 2)])
    bins = calibration_tables(rated, levels=3).bins
    assert bins[bins["reader"] == "A"]["stated"].tolist() == [0.5, 0.75, 1.0]
    # Right at 1.0, wrong at 0.75: Brier (0 + 0.5625)/2.
    assert calibration_tables(rated, levels=3).summary.iloc[0]["brier"] == 0.28125


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stated_probability([1, 2], levels=1), "at least two levels"),
        (lambda: stated_probability([6]), "confidence 6 is not a level of the 1-5 scale"),
        (lambda: stated_probability([2.5]), "confidence 2.5 is not a level"),
        (lambda: brier_score([True], [0.5, 0.5]), "as many stated probabilities as calls"),
        (lambda: brier_score([], []), "at least one"),
        (lambda: reliability_bins([True], [1, 2]), "every call needs its confidence"),
        (
            lambda: expected_calibration_error(reliability_bins([], [])),
            "at least one rated call",
        ),
        (lambda: calibration_tables(pd.DataFrame({"reader": []})), "lack column"),
        (lambda: calibration_tables(scores([])), "no real/synthetic call was rated"),
        (
            lambda: calibration_tables(scores([("A", "real", "real", 4)]), levels=3),
            "confidence 4 is not a level of the 1-3 scale",
        ),
    ],
)
def test_bad_input_is_refused(call, message: str) -> None:
    with pytest.raises(StatsError, match=message):
        call()
