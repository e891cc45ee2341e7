"""Is it indistinguishable? Equivalence of the real/synthetic accuracy with chance.

A Visual Turing Test asks whether readers can tell synthetic images from real ones. Failing
to reject "accuracy = 0.5" does not show that they cannot (16 of 32 right gives the 95%
interval 0.32-0.68); showing it takes an equivalence test: accuracy lies within +-delta of
0.5, delta (the margin, a study setting, default 0.10) being the difference the study
declares negligible before its readings.

Two one-sided tests (TOST; Schuirmann 1987) at level alpha (0.05 by default): H0- "accuracy
<= 0.5 - delta" and H0+ "accuracy >= 0.5 + delta" are each rejected at alpha; the TOST
p-value is the larger of the two one-sided p-values. Rejecting both is the same as the
(1 - 2 alpha) interval (90%) lying within [0.5 - delta, 0.5 + delta] (Walker & Nowacki 2011).

Decision rules (each reader and the readers' mean; the first that holds):

1. "indistinguishable within +-delta": the 90% interval lies within [0.5 - delta, 0.5 + delta]
   (closed). An accuracy shown to differ from 0.5 by less than delta is indistinguishable
   within +-delta too: delta is what the study declared negligible.
2. "distinguishable": the 95% interval excludes 0.5 (the exact binomial test, or the OR t
   test, rejects accuracy = 0.5 at two-sided 0.05). An accuracy below 0.5 counts: readers who
   call real images synthetic more often than not can tell the two apart.
3. "inconclusive: more cases needed" otherwise.

Each reader: the exact binomial TOST (one-sided binomial tails at 0.5 - delta and
0.5 + delta), chosen over the normal approximation because readers read tens of cases and
accuracies near 0.5 +- delta are where the approximation is worst. Its interval is the
Clopper-Pearson one (the inversion of exactly these one-sided tests, so the interval rule and
the p-value always agree; the 95% Clopper-Pearson interval excludes 0.5 exactly when the
study's exact two-sided binomial test rejects 0.5 at 0.05, the null being symmetric).

The readers' mean: the mean of the readers' accuracies with the Obuchowski-Rockette
random-reader random-case interval for one treatment (Hillis 2007 degrees of freedom),
computed on the fully crossed block of readers and cases (`study.stats.crossing`). Accuracy
is the share of cases called right, so its leave-one-case-out value (the jackknife of
`study.stats.mrmc`) is (n a - y_k)/(n - 1), y_k = 1 when case k was called right, and
`study.stats.mrmc.or_from_jackknife` gives the interval (clipped to [0, 1]). TOST then uses
the t distribution on the Hillis df: p- = P(T >= (m - (0.5 - delta))/SE),
p+ = P(T <= (m - (0.5 + delta))/SE). A zero variance (every reader with the same accuracy
and no case changing it) gives no interval, and the mean is then inconclusive.

Sequential design: a study may set a target half-width of the 95% accuracy interval; readers
keep reading until it is reached (`halfwidth_table`). Stopping on the interval's width
alone, not on its position, makes it a fixed-width interval procedure (Chow & Robbins 1965)
that does not steer the conclusion.

References
- Schuirmann DJ (1987). A comparison of the two one-sided tests procedure and the power
  approach for assessing the equivalence of average bioavailability. Journal of
  Pharmacokinetics and Biopharmaceutics 15:657-680.
- Walker E, Nowacki AS (2011). Understanding equivalence and noninferiority testing. Journal
  of General Internal Medicine 26:192-196.
- Clopper CJ, Pearson ES (1934). The use of confidence or fiducial limits illustrated in the
  case of the binomial. Biometrika 26:404-413.
- Obuchowski NA, Rockette HE (1995), Hillis SL (2007): see `study.stats.mrmc`.
- Chow YS, Robbins H (1965). On the asymptotic theory of fixed-width sequential confidence
  intervals for the mean. Annals of Mathematical Statistics 36:457-462.

Example (19 of 32 right, margin 0.10: the 90% interval 0.43-0.74 leaves [0.40, 0.60]):
    >>> result = reader_equivalence(19, 32)
    >>> round(result.tost_low, 3), round(result.tost_high, 3), result.verdict.value
    (0.433, 0.74, 'inconclusive')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy import stats

from study.stats import StatsError
from study.stats.crossing import CrossedBlock, crossed_block
from study.stats.mrmc import Estimate, or_from_jackknife
from study.stats.proportions import clopper_pearson_interval
from study.stats.tables import binary_calls

DEFAULT_MARGIN = 0.10
DEFAULT_ALPHA = 0.05
# The questions whose accuracy against 0.5 asks "can readers tell real from synthetic?".
REALISM_KINDS: tuple[str, ...] = ("real_or_synthetic", "which_is_real")
MEAN_OF_READERS = "mean of readers (OR, random readers and cases)"


class Verdict(StrEnum):
    EQUIVALENT = "equivalent"
    DISTINGUISHABLE = "distinguishable"
    INCONCLUSIVE = "inconclusive"


def conclusion(verdict: Verdict, margin: float) -> str:
    """The verdict in plain words, e.g. 'indistinguishable within ±0.10'."""
    if verdict == Verdict.EQUIVALENT:
        return f"indistinguishable within ±{margin:.2f}"
    if verdict == Verdict.DISTINGUISHABLE:
        return "distinguishable"
    return "inconclusive: more cases needed"


def check_margin(margin: float) -> None:
    """Raise `StatsError` unless 0 < margin < 0.5."""
    if not 0 < margin < 0.5:
        raise StatsError(
            f"the equivalence margin must lie strictly between 0 and 0.5, not {margin}"
        )


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise StatsError(f"alpha must lie strictly between 0 and 0.5, not {alpha}")


def decide(
    tost_interval: tuple[float, float], interval: tuple[float, float], margin: float
) -> Verdict:
    """The decision rules of the module docstring from the (1 - 2 alpha) and (1 - alpha)
    intervals; an undefined (nan) interval decides nothing."""
    low, high = tost_interval
    if low >= 0.5 - margin and high <= 0.5 + margin:
        return Verdict.EQUIVALENT
    if interval[0] > 0.5 or interval[1] < 0.5:
        return Verdict.DISTINGUISHABLE
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Equivalence:
    """Accuracy with its TOST against 0.5 +- margin: the (1 - 2 alpha) interval and TOST
    p-value, the (1 - alpha) interval, and the verdict."""

    accuracy: float
    tost_low: float
    tost_high: float
    p_tost: float
    low: float
    high: float
    margin: float
    alpha: float
    verdict: Verdict

    @property
    def halfwidth(self) -> float:
        """Half the width of the (1 - alpha) interval."""
        return (self.high - self.low) / 2

    @property
    def conclusion(self) -> str:
        return conclusion(self.verdict, self.margin)


def reader_equivalence(
    correct: int, n: int, *, margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA
) -> Equivalence:
    """Exact binomial TOST of `correct` right calls in `n` against 0.5 +- margin, with
    Clopper-Pearson intervals: p- = P(X >= k | 0.5 - margin), p+ = P(X <= k | 0.5 + margin)."""
    check_margin(margin)
    _check_alpha(alpha)
    if n < 1 or not 0 <= correct <= n:
        raise StatsError(f"an accuracy needs 0 <= correct <= n and n >= 1, not {correct} of {n}")
    p_lower = float(stats.binom.sf(correct - 1, n, 0.5 - margin))
    p_upper = float(stats.binom.cdf(correct, n, 0.5 + margin))
    tost = clopper_pearson_interval(correct, n, 1 - 2 * alpha)
    interval = clopper_pearson_interval(correct, n, 1 - alpha)
    return Equivalence(
        accuracy=correct / n,
        tost_low=tost[0],
        tost_high=tost[1],
        p_tost=max(p_lower, p_upper),
        low=interval[0],
        high=interval[1],
        margin=margin,
        alpha=alpha,
        verdict=decide(tost, interval, margin),
    )


def _tail_above(statistic: float, df: float) -> float:
    return float(stats.norm.sf(statistic) if math.isinf(df) else stats.t.sf(statistic, df))


def readers_mean_interval(right: np.ndarray, confidence: float) -> Estimate:
    """The readers' mean accuracy with its OR random-reader random-case interval from a fully
    crossed readers x cases matrix of right (1) and wrong (0) calls: each reader's accuracy
    and its leave-one-case-out values (n a - y_k)/(n - 1) go to `or_from_jackknife` of
    `study.stats.mrmc` as one treatment (an interval of zero width has nan ends, its
    `reason` saying why)."""
    right = np.asarray(right, dtype=float)
    readers, n = right.shape
    accuracy = right.mean(axis=1)
    left_out = (n * accuracy[:, None] - right) / (n - 1)
    result = or_from_jackknife(
        accuracy[None, :],
        left_out[None, :, :],
        treatments=("accuracy",),
        readers=tuple(f"reader {j + 1}" for j in range(readers)),
        metric="accuracy",
        n_cases=n,
        # Every case can change an accuracy, so every case is left out in turn.
        n_positive=n,
        jackknife="all_cases",
        dropped="all",
        confidence=confidence,
    )
    return result.rrrc.treatments["accuracy"]


@dataclass(frozen=True)
class MeanEquivalence:
    """The readers' mean accuracy with its OR TOST, on the fully crossed `block`."""

    equivalence: Equivalence
    se: float
    df: float
    block: CrossedBlock
    reason: str | None = None  # why there is no interval (zero variance)


def readers_mean_equivalence(
    calls: pd.DataFrame, *, margin: float = DEFAULT_MARGIN, alpha: float = DEFAULT_ALPHA
) -> MeanEquivalence:
    """TOST of the readers' mean accuracy against 0.5 +- margin with the OR random-reader
    random-case interval, from one row per reading: reader, case, correct (true/false).

    Raises `StatsError` with fewer than two readers, fewer than two cases read by the readers
    kept, or a reader who read a case twice.
    """
    check_margin(margin)
    _check_alpha(alpha)
    readings = pd.DataFrame(
        {
            "reader": calls["reader"].astype(str),
            "case": calls["case"].astype(str),
            "correct": calls["correct"].astype(bool),
        }
    )
    twice = readings.duplicated(["reader", "case"])
    if twice.any():
        first = readings[twice].iloc[0]
        raise StatsError(f"reader {first['reader']} read case {first['case']} more than once")
    block = crossed_block(readings)
    kept = readings[readings["reader"].isin(block.readers) & readings["case"].isin(block.cases)]
    right = (
        kept.pivot(index="reader", columns="case", values="correct")
        .loc[list(block.readers), list(block.cases)]
        .to_numpy(dtype=float)
    )
    n = right.shape[1]
    if n < 2:
        raise StatsError(
            f"the readers' mean accuracy needs at least two cases read by every reader kept, "
            f"not {n}"
        )
    tost = readers_mean_interval(right, 1 - 2 * alpha)
    interval = readers_mean_interval(right, 1 - alpha)
    mean, se, df = interval.fom, interval.se, interval.df
    if se > 0:
        p_lower = _tail_above((mean - (0.5 - margin)) / se, df)
        p_upper = _tail_above(((0.5 + margin) - mean) / se, df)
    else:
        p_lower = p_upper = math.nan
    equivalence = Equivalence(
        accuracy=mean,
        tost_low=tost.low,
        tost_high=tost.high,
        p_tost=max(p_lower, p_upper),
        low=interval.low,
        high=interval.high,
        margin=margin,
        alpha=alpha,
        verdict=decide((tost.low, tost.high), (interval.low, interval.high), margin),
    )
    return MeanEquivalence(equivalence, se, df, block, interval.reason)


EQUIVALENCE_COLUMNS: tuple[str, ...] = (
    "question_kind",
    "reader",
    "method",
    "readers",
    "n",
    "correct",
    "accuracy",
    "tost_low",
    "tost_high",
    "p_tost",
    "low",
    "high",
    "halfwidth",
    "se",
    "df",
    "margin",
    "verdict",
    "conclusion",
)


def _row(kind: str, reader: str, method: str, result: Equivalence) -> dict[str, object]:
    return {
        "question_kind": kind,
        "reader": reader,
        "method": method,
        "accuracy": result.accuracy,
        "tost_low": result.tost_low,
        "tost_high": result.tost_high,
        "p_tost": result.p_tost,
        "low": result.low,
        "high": result.high,
        "halfwidth": result.halfwidth,
        "margin": result.margin,
        "verdict": result.verdict.value,
        "conclusion": result.conclusion,
    }


@dataclass(frozen=True)
class EquivalenceTable:
    """Every reader's and the readers' mean TOST per realism question kind (`table`, columns
    `EQUIVALENCE_COLUMNS`, intervals at 1 - 2 alpha (tost_*) and 1 - alpha), what each mean
    left out (`left_out`, in words) and why a mean is missing (`notes`), by question kind."""

    table: pd.DataFrame
    left_out: dict[str, str]
    notes: dict[str, str]


def equivalence_table(
    tidy: pd.DataFrame, *, margin: float = DEFAULT_MARGIN, confidence: float = 0.95
) -> EquivalenceTable:
    """The TOST of every reader, and of the readers' mean (reader `MEAN_OF_READERS`), for
    each realism question kind of the tidy frame (`REALISM_KINDS`), at alpha = 1 - confidence.
    """
    check_margin(margin)
    alpha = 1 - confidence
    _check_alpha(alpha)
    calls = binary_calls(tidy)
    calls = calls[calls["question_kind"].isin(REALISM_KINDS)]
    rows, left_out, notes = [], {}, {}
    for kind, group in calls.groupby("question_kind", sort=True):
        kind = str(kind)
        for reader, answers in group.groupby(group["reader"].astype(str), sort=True):
            result = reader_equivalence(
                int(answers["correct"].sum()), len(answers), margin=margin, alpha=alpha
            )
            rows.append(
                {
                    **_row(kind, reader, "exact binomial (Clopper-Pearson)", result),
                    "readers": 1,
                    "n": len(answers),
                    "correct": int(answers["correct"].sum()),
                }
            )
        try:
            mean = readers_mean_equivalence(
                group.rename(columns={"case_id": "case"}), margin=margin, alpha=alpha
            )
        except StatsError as error:
            notes[kind] = f"no readers' mean: {error}"
            continue
        rows.append(
            {
                **_row(kind, MEAN_OF_READERS, "OR random readers and cases", mean.equivalence),
                "readers": len(mean.block.readers),
                "n": len(mean.block.cases),
                "se": mean.se,
                "df": mean.df,
            }
        )
        if described := mean.block.describe():
            left_out[kind] = described
        if mean.reason:
            notes[kind] = f"the readers' mean has no interval: {mean.reason}"
    return EquivalenceTable(pd.DataFrame(rows, columns=list(EQUIVALENCE_COLUMNS)), left_out, notes)


def halfwidth_table(table: pd.DataFrame, target: float | None) -> pd.DataFrame:
    """Per row of an `equivalence_table`: question_kind, reader, n, accuracy, halfwidth (of
    the 1 - alpha interval), target and reached (the half-width is at most the target; false
    without a target)."""
    if target is not None and not 0 < target < 0.5:
        raise StatsError(f"a target half-width lies strictly between 0 and 0.5, not {target}")
    out = table[["question_kind", "reader", "n", "accuracy", "halfwidth"]].copy()
    out["target"] = math.nan if target is None else target
    out["reached"] = False if target is None else (out["halfwidth"] <= target)
    return out.reset_index(drop=True)
