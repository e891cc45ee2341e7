"""Empirical FROC, AFROC and weighted AFROC operating points of one reader.

Each curve is traced by lowering a threshold z through the ratings (highest first): at z, a
mark rated >= z is reported (Chakraborty 2017, ch. 13 and 17).

- FROC: x = NLF(z), the NL marks rated >= z per case (all cases), y = LLF(z), the share of
  lesions whose LL mark is rated >= z. It ends at the reader's last mark, not at (1, 1).
- AFROC: x = FPF(z), the share of normal cases whose highest NL rating is >= z, y = LLF(z);
  the last point is joined to (1, 1), where every unmarked case and lesion is counted.
- wAFROC: as AFROC with y = wLLF(z), the lesion weights of each abnormal case summed over its
  lesions rated >= z, averaged over abnormal cases.
- LROC, when every abnormal case has one lesion (Swensson 1996; Chakraborty 2017, ch. 11): each
  case is read as its highest-rated mark; x = FPF(z) as for the AFROC, y = PCL(z), the share of
  abnormal cases whose highest mark is the lesion's (rated above every NL of the case: a tie
  counts as a wrong localisation) and rated >= z. The last point is joined to (1, PCL(-inf)),
  the share of abnormal cases localised at all; its area is ALROC (`area`).

The area under the (w)AFROC curve so traced is the empirical (w)AFROC figure of merit (the
trapezoidal area equals the Wilcoxon-type statistic, ties counting half), which
tests/study/stats/test_froc_curves.py checks against `study.stats.froc_foms`.

Input: the marks and truth in the columns of `python -m study froc`'s CSV files (marks:
treatment, reader, case, kind LL/NL, lesion, rating; truth: case, truth, lesions, weights
`;`-separated, empty meaning equal weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

CURVE_COLUMNS = ("treatment", "reader", "curve", "threshold", "x", "y")


def _weights(truth: pd.DataFrame) -> dict[tuple[str, int], float]:
    weights = {}
    for row in truth.itertuples(index=False):
        count = int(row.lesions)
        text = str(row.weights) if isinstance(row.weights, str) else ""
        values = (
            [float(v) for v in text.split(";")] if text.strip() else [1 / max(count, 1)] * count
        )
        for number, weight in enumerate(values, start=1):
            weights[(str(row.case), number)] = weight
    return weights


def reader_curves(
    marks: pd.DataFrame, truth: pd.DataFrame, treatment: str, reader: str
) -> pd.DataFrame:
    """The FROC, AFROC and wAFROC points of one reader under one treatment (and the LROC
    points when every abnormal case has one lesion)."""
    mine = marks[(marks["treatment"] == treatment) & (marks["reader"] == reader)]
    cases = truth["case"].astype(str)
    normal = set(cases[truth["truth"].astype(int) == 0])
    n_cases, n_normal = len(truth), len(normal)
    n_abnormal = n_cases - n_normal
    n_lesions = int(truth["lesions"].astype(int).sum())
    weights = _weights(truth)
    ll = mine[mine["kind"] == "LL"]
    nl = mine[mine["kind"] == "NL"]
    ll_ratings = ll["rating"].to_numpy(float)
    ll_weights = np.array(
        [weights[(str(c), int(n))] for c, n in zip(ll["case"], ll["lesion"], strict=True)]
    )
    nl_ratings = nl["rating"].to_numpy(float)
    fp_ratings = nl[nl["case"].astype(str).isin(normal)].groupby("case")["rating"].max()
    fp_ratings = fp_ratings.to_numpy(float)
    thresholds = np.unique(np.concatenate([ll_ratings, nl_ratings]))[::-1]
    rows = [(treatment, reader, curve, np.inf, 0.0, 0.0) for curve in ("FROC", "AFROC", "wAFROC")]
    for z in thresholds:
        llf = (ll_ratings >= z).sum() / n_lesions if n_lesions else np.nan
        wllf = ll_weights[ll_ratings >= z].sum() / n_abnormal if n_abnormal else np.nan
        nlf = (nl_ratings >= z).sum() / n_cases if n_cases else np.nan
        fpf = (fp_ratings >= z).sum() / n_normal if n_normal else np.nan
        rows += [
            (treatment, reader, "FROC", z, nlf, llf),
            (treatment, reader, "AFROC", z, fpf, llf),
            (treatment, reader, "wAFROC", z, fpf, wllf),
        ]
    rows += [(treatment, reader, curve, -np.inf, 1.0, 1.0) for curve in ("AFROC", "wAFROC")]
    if (
        n_abnormal
        and (truth.loc[truth["truth"].astype(int) == 1, "lesions"].astype(int) == 1).all()
    ):
        rows += _lroc(ll, nl, fp_ratings, thresholds, n_normal, n_abnormal, treatment, reader)
    frame = pd.DataFrame(rows, columns=list(CURVE_COLUMNS))
    return frame.sort_values(["curve", "threshold"], ascending=[True, False], kind="stable")


def _lroc(
    ll: pd.DataFrame,
    nl: pd.DataFrame,
    fp_ratings: np.ndarray,
    thresholds: np.ndarray,
    n_normal: int,
    n_abnormal: int,
    treatment: str,
    reader: str,
) -> list[tuple]:
    """The LROC points of one reader (module docstring)."""
    highest_nl = nl.groupby(nl["case"].astype(str))["rating"].max()
    correct = np.array(
        [
            rating
            for case, rating in zip(ll["case"].astype(str), ll["rating"].astype(float), strict=True)
            if rating > highest_nl.get(case, -np.inf)
        ]
    )
    rows = [(treatment, reader, "LROC", np.inf, 0.0, 0.0)]
    for z in thresholds:
        fpf = (fp_ratings >= z).sum() / n_normal if n_normal else np.nan
        rows.append((treatment, reader, "LROC", z, fpf, (correct >= z).sum() / n_abnormal))
    rows.append((treatment, reader, "LROC", -np.inf, 1.0, len(correct) / n_abnormal))
    return rows


def froc_curves(
    marks: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    treatments: Sequence[str],
    readers: Sequence[str],
) -> pd.DataFrame:
    """The curves of every treatment x reader (readers without a single mark included)."""
    frames = [
        reader_curves(marks, truth, treatment, reader)
        for treatment in treatments
        for reader in readers
    ]
    return pd.concat(frames, ignore_index=True)


def area(points: pd.DataFrame) -> float:
    """Trapezoidal area under one reader's (w)AFROC points (x ascending)."""
    ordered = points.sort_values(["x", "y"], kind="stable")
    x, y = ordered["x"].to_numpy(float), ordered["y"].to_numpy(float)
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
