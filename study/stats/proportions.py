"""Binomial proportions: intervals, the exact test, a difference interval, sample size.

References
- Wilson EB (1927). Probable inference, the law of succession, and statistical inference.
  JASA 22:209-212.
- Clopper CJ, Pearson ES (1934). The use of confidence or fiducial limits illustrated in the case
  of the binomial. Biometrika 26:404-413.
- Newcombe RG (1998). Interval estimation for the difference between independent proportions:
  comparison of eleven methods. Statistics in Medicine 17:873-890 (method 10).

Example:
    >>> round(wilson_interval(19, 32)[0], 3), round(wilson_interval(19, 32)[1], 3)
    (0.423, 0.745)
    >>> round(binomial_test(19, 32), 4)
    0.3771
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import special, stats

from study.stats import StatsError

# scipy.stats.binomtest's relative tolerance for "as likely as the observed count" (two-sided).
_LIKELIHOOD_TOLERANCE = 1 + 1e-7


class Difference(NamedTuple):
    """A difference of two proportions, first minus second, with its interval."""

    estimate: float
    low: float
    high: float


@functools.lru_cache(maxsize=64)
def _z(confidence: float) -> float:
    """The normal quantile of a two-sided interval (cached: tables ask for it per cell)."""
    if not 0 < confidence < 1:
        raise StatsError(f"confidence must lie strictly between 0 and 1, not {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def _check_count(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise StatsError(f"a count needs 0 <= k <= n, not k={k}, n={n}")


def _wilson(k: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval (Newcombe 1998, method 3); k may be fractional."""
    if n == 0:
        return math.nan, math.nan
    z2 = z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z * math.sqrt(k * (n - k) / n + z2 / 4) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (nan, nan) when n is 0.

    (k + z^2/2)/(n + z^2) +- z sqrt(k(n-k)/n + z^2/4)/(n + z^2)   (Wilson 1927)
    """
    _check_count(k, n)
    return _wilson(k, n, _z(confidence))


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson 1934) interval from beta quantiles; (nan, nan) when n is 0.

    low = B(alpha/2; k, n-k+1) (0 when k = 0), high = B(1-alpha/2; k+1, n-k) (1 when k = n).
    """
    _check_count(k, n)
    _z(confidence)
    if n == 0:
        return math.nan, math.nan
    alpha = 1 - confidence
    # special.betaincinv is what stats.beta.ppf evaluates, without its per-call overhead.
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def two_sided_p_values(n: int, p: float = 0.5) -> np.ndarray:
    """Exact two-sided binomial p-values for every count k = 0..n under success probability p.

    The p-value of k sums the probabilities of all counts no more likely than k (the
    "minimum likelihood" rule, as scipy.stats.binomtest and R's binom.test). Sorting the n+1
    probabilities once gives all n+1 p-values in O(n log n).
    """
    if n < 1:
        raise StatsError(f"a binomial test needs at least one trial, not n={n}")
    if not 0 < p < 1:
        raise StatsError(f"the null proportion must lie strictly between 0 and 1, not {p}")
    pmf = stats.binom.pmf(np.arange(n + 1), n, p)
    ascending = np.sort(pmf)
    cumulative = np.cumsum(ascending)
    at_most_as_likely = np.searchsorted(ascending, pmf * _LIKELIHOOD_TOLERANCE, side="right")
    return np.minimum(cumulative[at_most_as_likely - 1], 1.0)


@functools.lru_cache(maxsize=1024)
def _cached_p_values(n: int, p: float) -> np.ndarray:
    values = two_sided_p_values(n, p)
    values.flags.writeable = False
    return values


def binomial_test(k: int, n: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test of k successes in n trials against proportion p (the
    n+1 p-values of each n are computed once: tables test many cells of the same size)."""
    _check_count(k, n)
    return float(_cached_p_values(n, p)[k])


def newcombe_difference_interval(
    k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95
) -> Difference:
    """Difference p1 - p2 of independent proportions with Newcombe's hybrid score interval.

    Method 10 of Newcombe (1998): with Wilson limits (l1, u1) and (l2, u2),
        low  = d - sqrt((p1 - l1)^2 + (u2 - p2)^2),
        high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2).
    His example 56/70 vs 48/80 gives 0.2000 (0.0524, 0.3339).
    """
    _check_count(k1, n1)
    _check_count(k2, n2)
    if n1 == 0 or n2 == 0:
        return Difference(math.nan, math.nan, math.nan)
    z = _z(confidence)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = _wilson(k1, n1, z)
    l2, u2 = _wilson(k2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Difference(d, low, high)


def binomial_power(n: int, p1: float, p0: float = 0.5, alpha: float = 0.05) -> float:
    """Power of the exact two-sided binomial test of p0 at level alpha when the truth is p1.

    The rejection region is every count whose exact p-value (`two_sided_p_values`) is at most
    alpha; the power is its probability under Binomial(n, p1).
    """
    if not 0 < p1 < 1:
        raise StatsError(f"the true proportion must lie strictly between 0 and 1, not {p1}")
    if not 0 < alpha < 1:
        raise StatsError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    reject = np.flatnonzero(two_sided_p_values(n, p0) <= alpha)
    return float(stats.binom.pmf(reject, n, p1).sum())


def _normal_sample_size(p1: float, p0: float, power: float, alpha: float) -> int:
    """Normal-approximation sample size for a one-sample proportion (Fleiss, Levin & Paik 2003,
    eq. 2.8 without continuity correction): ((z_{1-a/2} sqrt(p0 q0) + z_power sqrt(p1 q1))/d)^2."""
    za = stats.norm.ppf(1 - alpha / 2)
    zb = stats.norm.ppf(power)
    root = (za * math.sqrt(p0 * (1 - p0)) + zb * math.sqrt(p1 * (1 - p1))) / (p1 - p0)
    return math.ceil(root * root)


@functools.lru_cache(maxsize=256)
def sample_size_accuracy(
    p1: float = 0.60,
    p0: float = 0.50,
    power: float = 0.80,
    alpha: float = 0.05,
    *,
    max_n: int = 20_000,
) -> int:
    """Cases needed to tell an accuracy p1 from p0 with the exact two-sided binomial test.

    Exact power is not monotone in n (the discrete rejection region jumps), so the smallest n
    that reaches the power can be followed by larger n that do not. We return the smallest n
    such that every n' from n up to a bound reaches the target power, the bound being
    2 * n_normal + 100 (n_normal: the normal-approximation size), capped at `max_n`. Reading
    fewer cases than this can lose the power again; reading more keeps it.

    The search runs down from the bound and stops at the first n that falls short, so it costs
    about n_normal exact power evaluations of O(n log n) each; results are cached, since the
    study designer asks again on every redraw.

    For 0.60 against 0.50 (power 0.80, alpha 0.05) n = 199 is the first size with enough power,
    but 200, 202, 205, 207 and 209 fall short again; from 210 on every size has enough:

    >>> sample_size_accuracy(0.60, 0.50, 0.80, 0.05)
    210
    """
    if not 0 < p0 < 1 or not 0 < p1 < 1 or p0 == p1:
        raise StatsError(f"need two different proportions in (0, 1), not p1={p1}, p0={p0}")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise StatsError(f"power and alpha must lie in (0, 1), not {power} and {alpha}")
    bound = min(2 * _normal_sample_size(p1, p0, power, alpha) + 100, max_n)
    if binomial_power(bound, p1, p0, alpha) < power:
        raise StatsError(
            f"telling {p1} from {p0} with power {power} needs more than {bound} cases; "
            f"raise max_n or aim for a larger difference"
        )
    n = bound
    while n > 1 and binomial_power(n - 1, p1, p0, alpha) >= power:
        n -= 1
    return n


def ci_halfwidth(n: int, p: float = 0.5, confidence: float = 0.95) -> float:
    """Half the width of the Wilson interval when a proportion p is observed in n cases.

    z sqrt(p(1-p)/n + z^2/(4n^2)) / (1 + z^2/n); e.g. 32 cases at p = 0.594 give 0.161
    (interval 0.42-0.75), 100 cases at p = 0.5 give 0.096.
    """
    if n < 1:
        raise StatsError(f"an interval needs at least one case, not n={n}")
    if not 0 <= p <= 1:
        raise StatsError(f"a proportion lies in [0, 1], not {p}")
    z = _z(confidence)
    return z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
