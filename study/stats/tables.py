"""Metrics tables from the tidy answer frame, and the tidy frame's contract.

The tidy frame has one row per reader x case x question, with the columns of `TIDY_COLUMNS`
(built by the database side). Practice rows never enter an analysis; repeated presentations
(`repeat` true) feed intra-reader agreement only.

Binary questions and their positive class (named in every table):

| question_kind      | answer          | truth                          | positive class |
|--------------------|-----------------|--------------------------------|----------------|
| real_or_synthetic  | real, synthetic | origin (mixed cases left out)  | synthetic      |
| lesion_present     | yes, no         | lesion 1/0 (unknown left out)  | lesion         |
| which_is_real      | left, right     | correct_side                   | left           |

Pooled rows count every reading as one observation: their intervals ignore the correlation
between readers who read the same cases (use `study.stats.mrmc` for that).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

from study.stats import StatsError
from study.stats.classification import binary_metrics, confusion_counts
from study.stats.proportions import binomial_test, newcombe_difference_interval, wilson_interval

TIDY_COLUMNS: tuple[str, ...] = (
    "reader",
    "case_id",
    "question_kind",
    "question_id",
    "value",
    "origin",
    "sequence",
    "lesion",
    "paired",
    "practice",
    "repeat",
    "correct_side",
    "time_s",
)
BINARY_KINDS: tuple[str, ...] = ("real_or_synthetic", "lesion_present", "which_is_real")
POSITIVE_CLASS: dict[str, str] = {
    "real_or_synthetic": "synthetic",
    "lesion_present": "lesion",
    "which_is_real": "left",
}
POOLED = "all readers"

_ANSWERS: dict[str, tuple[str, str]] = {
    # question kind: (answer meaning the positive class, answer meaning the negative class)
    "real_or_synthetic": ("synthetic", "real"),
    "lesion_present": ("yes", "no"),
    "which_is_real": ("left", "right"),
}
# True and False also match 1 and 0 (equal hashes), numpy booleans included.
_FLAG_VALUES = {True: True, False: False, "true": True, "false": False, "1": True, "0": False}

_RATES = ("sensitivity", "specificity", "ppv", "npv")
METRICS_COLUMNS: tuple[str, ...] = (
    "positive_class",
    "n",
    "tp",
    "fp",
    "tn",
    "fn",
    "correct",
    "accuracy",
    "accuracy_wilson_low",
    "accuracy_wilson_high",
    "accuracy_cp_low",
    "accuracy_cp_high",
    "accuracy_p_vs_chance",
    *(f"{rate}{suffix}" for rate in _RATES for suffix in ("", "_wilson_low", "_wilson_high")),
    "d_prime",
    "criterion_c",
)


def check_tidy(tidy: pd.DataFrame) -> None:
    """Raise a `StatsError` naming every column of the contract that `tidy` lacks."""
    missing = [column for column in TIDY_COLUMNS if column not in tidy.columns]
    if missing:
        raise StatsError(
            f"the answer frame lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(TIDY_COLUMNS)}"
        )


def _flag(column: pd.Series, name: str) -> pd.Series:
    """A true/false column as booleans; missing counts as false, anything else is an error."""
    if column.dtype == bool:
        return column

    def parse(value: object) -> bool:
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            return False
        key = value.strip().lower() if isinstance(value, str) else value
        if key in _FLAG_VALUES:
            return _FLAG_VALUES[key]
        raise StatsError(f"column {name} must hold true/false, found {value!r}")

    return column.map(parse).astype(bool)


def analysis_rows(tidy: pd.DataFrame, *, keep_repeats: bool = False) -> pd.DataFrame:
    """The rows an analysis uses: practice rows dropped, repeated presentations dropped unless
    `keep_repeats`; `practice`, `repeat` and `paired` become plain booleans."""
    check_tidy(tidy)
    flags = {name: _flag(tidy[name], name) for name in ("practice", "repeat", "paired")}
    keep = ~flags["practice"]
    if not keep_repeats:
        keep &= ~flags["repeat"]
    # One selection (a new frame) instead of a copy of every column and then a selection.
    chosen = keep.to_numpy()
    rows = tidy[chosen]
    converted = {
        name: flag.to_numpy()[chosen] for name, flag in flags.items() if tidy[name].dtype != bool
    }
    return rows.assign(**converted) if converted else rows


def answer_text(column: pd.Series) -> pd.Series:
    """Answers as stripped lower-case strings; missing answers stay missing."""
    return column.astype("string").str.strip().str.lower().replace("", pd.NA)


def binary_calls(tidy: pd.DataFrame, *, keep_repeats: bool = False) -> pd.DataFrame:
    """Answered binary questions with boolean columns `truth`, `called` and `correct`.

    Rows whose truth is undefined (mixed-origin cases for real_or_synthetic, unknown lesion for
    lesion_present, no correct side for which_is_real) are left out; an answer outside the
    question's two options raises a `StatsError` naming it. Repeated presentations are left
    out unless `keep_repeats` (a timed staircase moves on them too).
    """
    rows = analysis_rows(tidy, keep_repeats=keep_repeats)
    rows = rows[rows["question_kind"].isin(BINARY_KINDS)]
    answer = answer_text(rows["value"])
    answered = answer.notna().to_numpy()
    rows = rows[answered].assign(answer=answer[answered])
    # Truth as 1.0 / 0.0, nan where the case has none; filled kind by kind. Comparisons stay
    # vectorised on the (arrow) string columns: no conversion to Python objects.
    truth = np.full(len(rows), np.nan)
    called = np.zeros(len(rows), dtype=bool)
    for kind, (positive, negative) in _ANSWERS.items():
        of_kind = (rows["question_kind"] == kind).to_numpy(dtype=bool, na_value=False)
        if not of_kind.any():
            continue
        given = rows["answer"][of_kind]
        bad = ~given.isin([positive, negative]).to_numpy(dtype=bool)
        if bad.any():
            row = rows.iloc[int(np.flatnonzero(of_kind)[np.flatnonzero(bad)[0]])]
            raise StatsError(
                f"{kind} answers must be {positive!r} or {negative!r}; found {row['answer']!r} "
                f"(reader {row['reader']}, case {row['case_id']})"
            )
        called[of_kind] = (given == positive).to_numpy(dtype=bool)
        if kind == "lesion_present":
            lesion = pd.to_numeric(rows["lesion"][of_kind], errors="coerce")
            values = lesion.astype(float).to_numpy(na_value=np.nan)
            truth[of_kind] = np.where(values == 1, 1.0, np.where(values == 0, 0.0, np.nan))
        else:
            column = "origin" if kind == "real_or_synthetic" else "correct_side"
            text = answer_text(rows[column][of_kind])
            is_positive = (text == positive).to_numpy(dtype=bool, na_value=False)
            is_negative = (text == negative).to_numpy(dtype=bool, na_value=False)
            truth[of_kind] = np.where(is_positive, 1.0, np.where(is_negative, 0.0, np.nan))
    keep = ~np.isnan(truth)
    rows = rows[keep].copy()
    rows["truth"] = truth[keep] == 1.0
    rows["called"] = called[keep]
    rows["correct"] = rows["truth"] == rows["called"]
    rows["positive_class"] = rows["question_kind"].map(POSITIVE_CLASS)
    return rows


def _metrics_row(group: pd.DataFrame, confidence: float) -> dict[str, object]:
    kind = group["question_kind"].iloc[0]
    counts = confusion_counts(group["truth"].to_numpy(), group["called"].to_numpy())
    metrics = binary_metrics(counts, confidence=confidence, two_alternative=kind == "which_is_real")
    row: dict[str, object] = {
        "positive_class": POSITIVE_CLASS[kind],
        "n": counts.n,
        "tp": counts.tp,
        "fp": counts.fp,
        "tn": counts.tn,
        "fn": counts.fn,
        "correct": counts.correct,
        "accuracy": metrics.accuracy.estimate,
        "accuracy_wilson_low": metrics.accuracy.low,
        "accuracy_wilson_high": metrics.accuracy.high,
        "accuracy_cp_low": metrics.accuracy_exact_low,
        "accuracy_cp_high": metrics.accuracy_exact_high,
        "accuracy_p_vs_chance": metrics.accuracy_p_value,
    }
    for rate in _RATES:
        value = getattr(metrics, rate)
        row[rate] = value.estimate
        row[f"{rate}_wilson_low"] = value.low
        row[f"{rate}_wilson_high"] = value.high
    row["d_prime"] = metrics.d_prime
    row["criterion_c"] = metrics.criterion_c
    return row


def metrics_table(
    tidy: pd.DataFrame, *, by: Sequence[str], confidence: float = 0.95
) -> pd.DataFrame:
    """Binary-question metrics per group of `by` (question_kind is always the first key).

    Columns: the `by` keys, then `METRICS_COLUMNS`: positive_class, n, tp, fp, tn, fn,
    correct, accuracy with Wilson and Clopper-Pearson limits and its exact two-sided binomial
    p against 0.5, sensitivity, specificity, PPV and NPV with Wilson limits, d' and c (1/(2N)
    correction; for which_is_real, d' of the forced choice). Missing keys (e.g. an unknown
    lesion) form their own group. `by=["question_kind", "reader"]` gives per-reader rows,
    `["question_kind"]` pooled ones, `["question_kind", "sequence", "lesion"]` subgroups.
    """
    keys = list(by) if "question_kind" in by else ["question_kind", *by]
    check_tidy(tidy)
    unknown = [key for key in keys if key not in tidy.columns]
    if unknown:
        raise StatsError(f"cannot group by {', '.join(unknown)}: no such column")
    calls = binary_calls(tidy)
    rows = [
        {**dict(zip(keys, key, strict=True)), **_metrics_row(group, confidence)}
        for key, group in calls.groupby(keys, dropna=False, sort=True)
    ]
    return pd.DataFrame(rows, columns=[*keys, *METRICS_COLUMNS])


def per_reader_table(tidy: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """`metrics_table` per question kind and reader, each kind followed by its pooled row
    (reader `POOLED`)."""
    per_reader = metrics_table(tidy, by=["question_kind", "reader"], confidence=confidence)
    pooled = metrics_table(tidy, by=["question_kind"], confidence=confidence)
    pooled.insert(1, "reader", POOLED)
    per_reader["reader"] = per_reader["reader"].astype(str)
    pieces = []
    for kind in pooled["question_kind"]:
        pieces.append(per_reader[per_reader["question_kind"] == kind])
        pieces.append(pooled[pooled["question_kind"] == kind])
    if not pieces:
        return per_reader
    return pd.concat(pieces, ignore_index=True)


def shown_accuracy(k: int, n: int, digits: int = 3) -> str:
    """k/n rounded half up as papers print it (9/16 = 0.5625 -> '0.563'), from the exact
    fraction so that binary floating point cannot round a tie down."""
    if n == 0:
        return "n/a"
    exact = Decimal(k) / Decimal(n)
    return str(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


# Table 4.3 of Saeed et al. (MIDL 2023): (task, data label, question kind, sequence, paired,
# subsets). A subset is (label, column, value) selecting rows; None selects every row.
_SEED_ROWS: tuple[tuple[str, str, str, str, bool, tuple[tuple[str, str, object], ...]], ...] = (
    *(
        (
            "identification of synthesised images",
            sequence,
            "real_or_synthetic",
            sequence,
            False,
            (("with cancer", "lesion", 1), ("without cancer", "lesion", 0)),
        )
        for sequence in ("ADC", "T2W")
    ),
    *(
        (
            "lesion identification",
            sequence,
            "lesion_present",
            sequence,
            False,
            (("real", "origin", "real"), ("synthesised", "origin", "synthetic")),
        )
        for sequence in ("ADC", "T2W")
    ),
    (
        "lesion identification, paired",
        "T2W-DW",
        "lesion_present",
        "T2W+DWI",
        True,
        (("real", "origin", "real"), ("synthesised", "origin", "synthetic")),
    ),
)
SEED_SUBSETS: tuple[str, ...] = ("overall", "with cancer", "without cancer", "real", "synthesised")


def _seed_cell(
    task: str, data: str, subset: str, kind: str, rows: pd.DataFrame, confidence: float
) -> dict[str, object]:
    k, n = int(rows["correct"].sum()), len(rows)
    low, high = wilson_interval(k, n, confidence)
    return {
        "task": task,
        "data": data,
        "subset": subset,
        "question_kind": kind,
        "positive_class": POSITIVE_CLASS[kind],
        "k": k,
        "n": n,
        "fraction": f"{k}/{n}",
        "accuracy": k / n if n else float("nan"),
        "accuracy_shown": shown_accuracy(k, n),
        "wilson_low": low,
        "wilson_high": high,
        "p_vs_chance": binomial_test(k, n) if n else float("nan"),
    }


def seed_table(tidy: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Table 4.3 of the seed study, one row per cell, with the interval and test it lacked.

    Rows: identification of synthesised images on ADC and T2W (overall, with cancer, without
    cancer); lesion identification on ADC and T2W (overall, real, synthesised) and on paired
    T2W-DW cases (sequence "T2W+DWI", paired; overall, real, synthesised). Columns: task, data,
    subset, question_kind, positive_class, k, n, fraction ("9/16"), accuracy,
    accuracy_shown (three decimals rounded half up, as the paper), Wilson limits and the exact
    two-sided binomial p against 0.5. `seed_table_layout` arranges it as the paper does.
    """
    calls = binary_calls(tidy)
    cells = []
    for task, data, kind, sequence, paired, subsets in _SEED_ROWS:
        rows = calls[
            (calls["question_kind"] == kind)
            & (calls["sequence"] == sequence)
            & (calls["paired"] == paired)
        ]
        cells.append(_seed_cell(task, data, "overall", kind, rows, confidence))
        for label, column, value in subsets:
            if column == "lesion":
                chosen = pd.to_numeric(rows[column], errors="coerce") == value
            else:
                chosen = answer_text(rows[column]) == value
            subset_rows = rows[chosen.fillna(False).astype(bool)]
            cells.append(_seed_cell(task, data, label, kind, subset_rows, confidence))
    return pd.DataFrame(cells)


def _format_cell(cell: pd.Series) -> str:
    if cell["n"] == 0:
        return "no readings"
    p = cell["p_vs_chance"]
    shown_p = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    return (
        f"{cell['fraction']} = {cell['accuracy_shown']} "
        f"({cell['wilson_low']:.3f}-{cell['wilson_high']:.3f}), {shown_p}"
    )


def seed_table_layout(seed: pd.DataFrame) -> pd.DataFrame:
    """`seed_table` in the paper's layout: one row per task and data, one column per subset;
    each cell reads 'k/n = accuracy (Wilson low-high), p = exact binomial p'."""
    rows = []
    for (task, data), cells in seed.groupby(["task", "data"], sort=False):
        row = {"task": task, "data": data, "positive_class": cells["positive_class"].iloc[0]}
        for _, cell in cells.iterrows():
            row[cell["subset"]] = _format_cell(cell)
        rows.append(row)
    return pd.DataFrame(rows, columns=["task", "data", "positive_class", *SEED_SUBSETS]).fillna("")


def lesion_accuracy_by_origin(
    tidy: pd.DataFrame, *, by: Sequence[str] = ("sequence",), confidence: float = 0.95
) -> pd.DataFrame:
    """Lesion identification accuracy on real and on synthetic cases, and their difference
    (real minus synthetic) with Newcombe's hybrid score interval (method 10, Newcombe 1998).

    One row per group of `by`; columns: keys, positive_class, correct_real, n_real,
    accuracy_real, correct_synthetic, n_synthetic, accuracy_synthetic, difference,
    difference_low, difference_high.
    """
    keys = list(by)
    calls = binary_calls(tidy)
    calls = calls[calls["question_kind"] == "lesion_present"]
    origin = answer_text(calls["origin"])
    rows = []
    groups = calls.groupby(keys, dropna=False, sort=True) if keys else [((), calls)]
    for key, group in groups:
        real = group[origin[group.index] == "real"]
        synthetic = group[origin[group.index] == "synthetic"]
        k1, n1 = int(real["correct"].sum()), len(real)
        k2, n2 = int(synthetic["correct"].sum()), len(synthetic)
        difference = newcombe_difference_interval(k1, n1, k2, n2, confidence)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "positive_class": POSITIVE_CLASS["lesion_present"],
                "correct_real": k1,
                "n_real": n1,
                "accuracy_real": k1 / n1 if n1 else float("nan"),
                "correct_synthetic": k2,
                "n_synthetic": n2,
                "accuracy_synthetic": k2 / n2 if n2 else float("nan"),
                "difference": difference.estimate,
                "difference_low": difference.low,
                "difference_high": difference.high,
            }
        )
    return pd.DataFrame(rows)
