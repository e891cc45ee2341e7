"""One case's marks against its lesion outlines, for coordinators and analysts (never readers):
each image of the case in gray, the outlines of its lesions, and every reader's marks (LL
filled, NL open, labelled with reader and rating). Of a volume case, the slices that hold an
outline or a mark (the centre slices where none does), each named with its slice number."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from study.db import transaction
from study.imaging.canonical import canonical_from_bytes
from study.models import Case, CaseAsset, CaseKind
from study.plots import layout
from study.storage import AssetStore

MARK_STYLE = {"LL": ("circle", "#2ca02c"), "NL": ("x-thin-open", "#d62728")}
PANELS_PER_ROW = 4
Panel = tuple[str, int, np.ndarray, list]


def _volume_panels(views: list[Panel], marks: pd.DataFrame) -> list[Panel]:
    """The slices of a volume case with an outline or a mark; the centre slices if none."""
    marked = set(zip(marks["viewport"], marks["slice"], strict=True))
    shown = [view for view in views if view[3] or (view[0], view[1]) in marked]
    if shown:
        return shown
    centre = {name: max(i for n, i, _, _ in views if n == name) // 2 for name, _, _, _ in views}
    return [view for view in views if view[1] == centre[view[0]]]


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
        kind = case.kind
        views = [
            (
                view.viewport,
                view.slice,
                canonical_from_bytes(store.read(view.asset.canonical_sha256, ".npy")),
                [lesion["outline"] for lesion in view.asset.lesions or ()],
            )
            for view in sorted(case.views, key=lambda v: (v.position, v.slice))
        ]
    marks = points[points["case"] == public_id]
    if kind == CaseKind.VOLUME:
        views = _volume_panels(views, marks)
    columns = min(len(views), PANELS_PER_ROW)
    rows = -(-len(views) // columns)
    titles = [
        f"{name} slice {index + 1}" if kind == CaseKind.VOLUME else name
        for name, index, _, _ in views
    ]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles)
    for panel, (viewport, index, image, outlines) in enumerate(views):
        row, column = divmod(panel, columns)
        place = {"row": row + 1, "col": column + 1}
        figure.add_trace(
            go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip"), **place
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
                    showlegend=panel == 0,
                ),
                **place,
            )
        here = marks[(marks["viewport"] == viewport) & (marks["slice"] == index)]
        for kind_of_mark, part in here.groupby("kind", sort=True):
            symbol, colour = MARK_STYLE[str(kind_of_mark)]
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
                    name=f"{kind_of_mark} marks",
                    showlegend=panel == 0,
                ),
                **place,
            )
        anchor = "x" if panel == 0 else f"x{panel + 1}"
        figure.update_yaxes(autorange="reversed", scaleanchor=anchor, **place)
        figure.update_xaxes(showgrid=False, **place)
    return layout(figure, f"Case {public_id}: marks against the lesion outlines")
