"""The HYPE tables of a study from a hand-built tidy frame: staircase trials in reading order
(repeats kept, practice and machines left out), thresholds and HYPE-time, error rates untimed
and at a fixed exposure, shown durations, and the results in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from study.analysis import TIDY_COLUMNS
from study.exposure import Exposure
from study.hype_results import UNTIMED, block_exposures, hype_tables
from study.stats import StatsError
from study.stats.hype import ALL_READERS, MEAN_OF_READERS

STAIRCASE = Exposure(ms=500, adaptive=True, step_ms=50, min_ms=400, max_ms=600)
FIXED = Exposure(ms=250)
BLOCKS = {0: STAIRCASE, 1: FIXED}
START = datetime(2025, 1, 1, tzinfo=UTC)
ORIGINS = {1: "real", 2: "synthetic", 3: "real", 4: "synthetic", 5: "real", 6: "real"}
ORIGINS |= {7: "synthetic", 10: "real", 11: "synthetic", 20: "real", 21: "synthetic"}


def answer(reader: str, case: int, right: bool, minute: int, **fields: object) -> dict:
    """A real/synthetic answer of `reader` on `case`, saved `minute` minutes into the study."""
    origin = ORIGINS[case]
    wrong = "synthetic" if origin == "real" else "real"
    row = {column: None for column in TIDY_COLUMNS}
    row |= {
        "reader": reader,
        "case_id": case,
        "question_id": 1,
        "question_kind": "real_or_synthetic",
        "value": origin if right else wrong,
        "origin": origin,
        "sequence": "T2W",
        "lesion": 0,
        "paired": False,
        "practice": False,
        "repeat": False,
        "time_s": 2.0,
        "saved_at": START + timedelta(minutes=minute),
        "machine": False,
        "phase": 1,
        "exposure_block": None,
        "adaptive": False,
        "exposure_ms": None,
        "shown_ms": np.nan,
    }
    return row | fields


def staircase(reader: str, case: int, ms: int, right: bool, minute: int, **fields) -> dict:
    return answer(
        reader,
        case,
        right,
        minute,
        exposure_block=0,
        adaptive=True,
        exposure_ms=ms,
        shown_ms=ms + 2.0 if reader == "A" else np.nan,
        **fields,
    )


def fixed(reader: str, case: int, right: bool, minute: int, shown: float) -> dict:
    return answer(reader, case, right, minute, exposure_block=1, exposure_ms=250, shown_ms=shown)


def tidy() -> pd.DataFrame:
    rows = [
        # A reads the staircase cases in the order 3, 1, 5, 2, 4, then case 6, a repeat of 3.
        staircase("A", 1, 450, True, 2),
        staircase("A", 2, 550, True, 4),
        staircase("A", 3, 500, True, 1),
        staircase("A", 4, 500, True, 5),
        staircase("A", 5, 400, False, 3),
        staircase("A", 6, 450, True, 6, repeat=True, repeat_of=3),
        # A practice case is timed too, and left out.
        staircase("A", 7, 500, False, 0, practice=True),
        # B's staircase climbs to its longest exposure and stays.
        staircase("B", 1, 500, False, 1),
        staircase("B", 2, 600, False, 2),
        staircase("B", 3, 600, True, 3),
        fixed("A", 10, True, 7, 251.0),
        fixed("A", 11, False, 8, 260.0),
        fixed("B", 10, True, 7, np.nan),
        fixed("B", 11, True, 8, np.nan),
        answer("A", 20, True, 9),
        answer("A", 21, True, 10),
        answer("B", 20, False, 9),
        answer("B", 21, True, 10),
        # A machine reader answers too, and is left out.
        answer("M", 20, False, 9, machine=True),
        answer("M", 21, False, 10, machine=True),
    ]
    frame = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    # Another question on a timed case is no staircase trial.
    confidence = answer("A", 3, True, 1, question_id=2, question_kind="confidence", value="4")
    frame = pd.concat([frame, pd.DataFrame([confidence])], ignore_index=True)
    frame["exposure_block"] = frame["exposure_block"].astype("Int64")
    frame["exposure_ms"] = frame["exposure_ms"].astype("Int64")
    return frame


def test_the_staircase_trials_are_in_reading_order_with_repeats() -> None:
    trials = hype_tables(tidy(), BLOCKS, seed=0).trials
    a = trials[trials["reader"] == "A"]
    assert a["trial"].tolist() == [1, 2, 3, 4, 5, 6]
    assert a["case_id"].tolist() == [3, 1, 5, 2, 4, 6]
    assert a["exposure_ms"].tolist() == [500, 450, 400, 550, 500, 450]
    assert a["correct"].tolist() == [True, True, False, True, True, True]
    b = trials[trials["reader"] == "B"]
    assert b["exposure_ms"].tolist() == [500, 600, 600]
    assert set(trials["block"]) == {1} and set(trials["max_ms"]) == {600.0}


def test_thresholds_and_hype_time() -> None:
    results = hype_tables(tidy(), BLOCKS, seed=0)
    thresholds = results.thresholds.set_index("reader")
    # A: 500 and 450 twice each; B: 600, the longest exposure, twice.
    assert thresholds["threshold_ms"].to_dict() == {"A": 475.0, "B": 600.0}
    assert thresholds["threshold_reached"].tolist() == [True, False]
    assert thresholds["trials"].tolist() == [6, 3]
    (row,) = results.hype_time.to_dict("records")
    assert row == {
        "block": 1,
        "readers": 2,
        "not_reached": 1,
        "hype_time_ms": (475 + 600) / 2,
        "hype_time_low_ms": 475.0,
        "hype_time_high_ms": 600.0,
        "max_ms": 600.0,
    }


def test_error_rates_untimed_first_then_each_fixed_exposure() -> None:
    rates = hype_tables(tidy(), BLOCKS, seed=0).error_rates
    assert rates["exposure"].tolist() == [UNTIMED] * 3 + ["250 ms"] * 3
    assert rates["reader"].tolist() == ["A", "B", MEAN_OF_READERS] * 2
    columns = ["n", "wrong", "error_rate", "n_real", "wrong_real", "error_rate_real"]
    columns += ["n_synthetic", "wrong_synthetic", "error_rate_synthetic"]
    assert rates[columns].to_numpy().tolist() == [
        [2, 0, 0.0, 1, 0, 0.0, 1, 0, 0.0],
        [2, 1, 0.5, 1, 1, 1.0, 1, 0, 0.0],
        [4, 1, 0.25, 2, 1, 0.5, 2, 0, 0.0],
        [2, 1, 0.5, 1, 0, 0.0, 1, 1, 1.0],
        [2, 0, 0.0, 1, 0, 0.0, 1, 0, 0.0],
        [4, 1, 0.25, 2, 0, 0.0, 2, 1, 0.5],
    ]


def test_shown_durations_of_every_timed_case() -> None:
    shown = hype_tables(tidy(), BLOCKS, seed=0).shown.set_index("reader")
    # A: six staircase cases shown 2 ms long, the fixed ones 1 and 10 ms off; B: none measured.
    assert shown.loc["A"].tolist() == [8, 8, 2.0, 10.0]
    assert shown.loc["B", ["timed_cases", "measured"]].tolist() == [5, 0]
    assert np.isnan(shown.loc["B", "median_abs_difference_ms"])
    assert shown.loc[ALL_READERS].tolist() == [13, 8, 2.0, 10.0]


def test_the_results_in_words() -> None:
    assert hype_tables(tidy(), BLOCKS, seed=0).summary() == (
        "Block 1: readers told real from synthetic at about 538 ms (95% CI 475-600 ms; "
        "HYPE-time, the mean of 2 readers' thresholds). 1 of 2 readers did not reach theirs "
        "within 600 ms and count at 600 ms, so the time is a lower bound.",
        "Untimed (real or synthetic), readers were wrong on 25% of their calls (95% CI 0%-50%, "
        "the mean of 2 readers' rates; 50% is chance): 50% of real images and 0% of synthetic "
        "images.",
        "At 250 ms (real or synthetic), readers were wrong on 25% of their calls (95% CI "
        "0%-50%, the mean of 2 readers' rates; 50% is chance): 0% of real images and 50% of "
        "synthetic images.",
    )


def test_no_reader_reaching_a_threshold_is_said_plainly() -> None:
    frame = tidy()
    only_b = frame[(frame["reader"] == "B") & frame["adaptive"]]
    results = hype_tables(only_b, BLOCKS, seed=0)
    assert results.summary() == (
        "Block 1: no reader's threshold was reached within 600 ms: even at the longest "
        "exposure the readers could not tell real from synthetic three times in four.",
    )
    assert results.error_rates.empty
    assert list(results.export_tables()) == [
        "hype_time",
        "hype_thresholds",
        "hype_staircase_trials",
        "hype_shown_durations",
    ]


def test_nothing_without_timed_cases_or_real_synthetic_answers() -> None:
    frame = tidy()
    lesions = frame[frame["exposure_block"].isna()].assign(
        question_kind="lesion_present", value="no"
    )
    assert hype_tables(lesions, BLOCKS, seed=0) is None
    with pytest.raises(StatsError, match="shown_ms"):
        hype_tables(frame.drop(columns="shown_ms"), BLOCKS, seed=0)


def test_block_exposures_come_from_the_plan() -> None:
    settings = {
        "blocks": [
            {"type": "SingleBlock", "cases": 8, "exposure": STAIRCASE.as_setting(0)},
            {"type": "SingleBlock", "cases": 4, "exposure": None},
            {"type": "TwoAFCBlock", "cases": 4, "exposure": {"ms": 250}},
        ]
    }
    assert block_exposures(settings) == {0: STAIRCASE, 2: FIXED}
    assert block_exposures({}) == {}
