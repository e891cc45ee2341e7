"""Sizing the next study from a finished one (the pilot): how many readers and cases a Visual
Turing Test, or a comparison of two treatments, needs for a target power.

A study's pilot is built from its answers (`study.analysis.tidy_answers`) on the real/synthetic
question: for `accuracy`, each reader's calls (`study.stats.tables.binary_calls`; synthetic is
the positive class); for `auc`, the calls rated with confidence as ten-level scores
(`study.stats.roc.mrmc_long_frame`). Practice and repeated presentations are left out; so are
the readers (or cases) outside the fully crossed block that the OR analysis needs
(`study.stats.crossing`, as on the Results page), and the pilot says which. A study has one
treatment, so its sizing is of the test of the mean reader's accuracy (or AUC) against chance,
0.5 (`study.stats.sizing`, one treatment); a ratings CSV with two treatments sizes their difference.

`size_from_pilot` gives the cases needed per number of readers for the three generalizations,
power curves over the number of cases, and a sentence that says what was sized; the Studies
page and `python -m study size` show them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import Engine

from study.analysis import tidy_answers
from study.design import StudySummary, list_studies
from study.models import StudyStatus
from study.reports import find_study
from study.stats import StatsError
from study.stats.crossing import crossed_block
from study.stats.mrmc import mrmc_data
from study.stats.roc import mrmc_long_frame
from study.stats.sizing import (
    DEFAULT_READERS,
    GENERALIZATION_TITLES,
    CasesNeeded,
    power_curve,
    sizing_table,
    table_frame,
)
from study.stats.sizing_pilot import CHANCE, Metric, Pilot, pilot_from_data, pilot_json
from study.stats.tables import binary_calls

METRIC_TITLES: dict[str, str] = {"accuracy": "accuracy", "auc": "AUC"}
# Points of a power curve over the number of cases.
CURVE_POINTS = 60


def pilot_ratings(tidy: pd.DataFrame, metric: Metric) -> tuple[pd.DataFrame, float | None]:
    """The real/synthetic readings of `tidy` in the long format of `study.stats.mrmc` (reader,
    treatment "all", case, truth 1 = synthetic, rating) and the threshold of a positive call:
    the call itself (1 synthetic, 0 real; threshold 1) for accuracy, the ten-level confidence
    score for AUC (no threshold)."""
    if metric == "auc":
        return mrmc_long_frame(tidy), None
    calls = binary_calls(tidy)
    calls = calls[calls["question_kind"] == "real_or_synthetic"]
    long = pd.DataFrame(
        {
            "reader": calls["reader"].astype(str),
            "treatment": "all",
            "case": calls["case_id"].astype(str),
            "truth": calls["truth"].astype(int),
            "rating": calls["called"].astype(int),
        }
    )
    return long, 1.0


def pilot_from_answers(tidy: pd.DataFrame, metric: Metric, *, source: str) -> Pilot:
    """The pilot of a study's answers: its real/synthetic readings in the fully crossed block
    of readers and cases that the Results page's MRMC analysis uses
    (`study.stats.crossing.crossed_block`). Errors name `source`."""
    try:
        long, threshold = pilot_ratings(tidy, metric)
    except StatsError as error:
        raise StatsError(f"{source}: {error}") from error
    if long.empty:
        what = "rated with confidence" if metric == "auc" else "answered"
        raise StatsError(
            f"{source}: no real-or-synthetic question was {what}, so there is no "
            f"{METRIC_TITLES[metric]} to size from"
        )
    readers = long["reader"].nunique()
    if readers < 2:
        raise StatsError(
            f"{source}: a pilot needs at least two readers (their spread is the reader "
            f"variance); it has {readers}"
        )
    try:
        block = crossed_block(long)
    except StatsError as error:
        raise StatsError(f"{source}: {error}") from error
    kept = long["reader"].isin(block.readers) & long["case"].isin(block.cases)
    return pilot_from_data(
        mrmc_data(long[kept], source=source),
        metric,
        threshold=threshold,
        source=source,
        left_out=block.describe(),
    )


def study_pilot(engine: Engine, key: str, metric: Metric) -> Pilot:
    """The pilot of the study whose id or name is `key` (`study.reports.find_study`)."""
    study = find_study(engine, key)
    return pilot_from_answers(
        tidy_answers(engine, study.id), metric, source=f"study '{study.name}'"
    )


def finished_studies(engine: Engine) -> list[StudySummary]:
    """The closed studies, the newest first: the ones that can serve as a pilot."""
    closed = [s for s in list_studies(engine) if s.status == StudyStatus.CLOSED]
    return sorted(closed, key=lambda s: s.id, reverse=True)


@dataclass(frozen=True)
class PilotSizing:
    """What `size_from_pilot` found: the cases needed per readers and generalization (`rows`,
    and as a frame with readable column names, `table`), power curves of random readers and
    cases over the number of cases (`curve`: readers, cases, power) and a sentence saying what
    was sized."""

    pilot: Pilot
    effect: float
    power: float
    alpha: float
    rows: tuple[CasesNeeded, ...]
    table: pd.DataFrame
    curve: pd.DataFrame
    summary: str


def _effect(pilot: Pilot, effect: float | None) -> float:
    """The effect to size for: the one given, or the pilot's observed one (its size)."""
    single = len(pilot.treatments) == 1
    largest = 1 - CHANCE if single else 1.0
    if effect is None:
        effect = abs(pilot.observed_effect)
        if effect == 0:
            raise StatsError(
                f"{pilot.source}: the pilot shows no effect; give the effect to detect"
            )
        return effect
    if not (math.isfinite(effect) and 0 < effect <= largest):
        what = (
            f"the {METRIC_TITLES[pilot.metric]} to detect minus chance ({CHANCE:g})"
            if single
            else "the difference to detect"
        )
        raise StatsError(f"the effect ({what}) must lie in (0, {largest:g}], not {effect:g}")
    return effect


def _summary(pilot: Pilot, effect: float, power: float, alpha: float) -> str:
    title = METRIC_TITLES[pilot.metric]
    left_out = f" ({pilot.left_out})" if pilot.left_out else ""
    if len(pilot.treatments) == 1:
        observed = f"mean {title} {next(iter(pilot.means.values())):.3f}"
        tested = f"a mean {title} of {CHANCE + effect:.3f} against chance ({CHANCE:g})"
    else:
        observed = f"mean {title} " + " and ".join(f"{m:.3f} ({t})" for t, m in pilot.means.items())
        first, second = pilot.treatments
        tested = f"a difference of {effect:.3f} in {title} between {first} and {second}"
    return (
        f"Pilot {pilot.source}: {len(pilot.readers)} readers, {pilot.n_cases} cases"
        f"{left_out}, {observed}. Cases needed to detect {tested} with {power:.0%} power "
        f"(two-sided alpha {alpha:g}) for each number of readers: with random readers and "
        "cases the result holds for other readers and cases, with fixed readers for these "
        "readers only, with fixed cases for these cases only."
    )


def _readable(column: str) -> str:
    """`rrrc_cases` -> `cases (random readers and cases)`; other names unchanged."""
    generalization, _, what = column.partition("_")
    title = GENERALIZATION_TITLES.get(generalization)
    return f"{what} ({title})" if title else column


def size_from_pilot(
    pilot: Pilot,
    *,
    effect: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    readers: Sequence[int] = DEFAULT_READERS,
) -> PilotSizing:
    """Cases needed per number of readers (all three generalizations) and power curves for
    `effect` (default: the pilot's observed effect)."""
    effect = _effect(pilot, effect)
    if not 0 < power < 1:
        raise StatsError(f"the target power must lie strictly between 0 and 1, not {power:g}")
    rows = sizing_table(pilot.variance, effect=effect, readers=readers, power=power, alpha=alpha)
    needed = [row.cases for row in rows if row.generalization == "rrrc" and row.cases]
    top = min(max(2 * max(needed, default=0), 100), 5000)
    cases = np.unique(np.linspace(2, top, CURVE_POINTS).round().astype(int))
    return PilotSizing(
        pilot=pilot,
        effect=effect,
        power=power,
        alpha=alpha,
        rows=rows,
        table=table_frame(rows).rename(columns=_readable),
        curve=power_curve(pilot.variance, effect=effect, readers=readers, cases=cases, alpha=alpha),
        summary=_summary(pilot, effect, power, alpha),
    )


def size_study(
    engine: Engine,
    study_id: int,
    metric: Metric,
    *,
    effect: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    readers: Sequence[int] = DEFAULT_READERS,
) -> PilotSizing:
    """`size_from_pilot` of the study `study_id` as pilot (the Studies page)."""
    return size_from_pilot(
        study_pilot(engine, str(study_id), metric),
        effect=effect,
        power=power,
        alpha=alpha,
        readers=readers,
    )


def power_curve_figure(sizing: PilotSizing) -> go.Figure:
    """Power against the number of cases, a line per number of readers (random readers and
    cases), with the target power dotted."""
    figure = go.Figure()
    for readers, curve in sizing.curve.groupby("readers"):
        figure.add_trace(
            go.Scatter(x=curve["cases"], y=curve["power"], mode="lines", name=f"{readers} readers")
        )
    figure.add_hline(y=sizing.power, line_dash="dot")
    figure.update_layout(
        xaxis_title="cases",
        yaxis_title=f"power ({GENERALIZATION_TITLES['rrrc']})",
        yaxis_range=[0, 1],
        height=340,
        margin={"t": 30},
    )
    return figure


def sizing_json(sizing: PilotSizing) -> dict[str, object]:
    """The `python -m study size --json` object: the pilot (sizes, FOMs, variance components),
    the effect, power and alpha, and per number of readers the cases needed and the power
    reached for each generalization (null, with a reason, where none suffices)."""
    table = []
    for readers in dict.fromkeys(row.readers for row in sizing.rows):
        entry: dict[str, object] = {"readers": readers}
        for row in sizing.rows:
            if row.readers == readers:
                entry[row.generalization] = {
                    "cases": row.cases,
                    "power": row.power,
                    **({"reason": row.reason} if row.reason else {}),
                }
        table.append(entry)
    return {
        "pilot": pilot_json(sizing.pilot),
        "effect": sizing.effect,
        "power": sizing.power,
        "alpha": sizing.alpha,
        "summary": sizing.summary,
        "table": table,
    }
