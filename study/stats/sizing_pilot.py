"""A pilot study for sizing (`study.stats.sizing`): its figures of merit and OR variance
components, from fully crossed ratings (`study.stats.mrmc.MrmcData`).

Figures of merit:
- `auc`: the trapezoidal AUC of `study.stats.mrmc.obuchowski_rockette`.
- `accuracy`: the share of cases a reader calls right, a rating >= threshold being a positive
  call. Every case changes it, so the jackknife leaves out each of the c cases in turn: leaving
  out case k of a reader with accuracy A gives (c A - y_k)/(c - 1), y_k = 1 when the reader
  called case k right. These values enter the same OR analysis as AUC's
  (`study.stats.mrmc.or_from_jackknife`).

A pilot has one treatment (then sizing tests the mean FOM against chance, 0.5) or two (then it
sizes the difference, the first treatment minus the second in the order of
`study.stats.mrmc.natural_order`). Its observed effect is that difference, or the mean FOM
minus 0.5 for one treatment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from study.stats import SIZING_METRICS, StatsError
from study.stats.mrmc import MrmcData, MrmcResult, obuchowski_rockette, or_from_jackknife
from study.stats.sizing import PilotVariance

Metric = Literal["accuracy", "auc"]
# The value a one-treatment pilot is tested against: chance for accuracy and AUC alike.
CHANCE = 0.5


@dataclass(frozen=True)
class Pilot:
    """A pilot's figures of merit (treatments x readers) and OR variance components.

    `left_out` says, in words, which readers or cases a study pilot left out to keep a fully
    crossed design (`study.stats.crossing`); empty when none."""

    source: str
    metric: str
    threshold: float | None
    treatments: tuple[str, ...]
    readers: tuple[str, ...]
    n_cases: int
    n_positive: int
    foms: np.ndarray
    variance: PilotVariance
    left_out: str = ""

    @property
    def means(self) -> dict[str, float]:
        """Each treatment's FOM averaged over the readers."""
        return {t: float(m) for t, m in zip(self.treatments, self.foms.mean(axis=1), strict=True)}

    @property
    def observed_effect(self) -> float:
        """First treatment minus second, or the one treatment's mean minus chance (0.5)."""
        means = list(self.means.values())
        return means[0] - means[1] if len(means) == 2 else means[0] - CHANCE


def accuracy_jackknife(data: MrmcData, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy per treatment x reader and its c leave-one-case-out values (t x r x c); a
    rating >= `threshold` is a positive call."""
    c = len(data.cases)
    if c < 2:
        raise StatsError(f"the jackknife of accuracy needs at least two cases, not {c}")
    correct = (data.ratings >= threshold) == data.truth[None, None, :]
    accuracy = correct.mean(axis=2)
    return accuracy, (c * accuracy[:, :, None] - correct) / (c - 1)


def _analysis(data: MrmcData, metric: str, threshold: float | None) -> MrmcResult:
    if metric == "auc":
        if threshold is not None:
            raise StatsError("a threshold applies to accuracy, not to auc")
        return obuchowski_rockette(data, "auc")
    if threshold is None:
        raise StatsError("accuracy needs a threshold T: a rating >= T counts as a positive call")
    foms, left_out = accuracy_jackknife(data, threshold)
    return or_from_jackknife(
        foms,
        left_out,
        treatments=data.treatments,
        readers=data.readers,
        metric="accuracy",
        n_cases=len(data.cases),
        n_positive=int(data.truth.sum()),
        jackknife="all_cases",
        dropped="all",
        threshold=threshold,
    )


def pilot_from_data(
    data: MrmcData,
    metric: Metric,
    *,
    threshold: float | None = None,
    source: str = "the pilot",
    left_out: str = "",
) -> Pilot:
    """The pilot of `data` for `metric`; errors name `source`."""
    if metric not in SIZING_METRICS:
        raise StatsError(
            f"the figure of merit is one of {', '.join(SIZING_METRICS)}, not {metric!r}"
        )
    t, r = len(data.treatments), len(data.readers)
    if t > 2:
        raise StatsError(
            f"{source}: sizing compares two treatments or tests one against chance; the pilot "
            f"has {t} ({', '.join(data.treatments)}): keep the two to compare"
        )
    if r < 2:
        raise StatsError(
            f"{source}: a pilot needs at least two readers (their spread is the reader "
            f"variance); it has {r}"
        )
    try:
        result = _analysis(data, metric, threshold)
    except StatsError as error:
        raise StatsError(f"{source}: {error}") from error
    c = result.components
    variance = PilotVariance(
        n_cases=result.n_cases,
        n_treatments=t,
        var_r=c.var_r,
        var_tr=c.var_tr,
        cov1=c.cov1,
        cov2=c.cov2,
        cov3=c.cov3,
        var_error=c.var_error,
    )
    return Pilot(
        source=source,
        metric=metric,
        threshold=threshold,
        treatments=data.treatments,
        readers=data.readers,
        n_cases=result.n_cases,
        n_positive=result.n_positive,
        foms=result.foms,
        variance=variance,
        left_out=left_out,
    )


def _number(value: float) -> float | None:
    """JSON has no nan: a component that one treatment cannot estimate becomes null."""
    return float(value) if math.isfinite(value) else None


def pilot_json(pilot: Pilot) -> dict[str, object]:
    """The pilot part of `python -m study size --json`: sizes, FOMs and variance components."""
    v = pilot.variance
    return {
        "source": pilot.source,
        "metric": pilot.metric,
        "threshold": pilot.threshold,
        "n_readers": len(pilot.readers),
        "n_cases": pilot.n_cases,
        "n_positive": pilot.n_positive,
        "left_out": pilot.left_out,
        "treatments": pilot.means,
        "readers": {
            t: {reader: float(pilot.foms[i, j]) for j, reader in enumerate(pilot.readers)}
            for i, t in enumerate(pilot.treatments)
        },
        "observed_effect": pilot.observed_effect,
        "compared_with": CHANCE if len(pilot.treatments) == 1 else None,
        "variance_components": {
            "var_r": _number(v.var_r),
            "var_tr": _number(v.var_tr),
            "cov1": _number(v.cov1),
            "cov2": _number(v.cov2),
            "cov3": _number(v.cov3),
            "var_error": _number(v.var_error),
        },
    }
