"""Sizing the next reader study from a pilot: the power of an Obuchowski-Rockette (OR) test for
J readers and K cases, the fewest cases that reach a target power, and a table over J (what
RJafroc's SsPowerGivenJK, SsSampleSizeKGivenJ and SsPowerTable do, after Hillis, Obuchowski and
Berbaum 2011).

The pilot's OR analysis (`study.stats.mrmc`) of its K* cases gives the variance components:
Var(R), Var(T*R), and the jackknife Var(Error), Cov1, Cov2, Cov3 of the figure of merit (FOM).
The last four describe a FOM estimated from K* cases and shrink as 1/K, so for a study of K
cases they are taken times s = K*/K (which assumes the pilot's mix of positive and negative
cases); the reader components do not depend on K. Negative reader components count as 0, as in
RJafroc.

Two treatments: the effect d is the difference of their FOMs averaged over the J readers; the
tests have one numerator degree of freedom and the non-centrality parameter is
lambda = J d^2 / (2 den):
- random readers and cases (RRRC; Hillis et al. 2011, eq. 10):
  den = max(Var(T*R), 0) + s [Var(Error) - Cov1 + (J-1) max(Cov2 - Cov3, 0)], and
  power = P(F(1, ddf, lambda) > F_(1-alpha)(1, ddf)) with Hillis's
  ddf = den^2 (J-1) / {max(Var(T*R), 0) + s [Var(Error) - Cov1 - max(Cov2 - Cov3, 0)]}^2
  (the expected MS(T*R) of the planned study in the denominator);
- fixed readers, random cases (FRRC; Hillis and Schartz 2018, table 2): den = s [Var(Error) -
  Cov1 + (J-1) max(Cov2 - Cov3, 0)] and power = P(chi2(1, lambda) > chi2_(1-alpha)(1)), the
  chi-square test of `study.stats.mrmc` (as RJafroc 2; RJafroc 1 used F on 1 and K-1 df);
- random readers, fixed cases (RRFC): den = max(Var(T*R), 0) + s [Var(Error) - Cov1 -
  max(Cov2 - Cov3, 0)], on 1 and J-1 degrees of freedom.

One treatment (a Visual Turing Test: do readers tell real from synthetic better than chance?):
the test is of the mean FOM against a fixed value theta0 (chance, 0.5, for accuracy and AUC),
and the effect d = theta - theta0. In the one-treatment OR model theta_j = mu + R_j + e_j, with
Var(R_j) = Var(R) (which then holds Var(T*R) too), Var(e_j) = Var(Error) and Cov(e_j, e_j') =
Cov2, so the mean of J readers has variance den / J with
  den = Var(R) + Var(Error) + (J-1) Cov2.
Hillis's single-treatment test (Hillis 2007, as `study.stats.mrmc` computes it) is
t = (mean - theta0) / sqrt([MS(R) + J max(Cov2, 0)] / J) on
df = [MS(R) + J max(Cov2, 0)]^2 / [MS(R)^2 / (J-1)] degrees of freedom, where E[MS(R)] =
Var(R) + Var(Error) - Cov2. Under the alternative t^2 is approximately F(1, df, lambda) with
lambda = d^2 / Var(mean) = J d^2 / den. Putting the planned study's expectations in, exactly as
Hillis et al. (2011) do for two treatments:
- RRRC: den = max(Var(R), 0) + s [Var(Error) + (J-1) max(Cov2, 0)],
  ddf = den^2 (J-1) / {max(Var(R), 0) + s [Var(Error) - max(Cov2, 0)]}^2;
- FRRC: den = s [Var(Error) + (J-1) max(Cov2, 0)], chi-square on 1 df;
- RRFC: den = max(Var(R), 0) + s [Var(Error) - max(Cov2, 0)], F on 1 and J-1 df.
These are the two-treatment formulas with Var(R) for Var(T*R), Cov2 for Cov2 - Cov3, no Cov1,
and lambda without the 2 of a difference of two means.

The fewest cases for a target power is the smallest K >= 2 whose power reaches it, found by
evaluating K = 2, 3, ... in order as RJafroc does (power need not rise with K everywhere: the
Hillis ddf falls as K grows). With random readers the power cannot pass its limit at infinitely
many cases (den = max(Var(T*R), 0), ddf = J-1): a target above it needs more readers, and
`cases_needed` says so instead of searching forever.

On the Van Dyke data (RJafroc's dataset02) this reproduces RJafroc's documented powers and case
numbers (tests/study/stats/test_sizing.py).

References
- Hillis SL, Obuchowski NA, Berbaum KS (2011). Power estimation for multireader ROC methods: an
  updated and unified approach. Academic Radiology 18:129-142.
- Hillis SL, Schartz KM (2018). Multireader sample size program for diagnostic studies:
  demonstration and methodology. Journal of Medical Imaging 5:045503.
- Hillis SL (2007). A comparison of denominator degrees of freedom for multiple observer ROC
  analysis. Statistics in Medicine 26:596-619.
- Chakraborty DP (2017). Observer Performance Methods for Diagnostic Imaging, chapter 11
  (sample size estimation); the R package RJafroc (SsPowerGivenJK, SsSampleSizeKGivenJ,
  SsPowerTable).

Example (the Van Dyke pilot's components as RJafroc prints them):
    >>> vandyke = PilotVariance(n_cases=114, n_treatments=2, var_r=0.00153499935,
    ...     var_tr=0.00020040252, cov1=0.00034661371, cov2=0.00034407483,
    ...     cov3=0.00023902837, var_error=0.00080228827)
    >>> round(power_given(vandyke, readers=6, cases=251, effect=0.05).power, 4)
    0.8923
    >>> cases_needed(vandyke, readers=6, effect=0.05).cases
    170
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from study.stats import StatsError

Generalization = Literal["rrrc", "frrc", "rrfc"]
GENERALIZATIONS: tuple[Generalization, ...] = ("rrrc", "frrc", "rrfc")
GENERALIZATION_TITLES: dict[str, str] = {
    "rrrc": "random readers and cases",
    "frrc": "fixed readers, random cases",
    "rrfc": "random readers, fixed cases",
}
# The planned study sizes RJafroc scans before giving up (K = 2 .. 2001); beyond them the search
# goes on, in growing steps, up to MAX_CASES.
FIRST_CASES = 2000
MAX_CASES = 1_000_000
DEFAULT_READERS: tuple[int, ...] = tuple(range(3, 11))


class NoVarianceError(StatsError):
    """The pilot's components leave a generalization no positive variance to size with."""


@dataclass(frozen=True)
class PilotVariance:
    """The OR variance components of a pilot of `n_cases` cases and `n_treatments` (1 or 2)
    treatments, as `study.stats.mrmc.VarianceComponents` holds them. With one treatment
    `var_tr`, `cov1` and `cov3` are not estimable (nan) and not used."""

    n_cases: int
    n_treatments: int
    var_r: float
    var_tr: float
    cov1: float
    cov2: float
    cov3: float
    var_error: float


@dataclass(frozen=True)
class Power:
    """The power of one planned study (J readers, K cases), with the non-centrality parameter,
    the denominator degrees of freedom (inf: chi-square) and the critical value of the test."""

    readers: int
    cases: int
    generalization: str
    power: float
    ncp: float
    ddf: float
    critical: float


@dataclass(frozen=True)
class CasesNeeded:
    """The fewest cases with which J readers reach the target power (and the power they give);
    `cases` is None when no number of cases up to `MAX_CASES` does, and `reason` says why."""

    readers: int
    generalization: str
    cases: int | None
    power: float | None
    reason: str | None = None


def _check_design(readers: int, effect: float, alpha: float) -> None:
    if readers < 2:
        raise StatsError(f"a planned study needs at least two readers, not {readers}")
    if not (math.isfinite(effect) and effect > 0):
        raise StatsError(f"the effect to detect must be a positive number, not {effect}")
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must lie strictly between 0 and 1, not {alpha}")


def _check_generalization(generalization: str) -> None:
    if generalization not in GENERALIZATIONS:
        raise StatsError(
            f"the generalization is one of {', '.join(GENERALIZATIONS)}, not {generalization!r}"
        )


def _check_pilot(pilot: PilotVariance) -> None:
    if pilot.n_treatments not in (1, 2):
        raise StatsError(
            "sizing compares two treatments or tests one against a fixed value; the pilot has "
            f"{pilot.n_treatments} treatments"
        )
    if pilot.n_cases < 2:
        raise StatsError(f"a pilot needs at least two cases, not {pilot.n_cases}")


def _terms(pilot: PilotVariance, readers: int) -> tuple[float, float, float, float]:
    """(reader variance, case variance of the mean's error, case part of the expected reader
    mean square, divisor of lambda) for J = `readers`, at the pilot's K* cases (module
    docstring)."""
    if pilot.n_treatments == 2:
        between = max(pilot.cov2 - pilot.cov3, 0.0)
        within = pilot.var_error - pilot.cov1
        return max(pilot.var_tr, 0.0), within + (readers - 1) * between, within - between, 2.0
    between = max(pilot.cov2, 0.0)
    return (
        max(pilot.var_r, 0.0),
        pilot.var_error + (readers - 1) * between,
        pilot.var_error - between,
        1.0,
    )


def _den(pilot: PilotVariance, readers: int, generalization: str) -> tuple[float, float]:
    """(A, X) with den = A + (K*/K) X: the reader and case parts of the generalization's
    variance term."""
    reader, error, mean_square, _ = _terms(pilot, readers)
    if generalization == "rrrc":
        return reader, error
    if generalization == "frrc":
        return 0.0, error
    return reader, mean_square


def _no_variance(readers: int, generalization: str, cases: str) -> NoVarianceError:
    return NoVarianceError(
        f"the pilot's variance components give no positive variance for "
        f"{GENERALIZATION_TITLES[generalization]} with {readers} readers at {cases} (the "
        "readers agree perfectly, or the components are negative): no power can be computed"
    )


def _powers(
    pilot: PilotVariance,
    readers: int,
    cases: np.ndarray,
    effect: float,
    alpha: float,
    generalization: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Power, lambda, ddf and critical value for each number of cases in `cases`; nan where
    the variance term is not positive."""
    reader, _, mean_square, divisor = _terms(pilot, readers)
    scale = pilot.n_cases / cases.astype(float)
    reader_part, case_part = _den(pilot, readers, generalization)
    den = reader_part + scale * case_part
    if generalization == "rrrc":
        expected_ms = reader + scale * mean_square
        ddf = np.full(cases.shape, np.inf)
        np.divide(den**2 * (readers - 1), expected_ms**2, out=ddf, where=expected_ms != 0)
    elif generalization == "frrc":
        ddf = np.full(cases.shape, np.inf)
    else:
        ddf = np.full(cases.shape, float(readers - 1))
    positive = den > 0
    ncp = np.full(cases.shape, np.nan)
    ncp[positive] = readers * effect**2 / (divisor * den[positive])
    finite = np.isfinite(ddf) & positive
    chi2 = ~np.isfinite(ddf) & positive
    critical = np.full(cases.shape, np.nan)
    power = np.full(cases.shape, np.nan)
    critical[finite] = stats.f.ppf(1 - alpha, 1, ddf[finite])
    power[finite] = stats.ncf.sf(critical[finite], 1, ddf[finite], ncp[finite])
    critical[chi2] = stats.chi2.ppf(1 - alpha, 1)
    power[chi2] = stats.ncx2.sf(critical[chi2], 1, ncp[chi2])
    return power, ncp, ddf, critical


def power_given(
    pilot: PilotVariance,
    *,
    readers: int,
    cases: int,
    effect: float,
    alpha: float = 0.05,
    generalization: Generalization = "rrrc",
) -> Power:
    """The power of a study of `readers` readers and `cases` cases to detect `effect` (a
    difference of two treatments' FOMs, or one treatment's FOM minus the fixed value) with a
    two-sided test of size `alpha` (RJafroc's SsPowerGivenJK)."""
    _check_pilot(pilot)
    _check_design(readers, effect, alpha)
    _check_generalization(generalization)
    if cases < 2:
        raise StatsError(f"a planned study needs at least two cases, not {cases}")
    power, ncp, ddf, critical = _powers(
        pilot, readers, np.array([cases]), effect, alpha, generalization
    )
    if math.isnan(power[0]):
        raise _no_variance(readers, generalization, f"{cases} cases")
    return Power(
        readers,
        cases,
        generalization,
        float(power[0]),
        float(ncp[0]),
        float(ddf[0]),
        float(critical[0]),
    )


def limit_power(
    pilot: PilotVariance,
    *,
    readers: int,
    effect: float,
    alpha: float = 0.05,
    generalization: Generalization = "rrrc",
) -> float:
    """The power that `readers` readers approach as the number of cases grows without bound:
    1 with fixed readers or no reader variance, otherwise that of F(1, J-1) with
    lambda = J d^2 / (w max(Var(T*R), 0)) (w = 2 for two treatments, 1 for one)."""
    _check_pilot(pilot)
    _check_design(readers, effect, alpha)
    _check_generalization(generalization)
    reader, _, _, divisor = _terms(pilot, readers)
    if generalization == "frrc" or reader == 0:
        return 1.0
    critical = stats.f.ppf(1 - alpha, 1, readers - 1)
    return float(stats.ncf.sf(critical, 1, readers - 1, readers * effect**2 / (divisor * reader)))


def _first_reaching(power: np.ndarray, target: float) -> int | None:
    reached = np.flatnonzero(power >= target)
    return int(reached[0]) if reached.size else None


def cases_needed(
    pilot: PilotVariance,
    *,
    readers: int,
    effect: float,
    power: float = 0.8,
    alpha: float = 0.05,
    generalization: Generalization = "rrrc",
) -> CasesNeeded:
    """The smallest number of cases K >= 2 with which `readers` readers detect `effect` with
    at least `power` (RJafroc's SsSampleSizeKGivenJ), scanning K = 2, 3, ... in order."""
    _check_pilot(pilot)
    _check_design(readers, effect, alpha)
    _check_generalization(generalization)
    if not 0 < power < 1:
        raise StatsError(f"the target power must lie strictly between 0 and 1, not {power}")
    reader_part, case_part = _den(pilot, readers, generalization)
    if reader_part <= 0 and case_part <= 0:
        raise _no_variance(readers, generalization, "any number of cases")
    start, stop = 2, FIRST_CASES + 2
    limit = None
    while start <= MAX_CASES:
        cases = np.arange(start, min(stop, MAX_CASES + 1))
        powers = _powers(pilot, readers, cases, effect, alpha, generalization)[0]
        found = _first_reaching(powers, power)
        if found is not None:
            return CasesNeeded(readers, generalization, int(cases[found]), float(powers[found]))
        if limit is None:
            limit = limit_power(
                pilot, readers=readers, effect=effect, alpha=alpha, generalization=generalization
            )
            if limit <= power:
                return CasesNeeded(
                    readers,
                    generalization,
                    None,
                    None,
                    f"{readers} readers cannot reach power {power:g} however many cases they "
                    f"read (at most {limit:.3f}, the reader variance dominates): add readers",
                )
        start, stop = stop, stop * 4
    return CasesNeeded(
        readers,
        generalization,
        None,
        None,
        f"{readers} readers need more than {MAX_CASES:,} cases to reach power {power:g}",
    )


def sizing_table(
    pilot: PilotVariance,
    *,
    effect: float,
    readers: Sequence[int] = DEFAULT_READERS,
    power: float = 0.8,
    alpha: float = 0.05,
    generalizations: Sequence[Generalization] = GENERALIZATIONS,
) -> tuple[CasesNeeded, ...]:
    """`cases_needed` for every number of readers and generalization (RJafroc's
    SsPowerTable, for the readers asked), readers first. A generalization whose variance term
    is never positive gets no cases, its reason saying so."""
    if not readers:
        raise StatsError("name at least one number of readers to size the study for")
    rows = []
    for j in readers:
        for generalization in generalizations:
            try:
                row = cases_needed(
                    pilot,
                    readers=j,
                    effect=effect,
                    power=power,
                    alpha=alpha,
                    generalization=generalization,
                )
            except NoVarianceError as error:
                row = CasesNeeded(j, generalization, None, None, str(error))
            rows.append(row)
    return tuple(rows)


def table_frame(rows: Sequence[CasesNeeded]) -> pd.DataFrame:
    """One row per number of readers: the cases needed and the power they give for each
    generalization (`<generalization>_cases`, `<generalization>_power`; empty when the target
    cannot be reached)."""
    readers = list(dict.fromkeys(row.readers for row in rows))
    frame = pd.DataFrame({"readers": readers})
    for generalization in dict.fromkeys(row.generalization for row in rows):
        chosen = {row.readers: row for row in rows if row.generalization == generalization}
        frame[f"{generalization}_cases"] = pd.array(
            [chosen[j].cases for j in readers], dtype="Int64"
        )
        frame[f"{generalization}_power"] = [
            math.nan if chosen[j].power is None else chosen[j].power for j in readers
        ]
    return frame


def power_curve(
    pilot: PilotVariance,
    *,
    effect: float,
    readers: Sequence[int],
    cases: Sequence[int],
    alpha: float = 0.05,
    generalization: Generalization = "rrrc",
) -> pd.DataFrame:
    """The power over a range of case numbers, one curve per number of readers: a long frame
    with columns readers, cases, power."""
    _check_pilot(pilot)
    _check_generalization(generalization)
    grid = np.asarray(cases, dtype=int)
    if grid.size == 0 or grid.min() < 2:
        raise StatsError("a power curve needs case numbers of at least 2")
    parts = []
    for j in readers:
        _check_design(j, effect, alpha)
        powers = _powers(pilot, j, grid, effect, alpha, generalization)[0]
        parts.append(pd.DataFrame({"readers": j, "cases": grid, "power": powers}))
    return pd.concat(parts, ignore_index=True)
