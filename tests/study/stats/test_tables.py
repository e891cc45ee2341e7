"""Metrics tables from the tidy frame, and Table 4.3 of the seed study cell by cell."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from paper_results import TABLE_4_3
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from study.stats import StatsError
from study.stats.tables import (
    METRICS_COLUMNS,
    POOLED,
    lesion_accuracy_by_origin,
    metrics_table,
    per_reader_table,
    seed_table,
    seed_table_layout,
    shown_accuracy,
)


def _answers(correct: int, total: int, right: str, wrong: str) -> list[str]:
    return [right] * correct + [wrong] * (total - correct)


def seed_study(tidy_frame) -> pd.DataFrame:
    """One reader's answers that give exactly Table 4.3: per sequence 32 slices, 8 of each
    origin x lesion; for the paired T2W-DW set, lesion answers only."""
    rows: list[dict[str, object]] = []
    case_id = 0
    # (sequence, paired, synthesised-identification correct among [lesion, no lesion] cases,
    #  lesion-identification correct among [real, synthetic] cases)
    plan = [("ADC", False, (10, 8), (10, 12)), ("T2W", False, (11, 9), (10, 9))]
    plan.append(("T2W+DWI", True, None, (9, 9)))
    for sequence, paired, synthesised, lesion in plan:
        cases = [(o, les) for o in ("real", "synthetic") for les in (1, 0) for _ in range(8)]
        origin_calls: dict[tuple[str, int], list[str]] = {}
        if synthesised is not None:
            for les, correct in zip((1, 0), synthesised, strict=True):
                # 16 cases of this lesion status: 8 real then 8 synthetic.
                truth = ["real"] * 8 + ["synthetic"] * 8
                flip = {"real": "synthetic", "synthetic": "real"}
                calls = [t if i < correct else flip[t] for i, t in enumerate(truth)]
                origin_calls[("real", les)] = calls[:8]
                origin_calls[("synthetic", les)] = calls[8:]
        lesion_calls: dict[tuple[str, int], list[str]] = {}
        for origin, correct in zip(("real", "synthetic"), lesion, strict=True):
            truth = ["yes"] * 8 + ["no"] * 8
            calls = [
                t if i < correct else {"yes": "no", "no": "yes"}[t] for i, t in enumerate(truth)
            ]
            lesion_calls[(origin, 1)] = calls[:8]
            lesion_calls[(origin, 0)] = calls[8:]
        seen: dict[tuple[str, int], int] = {}
        for origin, les in cases:
            index = seen.get((origin, les), 0)
            seen[(origin, les)] = index + 1
            case_id += 1
            common = {
                "reader": "R1",
                "case_id": case_id,
                "origin": origin,
                "sequence": sequence,
                "lesion": les,
                "paired": paired,
            }
            if synthesised is not None:
                rows.append(
                    {
                        **common,
                        "question_kind": "real_or_synthetic",
                        "question_id": 1,
                        "value": origin_calls[(origin, les)][index],
                    }
                )
            rows.append(
                {
                    **common,
                    "question_kind": "lesion_present",
                    "question_id": 2,
                    "value": lesion_calls[(origin, les)][index],
                }
            )
    tidy = tidy_frame(rows)
    # Practice rows and repeated presentations must not change a single cell.
    noise = tidy.head(10).assign(value="synthetic", practice=True)
    again = tidy[tidy["question_kind"] == "lesion_present"].head(10).assign(repeat=True)
    again["value"] = again["value"].map({"yes": "no", "no": "yes"})
    return pd.concat([tidy, noise.assign(question_kind="real_or_synthetic"), again])


def test_seed_table_reproduces_every_cell_of_table_4_3(tidy_frame) -> None:
    table = seed_table(seed_study(tidy_frame))
    assert len(table) == len(TABLE_4_3)
    for _, cell in table.iterrows():
        k, n, printed = TABLE_4_3[(cell["task"], cell["data"], cell["subset"])]
        assert (cell["k"], cell["n"], cell["fraction"]) == (k, n, f"{k}/{n}")
        assert cell["accuracy"] == k / n
        assert cell["accuracy_shown"] == printed
        low, high = proportion_confint(k, n, method="wilson")
        assert (cell["wilson_low"], cell["wilson_high"]) == pytest.approx((low, high), abs=1e-12)
        assert cell["p_vs_chance"] == pytest.approx(stats.binomtest(k, n).pvalue, rel=1e-9)
        expected_class = "synthetic" if cell["task"].startswith("identification") else "lesion"
        assert cell["positive_class"] == expected_class


def test_seed_table_layout_is_the_papers(tidy_frame) -> None:
    layout = seed_table_layout(seed_table(seed_study(tidy_frame)))
    assert list(layout["data"]) == ["ADC", "T2W", "ADC", "T2W", "T2W-DW"]
    first = layout.iloc[0]
    assert first["overall"].startswith("18/32 = 0.563 (0.393-0.718), p = 0.597")
    assert first["with cancer"].startswith("10/16 = 0.625")
    assert first["real"] == ""
    assert layout.iloc[4]["synthesised"].startswith("9/16 = 0.563")


def test_shown_accuracy_rounds_half_up() -> None:
    assert round(9 / 16, 3) == 0.562  # what binary floating point does with the tie
    assert shown_accuracy(9, 16) == "0.563"
    assert shown_accuracy(11, 16) == "0.688"
    assert shown_accuracy(19, 32) == "0.594"
    assert shown_accuracy(8, 16) == "0.500"
    assert shown_accuracy(0, 0) == "n/a"


def test_metrics_table_pooled_per_reader_and_subgroups(tidy_frame) -> None:
    tidy = seed_study(tidy_frame)
    pooled = metrics_table(tidy, by=["question_kind"]).set_index("question_kind")
    assert list(pooled.columns) == list(METRICS_COLUMNS)
    rs = pooled.loc["real_or_synthetic"]
    assert rs["positive_class"] == "synthetic"
    assert (rs["n"], rs["correct"]) == (64, 38)
    assert rs["tp"] + rs["fn"] == 32
    assert rs["accuracy_p_vs_chance"] == pytest.approx(stats.binomtest(38, 64).pvalue)
    low, high = proportion_confint(38, 64, method="beta")
    assert (rs["accuracy_cp_low"], rs["accuracy_cp_high"]) == pytest.approx((low, high))
    assert rs["sensitivity"] == pytest.approx(rs["tp"] / 32)
    # Every real image was called real here: a false-alarm rate of 0 becomes 1/(2 x 32).
    assert rs["fp"] == 0
    hit, false_alarm = stats.norm.ppf(rs["tp"] / 32), stats.norm.ppf(1 / 64)
    assert rs["d_prime"] == pytest.approx(hit - false_alarm)
    assert rs["criterion_c"] == pytest.approx(-(hit + false_alarm) / 2)
    lesion = pooled.loc["lesion_present"]
    assert (lesion["positive_class"], lesion["n"], lesion["correct"]) == ("lesion", 96, 59)

    by_sequence = metrics_table(tidy, by=["question_kind", "sequence", "lesion"])
    adc_cancer = by_sequence[
        (by_sequence["question_kind"] == "real_or_synthetic")
        & (by_sequence["sequence"] == "ADC")
        & (by_sequence["lesion"] == 1)
    ].iloc[0]
    assert (adc_cancer["correct"], adc_cancer["n"]) == (10, 16)
    by_origin = metrics_table(tidy, by=["origin"])
    assert list(by_origin.columns[:2]) == ["question_kind", "origin"]
    real_rs = by_origin[
        (by_origin["question_kind"] == "real_or_synthetic") & (by_origin["origin"] == "real")
    ].iloc[0]
    assert math.isnan(real_rs["sensitivity"])
    assert real_rs["specificity"] == real_rs["accuracy"]


def test_per_reader_table_appends_pooled_rows(tidy_frame) -> None:
    tidy = seed_study(tidy_frame)
    second = tidy.assign(
        reader="R2",
        value=tidy["value"].map(
            {"real": "synthetic", "synthetic": "real", "yes": "no", "no": "yes"}
        ),
    )
    table = per_reader_table(pd.concat([tidy, second]))
    rs = table[table["question_kind"] == "real_or_synthetic"]
    assert list(rs["reader"]) == ["R1", "R2", POOLED]
    assert list(rs["correct"]) == [38, 26, 64]
    assert rs.iloc[2]["n"] == 128


def test_mixed_cases_and_unknown_lesions_are_left_out(tidy_frame) -> None:
    tidy = tidy_frame(
        [
            {"case_id": 1, "origin": "mixed", "value": "real"},
            {"case_id": 2, "origin": "real", "value": "real"},
            {"case_id": 3, "question_kind": "lesion_present", "lesion": pd.NA, "value": "yes"},
            {"case_id": 4, "question_kind": "lesion_present", "lesion": 1, "value": "yes"},
            {
                "case_id": 5,
                "question_kind": "which_is_real",
                "value": "left",
                "correct_side": "left",
                "origin": "mixed",
            },
            {
                "case_id": 6,
                "question_kind": "which_is_real",
                "value": "left",
                "correct_side": "right",
                "origin": "mixed",
            },
        ]
    )
    table = metrics_table(tidy, by=["question_kind"]).set_index("question_kind")
    assert table.loc["real_or_synthetic", "n"] == 1
    assert table.loc["lesion_present", "n"] == 1
    assert table.loc["which_is_real", "positive_class"] == "left"
    assert (table.loc["which_is_real", "n"], table.loc["which_is_real", "correct"]) == (2, 1)


def test_unknown_answers_and_columns_are_refused(tidy_frame) -> None:
    with pytest.raises(StatsError, match="'maybe'"):
        metrics_table(tidy_frame([{"value": "maybe"}]), by=["question_kind"])
    with pytest.raises(StatsError, match="lacks column"):
        metrics_table(tidy_frame([{}]).drop(columns="origin"), by=["question_kind"])
    with pytest.raises(StatsError, match="no such column"):
        metrics_table(tidy_frame([{}]), by=["site"])


def test_lesion_accuracy_real_versus_synthetic(tidy_frame) -> None:
    table = lesion_accuracy_by_origin(seed_study(tidy_frame)).set_index("sequence")
    adc = table.loc["ADC"]
    assert (adc["correct_real"], adc["n_real"]) == (10, 16)
    assert (adc["correct_synthetic"], adc["n_synthetic"]) == (12, 16)
    assert adc["difference"] == pytest.approx(10 / 16 - 12 / 16)
    assert adc["difference_low"] < adc["difference"] < adc["difference_high"]
    assert adc["positive_class"] == "lesion"
