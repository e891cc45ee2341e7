"""HYPE statistics: modal exposures and their ties, seeded bootstrap intervals, thresholds per
reader and block, HYPE-time, error rates with counts, and shown durations, against values
computed by hand."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import study.stats.hype as hype
from study.stats import StatsError
from study.stats.hype import (
    ALL_READERS,
    MEAN_OF_READERS,
    Interval,
    error_rate_table,
    hype_time_table,
    modal_exposure,
    readers_mean,
    shown_duration_table,
    staircase_threshold,
    threshold_table,
)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(hype).failed == 0


def test_the_modal_exposure_is_the_one_shown_most_often() -> None:
    assert modal_exposure([500, 450, 400, 450, 350]) == 450.0
    assert modal_exposure([1000]) == 1000.0


def test_tied_modes_give_their_mean() -> None:
    # 400 and 450 twice each, 600 once: (400 + 450) / 2.
    assert modal_exposure([400, 450, 600, 450, 400]) == 425.0
    # Every exposure once: all tie.
    assert modal_exposure([300, 400, 800]) == 500.0


def test_the_mode_is_vectorised_along_an_axis() -> None:
    rows = np.array([[500, 450, 450], [400, 400, 500], [300, 350, 400]])
    np.testing.assert_array_equal(modal_exposure(rows, axis=-1), [450.0, 400.0, 350.0])
    np.testing.assert_array_equal(modal_exposure(rows.T, axis=0), [450.0, 400.0, 350.0])


@pytest.mark.parametrize("values", [[], [500, np.nan], [np.inf]])
def test_no_mode_without_finite_exposures(values) -> None:
    with pytest.raises(StatsError):
        modal_exposure(values)


def test_the_bootstrap_is_reproducible_with_its_seed() -> None:
    exposures = [500, 450, 400, 350, 500, 450, 400, 550, 500, 450]
    first = staircase_threshold(exposures, seed=7)
    assert first == staircase_threshold(exposures, seed=7)
    assert first.estimate == 475.0  # 500 and 450 three times each
    assert first.low <= first.estimate <= first.high


def test_degenerate_data_give_a_zero_width_interval_at_the_value() -> None:
    assert staircase_threshold([450] * 6, seed=0) == Interval(450.0, 450.0, 450.0)
    assert readers_mean([0.25, 0.25, 0.25], seed=0) == Interval(0.25, 0.25, 0.25)


def test_one_value_gives_no_interval() -> None:
    estimate, low, high = readers_mean([600.0], seed=0)
    assert estimate == 600.0 and np.isnan(low) and np.isnan(high)


def test_the_bootstrap_is_scipys_percentile_bootstrap() -> None:
    thresholds = np.array([425.0, 600.0, 1000.0, 350.0])
    ours = readers_mean(thresholds, seed=3)
    theirs = stats.bootstrap(
        (thresholds,), np.mean, method="percentile", rng=np.random.default_rng(3)
    ).confidence_interval
    assert (ours.low, ours.high) == (theirs.low, theirs.high)
    exposures = np.array([500, 450, 400, 450, 400, 350, 400, 450])
    ours = staircase_threshold(exposures, seed=5)
    theirs = stats.bootstrap(
        (exposures,),
        lambda sample, axis: modal_exposure(sample, axis=axis),
        method="percentile",
        rng=np.random.default_rng(5),
    ).confidence_interval
    assert (ours.low, ours.high) == (theirs.low, theirs.high)


def trials() -> pd.DataFrame:
    """Reader A reaches a threshold (400 and 450 twice each), B sits at the longest exposure,
    C's staircase has no known longest exposure."""
    rows = [
        ("A", [500, 450, 400, 450, 400, 350], [True, True, False, True, True, False], 1000.0),
        ("B", [500, 650, 800, 950, 1000, 1000, 1000], [False] * 7, 1000.0),
        ("C", [300, 300], [True, False], np.nan),
    ]
    return pd.DataFrame(
        [
            {"block": 1, "reader": reader, "exposure_ms": ms, "correct": right, "max_ms": longest}
            for reader, exposures, correct, longest in rows
            for ms, right in zip(exposures, correct, strict=True)
        ]
    )


def test_thresholds_per_reader_say_whether_they_were_reached() -> None:
    table = threshold_table(trials(), seed=0)
    assert list(table.columns) == list(hype.THRESHOLD_COLUMNS)
    assert table["reader"].tolist() == ["A", "B", "C"]
    assert table["trials"].tolist() == [6, 7, 2]
    assert table["right"].tolist() == [4, 0, 1]
    assert table["share_right"].tolist() == [4 / 6, 0.0, 0.5]
    assert table["threshold_ms"].tolist() == [425.0, 1000.0, 300.0]
    assert table["threshold_reached"].tolist() == [True, False, pd.NA]
    assert table["outcome"].tolist() == [
        "reached",
        "not reached: not told apart even at the longest exposure, 1000 ms",
        "unknown (the staircase's longest exposure is not known)",
    ]
    # C's two trials at 300 ms: a degenerate bootstrap.
    assert table.loc[2, ["threshold_low_ms", "threshold_high_ms"]].tolist() == [300.0, 300.0]


def test_hype_time_is_the_mean_of_the_readers_thresholds() -> None:
    thresholds = threshold_table(trials()[lambda t: t["reader"] != "C"], seed=0)
    pooled = hype_time_table(thresholds, seed=0)
    row = pooled.iloc[0]
    assert (row["block"], row["readers"], row["not_reached"]) == (1, 2, 1)
    assert row["hype_time_ms"] == (425 + 1000) / 2
    # Two readers: resampled means are 425, 712.5 or 1000 with chances 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% percentiles are the two thresholds themselves.
    assert (row["hype_time_low_ms"], row["hype_time_high_ms"]) == (425.0, 1000.0)
    assert row["max_ms"] == 1000.0


def calls() -> pd.DataFrame:
    """A: 3 real (1 wrong), 5 synthetic (2 wrong); B: 2 real (none wrong), 2 synthetic (both
    wrong); C, on 2AFC cases (origin mixed): 1 wrong of 4."""
    rows = (
        [("A", "real", r) for r in (True, False, True)]
        + [("A", "synthetic", r) for r in (False, True, False, True, True)]
        + [("B", "real", True)] * 2
        + [("B", "synthetic", False)] * 2
    )
    frame = pd.DataFrame(rows, columns=["reader", "origin", "correct"])
    frame["exposure"] = "untimed"
    afc = pd.DataFrame(
        {"reader": "C", "origin": "mixed", "correct": [True, True, False, True], "exposure": "2AFC"}
    )
    return pd.concat([frame, afc], ignore_index=True)


def exact(k: int, n: int) -> tuple[float, float]:
    interval = stats.binomtest(k, n).proportion_ci(method="exact")
    return interval.low, interval.high


def test_error_rates_per_reader_with_counts_and_exact_intervals() -> None:
    table = error_rate_table(calls(), by=["exposure"], seed=0)
    assert list(table.columns) == ["exposure", *hype.ERROR_RATE_COLUMNS]
    untimed = table[table["exposure"] == "untimed"].set_index("reader")
    a = untimed.loc["A"]
    assert (a["n"], a["wrong"], a["error_rate"]) == (8, 3, 3 / 8)
    assert (a["n_real"], a["wrong_real"], a["error_rate_real"]) == (3, 1, 1 / 3)
    assert (a["n_synthetic"], a["wrong_synthetic"], a["error_rate_synthetic"]) == (5, 2, 2 / 5)
    assert (a["error_low"], a["error_high"]) == pytest.approx(exact(3, 8), abs=1e-12)
    assert (a["error_low_real"], a["error_high_real"]) == pytest.approx(exact(1, 3), abs=1e-12)
    assert a["interval"] == "exact (Clopper-Pearson)"
    b = untimed.loc["B"]
    assert (b["error_rate"], b["error_rate_real"], b["error_rate_synthetic"]) == (0.5, 0.0, 1.0)


def test_the_mean_of_readers_pools_rates_and_sums_counts() -> None:
    table = error_rate_table(calls(), by=["exposure"], seed=0)
    # Groups in the order of their keys ("2AFC" before "untimed"), each closed by its mean.
    assert table["reader"].tolist() == ["C", MEAN_OF_READERS, "A", "B", MEAN_OF_READERS]
    mean = table.iloc[4]
    assert mean["readers"] == 2
    assert (mean["n"], mean["wrong"], mean["n_real"], mean["wrong_synthetic"]) == (12, 5, 5, 4)
    assert mean["error_rate"] == (3 / 8 + 1 / 2) / 2
    assert mean["error_rate_real"] == (1 / 3 + 0) / 2
    assert mean["error_rate_synthetic"] == (2 / 5 + 1) / 2
    # Two readers: the percentile interval runs from one reader's rate to the other's.
    assert (mean["error_low"], mean["error_high"]) == (3 / 8, 1 / 2)
    assert mean["interval"] == "bootstrap over readers"


def test_a_2afc_reader_has_no_rate_on_real_or_synthetic_images() -> None:
    table = error_rate_table(calls(), by=["exposure"], seed=0)
    afc = table[table["exposure"] == "2AFC"]
    reader, mean = afc.iloc[0], afc.iloc[1]
    assert (reader["n"], reader["wrong"], reader["error_rate"]) == (4, 1, 0.25)
    assert reader["n_real"] == 0 and np.isnan(reader["error_rate_real"])
    # One reader: the mean is their rate, with no interval across readers.
    assert mean["error_rate"] == 0.25 and np.isnan(mean["error_low"])
    assert np.isnan(mean["error_rate_synthetic"])


def test_shown_durations_per_reader_and_over_all() -> None:
    timed = pd.DataFrame(
        {
            "reader": ["A", "A", "A", "B"],
            "exposure_ms": [500, 450, 400, 1000],
            "shown_ms": [503.0, 440.0, np.nan, 1017.0],
        }
    )
    table = shown_duration_table(timed)
    assert table.to_dict("records") == [
        {
            "reader": "A",
            "timed_cases": 3,
            "measured": 2,
            "median_abs_difference_ms": 6.5,
            "max_abs_difference_ms": 10.0,
        },
        {
            "reader": "B",
            "timed_cases": 1,
            "measured": 1,
            "median_abs_difference_ms": 17.0,
            "max_abs_difference_ms": 17.0,
        },
        {
            "reader": ALL_READERS,
            "timed_cases": 4,
            "measured": 3,
            "median_abs_difference_ms": 10.0,
            "max_abs_difference_ms": 17.0,
        },
    ]


def test_missing_columns_are_named() -> None:
    with pytest.raises(StatsError, match="max_ms"):
        threshold_table(trials().drop(columns="max_ms"), seed=0)
    with pytest.raises(StatsError, match="origin"):
        error_rate_table(calls().drop(columns="origin"), seed=0)
