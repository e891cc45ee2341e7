"""One case's marks against its lesion outlines, for coordinators and analysts (never readers):
each image of the case in gray, the outlines of its lesions, and every reader's marks (LL
filled, NL open, labelled with reader and rating)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from study.db import transaction
from study.imaging.canonical import canonical_from_bytes
from study.models import Case, CaseAsset
from study.plots import layout
from study.storage import AssetStore

MARK_STYLE = {"LL": ("circle", "#2ca02c"), "NL": ("x-thin-open", "#d62728")}


def case_marks_figure(
    engine: Engine, public_id: str, points: pd.DataFrame, *, store: AssetStore | None = None
) -> go.Figure:
    """The case `public_id` with the scored marks of `points` (`LocalisationTables.points`)."""
    store = store or AssetStore()
    with transaction(engine) as session:
        case = session.scalar(
            select(Case)
            .where(Case.public_id == public_id)
            .options(selectinload(Case.views).selectinload(CaseAsset.asset))
        )
        if case is None:
            raise ValueError(f"there is no case {public_id}")
        views = [
            (
                view.viewport,
                canonical_from_bytes(store.read(view.asset.canonical_sha256, ".npy")),
                [lesion["outline"] for lesion in view.asset.lesions or ()],
            )
            for view in case.views
        ]
    figure = make_subplots(rows=1, cols=len(views), subplot_titles=[name for name, _, _ in views])
    marks = points[points["case"] == public_id]
    for column, (viewport, image, outlines) in enumerate(views, start=1):
        figure.add_trace(
            go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"),
            row=1,
            col=column,
        )
        for number, outline in enumerate(outlines, start=1):
            line = np.asarray(outline, dtype=float)
            figure.add_trace(
                go.Scatter(
                    x=line[:, 1],
                    y=line[:, 0],
                    mode="lines",
                    line={"color": "#ffbf00", "width": 2},
                    name=f"lesion {number}",
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
        here = marks[marks["viewport"] == viewport]
        for kind, part in here.groupby("kind", sort=True):
            symbol, colour = MARK_STYLE[str(kind)]
            figure.add_trace(
                go.Scatter(
                    x=part["col"],
                    y=part["row"],
                    mode="markers+text",
                    marker={"symbol": symbol, "size": 11, "color": colour, "line": {"width": 2}},
                    text=[
                        f"{r} ({g})" for r, g in zip(part["reader"], part["rating"], strict=True)
                    ],
                    textposition="top center",
                    textfont={"color": colour},
                    name=f"{kind} marks",
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
        anchor = "x" if column == 1 else f"x{column}"
        figure.update_yaxes(autorange="reversed", scaleanchor=anchor, row=1, col=column)
        figure.update_xaxes(showgrid=False, row=1, col=column)
    return layout(figure, f"Case {public_id}: marks against the lesion outlines")
