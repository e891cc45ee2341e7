"""Plotly figure of timed exposure (HYPE): each reader's staircase in one block, the exposure of
every trial in the order they were read, right answers as dots and wrong ones as crosses, the
reader's threshold (the modal exposure) as a dashed line in their colour, and the staircase's
longest exposure dotted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from study.plots import layout


def staircase_figure(trials: pd.DataFrame, thresholds: pd.DataFrame, block: int) -> go.Figure:
    """The staircases of block `block` (`study.hype_results.HypeResults`: `trials` and
    `thresholds`); clicking a reader in the legend hides their trials and threshold together."""
    figure = go.Figure()
    part = trials[trials["block"] == block]
    levels = thresholds[thresholds["block"] == block].set_index("reader")
    colours = plotly.colors.qualitative.Plotly
    for i, (reader, own) in enumerate(part.groupby("reader", sort=True)):
        colour = colours[i % len(colours)]
        right = own["correct"].to_numpy(dtype=bool)
        figure.add_trace(
            go.Scatter(
                x=own["trial"],
                y=own["exposure_ms"],
                mode="lines+markers",
                name=str(reader),
                legendgroup=str(reader),
                line={"color": colour, "width": 1.5},
                marker={
                    "color": colour,
                    "size": 8,
                    "symbol": np.where(right, "circle", "x").tolist(),
                },
                customdata=np.where(right, "right", "wrong"),
                hovertemplate="trial %{x}: %{y:g} ms, %{customdata}<extra>"
                + str(reader)
                + "</extra>",
            )
        )
        if reader in levels.index:
            level = float(levels.loc[reader, "threshold_ms"])
            figure.add_trace(
                go.Scatter(
                    x=[own["trial"].min(), own["trial"].max()],
                    y=[level, level],
                    mode="lines",
                    name=f"{reader}: threshold {level:g} ms",
                    legendgroup=str(reader),
                    showlegend=False,
                    line={"color": colour, "dash": "dash"},
                    hovertemplate=f"{reader}: threshold {level:g} ms<extra></extra>",
                )
            )
    longest = part["max_ms"].dropna()
    if len(longest):
        figure.add_hline(
            y=float(longest.max()),
            line_dash="dot",
            line_color="grey",
            annotation_text="longest exposure",
            annotation_position="top left",
        )
    figure.update_xaxes(title="trial (in reading order)", rangemode="tozero")
    figure.update_yaxes(title="exposure (ms)", rangemode="tozero")
    return layout(
        figure,
        f"Block {block}: staircases (dots right, crosses wrong; dashed: each reader's threshold)",
        height=440,
    )
