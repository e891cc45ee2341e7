"""Plotly figures of lesion localisation: each reader's FROC, AFROC or wAFROC operating points
(`study.stats.froc_curves`), one figure per curve and case origin, with the chance line of the
(w)AFROC (a reader who marks nothing has area 0.5 under it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from study.plots import layout

AXES: dict[str, tuple[str, str]] = {
    "FROC": ("non-lesion localisations per case (NLF)", "lesion localisation fraction (LLF)"),
    "AFROC": ("false positive fraction (FPF, normal cases)", "lesion localisation fraction"),
    "wAFROC": ("false positive fraction (FPF, normal cases)", "weighted LLF"),
    "LROC": ("false positive fraction (FPF, normal cases)", "correct localisation (PCL)"),
}


def curve_figure(curves: pd.DataFrame, curve: str, origin: str) -> go.Figure:
    """The `curve` points of every reader on the cases of `origin`, as steps joined by lines."""
    figure = go.Figure()
    part = curves[(curves["curve"] == curve) & (curves["origin"] == origin)]
    for reader, points in part.groupby("reader", sort=True):
        finite = points[np.isfinite(points["x"]) & np.isfinite(points["y"])]
        figure.add_trace(
            go.Scatter(x=finite["x"], y=finite["y"], mode="lines+markers", name=str(reader))
        )
    if curve != "FROC":
        figure.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="chance",
                line={"dash": "dot", "color": "#7f7f7f"},
            )
        )
    x_title, y_title = AXES[curve]
    layout(figure, f"{curve}: {origin} cases")
    figure.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        yaxis_range=[0, 1.02],
        xaxis_range=None if curve == "FROC" else [0, 1.02],
    )
    return figure
