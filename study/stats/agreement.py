"""Agreement between readers and of a reader with themself.

References
- Cohen J (1960). A coefficient of agreement for nominal scales. Educational and Psychological
  Measurement 20:37-46: kappa = (p_o - p_e)/(1 - p_e).
- Cohen J (1968). Weighted kappa. Psychological Bulletin 70:213-220:
  kappa_w = 1 - sum(w O)/sum(w E), with w = |i - j| (linear) or (i - j)^2 (quadratic).
- Fleiss JL (1971). Measuring nominal scale agreement among many raters. Psychological
  Bulletin 76:378-382: kappa = (P_bar - P_e)/(1 - P_e).

Example:
    >>> round(cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 3)
    0.5
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from study.stats import StatsError
from study.stats.tables import POOLED, analysis_rows, answer_text

Weights = Literal["linear", "quadratic"] | None


def ordered_labels(values: Sequence[object] | np.ndarray) -> list[object]:
    """Distinct labels in their natural order: numerically when every label is a number
    (so "10" follows "9"), otherwise as text."""
    if isinstance(values, pd.Series | pd.Index | np.ndarray):
        array = np.asarray(values, dtype=object).ravel()
    else:
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
    labels = list(pd.unique(array))
    try:
        return sorted(labels, key=lambda label: float(label))
    except (TypeError, ValueError):
        return sorted(labels, key=str)


def percent_agreement(a: Sequence[object], b: Sequence[object]) -> float:
    """Share of units on which two ratings are equal (nan for no units)."""
    first, second = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if first.shape != second.shape:
        raise StatsError(
            f"two raters need ratings of the same units, not {first.shape} and {second.shape}"
        )
    return float(np.mean(first == second)) if len(first) else math.nan


def _check_weights(weights: Weights) -> None:
    if weights not in (None, "linear", "quadratic"):
        raise StatsError(f"kappa weights are None, 'linear' or 'quadratic', not {weights!r}")


def _weight_matrix(k: int, weights: Weights) -> np.ndarray:
    """Disagreement weights of a k x k table: 0/1, |i - j| or (i - j)^2."""
    _check_weights(weights)
    i, j = np.indices((k, k))
    if weights is None:
        return (i != j).astype(float)
    if weights == "linear":
        return np.abs(i - j).astype(float)
    return ((i - j) ** 2).astype(float)


def cohen_kappa(
    a: Sequence[object],
    b: Sequence[object],
    *,
    weights: Weights = None,
    labels: Sequence[object] | None = None,
) -> float:
    """Cohen's kappa of two raters on the same units, unweighted or weighted
    (scikit-learn's `cohen_kappa_score`).

    The weights use the position of a label in `labels` (default: `ordered_labels` of both
    raters' answers), so pass the question's whole scale to weigh every pair of raters alike.
    Returns nan when chance agreement is perfect (one label throughout).
    """
    first, second = list(a), list(b)
    if len(first) != len(second):
        raise StatsError(
            f"two raters need ratings of the same units, not {len(first)} and {len(second)}"
        )
    _check_weights(weights)
    if not first:
        return math.nan
    categories = list(labels) if labels is not None else ordered_labels(first + second)
    position = {label: i for i, label in enumerate(categories)}
    unknown = [x for x in first + second if x not in position]
    if unknown:
        raise StatsError(f"rating {unknown[0]!r} is not among the labels {categories}")
    if len(set(first) | set(second)) == 1:
        # Chance agreement is perfect: kappa is 0/0 (scikit-learn would warn, then say nan).
        return math.nan
    # Positions on the scale, not the labels themselves: the weights are functions of the
    # positions, and scikit-learn refuses labels that mix text and numbers.
    return float(
        cohen_kappa_score(
            [position[x] for x in first],
            [position[y] for y in second],
            labels=list(range(len(categories))),
            weights=weights,
        )
    )


def fleiss_kappa(counts: np.ndarray | Sequence[Sequence[int]]) -> float:
    """Fleiss' kappa from an items x categories table of how many raters chose each category.

    Every item must have the same number of raters n >= 2:
    P_i = (sum_j n_ij^2 - n)/(n(n - 1)), p_j = sum_i n_ij/(N n), P_e = sum_j p_j^2.
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        raise StatsError("Fleiss' kappa needs a non-empty items x categories table")
    raters = table.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise StatsError("Fleiss' kappa needs the same number (>= 2) of raters for every item")
    n = raters[0]
    p_item = ((table**2).sum(axis=1) - n) / (n * (n - 1))
    p_category = table.sum(axis=0) / table.sum()
    p_bar, p_chance = p_item.mean(), float((p_category**2).sum())
    if p_chance == 1:
        return math.nan
    return float((p_bar - p_chance) / (1 - p_chance))


def _wide_answers(tidy: pd.DataFrame, question_kind: str) -> pd.DataFrame:
    """Units (case_id, question_id) x readers of one question kind, first presentations only."""
    rows = analysis_rows(tidy)
    rows = rows[rows["question_kind"] == question_kind].copy()
    rows["answer"] = answer_text(rows["value"])
    rows = rows[rows["answer"].notna()]
    rows["reader"] = rows["reader"].astype(str)
    duplicated = rows.duplicated(["case_id", "question_id", "reader"], keep=False)
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        raise StatsError(
            f"reader {first['reader']} answered {question_kind} question {first['question_id']} "
            f"of case {first['case_id']} more than once outside repeated presentations"
        )
    return rows.pivot(index=["case_id", "question_id"], columns="reader", values="answer")


def _scale(answers: pd.Series, labels: Sequence[object] | None) -> list[object]:
    """The ordered labels of a question's scale: `labels` (the whole scale, as stored answer
    values) when given, else the labels used in `answers`; `StatsError` for an answer off the
    scale."""
    if labels is None:
        return ordered_labels(answers.dropna())
    scale = [str(label).strip().lower() for label in labels]
    if len(set(scale)) != len(scale):
        raise StatsError(f"the labels of a scale must differ from each other, not {list(labels)}")
    off = answers.dropna()[~answers.dropna().isin(scale)]
    if len(off):
        raise StatsError(f"answer {off.iloc[0]!r} is not on the question's scale {scale}")
    return scale


def pairwise_agreement(
    tidy: pd.DataFrame,
    question_kind: str,
    *,
    weights: Weights = None,
    labels: Sequence[object] | None = None,
) -> pd.DataFrame:
    """Cohen's kappa and percent agreement for every pair of readers, on the cases both read.

    Columns: question_kind, reader_a, reader_b, n (cases read by both), percent_agreement,
    kappa, weights. Weighted kappas weigh a disagreement by the distance of the two answers
    on the question's scale: pass the whole scale as `labels` (the stored answer values in
    order, e.g. "1".."5"), so that a level nobody used still counts in the distances. Without
    `labels` the scale is the labels used, ordered over all readers' answers so that every
    pair uses the same one.

    Every pair's table of answers comes from one product of one-hot answer matrices
    (units x readers*labels), so 100 readers (4,950 pairs) cost one matrix product, not 4,950
    loops over the units; each kappa is then Cohen's formula on its table. scikit-learn's
    `cohen_kappa_score` (behind `cohen_kappa`) takes answers, not tables: one call per pair
    would take about 15 s for those 4,950 pairs, three times what all the tables may take.
    """
    wide = _wide_answers(tidy, question_kind)
    labels = _scale(pd.Series(wide.to_numpy().ravel()), labels)
    readers = ordered_labels(wide.columns)
    columns = ["question_kind", "reader_a", "reader_b", "n", "percent_agreement", "kappa"]
    pairs = list(itertools.combinations(range(len(readers)), 2))
    if not pairs:
        return pd.DataFrame([], columns=[*columns, "weights"])
    k = len(labels)
    answers = wide[readers].to_numpy(dtype=object)
    codes = pd.Categorical(answers.ravel(), categories=labels).codes.reshape(answers.shape)
    one_hot = np.zeros((codes.shape[0], len(readers), k))
    units, raters = np.nonzero(codes >= 0)
    one_hot[units, raters, codes[units, raters]] = 1.0
    flat = one_hot.reshape(codes.shape[0], len(readers) * k)
    tables = (flat.T @ flat).reshape(len(readers), k, len(readers), k).transpose(0, 2, 1, 3)
    first, second = (np.array(side) for side in zip(*pairs, strict=True))
    observed = tables[first, second]  # pairs x k x k: answers of reader a (rows) and b
    n = observed.sum(axis=(1, 2))
    w = _weight_matrix(k, weights)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = observed.sum(axis=2)[:, :, None] * observed.sum(axis=1)[:, None, :]
        expected = expected / n[:, None, None]
        by_chance = (w * expected).sum(axis=(1, 2))
        kappa = 1 - (w * observed).sum(axis=(1, 2)) / by_chance
        agreement = np.trace(observed, axis1=1, axis2=2) / n
    kappa = np.where((n > 0) & (by_chance != 0), kappa, math.nan)
    agreement = np.where(n > 0, agreement, math.nan)
    return pd.DataFrame(
        {
            "question_kind": question_kind,
            "reader_a": [readers[a] for a in first],
            "reader_b": [readers[b] for b in second],
            "n": n.astype(int),
            "percent_agreement": agreement,
            "kappa": kappa,
            "weights": weights or "none",
        },
        columns=[*columns, "weights"],
    )


def group_agreement(tidy: pd.DataFrame, question_kind: str) -> dict[str, float | int]:
    """Fleiss' kappa and mean pairwise percent agreement (P_bar of Fleiss 1971) over the cases
    that every reader answered. Keys: question_kind, n_readers, n_cases, percent_agreement,
    fleiss_kappa."""
    wide = _wide_answers(tidy, question_kind).dropna()
    if wide.shape[1] < 2 or wide.empty:
        raise StatsError(
            f"Fleiss' kappa of {question_kind} needs at least two readers who answered the "
            f"same cases; found {wide.shape[1]} reader(s) and {len(wide)} common case(s)"
        )
    labels = ordered_labels(wide.stack().to_numpy())
    counts = np.stack([(wide == label).sum(axis=1).to_numpy() for label in labels], axis=1)
    n = wide.shape[1]
    p_item = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    return {
        "question_kind": question_kind,
        "n_readers": n,
        "n_cases": len(wide),
        "percent_agreement": float(p_item.mean()),
        "fleiss_kappa": fleiss_kappa(counts),
    }


def intra_reader_agreement(
    tidy: pd.DataFrame,
    question_kind: str,
    *,
    weights: Weights = None,
    labels: Sequence[object] | None = None,
) -> pd.DataFrame:
    """Agreement of each reader's repeated presentations with their first reading of the case.

    Each answer given on a repeated presentation (`repeat` true) is paired with the same
    reader's answer to the same question on the first presentation. The first presentation is
    the case named by the optional `repeat_of` column (the database shows a repeat as a case of
    its own that points to the original) and, where that column is absent or empty, the same
    `case_id`. One row per reader and a pooled row (reader `POOLED`): question_kind, reader,
    n (pairs), percent_agreement, kappa, weights. `labels` is the question's whole scale, as for
    `pairwise_agreement`.
    """
    rows = analysis_rows(tidy, keep_repeats=True)
    rows = rows[rows["question_kind"] == question_kind].copy()
    rows["answer"] = answer_text(rows["value"])
    rows = rows[rows["answer"].notna()]
    rows["reader"] = rows["reader"].astype(str)
    unit = ["reader", "case_id", "question_id"]
    first = rows[~rows["repeat"]].drop_duplicates(unit)[[*unit, "answer"]]
    again = rows[rows["repeat"]].copy()
    if "repeat_of" in again.columns:
        again["case_id"] = again["repeat_of"].where(again["repeat_of"].notna(), again["case_id"])
    again = again[[*unit, "answer"]].astype({"case_id": first["case_id"].dtype})
    pairs = again.merge(first, on=unit, suffixes=("_repeat", "_first"))
    scale = _scale(rows["answer"], labels) if len(rows) else []
    by_reader = dict(tuple(pairs.groupby("reader", sort=False)))
    groups = [(reader, by_reader[reader]) for reader in ordered_labels(list(by_reader))]
    out = []
    for reader, group in [*groups, (POOLED, pairs)]:
        out.append(
            {
                "question_kind": question_kind,
                "reader": reader,
                "n": len(group),
                "percent_agreement": percent_agreement(
                    group["answer_first"], group["answer_repeat"]
                ),
                "kappa": cohen_kappa(
                    group["answer_first"], group["answer_repeat"], weights=weights, labels=scale
                ),
                "weights": weights or "none",
            }
        )
    return pd.DataFrame(out)
