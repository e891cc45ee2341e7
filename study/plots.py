"""Plotly figures of a study's results, built from the tables of `study.reports` (no Streamlit:
the results page shows them with st.plotly_chart, the HTML report embeds them).

Every figure of a rate names its positive class, every interval is the one its table reports
(Wilson for proportions, DeLong for a reader's AUC, OR MRMC for the readers' mean AUC), and
the chance level is drawn where there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from study.reports import KIND_TITLES, POOLED, MrmcSummary
from study.stats.roc import roc_curve_points
from study.stats.tables import POSITIVE_CLASS

ORIGIN_COLOURS: dict[str, str] = {"real": "#1f77b4", "synthetic": "#d62728", "mixed": "#7f7f7f"}
# Labels of the positive and negative class of each binary question, for confusion matrices.
CLASS_LABELS: dict[str, tuple[str, str]] = {
    "real_or_synthetic": ("synthetic", "real"),
    "lesion_present": ("lesion", "no lesion"),
    "which_is_real": ("real on the left", "real on the right"),
}


def layout(figure: go.Figure, title: str, *, height: int | None = None) -> go.Figure:
    """The house style of every results figure: title at the left, white template, tight
    margins."""
    figure.update_layout(
        title={"text": title, "x": 0.0, "xanchor": "left"},
        template="plotly_white",
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        height=height,
    )
    return figure


def _forest(
    labels: list[str],
    estimates: list[float],
    lows: list[float],
    highs: list[float],
    *,
    title: str,
    axis: str,
    emphasise: set[str],
    emphasis_name: str,
) -> go.Figure:
    """Points with asymmetric interval bars, one row per label (top to bottom), and the 0.5
    line; rows named in `emphasise` (pooled or mean rows) drawn as diamonds, named
    `emphasis_name` in the legend."""
    frame = pd.DataFrame({"label": labels, "estimate": estimates, "low": lows, "high": highs})
    figure = go.Figure()
    for pooled, part in frame.groupby(frame["label"].isin(emphasise), sort=True):
        figure.add_trace(
            go.Scatter(
                x=part["estimate"],
                y=part["label"],
                mode="markers",
                name=emphasis_name if pooled else "reader",
                marker={"symbol": "diamond" if pooled else "circle", "size": 11 if pooled else 8},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (part["high"] - part["estimate"]).tolist(),
                    "arrayminus": (part["estimate"] - part["low"]).tolist(),
                },
                hovertemplate="%{y}: %{x:.3f}<extra></extra>",
            )
        )
    figure.add_vline(x=0.5, line_dash="dash", line_color="grey")
    figure.update_xaxes(range=[0, 1], title=f"{axis} (dashed line: chance, 0.5)")
    figure.update_yaxes(
        categoryorder="array", categoryarray=list(reversed(labels)), title=None, type="category"
    )
    return layout(figure, title, height=max(260, 28 * len(labels) + 120))


def accuracy_forest(per_reader: pd.DataFrame, question_kind: str) -> go.Figure:
    """Accuracy of each reader and of all readers pooled, with Wilson intervals and the 0.5
    line, for one question kind of `per_reader_table`."""
    rows = per_reader[per_reader["question_kind"] == question_kind]
    title = (
        f"{KIND_TITLES.get(question_kind, question_kind)}: accuracy per reader "
        f"(95% Wilson interval; positive class {POSITIVE_CLASS.get(question_kind, '?')})"
    )
    return _forest(
        rows["reader"].astype(str).tolist(),
        rows["accuracy"].tolist(),
        rows["accuracy_wilson_low"].tolist(),
        rows["accuracy_wilson_high"].tolist(),
        title=title,
        axis="accuracy",
        emphasise={POOLED},
        emphasis_name="all readers pooled",
    )


def confusion_matrix(row: Mapping[str, Any]) -> go.Figure:
    """The 2 x 2 table of one metrics row (tp, fp, tn, fn): truth in rows, answers in columns,
    the positive class first."""
    kind = str(row["question_kind"])
    positive, negative = CLASS_LABELS.get(kind, ("positive", "negative"))
    tp, fn, fp, tn = (int(row[key]) for key in ("tp", "fn", "fp", "tn"))
    counts = [[tp, fn], [fp, tn]]
    total = tp + fn + fp + tn
    text = [[f"{v}<br>{v / total:.0%}" if total else "0" for v in line] for line in counts]
    figure = go.Figure(
        go.Heatmap(
            z=counts,
            x=[f"answered {positive}", f"answered {negative}"],
            y=[f"truly {positive}", f"truly {negative}"],
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    reader = row.get("reader", POOLED)
    title = (
        f"{KIND_TITLES.get(kind, kind)} ({reader}): positive class {row['positive_class']}, "
        f"n = {total}"
    )
    return layout(figure, title, height=320)


def roc_curves(scores: pd.DataFrame, auc: pd.DataFrame) -> go.Figure:
    """Each reader's empirical ROC curve from the ten-level confidence score, labelled with
    the AUC and its DeLong interval; positive class synthetic."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance",
            line={"dash": "dash", "color": "grey"},
            hoverinfo="skip",
        )
    )
    by_reader = auc.set_index("reader") if not auc.empty else pd.DataFrame()
    for reader, group in scores.groupby("reader", sort=True):
        if group["truth"].nunique() < 2:
            continue
        points = roc_curve_points(group["score"], group["truth"])
        label = str(reader)
        if reader in by_reader.index:
            r = by_reader.loc[reader]
            interval = (
                "no interval"
                if pd.isna(r["auc_low"])
                else f"{r['auc_low']:.3f}-{r['auc_high']:.3f}"
            )
            label += f": AUC {r['auc']:.3f} ({interval})"
        figure.add_trace(
            go.Scatter(
                x=points["fpr"],
                y=points["tpr"],
                mode="lines+markers",
                name=label,
                hovertemplate="FPR %{x:.2f}, TPR %{y:.2f}<extra>" + str(reader) + "</extra>",
            )
        )
    figure.update_xaxes(
        range=[0, 1], title="false positive rate (real called synthetic)", constrain="domain"
    )
    figure.update_yaxes(
        range=[0, 1],
        title="true positive rate (synthetic called synthetic)",
        scaleanchor="x",
        constrain="domain",
    )
    return layout(figure, "ROC from confidence ratings (positive class synthetic)", height=520)


def auc_forest(auc: pd.DataFrame, mrmc: MrmcSummary | None) -> go.Figure:
    """Each reader's AUC with its DeLong interval and, with several readers, their mean with
    the OR MRMC interval (random readers and cases), against the 0.5 line."""
    labels = auc["reader"].astype(str).tolist()
    estimates, lows, highs = (auc[c].tolist() for c in ("auc", "auc_low", "auc_high"))
    mean_label = "mean (OR MRMC)"
    if mrmc is not None:
        labels.append(mean_label)
        estimates.append(mrmc.fom)
        lows.append(mrmc.low)
        highs.append(mrmc.high)
    return _forest(
        labels,
        estimates,
        lows,
        highs,
        title="AUC per reader (DeLong 95% interval) and the readers' mean (OR MRMC, Hillis ddf)",
        axis="AUC (positive class synthetic)",
        emphasise={mean_label},
        emphasis_name="mean of readers",
    )


def likert_histogram(distribution: pd.DataFrame) -> go.Figure:
    """Share of each realism rating (1-5) given to real and to synthetic images."""
    figure = go.Figure()
    for origin, group in distribution.groupby("origin", sort=True):
        figure.add_trace(
            go.Bar(
                x=group["rating"],
                y=group["proportion"],
                name=str(origin),
                marker_color=ORIGIN_COLOURS.get(str(origin)),
                customdata=group["count"],
                hovertemplate="rating %{x}: %{y:.0%} (%{customdata})<extra>"
                + str(origin)
                + "</extra>",
            )
        )
    figure.update_layout(barmode="group")
    figure.update_xaxes(title="realism rating (1 = clearly artificial, 5 = real)", dtick=1)
    figure.update_yaxes(title="share of ratings", tickformat=".0%")
    return layout(figure, "Realism ratings by origin", height=360)


def lesion_by_origin(table: pd.DataFrame) -> go.Figure:
    """Lesion identification accuracy on real minus synthetic images per group, with
    Newcombe's interval and the no-difference line."""
    keys = [c for c in table.columns if c in ("sequence", "presentation")]
    labels = (
        table[keys].astype(str).agg(" ".join, axis=1).tolist() if keys else ["all"] * len(table)
    )
    figure = go.Figure(
        go.Scatter(
            x=table["difference"],
            y=labels,
            mode="markers",
            marker={"size": 9},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (table["difference_high"] - table["difference"]).tolist(),
                "arrayminus": (table["difference"] - table["difference_low"]).tolist(),
            },
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
            showlegend=False,
        )
    )
    figure.add_vline(x=0, line_dash="dash", line_color="grey")
    figure.update_xaxes(range=[-1, 1], title="accuracy on real minus on synthetic images")
    figure.update_yaxes(type="category", title=None)
    return layout(
        figure,
        "Lesion identification, real vs synthetic (Newcombe 95% interval; positive class lesion)",
        height=max(240, 40 * len(labels) + 120),
    )


def fool_rate_histogram(fool_rate: pd.DataFrame) -> go.Figure:
    """How many images fooled which share of their readers, by origin."""
    figure = go.Figure()
    for origin, group in fool_rate.groupby("origin", sort=True):
        figure.add_trace(
            go.Histogram(
                x=group["fool_rate"],
                name=str(origin),
                xbins={"start": 0, "end": 1.0001, "size": 0.1},
                marker_color=ORIGIN_COLOURS.get(str(origin)),
            )
        )
    figure.update_layout(barmode="group")
    figure.update_xaxes(range=[0, 1], title="share of readers fooled", tickformat=".0%")
    figure.update_yaxes(title="images")
    return layout(figure, "Fool rate per image", height=340)
