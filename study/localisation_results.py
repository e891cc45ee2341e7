"""A study's lesion localisation results: wAFROC, AFROC and the inferred ROC AUC per reader,
the Obuchowski-Rockette analysis of wAFROC, and the FROC/AFROC/wAFROC operating points.

The scored marks (`study.localisation_study`) are analysed per case origin: real and synthetic
cases are different cases, so each origin is its own FROC dataset with one treatment, and the
OR analysis gives the readers' mean wAFROC with its random-reader random-case interval (a test
between treatments needs the same cases under both). An FROC analysis needs every reader on
every case: cases some reader has not answered yet are left out and counted; cases with a
lesion but no known outline are scored for presence only and counted (`presence_only`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats
from sqlalchemy import Engine

from study.localisation_cases import case_marks_figure
from study.localisation_study import LocalisationTables, localisation_tables
from study.stats import StatsError
from study.stats.froc import froc_data, froc_truth
from study.stats.froc_analysis import FrocResult, froc_analysis
from study.stats.froc_curves import area, froc_curves
from study.stats.froc_foms import froc_fom
from study.storage import AssetStore

FOMS = ("wAFROC", "AFROC", "HrAuc")


@dataclass(frozen=True)
class OriginResult:
    """The FROC analysis of one case origin; `result` None with `reason` when there is none."""

    origin: str
    readers: tuple[str, ...]
    n_cases: int
    n_abnormal: int
    n_lesions: int
    cases_unread: int
    result: FrocResult | None
    reason: str


@dataclass(frozen=True)
class LocalisationResults:
    tables: LocalisationTables
    origins: tuple[OriginResult, ...]
    # Per origin and reader: the figures of merit of FOMS.
    per_reader: pd.DataFrame
    curves: pd.DataFrame
    # A case's marks against its outlines (`study.localisation_cases`), by public id.
    case_figure: Callable[[str], go.Figure] = field(repr=False)

    @property
    def cases(self) -> tuple[str, ...]:
        """The cases scored: those with lesion truth and outlines, in study order."""
        return tuple(self.tables.truth["case"])


def _reader_interval(result: FrocResult, confidence: float = 0.95) -> tuple[list, list]:
    """Each reader's wAFROC interval: the jackknife variance of their own figure of merit,
    (k-1)/k sum (theta_(k) - mean)^2 over the k left-out cases, normal quantiles, clipped to
    [0, 1] (the fixed-case-sample interval of one reader)."""
    left_out = result.fom.left_out[0]
    k = left_out.shape[-1]
    centred = left_out - left_out.mean(axis=-1, keepdims=True)
    se = np.sqrt((k - 1) / k * (centred**2).sum(axis=-1))
    z = stats.norm.ppf(0.5 + confidence / 2)
    values = result.fom.values[0]
    return list(np.clip(values - z * se, 0, 1)), list(np.clip(values + z * se, 0, 1))


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The CSV form `study.stats.froc` reads: every column text, empty for missing."""
    return frame.astype(object).where(frame.notna(), "").astype(str)


def _origin(
    tables: LocalisationTables, origin: str
) -> tuple[OriginResult, pd.DataFrame, pd.DataFrame]:
    truth = tables.truth[tables.truth["treatment"] == origin].drop(columns="treatment")
    read = tables.read[tables.read["treatment"] == origin]
    readers = tuple(sorted(read["reader"].unique()))
    by_case = read.groupby("case")["reader"].nunique()
    complete = set(by_case.index[by_case == len(readers)])
    unread = int((~truth["case"].isin(complete)).sum())
    truth = truth[truth["case"].isin(complete)].reset_index(drop=True)
    marks = tables.marks[
        (tables.marks["treatment"] == origin) & tables.marks["case"].isin(complete)
    ].reset_index(drop=True)
    n_abnormal = int(truth["truth"].sum())
    counts = (len(truth), n_abnormal, int(truth["lesions"].sum()), unread)
    per_reader = pd.DataFrame(columns=["origin", "reader", *FOMS, "wAFROC_low", "wAFROC_high"])
    try:
        if len(readers) < 2:
            raise StatsError(f"an FROC analysis needs two readers or more, not {len(readers)}")
        if n_abnormal < 1 or n_abnormal == len(truth):
            raise StatsError("an FROC analysis needs both normal and abnormal cases")
        data = froc_data(
            _as_text(marks),
            froc_truth(_as_text(truth), f"{origin} cases"),
            f"{origin} marks",
            treatments=(origin,),
            readers=readers,
        )
        result = froc_analysis(data, "wAFROC")
        values = {name: froc_fom(data, name).values[0] for name in FOMS}
        low, high = _reader_interval(result)
        per_reader = pd.DataFrame(
            {
                "origin": origin,
                "reader": list(readers),
                **{k: list(v) for k, v in values.items()},
                "wAFROC_low": low,
                "wAFROC_high": high,
            }
        )
        outcome = OriginResult(origin, readers, *counts, result, "")
    except StatsError as error:
        outcome = OriginResult(origin, readers, *counts, None, str(error))
    curves = froc_curves(
        marks.assign(treatment=origin), truth, treatments=[origin], readers=readers
    )
    lroc = curves[curves["curve"] == "LROC"]
    if not lroc.empty and not per_reader.empty:
        # One lesion per abnormal case: the area under each reader's LROC too.
        alroc = {reader: area(points) for reader, points in lroc.groupby("reader")}
        per_reader = per_reader.assign(ALROC=per_reader["reader"].map(alroc))
    return outcome, per_reader, curves.rename(columns={"treatment": "origin"})


def localisation_results(
    engine: Engine, study_id: int, *, store: AssetStore | None = None
) -> LocalisationResults:
    """The localisation results of a study with a lesion_marks question (LocalisationError
    without one)."""
    tables = localisation_tables(engine, study_id, store=store)
    origins, per_reader, curves = [], [], []
    for origin in sorted(tables.truth["treatment"].unique()):
        outcome, readers, points = _origin(tables, origin)
        origins.append(outcome)
        per_reader.append(readers)
        curves.append(points)
    return LocalisationResults(
        tables,
        tuple(origins),
        pd.concat(per_reader, ignore_index=True) if per_reader else pd.DataFrame(),
        pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(),
        lambda public_id: case_marks_figure(engine, public_id, tables.points, store=store),
    )
