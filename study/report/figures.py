"""Plotly figures of the equivalence, calibration and phases sections of a report, drawn from their
tables in `study.reports` (the other sections' figures are in `study.plots`).

- `equivalence_forest`: each reader's accuracy and the readers' mean with the 90% interval
  that the TOST reads, the equivalence band 0.5 +- margin shaded and the 0.5 line dashed.
- `reliability_diagram`: share right against stated probability per confidence level, one
  line per reader and the pooled readings, and the diagonal of perfect calibration.
- `phase_change_slopes`: a two-phase study's mean realism ratings per reader and origin,
  uninformed then informed.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from study.plots import layout
from study.reports import KIND_TITLES
from study.stats.equivalence import MEAN_OF_READERS
from study.stats.tables import POOLED


def equivalence_forest(equivalence: pd.DataFrame, question_kind: str) -> go.Figure:
    """The rows of one question kind of an equivalence table: accuracy with its (1 - 2 alpha)
    interval (tost_low, tost_high), the readers' mean as a diamond, inside the band
    [0.5 - margin, 0.5 + margin]."""
    rows = equivalence[equivalence["question_kind"] == question_kind]
    margin = float(rows["margin"].iloc[0])
    labels = rows["reader"].astype(str).tolist()
    figure = go.Figure()
    figure.add_vrect(
        x0=0.5 - margin,
        x1=0.5 + margin,
        fillcolor="#2ca02c",
        opacity=0.12,
        line_width=0,
    )
    for is_mean, part in rows.groupby(rows["reader"] == MEAN_OF_READERS, sort=True):
        figure.add_trace(
            go.Scatter(
                x=part["accuracy"],
                y=part["reader"].astype(str),
                mode="markers",
                name="mean of readers (OR)" if is_mean else "reader (exact)",
                marker={"symbol": "diamond" if is_mean else "circle", "size": 11 if is_mean else 8},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (part["tost_high"] - part["accuracy"]).tolist(),
                    "arrayminus": (part["accuracy"] - part["tost_low"]).tolist(),
                },
                customdata=part["conclusion"],
                hovertemplate="%{y}: %{x:.3f}, %{customdata}<extra></extra>",
            )
        )
    figure.add_vline(x=0.5, line_dash="dash", line_color="grey")
    figure.update_xaxes(
        range=[0, 1],
        title=f"accuracy (shaded: 0.5 ± {margin:.2f}, indistinguishable when the bar lies inside)",
    )
    figure.update_yaxes(
        categoryorder="array", categoryarray=list(reversed(labels)), title=None, type="category"
    )
    title = (
        f"{KIND_TITLES.get(question_kind, question_kind)}: equivalence with chance "
        f"(90% intervals, TOST at alpha 0.05, margin ±{margin:.2f})"
    )
    return layout(figure, title, height=max(260, 28 * len(labels) + 120))


def reliability_diagram(bins: pd.DataFrame) -> go.Figure:
    """Share right (with its Wilson interval on hover) against the stated probability of each
    confidence level, one line per reader and one for all readings (`POOLED`), over the
    diagonal of perfect calibration; levels nobody used are gaps."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0.5, 1],
            y=[0.5, 1],
            mode="lines",
            name="perfect calibration",
            line={"dash": "dash", "color": "grey"},
            hoverinfo="skip",
        )
    )
    readers = [r for r in dict.fromkeys(bins["reader"].astype(str)) if r != POOLED]
    for reader in [*readers, POOLED]:
        part = bins[bins["reader"].astype(str) == reader]
        pooled = reader == POOLED
        figure.add_trace(
            go.Scatter(
                x=part["stated"],
                y=part["accuracy"],
                mode="lines+markers",
                name=reader,
                line={"width": 3 if pooled else 1.5, "color": "black" if pooled else None},
                marker={"symbol": "diamond" if pooled else "circle", "size": 10 if pooled else 7},
                customdata=part[
                    ["confidence", "n", "accuracy_wilson_low", "accuracy_wilson_high"]
                ].to_numpy(),
                hovertemplate="confidence %{customdata[0]}: %{y:.2f} right of %{customdata[1]} "
                "(%{customdata[2]:.2f}-%{customdata[3]:.2f})<extra>" + reader + "</extra>",
            )
        )
    figure.update_xaxes(range=[0.45, 1.05], title="stated probability of being right")
    figure.update_yaxes(range=[-0.05, 1.05], title="share of calls right")
    return layout(
        figure,
        "Reliability of confidence, real or synthetic (below the diagonal: overconfident)",
        height=480,
    )


def phase_change_slopes(per_reader: pd.DataFrame) -> go.Figure:
    """Each reader's mean rating of real and of synthetic images, uninformed then informed:
    one line per reader and origin, coloured by origin."""
    figure = go.Figure()
    colours = {"real": "#1f77b4", "synthetic": "#d62728"}
    for row in per_reader.itertuples(index=False):
        figure.add_trace(
            go.Scatter(
                x=["uninformed (phase 1)", "informed (phase 2)"],
                y=[row.mean_uninformed, row.mean_informed],
                mode="lines+markers",
                name=f"{row.reader}, {row.origin}",
                line={"color": colours.get(str(row.origin), "#7f7f7f")},
            )
        )
    figure.update_yaxes(title_text="mean realism rating")
    return layout(figure, "Realism ratings before and after being told", height=420)
