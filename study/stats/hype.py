"""HYPE, human eye perceptual evaluation of generative models (Zhou et al. 2019): how long a
reader must see an image to tell real from synthetic (HYPE-time), and how often they are wrong
with all the time they want (HYPE-infinity) or at a fixed exposure.

- HYPE-time. A reader's adaptive staircase (`study.exposure`: one step shorter after a right
  answer, three steps longer after a wrong one) dwells around the exposure at which they are
  right three times in four. Their perceptual threshold is the modal exposure of their
  staircase trials ("the modal exposure measures their perceptual threshold", Zhou et al.
  section 3.1); when several exposures are shown equally often, it is the mean of those tied
  modes. Its interval is a percentile bootstrap over the reader's trials (which treats the
  trials of a staircase as exchangeable, as HYPE does). When the modal exposure is the
  staircase's longest (`max_ms`), the threshold was not reached: the reader could not tell the
  images apart even at the longest exposure. HYPE-time of a group is the mean of its readers'
  thresholds, a reader whose threshold was not reached counting at `max_ms` (the mean is then
  a lower bound), with a percentile bootstrap interval over readers.
- Error rates. The share of wrong real/synthetic calls, overall and on real and on synthetic
  images apart (HYPE reports them apart: a generator may fool on its images while readers
  still miss real ones), per reader with an exact (Clopper-Pearson) interval, and their mean
  over readers with a percentile bootstrap interval over readers. 0.5 is chance: images that
  cannot be told apart.
- Shown durations: how faithfully the readers' browsers honoured the exposure, per reader the
  median and largest |shown - exposure| in milliseconds.

Every bootstrap is `scipy.stats.bootstrap` (percentile method, `BOOTSTRAP_RESAMPLES`
resamples) seeded by the caller, so a result is the same every time; fewer than two values
give no interval (nan), values that are all equal an interval of zero width at the value.

References
- Zhou S, Gordon ML, Krishna R, Narcomey A, Fei-Fei L, Bernstein MS (2019). HYPE: a benchmark
  for human eYe perceptual evaluation of generative models. NeurIPS 32.
- Kaernbach C (1991). Simple adaptive testing with the weighted up-down method. Perception &
  Psychophysics 49:227-229.
- Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap, chapter 13 (percentile
  interval). Chapman & Hall.

Example:
    >>> float(modal_exposure([500, 450, 400, 450, 400, 600]))
    425.0
    >>> float(modal_exposure([500, 450, 450]))
    450.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from study.stats import StatsError
from study.stats.proportions import clopper_pearson_interval

BOOTSTRAP_RESAMPLES = 9999
# The row of a table that pools the readers (their mean, bootstrapped over readers).
MEAN_OF_READERS = "mean of readers (bootstrap)"
# The row of the shown-durations table that pools every measured case.
ALL_READERS = "all readers"
REACHED = "reached"
# Booleans the size of one batch of resampled modes (resamples x trials x exposures) at most.
_MODE_BATCH_CELLS = 20_000_000

THRESHOLD_COLUMNS: tuple[str, ...] = (
    "block",
    "reader",
    "trials",
    "right",
    "share_right",
    "threshold_ms",
    "threshold_low_ms",
    "threshold_high_ms",
    "max_ms",
    "threshold_reached",
    "outcome",
)
HYPE_TIME_COLUMNS: tuple[str, ...] = (
    "block",
    "readers",
    "not_reached",
    "hype_time_ms",
    "hype_time_low_ms",
    "hype_time_high_ms",
    "max_ms",
)
_RATE_PARTS: tuple[tuple[str, str | None], ...] = (
    ("", None),
    ("_real", "real"),
    ("_synthetic", "synthetic"),
)
ERROR_RATE_COLUMNS: tuple[str, ...] = (
    "reader",
    "readers",
    *(
        f"{name}{suffix}"
        for suffix, _ in _RATE_PARTS
        for name in ("n", "wrong", "error_rate", "error_low", "error_high")
    ),
    "interval",
)
SHOWN_COLUMNS: tuple[str, ...] = (
    "reader",
    "timed_cases",
    "measured",
    "median_abs_difference_ms",
    "max_abs_difference_ms",
)


class Interval(NamedTuple):
    """An estimate with its bootstrap interval (nan limits: no interval)."""

    estimate: float
    low: float
    high: float


def _finite(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise StatsError(f"no {what} to summarise")
    if not np.isfinite(data).all():
        raise StatsError(f"every {what} must be a finite number")
    return data


def modal_exposure(exposures: Sequence[float] | np.ndarray, axis: int = -1) -> np.ndarray:
    """The exposure shown most often along `axis`; the mean of the tied modes when several are
    shown equally often (so [400, 400, 450, 450] gives 425). Vectorised for the bootstrap."""
    values = np.moveaxis(_finite(exposures, "exposure"), axis, -1)
    grid = np.unique(values)
    counts = (values[..., None] == grid).sum(axis=-2)
    tied = counts == counts.max(axis=-1, keepdims=True)
    return (tied * grid).sum(axis=-1) / tied.sum(axis=-1)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray],
    *,
    seed: int,
    confidence: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> Interval:
    """`statistic` of `values` with its percentile bootstrap interval (scipy.stats.bootstrap,
    resampling `values` with replacement, seeded by `seed`); `statistic` takes an array and
    `axis`. One value gives no interval (nan limits)."""
    data = _finite(values, "value")
    if not 0 < confidence < 1:
        raise StatsError(f"confidence must lie strictly between 0 and 1, not {confidence}")
    estimate = float(statistic(data, axis=-1))
    if len(data) < 2:
        return Interval(estimate, np.nan, np.nan)
    cells = len(data) * len(np.unique(data))
    result = stats.bootstrap(
        (data,),
        statistic,
        n_resamples=n_resamples,
        batch=max(1, _MODE_BATCH_CELLS // cells),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Interval(estimate, float(interval.low), float(interval.high))


def staircase_threshold(
    exposures: Sequence[float] | np.ndarray, *, seed: int, confidence: float = 0.95
) -> Interval:
    """A reader's perceptual threshold: the modal exposure of their staircase trials, with a
    percentile bootstrap interval over the trials."""
    return bootstrap_interval(exposures, modal_exposure, seed=seed, confidence=confidence)


def readers_mean(
    values: Sequence[float] | np.ndarray, *, seed: int, confidence: float = 0.95
) -> Interval:
    """The mean of the readers' values with a percentile bootstrap interval over readers."""
    return bootstrap_interval(values, np.mean, seed=seed, confidence=confidence)


def _check_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise StatsError(f"the {what} lack column(s) {', '.join(missing)}")


def _outcome(reached: object, max_ms: float) -> str:
    if reached is pd.NA:
        return "unknown (the staircase's longest exposure is not known)"
    if reached:
        return REACHED
    return f"not reached: not told apart even at the longest exposure, {max_ms:g} ms"


def threshold_table(trials: pd.DataFrame, *, seed: int, confidence: float = 0.95) -> pd.DataFrame:
    """HYPE-time per staircase: one row per block and reader of `trials` (columns block,
    reader, exposure_ms, correct, max_ms; max_ms nan when unknown).

    Columns `THRESHOLD_COLUMNS`: the number of trials and of right answers, the threshold
    (modal exposure) with its bootstrap interval over the trials, the staircase's longest
    exposure, whether the threshold was reached (the modal exposure below `max_ms`; <NA> when
    max_ms is unknown) and the outcome in words.
    """
    _check_columns(trials, ("block", "reader", "exposure_ms", "correct", "max_ms"), "trials")
    rows = []
    for (block, reader), own in trials.groupby(["block", "reader"], sort=True):
        right = int(own["correct"].astype(bool).sum())
        threshold = staircase_threshold(own["exposure_ms"], seed=seed, confidence=confidence)
        max_ms = float(own["max_ms"].iloc[0])
        reached = pd.NA if np.isnan(max_ms) else bool(threshold.estimate < max_ms)
        rows.append(
            {
                "block": block,
                "reader": str(reader),
                "trials": len(own),
                "right": right,
                "share_right": right / len(own),
                "threshold_ms": threshold.estimate,
                "threshold_low_ms": threshold.low,
                "threshold_high_ms": threshold.high,
                "max_ms": max_ms,
                "threshold_reached": reached,
                "outcome": _outcome(reached, max_ms),
            }
        )
    table = pd.DataFrame(rows, columns=list(THRESHOLD_COLUMNS))
    table["threshold_reached"] = table["threshold_reached"].astype("boolean")
    return table


def hype_time_table(
    thresholds: pd.DataFrame, *, seed: int, confidence: float = 0.95
) -> pd.DataFrame:
    """HYPE-time of each block: the mean of its readers' thresholds (`threshold_table`) with a
    bootstrap interval over readers, and how many readers did not reach theirs (counted at
    their longest exposure, which makes the mean a lower bound)."""
    rows = []
    for block, own in thresholds.groupby("block", sort=True):
        mean = readers_mean(own["threshold_ms"], seed=seed, confidence=confidence)
        rows.append(
            {
                "block": block,
                "readers": len(own),
                "not_reached": int((~own["threshold_reached"].fillna(True)).sum()),
                "hype_time_ms": mean.estimate,
                "hype_time_low_ms": mean.low,
                "hype_time_high_ms": mean.high,
                "max_ms": float(own["max_ms"].max()),
            }
        )
    return pd.DataFrame(rows, columns=list(HYPE_TIME_COLUMNS))


def _reader_rates(reader: str, calls: pd.DataFrame, confidence: float) -> dict[str, object]:
    row: dict[str, object] = {"reader": reader, "readers": 1}
    origin = calls["origin"].astype(str)
    for suffix, part in _RATE_PARTS:
        chosen = calls if part is None else calls[(origin == part).to_numpy()]
        n = len(chosen)
        wrong = int((~chosen["correct"].astype(bool)).sum())
        low, high = clopper_pearson_interval(wrong, n, confidence)
        row |= {
            f"n{suffix}": n,
            f"wrong{suffix}": wrong,
            f"error_rate{suffix}": wrong / n if n else np.nan,
            f"error_low{suffix}": low,
            f"error_high{suffix}": high,
        }
    return row | {"interval": "exact (Clopper-Pearson)"}


def _mean_rates(rows: list[dict[str, object]], seed: int, confidence: float) -> dict[str, object]:
    pooled: dict[str, object] = {"reader": MEAN_OF_READERS, "readers": len(rows)}
    for suffix, _ in _RATE_PARTS:
        rates = np.array([row[f"error_rate{suffix}"] for row in rows], dtype=float)
        rates = rates[~np.isnan(rates)]
        mean = (
            readers_mean(rates, seed=seed, confidence=confidence)
            if len(rates)
            else Interval(np.nan, np.nan, np.nan)
        )
        pooled |= {
            f"n{suffix}": sum(int(row[f"n{suffix}"]) for row in rows),
            f"wrong{suffix}": sum(int(row[f"wrong{suffix}"]) for row in rows),
            f"error_rate{suffix}": mean.estimate,
            f"error_low{suffix}": mean.low,
            f"error_high{suffix}": mean.high,
        }
    return pooled | {"interval": "bootstrap over readers"}


def error_rate_table(
    calls: pd.DataFrame,
    *,
    by: Sequence[str] = (),
    seed: int,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Error rates of real/synthetic calls (columns reader, origin, correct, and the keys `by`):
    per group of `by`, one row per reader and then the mean of the readers (`MEAN_OF_READERS`).

    Columns: the keys, then `ERROR_RATE_COLUMNS`: for all calls, for those on real images
    (`_real`) and on synthetic ones (`_synthetic`): n, wrong, error_rate and its interval (a
    reader's exact Clopper-Pearson interval; for the mean of readers, the mean of their rates
    with a bootstrap interval over readers, counts summed). A reader who saw no image of an
    origin has no rate for it, and the mean leaves them out.
    """
    keys = list(by)
    _check_columns(calls, ["reader", "origin", "correct", *keys], "calls")
    groups = calls.groupby(keys, sort=True, dropna=False) if keys else [((), calls)]
    rows = []
    for key, group in groups:
        values = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        readers = [
            _reader_rates(str(reader), own, confidence)
            for reader, own in group.groupby("reader", sort=True)
        ]
        rows += [values | row for row in readers]
        rows.append(values | _mean_rates(readers, seed, confidence))
    return pd.DataFrame(rows, columns=[*keys, *ERROR_RATE_COLUMNS])


def shown_duration_table(timed: pd.DataFrame) -> pd.DataFrame:
    """How faithfully each reader's browser showed the timed cases (`timed`: one row per reader
    and case with reader, exposure_ms and shown_ms, nan where none was measured): per reader
    and then over `ALL_READERS`, the cases, those measured, and the median and largest
    |shown_ms - exposure_ms|."""
    _check_columns(timed, ("reader", "exposure_ms", "shown_ms"), "timed cases")
    difference = (timed["shown_ms"].astype(float) - timed["exposure_ms"].astype(float)).abs()
    timed = timed.assign(difference=difference.to_numpy())
    parts = [(str(reader), own) for reader, own in timed.groupby("reader", sort=True)]
    rows = []
    for reader, own in [*parts, (ALL_READERS, timed)]:
        measured = own["difference"].dropna()
        rows.append(
            {
                "reader": reader,
                "timed_cases": len(own),
                "measured": len(measured),
                "median_abs_difference_ms": measured.median() if len(measured) else np.nan,
                "max_abs_difference_ms": measured.max() if len(measured) else np.nan,
            }
        )
    return pd.DataFrame(rows, columns=list(SHOWN_COLUMNS))
