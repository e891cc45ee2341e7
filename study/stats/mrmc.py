"""Obuchowski-Rockette multi-reader multi-case (MRMC) analysis with jackknife covariances.

Input: every reader rates every case under every treatment (a fully crossed, "factorial"
design), in the long format reader, treatment, case, truth (1 positive, 0 negative), rating.

Figures of merit (FOM) per treatment x reader:
- `auc`: the trapezoidal (Wilcoxon) area, P(positive rated higher) + P(tie)/2.
- `sensitivity`: the share of positive cases rated >= threshold.
- `specificity`: the share of negative cases rated < threshold.
Other figures of merit (the FROC ones of `study.stats.froc_foms`) enter through
`or_from_jackknife`, which starts from any FOM matrix and its leave-one-out values.

Jackknife. Each case of a chosen set of k cases is left out in turn, and the error
covariance of two FOMs is (k-1)/k sum_k (theta_(k) - mean)(theta'_(k) - mean') (Efron 1981;
RJafroc and OR-DBM MRMC use the same formula). Which cases are left out (`jackknife`):
- `varying_cases` (default): the cases that change the figure of merit. For AUC that is every
  case; for sensitivity only the n1 positive cases, for specificity only the n0 negative ones,
  as RJafroc does for its sensitivity-like FROC figures (HrSe leaves out abnormal cases only).
- `all_cases`: every one of the c cases whatever its truth, as OR-DBM MRMC 2.51 (and the
  `jackknife()` of MRMCaov 0.3) do; the cases that cannot change the figure of merit then add
  samples that lie at the jackknife mean.
- AUC: leaving out positive i gives (n1 A - V10_i)/(n1 - 1) and negative j gives
  (n0 A - V01_j)/(n0 - 1), with the DeLong placement values V10, V01 found by binary search:
  all c leave-one-out AUCs of a reader cost O(c log c), never a loop over the cases.
- Sensitivity: leaving out positive i gives (n1 Se - y_i)/(n1 - 1) (y_i = 1 if rated >=
  threshold). Over the positives alone the jackknife variance is Se(1 - Se)/(n1 - 1)
  (`varying_cases`). With `all_cases` the c - n1 negatives leave Se unchanged and the variance
  becomes (c-1)/c n1 Se(1 - Se)/(n1 - 1)^2: (c-1) n1 / (c (n1 - 1)) times the former (1.4 %
  more for 45 positives among 114 cases).
- Specificity: the same with the roles of the classes exchanged (only negatives change it).

From the treatment x reader FOMs theta_ij and the covariances (Var(Error) = mean variance,
Cov1 = same reader / different treatments, Cov2 = different readers / same treatment, Cov3 =
different readers and treatments), with t treatments and r readers:
- Random readers and cases (Obuchowski & Rockette 1995, Hillis 2007):
  F = MS(T)/[MS(T*R) + r max(Cov2 - Cov3, 0)] on t-1 and
  ddf_H = [MS(T*R) + r max(Cov2 - Cov3, 0)]^2 / {MS(T*R)^2/[(t-1)(r-1)]} degrees of freedom;
  a difference has SE sqrt(2/r [MS(T*R) + r max(Cov2 - Cov3, 0)]) and ddf_H; one treatment
  has SE sqrt(1/r [MS(R)_i + r max(Cov2_i, 0)]) and df [MS(R)_i + r max(Cov2_i, 0)]^2 /
  [MS(R)_i^2/(r-1)] (ddf_H_single).
- Fixed readers, random cases: X2 = (t-1) MS(T)/[Var(Error) - Cov1 + (r-1) max(Cov2 - Cov3, 0)]
  on t-1 df; differences and single treatments use normal quantiles.
- Random readers, fixed cases: the treatment x reader ANOVA, F = MS(T)/MS(T*R) on t-1 and
  (t-1)(r-1) df; one treatment has SE sqrt(MS(R)_i/r) on r-1 df.
- Variance components: Var(T*R) = MS(T*R) - Var(Error) + Cov1 + Cov2 - Cov3 and
  Var(R) = [MS(R) - Var(T*R) - Var(Error) - (t-1) Cov1 + Cov2 + (t-1) Cov3]/t (Hillis et al.
  2005), equating the OR model's expected mean squares with the observed ones. With one
  treatment Var(T*R), Cov1 and Cov3 are not estimable; Var(R) then includes Var(T*R).
Each difference is the first treatment minus the second, treatments in their natural order.

Intervals. The interval of a figure of merit that cannot leave [0, 1] (AUC, sensitivity,
specificity, and the bounded FROC figures) is clipped to [0, 1], and that of a difference of
two such figures to [-1, 1]; the t (or normal) interval before clipping is fom +- q SE. A zero
variance (the readers agree and no left-out case changes anything, e.g. every reader calls
every positive case positive) gives no interval and no test: the estimate carries a `reason`
instead (JSON `reason`, and the report prints it), never nan.

On the Van Dyke data this reproduces OR-DBM MRMC 2.51 (tests/study/stats/test_mrmc.py), and on
RJafroc's Thompson FROC data RJafroc 2.1.3's OR analysis (tests/study/stats/test_froc.py).

References
- Obuchowski NA, Rockette HE (1995). Hypothesis testing of diagnostic accuracy for multiple
  readers and multiple tests: an ANOVA approach with dependent observations. Communications in
  Statistics - Simulation and Computation 24:285-308.
- Hillis SL, Obuchowski NA, Schartz KM, Berbaum KS (2005). A comparison of the
  Dorfman-Berbaum-Metz and Obuchowski-Rockette methods for receiver operating characteristic
  (ROC) data. Statistics in Medicine 24:1579-1607.
- Hillis SL (2007). A comparison of denominator degrees of freedom for multiple observer ROC
  analysis. Statistics in Medicine 26:596-619.
- Efron B (1981). Nonparametric estimates of standard error: the jackknife, the bootstrap and
  other resampling methods. Biometrika 68:589-599.
- Chakraborty DP (2017). Observer Performance Methods for Diagnostic Imaging. CRC Press; and
  the R package RJafroc 2.1.3 (its OR analysis, `St(..., method = "OR")`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from study.stats import MRMC_METRICS, StatsError
from study.stats.roc import placement_values

Metric = Literal["auc", "sensitivity", "specificity"]
METRICS = MRMC_METRICS
Jackknife = Literal["varying_cases", "all_cases"]
JACKKNIFE_OPTIONS: tuple[str, ...] = ("varying_cases", "all_cases")
# Which cases a jackknife leaves out: every case, or only the positive (abnormal) or only the
# negative (normal) ones.
Dropped = Literal["all", "positive", "negative"]
COLUMNS: tuple[str, ...] = ("reader", "treatment", "case", "truth", "rating")


@dataclass(frozen=True)
class MrmcData:
    """Ratings of a fully crossed study: `ratings[t, r, c]`, truth per case."""

    ratings: np.ndarray
    truth: np.ndarray
    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    cases: tuple[str, ...]


@dataclass(frozen=True)
class Estimate:
    """One treatment's FOM (averaged over readers) with SE, df (inf: normal) and interval
    (clipped to the FOM's range); without an interval (nan ends) `reason` says why."""

    fom: float
    se: float
    df: float
    low: float
    high: float
    reason: str | None = None


@dataclass(frozen=True)
class Comparison:
    """First treatment minus second: estimate, SE, df (inf: normal), t or z, p, interval;
    without an interval (nan ends and p) `reason` says why."""

    first: str
    second: str
    estimate: float
    se: float
    df: float
    statistic: float
    p: float
    low: float
    high: float
    reason: str | None = None


@dataclass(frozen=True)
class Analysis:
    """A global test of equal FOMs (F or chi-square on df1 and df2; df2 inf for chi-square),
    its denominator (`error_term`), pairwise differences and single-treatment intervals;
    `reason` says why there is no test (one treatment, or a zero denominator)."""

    statistic: float
    df1: float
    df2: float
    p: float
    error_term: float
    differences: tuple[Comparison, ...]
    treatments: dict[str, Estimate]
    reason: str | None = None


@dataclass(frozen=True)
class ReaderComparison:
    """Fixed-reader difference for one reader, from its own Var(Error) and Cov1."""

    reader: str
    var_error: float
    cov1: float
    comparison: Comparison


@dataclass(frozen=True)
class VarianceComponents:
    var_r: float
    var_tr: float
    cov1: float
    cov2: float
    cov3: float
    var_error: float


@dataclass(frozen=True)
class Anova:
    """Treatment x reader ANOVA of the FOMs, and the reader mean square of each treatment."""

    ss_t: float
    ss_r: float
    ss_tr: float
    ms_t: float
    ms_r: float
    ms_tr: float
    ms_r_by_treatment: dict[str, float]


@dataclass(frozen=True)
class MrmcResult:
    """Everything `or_from_jackknife` found. `jackknife` names the option (JSON and report),
    `dropped` which cases it left out, `n_jackknife` how many; `bounds` is the FOM's range
    (None: unbounded), to which the intervals are clipped."""

    metric: str
    threshold: float | None
    confidence: float
    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    n_positive: int
    jackknife: str
    dropped: Dropped
    n_jackknife: int
    bounds: tuple[float, float] | None
    foms: np.ndarray
    anova: Anova
    components: VarianceComponents
    var_error_by_treatment: dict[str, float]
    cov2_by_treatment: dict[str, float]
    rrrc: Analysis
    frrc: Analysis
    rrfc: Analysis
    frrc_by_reader: tuple[ReaderComparison, ...]


def natural_order(values: Sequence[str] | np.ndarray) -> list[str]:
    """Distinct values sorted as numbers when all of them are numbers ("2" before "10"),
    otherwise as text."""
    distinct = sorted({str(v) for v in values})
    try:
        return sorted(distinct, key=lambda v: (float(v), v))
    except ValueError:
        return distinct


def _where(index: int, first_line: int | None) -> str:
    return f"line {index + first_line}" if first_line is not None else f"row {index}"


def mrmc_data(
    frame: pd.DataFrame, *, source: str = "the data", first_line: int | None = None
) -> MrmcData:
    """Check a long frame (reader, treatment, case, truth, rating; other columns ignored) and
    arrange it as `MrmcData`. Errors name `source` and the offending line (row index plus
    `first_line`) or combination."""
    frame = frame.rename(columns=lambda name: str(name).strip().lower())
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise StatsError(
            f"{source}: missing column(s) {', '.join(missing)}; expected "
            f"{','.join(COLUMNS)} (extra columns are ignored)"
        )
    frame = frame[list(COLUMNS)].reset_index(drop=True)
    if frame.empty:
        raise StatsError(f"{source}: no ratings")
    keys = {}
    for column in ("reader", "treatment", "case"):
        text = frame[column].astype("string").str.strip()
        empty = text.isna() | (text == "")
        if empty.any():
            where = _where(int(np.flatnonzero(empty)[0]), first_line)
            raise StatsError(f"{source}: {where} has no {column}")
        keys[column] = text.astype(str)
    truth = pd.to_numeric(frame["truth"], errors="coerce")
    bad = ~truth.isin([0, 1])
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise StatsError(
            f"{source}: {_where(index, first_line)} has truth {frame['truth'][index]!r}; "
            f"truth must be 1 (positive) or 0 (negative)"
        )
    rating = pd.to_numeric(frame["rating"], errors="coerce")
    bad = rating.isna() | ~np.isfinite(rating)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise StatsError(
            f"{source}: {_where(index, first_line)} has rating {frame['rating'][index]!r}; "
            f"ratings must be numbers"
        )
    long = pd.DataFrame(keys)
    duplicated = long.duplicated(keep="first")
    if duplicated.any():
        index = int(np.flatnonzero(duplicated)[0])
        row = long.iloc[index]
        raise StatsError(
            f"{source}: {_where(index, first_line)} rates case {row['case']} again for reader "
            f"{row['reader']} and treatment {row['treatment']}"
        )
    treatments = natural_order(long["treatment"].unique())
    readers = natural_order(long["reader"].unique())
    cases = natural_order(long["case"].unique())
    t_code = pd.Categorical(long["treatment"], categories=treatments).codes
    r_code = pd.Categorical(long["reader"], categories=readers).codes
    c_code = pd.Categorical(long["case"], categories=cases).codes
    case_truth = np.full(len(cases), -1)
    case_truth[c_code] = truth.to_numpy(dtype=int)
    conflict = case_truth[c_code] != truth.to_numpy(dtype=int)
    if conflict.any():
        raise StatsError(
            f"{source}: case {long['case'][int(np.flatnonzero(conflict)[0])]} has both truth "
            f"0 and 1; a case's truth must be the same for every reader and treatment"
        )
    shape = (len(treatments), len(readers), len(cases))
    ratings = np.full(shape, np.nan)
    ratings[t_code, r_code, c_code] = rating.to_numpy(dtype=float)
    if np.isnan(ratings).any():
        t, r, c = (int(i[0]) for i in np.nonzero(np.isnan(ratings)))
        absent = int(np.isnan(ratings).sum())
        raise StatsError(
            f"{source}: {absent} rating(s) missing, e.g. reader {readers[r]}, treatment "
            f"{treatments[t]}, case {cases[c]}; every reader must rate every case under every "
            f"treatment"
        )
    return MrmcData(
        ratings, case_truth.astype(bool), tuple(treatments), tuple(readers), tuple(cases)
    )


def read_mrmc_csv(path: str | Path) -> MrmcData:
    """Read a long-format CSV (reader,treatment,case,truth,rating; extra columns ignored).

    Reader, treatment and case keep their text as written (so "01" stays "01")."""
    file = Path(path)
    try:
        frame = pd.read_csv(file, dtype=str, skipinitialspace=True)
    except FileNotFoundError as error:
        raise StatsError(f"{file}: no such file") from error
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise StatsError(f"{file}: cannot be read as CSV ({e})") from e
    return mrmc_data(frame, source=str(file), first_line=2)


def _check_metric(metric: str, threshold: float | None) -> None:
    if metric not in METRICS:
        raise StatsError(f"the figure of merit is one of {', '.join(METRICS)}, not {metric!r}")
    if metric == "auc" and threshold is not None:
        raise StatsError("a threshold applies to sensitivity and specificity, not to auc")
    if metric != "auc" and threshold is None:
        raise StatsError(f"{metric} needs a threshold T: a rating >= T counts as positive")


def dropped_cases(metric: Metric, jackknife: Jackknife) -> Dropped:
    """The cases that the jackknife of `metric` leaves out under the option `jackknife`."""
    if jackknife not in JACKKNIFE_OPTIONS:
        raise StatsError(
            f"the jackknife is one of {', '.join(JACKKNIFE_OPTIONS)}, not {jackknife!r}"
        )
    if jackknife == "all_cases" or metric == "auc":
        return "all"
    return "positive" if metric == "sensitivity" else "negative"


def jackknife_foms(
    data: MrmcData,
    metric: Metric = "auc",
    threshold: float | None = None,
    *,
    jackknife: Jackknife = "varying_cases",
) -> tuple[np.ndarray, np.ndarray]:
    """FOMs (treatments x readers) and their leave-one-case-out values (t x r x k).

    The k left-out cases are, in case order, every case (`all_cases`, and AUC always), or only
    the positive cases for sensitivity and only the negative ones for specificity
    (`varying_cases`); see the module docstring.
    """
    _check_metric(metric, threshold)
    dropped = dropped_cases(metric, jackknife)
    positive = data.truth
    n1, n0 = int(positive.sum()), int((~positive).sum())
    needed = {"auc": (2, 2), "sensitivity": (2, 0), "specificity": (0, 2)}[metric]
    if n1 < needed[0] or n0 < needed[1]:
        raise StatsError(
            f"the jackknife of {metric} needs at least {needed[0]} positive and {needed[1]} "
            f"negative cases; the data have {n1} and {n0}"
        )
    ratings = data.ratings
    t, r, c = ratings.shape
    left_out = np.empty((t, r, c))
    if metric == "auc":
        foms = np.empty((t, r))
        for i, j in itertools.product(range(t), range(r)):
            v10, v01 = placement_values(ratings[i, j, positive], ratings[i, j, ~positive])
            auc = v10.mean()
            foms[i, j] = auc
            left_out[i, j, positive] = (n1 * auc - v10) / (n1 - 1)
            left_out[i, j, ~positive] = (n0 * auc - v01) / (n0 - 1)
        return foms, left_out
    if metric == "sensitivity":
        varying, n_varying = positive, n1
        success = ratings[:, :, positive] >= threshold
    else:
        varying, n_varying = ~positive, n0
        success = ratings[:, :, ~positive] < threshold
    foms = success.mean(axis=2)
    varying_left_out = (n_varying * foms[:, :, None] - success) / (n_varying - 1)
    if dropped != "all":
        return foms, varying_left_out
    left_out[:, :, varying] = varying_left_out
    left_out[:, :, ~varying] = foms[:, :, None]
    return foms, left_out


def jackknife_covariance(left_out: np.ndarray) -> np.ndarray:
    """Covariance of the FOMs, (t x r) x (t x r) as a 4-d array [i, j, i', j'], from their
    values with each of k cases left out (`left_out`, t x r x k).

    (k-1)/k sum_k (theta_(k) - theta_bar)(theta'_(k) - theta_bar') (Efron 1981, as OR-DBM and
    RJafroc).
    """
    t, r, k = left_out.shape
    centred = (left_out - left_out.mean(axis=2, keepdims=True)).reshape(t * r, k)
    return ((k - 1) / k * centred @ centred.T).reshape(t, r, t, r)


def _ratio(numerator: float, denominator: float) -> float:
    if denominator == 0:
        return math.nan if numerator == 0 else math.copysign(math.inf, numerator)
    return numerator / denominator


def _t_quantile(q: float, df: float) -> float:
    return float(stats.norm.ppf(q) if math.isinf(df) else stats.t.ppf(q, df))


def _two_sided_p(statistic: float, df: float) -> float:
    if math.isnan(statistic) or math.isnan(df):
        return math.nan
    if math.isinf(df):
        return float(2 * stats.norm.sf(abs(statistic)))
    return float(2 * stats.t.sf(abs(statistic), df))


def _f_p(f: float, df1: float, df2: float) -> float:
    if math.isnan(f) or math.isnan(df2):
        return math.nan
    if math.isinf(df2):
        return float(stats.chi2.sf(f * df1, df1))
    return float(stats.f.sf(f, df1, df2))


def _is_zero(variance: float, value: float) -> bool:
    """A variance that is zero but for rounding (an SE below 1e-12 of the value's scale)."""
    return variance <= (1e-12 * max(1.0, abs(value))) ** 2


def _zero_variance(cause: str) -> str:
    return f"zero variance: {cause}; no interval"


def _clip(low: float, high: float, bounds: tuple[float, float] | None) -> tuple[float, float]:
    if bounds is None:
        return low, high
    return max(low, bounds[0]), min(high, bounds[1])


def _estimate(
    fom: float,
    variance: float,
    df: float,
    confidence: float,
    bounds: tuple[float, float] | None,
    cause: str,
) -> Estimate:
    """The t (normal for df inf) interval fom +- q SE, clipped to `bounds`; none for a zero
    variance, whose `cause` then goes into the reason."""
    if _is_zero(variance, fom):
        return Estimate(fom, 0.0, df, math.nan, math.nan, _zero_variance(cause))
    se = math.sqrt(variance)
    margin = _t_quantile(0.5 + confidence / 2, df) * se
    low, high = _clip(fom - margin, fom + margin, bounds)
    return Estimate(fom, se, df, low, high)


def _comparison(
    first: str,
    second: str,
    estimate: float,
    variance: float,
    df: float,
    confidence: float,
    bounds: tuple[float, float] | None,
    cause: str,
) -> Comparison:
    """A difference of two FOMs, its t (or z) test and interval, clipped to the range of a
    difference of two values within `bounds`."""
    if _is_zero(variance, estimate):
        return Comparison(
            first,
            second,
            estimate,
            0.0,
            df,
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            _zero_variance(cause),
        )
    se = math.sqrt(variance)
    statistic = estimate / se
    margin = _t_quantile(0.5 + confidence / 2, df) * se
    p = _two_sided_p(statistic, df)
    span = None if bounds is None else (bounds[0] - bounds[1], bounds[1] - bounds[0])
    low, high = _clip(estimate - margin, estimate + margin, span)
    return Comparison(first, second, estimate, se, df, statistic, p, low, high)


def _mean_where(matrix: np.ndarray, mask: np.ndarray) -> float:
    return float(matrix[mask].mean()) if mask.any() else math.nan


def obuchowski_rockette(
    data: MrmcData,
    metric: Metric = "auc",
    *,
    threshold: float | None = None,
    confidence: float = 0.95,
    jackknife: Jackknife = "varying_cases",
) -> MrmcResult:
    """The three OR analyses (random readers and cases, fixed readers, fixed cases) of `data`.

    `jackknife` chooses the cases left out (module docstring). Needs at least two readers.
    With one treatment only the single-treatment intervals are defined; the tests,
    differences and Var(T*R), Cov1, Cov3 are then nan.
    """
    foms, left_out = jackknife_foms(data, metric, threshold, jackknife=jackknife)
    return or_from_jackknife(
        foms,
        left_out,
        treatments=data.treatments,
        readers=data.readers,
        metric=metric,
        n_cases=len(data.cases),
        n_positive=int(data.truth.sum()),
        jackknife=jackknife,
        dropped=dropped_cases(metric, jackknife),
        threshold=threshold,
        confidence=confidence,
    )


def or_from_jackknife(
    foms: np.ndarray,
    left_out: np.ndarray,
    *,
    treatments: Sequence[str],
    readers: Sequence[str],
    metric: str,
    n_cases: int,
    n_positive: int,
    jackknife: str,
    dropped: Dropped,
    threshold: float | None = None,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> MrmcResult:
    """The three OR analyses of any figure of merit, from its values `foms` (treatments x
    readers) and their leave-one-case-out values `left_out` (t x r x k).

    The k left-out cases are every case (`dropped` "all", k = `n_cases`), or only the positive
    (abnormal; k = `n_positive`) or negative (normal) ones. `jackknife` names that choice in
    the JSON and the report; `bounds` is the range of the FOM (None: unbounded), to which the
    intervals are clipped. Needs at least two readers and two left-out cases.
    """
    if not 0 < confidence < 1:
        raise StatsError(f"confidence must lie strictly between 0 and 1, not {confidence}")
    names, readers = tuple(treatments), tuple(readers)
    t, r = len(names), len(readers)
    k = {"all": n_cases, "positive": n_positive, "negative": n_cases - n_positive}[dropped]
    if foms.shape != (t, r) or left_out.shape != (t, r, k):
        raise StatsError(
            f"{t} treatments, {r} readers and {k} {dropped} left-out cases need FOMs of shape "
            f"{(t, r)} and left-out values of shape {(t, r, k)}, not {foms.shape} and "
            f"{left_out.shape}"
        )
    if r < 2:
        raise StatsError(f"an MRMC analysis needs at least two readers, not {r}")
    if k < 2:
        raise StatsError(f"the jackknife needs at least two cases to leave out, not {k}")
    cov = jackknife_covariance(left_out)
    treatment_index = np.arange(t)[:, None, None, None] == np.arange(t)[None, None, :, None]
    reader_index = np.arange(r)[None, :, None, None] == np.arange(r)[None, None, None, :]
    same_t = np.broadcast_to(treatment_index, cov.shape)
    same_r = np.broadcast_to(reader_index, cov.shape)
    var_error = _mean_where(cov, same_t & same_r)
    cov1 = _mean_where(cov, ~same_t & same_r)
    cov2 = _mean_where(cov, same_t & ~same_r)
    cov3 = _mean_where(cov, ~same_t & ~same_r)
    var_error_i = [float(np.diag(cov[i, :, i, :]).mean()) for i in range(t)]
    cov2_i = [_mean_where(cov[i, :, i, :], ~np.eye(r, dtype=bool)) for i in range(t)]

    # Treatment x reader ANOVA of the FOMs.
    grand = foms.mean()
    treatment_means, reader_means = foms.mean(axis=1), foms.mean(axis=0)
    ss_t = r * float(((treatment_means - grand) ** 2).sum())
    ss_r = t * float(((reader_means - grand) ** 2).sum())
    interaction = foms - treatment_means[:, None] - reader_means[None, :] + grand
    ss_tr = float((interaction**2).sum())
    ms_t = ss_t / (t - 1) if t > 1 else math.nan
    ms_r = ss_r / (r - 1)
    ms_tr = ss_tr / ((t - 1) * (r - 1)) if t > 1 else math.nan
    ms_r_i = [float(((foms[i] - treatment_means[i]) ** 2).sum()) / (r - 1) for i in range(t)]

    if t > 1:
        var_tr = ms_tr - var_error + cov1 + cov2 - cov3
        var_r = (ms_r - var_tr - var_error - (t - 1) * cov1 + cov2 + (t - 1) * cov3) / t
    else:
        var_tr = math.nan
        var_r = ms_r - var_error + cov2
    components = VarianceComponents(var_r, var_tr, cov1, cov2, cov3, var_error)
    pairs = list(itertools.combinations(range(t), 2))
    # Why an analysis has a zero variance, from the parts of its error term: the reader mean
    # square and Cov2 (- Cov3) for random readers and cases, Var(Error) (- Cov1) for fixed
    # readers, the reader mean square for fixed cases.
    causes = {
        "rrrc": "the readers' {} are all equal and do not vary together when a case is left "
        "out (Cov2 <= {})",
        "frrc": "leaving out a case changes none of the readers' {}",
        "rrfc": "the readers' {} are all equal",
    }

    def estimate(fom: float, variance: float, df: float, analysis: str) -> Estimate:
        cause = causes[analysis].format("figures of merit", "0")
        return _estimate(fom, variance, df, confidence, bounds, cause)

    def differences(variance: float, df: float, analysis: str) -> tuple[Comparison, ...]:
        cause = causes[analysis].format("differences between the treatments", "Cov3")
        return tuple(
            _comparison(
                names[a],
                names[b],
                float(treatment_means[a] - treatment_means[b]),
                variance,
                df,
                confidence,
                bounds,
                cause,
            )
            for a, b in pairs
        )

    def no_test(error_term: float, analysis: str) -> str | None:
        if t < 2:
            return "one treatment: nothing to compare"
        if _is_zero(error_term, 0.0):
            cause = causes[analysis].format("differences between the treatments", "Cov3")
            return f"zero variance: {cause}; no test"
        return None

    # Random readers, random cases (Hillis 2007 ddf).
    rrrc_error = ms_tr + r * max(cov2 - cov3, 0.0) if t > 1 else math.nan
    ddf = _ratio(rrrc_error**2, ms_tr**2 / ((t - 1) * (r - 1))) if t > 1 else math.nan
    rrrc_f = _ratio(ms_t, rrrc_error) if t > 1 else math.nan
    rrrc_reason = no_test(rrrc_error, "rrrc")
    rrrc_single = {}
    for i, name in enumerate(names):
        single_error = ms_r_i[i] + r * max(cov2_i[i], 0.0)
        df_single = _ratio(single_error**2, ms_r_i[i] ** 2 / (r - 1))
        rrrc_single[name] = estimate(float(treatment_means[i]), single_error / r, df_single, "rrrc")
    rrrc = Analysis(
        rrrc_f,
        t - 1,
        ddf,
        math.nan if rrrc_reason else _f_p(rrrc_f, t - 1, ddf),
        rrrc_error,
        differences(2 / r * rrrc_error, ddf, "rrrc"),
        rrrc_single,
        rrrc_reason,
    )

    # Fixed readers, random cases.
    frrc_error = var_error - cov1 + (r - 1) * max(cov2 - cov3, 0.0) if t > 1 else math.nan
    chi2 = _ratio((t - 1) * ms_t, frrc_error) if t > 1 else math.nan
    frrc_reason = no_test(frrc_error, "frrc")
    frrc_single = {
        name: estimate(
            float(treatment_means[i]),
            (var_error_i[i] + (r - 1) * max(cov2_i[i], 0.0)) / r,
            math.inf,
            "frrc",
        )
        for i, name in enumerate(names)
    }
    frrc = Analysis(
        chi2,
        t - 1,
        math.inf,
        math.nan if frrc_reason else float(stats.chi2.sf(chi2, t - 1)),
        frrc_error,
        differences(2 / r * frrc_error, math.inf, "frrc"),
        frrc_single,
        frrc_reason,
    )
    by_reader = []
    for j, reader in enumerate(readers):
        if not pairs:
            break
        var_j = float(np.mean([cov[i, j, i, j] for i in range(t)]))
        cov1_j = float(np.mean([cov[a, j, b, j] for a in range(t) for b in range(t) if a != b]))
        for a, b in pairs:
            comparison = _comparison(
                names[a],
                names[b],
                float(foms[a, j] - foms[b, j]),
                2 * (var_j - cov1_j),
                math.inf,
                confidence,
                bounds,
                f"leaving out a case changes none of reader {reader}'s differences",
            )
            by_reader.append(ReaderComparison(reader, var_j, cov1_j, comparison))

    # Random readers, fixed cases: the conventional treatment x reader ANOVA.
    rrfc_df = (t - 1) * (r - 1)
    rrfc_f = _ratio(ms_t, ms_tr) if t > 1 else math.nan
    rrfc_reason = no_test(ms_tr, "rrfc")
    rrfc = Analysis(
        rrfc_f,
        t - 1,
        rrfc_df if t > 1 else math.nan,
        math.nan if rrfc_reason else _f_p(rrfc_f, t - 1, rrfc_df),
        ms_tr,
        differences(2 / r * ms_tr, rrfc_df, "rrfc"),
        {
            name: estimate(float(treatment_means[i]), ms_r_i[i] / r, r - 1, "rrfc")
            for i, name in enumerate(names)
        },
        rrfc_reason,
    )

    return MrmcResult(
        metric=metric,
        threshold=threshold,
        confidence=confidence,
        treatments=names,
        readers=readers,
        n_cases=n_cases,
        n_positive=n_positive,
        jackknife=jackknife,
        dropped=dropped,
        n_jackknife=k,
        bounds=bounds,
        foms=foms,
        anova=Anova(ss_t, ss_r, ss_tr, ms_t, ms_r, ms_tr, dict(zip(names, ms_r_i, strict=True))),
        components=components,
        var_error_by_treatment=dict(zip(names, var_error_i, strict=True)),
        cov2_by_treatment=dict(zip(names, cov2_i, strict=True)),
        rrrc=rrrc,
        frrc=frrc,
        rrfc=rrfc,
        frrc_by_reader=tuple(by_reader),
    )


def _number(value: float) -> float | None:
    """JSON has no nan or infinity: an undefined or unbounded value becomes null."""
    return float(value) if math.isfinite(value) else None


def _integer(value: float) -> int | None:
    return int(value) if math.isfinite(value) else None


def _comparisons_json(comparisons: Sequence[Comparison]) -> list[dict[str, object]]:
    return [
        {
            "treatments": [c.first, c.second],
            "estimate": _number(c.estimate),
            "se": _number(c.se),
            "ci": [_number(c.low), _number(c.high)],
            "p": _number(c.p),
            "reason": c.reason,
        }
        for c in comparisons
    ]


def result_json(result: MrmcResult) -> dict[str, object]:
    """The `python -m study mrmc --json` object (design.md, "Interfaces"); numbers unrounded,
    undefined ones (one treatment, zero variance) null, with a `reason` where a test or an
    interval is missing."""
    components = result.components
    return {
        "metric": result.metric,
        "n_readers": len(result.readers),
        "n_cases": result.n_cases,
        "n_positive": result.n_positive,
        "jackknife": result.jackknife,
        "n_jackknife": result.n_jackknife,
        "treatments": {
            name: {
                "fom": _number(e.fom),
                "se": _number(e.se),
                "df": _number(e.df),
                "ci": [_number(e.low), _number(e.high)],
                "reason": e.reason,
            }
            for name, e in result.rrrc.treatments.items()
        },
        "readers": {
            name: {reader: float(result.foms[i, j]) for j, reader in enumerate(result.readers)}
            for i, name in enumerate(result.treatments)
        },
        "variance_components": {
            "var_r": _number(components.var_r),
            "var_tr": _number(components.var_tr),
            "cov1": _number(components.cov1),
            "cov2": _number(components.cov2),
            "cov3": _number(components.cov3),
            "var_error": _number(components.var_error),
        },
        "rrrc": {
            "F": _number(result.rrrc.statistic),
            "ddf": _number(result.rrrc.df2),
            "p": _number(result.rrrc.p),
            "reason": result.rrrc.reason,
            "differences": _comparisons_json(result.rrrc.differences),
        },
        "frrc": {
            "chi2": _number(result.frrc.statistic),
            "df": _integer(result.frrc.df1) if result.frrc.df1 > 0 else None,
            "p": _number(result.frrc.p),
            "reason": result.frrc.reason,
            "differences": _comparisons_json(result.frrc.differences),
            "treatments": {
                name: {
                    "fom": _number(e.fom),
                    "se": _number(e.se),
                    "ci": [_number(e.low), _number(e.high)],
                    "reason": e.reason,
                }
                for name, e in result.frrc.treatments.items()
            },
        },
        "rrfc": {
            "F": _number(result.rrfc.statistic),
            "ddf": _integer(result.rrfc.df2),
            "p": _number(result.rrfc.p),
            "reason": result.rrfc.reason,
            "differences": _comparisons_json(result.rrfc.differences),
            "treatments": {
                name: {
                    "fom": _number(e.fom),
                    "se": _number(e.se),
                    "df": _integer(e.df),
                    "ci": [_number(e.low), _number(e.high)],
                    "reason": e.reason,
                }
                for name, e in result.rrfc.treatments.items()
            },
        },
    }


def _fmt(value: float, digits: int = 5) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


def _df_value(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def _df(value: float) -> str:
    return "normal" if math.isinf(value) else f"df {_df_value(value)}"


def _jackknife_text(result: MrmcResult, classes: tuple[str, str]) -> str:
    text = f"Jackknife ({result.jackknife}): each of the {result.n_jackknife}"
    if result.dropped == "all":
        return f"{text} cases left out in turn"
    kind = classes[0] if result.dropped == "positive" else classes[1]
    return f"{text} {kind} cases left out in turn (the others cannot change the figure of merit)"


def _comparison_text(d: Comparison, level: str) -> str:
    head = f"{d.first} - {d.second}: {_fmt(d.estimate)}"
    if d.reason:
        return f"{head}; {d.reason}"
    return (
        f"{head} (SE {_fmt(d.se)}, {_df(d.df)}), {level} CI {_fmt(d.low)} to {_fmt(d.high)}, "
        f"p = {_p(d.p)}"
    )


def _estimate_text(treatment: str, e: Estimate, level: str) -> str:
    head = f"{treatment}: {_fmt(e.fom, 8)}"
    if e.reason:
        return f"{head}; {e.reason}"
    return (
        f"{head} (SE {_fmt(e.se, 8)}, {_df(e.df)}), {level} CI {_fmt(e.low, 8)} to "
        f"{_fmt(e.high, 8)}"
    )


def _described(result: MrmcResult) -> str:
    if result.metric == "auc":
        return "AUC (trapezoidal / Wilcoxon)"
    if result.metric == "sensitivity":
        return f"sensitivity (rating >= {result.threshold:g} positive)"
    if result.metric == "specificity":
        return f"specificity (rating < {result.threshold:g} negative)"
    return result.metric


def format_report(
    result: MrmcResult,
    *,
    source: str = "",
    described: str | None = None,
    classes: tuple[str, str] = ("positive", "negative"),
) -> str:
    """A readable account of `obuchowski_rockette`'s (or `or_from_jackknife`'s) result, in
    OR-DBM MRMC's order. `described` names the figure of merit (default: from the metric),
    `classes` the two kinds of case."""
    level = f"{result.confidence:.0%}"
    if described is None:
        described = _described(result)
    width = max(len(name) for name in (*result.treatments, *result.readers, "reader")) + 2
    lines = [
        "Obuchowski-Rockette MRMC analysis, jackknife covariances"
        + (f": {source}" if source else ""),
        f"Figure of merit: {described}",
        f"{len(result.treatments)} treatment(s), {len(result.readers)} readers, "
        f"{result.n_cases} cases ({result.n_positive} {classes[0]}, "
        f"{result.n_cases - result.n_positive} {classes[1]})",
        _jackknife_text(result, classes),
    ]
    if result.bounds is not None:
        low, high = result.bounds
        lines.append(
            f"Intervals clipped to [{low:g}, {high:g}] (differences to "
            f"[{low - high:g}, {high - low:g}])"
        )
    lines += [
        "",
        "Figure of merit per reader",
        "reader".ljust(width) + "".join(name.rjust(14) for name in result.treatments),
    ]
    for j, reader in enumerate(result.readers):
        lines.append(
            reader.ljust(width)
            + "".join(f"{result.foms[i, j]:14.8f}" for i in range(len(result.treatments)))
        )
    lines.append("mean".ljust(width) + "".join(f"{m:14.8f}" for m in result.foms.mean(axis=1)))
    c = result.components
    lines += [
        "",
        "Variance components (OR; ANOVA estimates, can be negative)",
        f"  Var(R) {_fmt(c.var_r, 8)}   Var(T*R) {_fmt(c.var_tr, 8)}",
        f"  Cov1 {_fmt(c.cov1, 8)}   Cov2 {_fmt(c.cov2, 8)}   Cov3 {_fmt(c.cov3, 8)}   "
        f"Var(Error) {_fmt(c.var_error, 8)}",
    ]
    sections = (
        ("Random readers and random cases (Hillis ddf)", result.rrrc, "F"),
        ("Fixed readers, random cases", result.frrc, "X2"),
        ("Random readers, fixed cases", result.rrfc, "F"),
    )
    for title, analysis, name in sections:
        lines += ["", title]
        if len(result.treatments) > 1 and analysis.reason:
            lines.append(f"  {name}: {analysis.reason}")
        elif len(result.treatments) > 1:
            dfs = (
                f"{analysis.df1:.0f}"
                if math.isinf(analysis.df2)
                else f"{analysis.df1:.0f}, {_df_value(analysis.df2)}"
            )
            lines.append(f"  {name}({dfs}) = {_fmt(analysis.statistic, 4)}, p = {_p(analysis.p)}")
        lines += [f"  {_comparison_text(d, level)}" for d in analysis.differences]
        lines += [f"  {_estimate_text(t, e, level)}" for t, e in analysis.treatments.items()]
    if result.frrc_by_reader:
        lines += ["", "Fixed readers, random cases: each reader alone"]
        for item in result.frrc_by_reader:
            lines.append(f"  reader {item.reader}, {_comparison_text(item.comparison, level)}")
    return "\n".join(lines)
