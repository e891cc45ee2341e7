"""How ratings change once readers are told that some images are synthetic (two-phase study).

Each reader rated each image twice: uninformed (phase 1) and informed (phase 2), in different
orders. A pair is one reader's two ratings of one image (`phase_case` joins them); the change
is informed minus uninformed.

- Per reader and origin: the pairs, the mean rating in each phase, the mean change, and the
  Wilcoxon signed-rank test of the changes (scipy; zero changes dropped, "wilcox"; exact for
  small samples without ties, normal approximation otherwise).
- Readers as a random sample: per origin, the mean over readers of their mean change with a
  t interval on r - 1 df (readers are the unit, as images are nested in readers' pairs);
  "synthetic minus real" is the same for each reader's synthetic change minus their real
  change (did being told lower the ratings of synthetic images more than of real ones?).

Reference: Wilcoxon F (1945). Individual comparisons by ranking methods. Biometrics Bulletin
1:80-83.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from study.stats import StatsError

PER_READER_COLUMNS = (
    "reader",
    "origin",
    "pairs",
    "mean_uninformed",
    "mean_informed",
    "mean_change",
    "wilcoxon_p",
)
SUMMARY_COLUMNS = ("origin", "readers", "mean_change", "change_low", "change_high", "t", "p")
SYNTHETIC_MINUS_REAL = "synthetic minus real"


@dataclass(frozen=True)
class PhaseChange:
    per_reader: pd.DataFrame
    summary: pd.DataFrame


def rating_pairs(tidy: pd.DataFrame, kind: str = "likert_realism") -> pd.DataFrame:
    """One row per reader x image with its uninformed and informed rating (practice and
    repeated cases left out): reader, origin, phase_case, uninformed, informed, change."""
    rows = tidy[
        (tidy["question_kind"] == kind)
        & ~tidy["practice"].astype(bool)
        & ~tidy["repeat"].astype(bool)
    ]
    ratings = rows.assign(rating=pd.to_numeric(rows["value"], errors="coerce"))
    wide = ratings.pivot_table(
        index=["reader", "origin", "phase_case"], columns="phase", values="rating", aggfunc="first"
    )
    if 1 not in wide.columns or 2 not in wide.columns:
        return pd.DataFrame(
            columns=["reader", "origin", "phase_case", "uninformed", "informed", "change"]
        )
    pairs = wide[[1, 2]].dropna().reset_index()
    pairs.columns = ["reader", "origin", "phase_case", "uninformed", "informed"]
    return pairs.assign(change=pairs["informed"] - pairs["uninformed"])


def _wilcoxon(changes: np.ndarray) -> float:
    if len(changes) == 0 or not np.any(changes != 0):
        return math.nan
    return float(stats.wilcoxon(changes).pvalue)


def _across_readers(label: str, changes: pd.Series, confidence: float) -> dict[str, object]:
    values = changes.to_numpy(float)
    r = len(values)
    mean = float(values.mean()) if r else math.nan
    if r < 2:
        return {"origin": label, "readers": r, "mean_change": mean}
    se = float(values.std(ddof=1) / math.sqrt(r))
    if se == 0:
        return {"origin": label, "readers": r, "mean_change": mean}
    half = float(stats.t.ppf(0.5 + confidence / 2, r - 1)) * se
    t = mean / se
    p = float(2 * stats.t.sf(abs(t), r - 1))
    return {
        "origin": label,
        "readers": r,
        "mean_change": mean,
        "change_low": mean - half,
        "change_high": mean + half,
        "t": t,
        "p": p,
    }


def phase_change(
    tidy: pd.DataFrame, kind: str = "likert_realism", *, confidence: float = 0.95
) -> PhaseChange:
    """The change of `kind` ratings between the phases (module docstring).

    Raises StatsError when no reader rated an image in both phases.
    """
    pairs = rating_pairs(tidy, kind)
    if pairs.empty:
        raise StatsError(f"no image has a {kind} rating from the same reader in both phases")
    grouped = pairs.groupby(["reader", "origin"], sort=True)
    per_reader = pd.DataFrame(
        [
            {
                "reader": reader,
                "origin": origin,
                "pairs": len(part),
                "mean_uninformed": float(part["uninformed"].mean()),
                "mean_informed": float(part["informed"].mean()),
                "mean_change": float(part["change"].mean()),
                "wilcoxon_p": _wilcoxon(part["change"].to_numpy(float)),
            }
            for (reader, origin), part in grouped
        ],
        columns=list(PER_READER_COLUMNS),
    )
    means = per_reader.pivot(index="reader", columns="origin", values="mean_change")
    summary = [
        _across_readers(str(origin), means[origin].dropna(), confidence) for origin in means.columns
    ]
    if {"real", "synthetic"} <= set(means.columns):
        both = means[["synthetic", "real"]].dropna()
        summary.append(
            _across_readers(SYNTHETIC_MINUS_REAL, both["synthetic"] - both["real"], confidence)
        )
    return PhaseChange(per_reader, pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS)))
