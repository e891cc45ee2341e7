"""Machine readers in a study's results: each machine's AUC (DeLong interval) and accuracy on
the cases it scored, and the people compared with it ("radiologists vs the machine": a
random-reader analysis of the people with the machine as a fixed comparator,
`study.stats.machine_comparison`).

The people's ratings are the ordinal scores of their real/synthetic calls with confidence
(`study.stats.roc.ordinal_scores`), on the fully crossed block of people and of the cases the
machine scored (`study.stats.crossing`); without confidence ratings, or with fewer than two
people, there is no comparison and `reason` says why. Synthetic is the positive class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study.stats import StatsError
from study.stats.crossing import crossed_block
from study.stats.machine_comparison import MachineComparison, readers_vs_machine
from study.stats.mrmc import mrmc_data
from study.stats.roc import delong_auc, mrmc_long_frame

SCORE_COLUMNS = ("machine", "case_id", "origin", "score")


@dataclass(frozen=True)
class MachineSummary:
    machine: str
    n_cases: int
    auc: float
    auc_low: float
    auc_high: float
    accuracy: float
    comparison: MachineComparison | None
    # Why there is no comparison (or what the comparison left out).
    note: str


def _comparison(
    people: pd.DataFrame, scores: pd.DataFrame, confidence: float
) -> tuple[MachineComparison | None, str]:
    rated = people[people["question_kind"].isin(["real_or_synthetic", "confidence"])]
    try:
        long = mrmc_long_frame(rated)
        long = long[long["case"].isin(scores["case_id"].astype(str))]
        if long["reader"].nunique() < 2:
            raise StatsError(
                "comparing the readers with the machine needs two or more readers who rated "
                "their real/synthetic calls with confidence"
            )
        block = crossed_block(long)
        kept = long["reader"].isin(block.readers) & long["case"].isin(block.cases)
        data = mrmc_data(long[kept])
        by_case = scores.set_index(scores["case_id"].astype(str))["score"]
        result = readers_vs_machine(
            data, by_case.loc[list(data.cases)].to_numpy(float), confidence=confidence
        )
    except StatsError as error:
        return None, str(error)
    return result, block.describe()


def machine_summaries(
    tidy: pd.DataFrame, scores: pd.DataFrame, *, confidence: float = 0.95
) -> tuple[MachineSummary, ...]:
    """One summary per machine of `scores` (columns SCORE_COLUMNS), on the cases of `tidy`
    (the filtered answers: the machine is judged on the subgroup the people are)."""
    if scores.empty:
        return ()
    people = tidy[~tidy["machine"].astype(bool)] if "machine" in tidy.columns else tidy
    cases = set(tidy["case_id"])
    summaries = []
    for machine, own in scores.groupby("machine", sort=True):
        own = own[own["case_id"].isin(cases)] if cases else own.iloc[0:0]
        truth = (own["origin"] == "synthetic").to_numpy()
        values = own["score"].to_numpy(float)
        calls = tidy[
            (tidy["reader"] == machine)
            & tidy["machine"].astype(bool)
            & (tidy["question_kind"] == "real_or_synthetic")
        ]
        accuracy = (
            float((calls["value"] == calls["origin"].astype(str)).mean()) if len(calls) else np.nan
        )
        try:
            auc = delong_auc(values, truth, confidence=confidence)
            auc_values = (auc.auc, auc.low, auc.high)
        except StatsError:
            auc_values = (np.nan, np.nan, np.nan)
        comparison, note = _comparison(people, own, confidence)
        summaries.append(
            MachineSummary(str(machine), len(own), *auc_values, accuracy, comparison, note)
        )
    return tuple(summaries)


def machine_table(summaries: tuple[MachineSummary, ...]) -> pd.DataFrame:
    """One row per machine: its AUC and accuracy, and the readers' mean AUC minus its AUC."""
    rows = []
    for s in summaries:
        c = s.comparison
        rows.append(
            {
                "machine": s.machine,
                "cases": s.n_cases,
                "machine_auc": s.auc,
                "auc_low": s.auc_low,
                "auc_high": s.auc_high,
                "machine_accuracy": s.accuracy,
                "readers_mean_auc": float(c.reader_aucs.mean()) if c else np.nan,
                "readers_minus_machine": c.difference.fom if c else np.nan,
                "diff_low": c.difference.low if c else np.nan,
                "diff_high": c.difference.high if c else np.nan,
                "df": c.difference.df if c else np.nan,
                "p": c.p if c else np.nan,
            }
        )
    return pd.DataFrame(rows)
