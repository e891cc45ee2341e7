"""The standalone HTML report: the sections of `study.report.sections`, in order, rendered
from the Jinja2 template `study/templates/report.html.j2` (autoescaped), with plotly.js
inlined once so that the file opens without a network."""

from __future__ import annotations

from datetime import UTC, datetime

import plotly.offline
from markupsafe import Markup

from study.report.blocks import Figure
from study.report.model import StudyReport
from study.report.sections import SECTIONS
from study.templating import environment


def _figure_html(figure: Figure) -> Markup:
    """A figure's element and the script that draws it (plotly.js itself is in the head)."""
    return Markup(
        figure.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"plot-{figure.key}",
            config={"displaylogo": False, "responsive": True},
        )
    )


def report_html(report: StudyReport, *, generated_at: datetime | None = None) -> str:
    """The report as one HTML file: its summary and notices, then every section."""
    pages = environment().overlay()
    pages.filters["figure_html"] = _figure_html
    return pages.get_template("report.html.j2").render(
        report=report,
        sections=[(section, section.content(report)) for section in SECTIONS],
        generated=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        # plotly.js is the package's own bundle, trusted as the app's code is.
        plotly_js=Markup(plotly.offline.get_plotlyjs()),
    )
