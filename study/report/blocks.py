"""What a report's sections are made of: headings, paragraphs, notes, tables, figures and
metrics, plain values that the Results page and the HTML template each render their way.

A table's cells are text, made once by `table` (so the page and the HTML print the same
digits); a `Choice` is the one interactive part: the page offers its options, the HTML shows
the first.

Example:
    >>> table(pd.DataFrame({"reader": ["A"], "auc": [0.81234], "n": [12]})).rows
    (('A', '0.812', '12'),)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go


@dataclass(frozen=True)
class Heading:
    """A heading within a section; `minor` for the title right above a table."""

    kind: ClassVar[str] = "heading"
    text: str
    minor: bool = False


@dataclass(frozen=True)
class Paragraph:
    kind: ClassVar[str] = "paragraph"
    text: str


@dataclass(frozen=True)
class Caption:
    """A short remark on what follows or precedes it (how to read a table, what it left out)."""

    kind: ClassVar[str] = "caption"
    text: str


@dataclass(frozen=True)
class Note:
    """Why something is not shown (a statistic these answers do not allow)."""

    kind: ClassVar[str] = "note"
    text: str


@dataclass(frozen=True)
class Table:
    """A table as text; `shown` rows at first (None: all), the rest in the exports.
    `case_ids` names the case of each row where a renderer can draw it (thumbnails)."""

    kind: ClassVar[str] = "table"
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    shown: int | None = None
    case_ids: tuple[int, ...] = ()
    key: str = ""

    def head(self, shown: int | None = None) -> tuple[tuple[str, ...], ...]:
        """The first `shown` rows (the table's own `shown` by default)."""
        count = self.shown if shown is None else shown
        return self.rows if count is None else self.rows[:count]

    def more(self, shown: int) -> str:
        """What a reader of the first `shown` rows should know about the others ('' if none)."""
        if shown >= len(self.rows):
            return ""
        return f"The first {shown} of {len(self.rows)} rows; the exports hold them all."


@dataclass(frozen=True)
class Figure:
    """A plotly figure; `key` names it uniquely within the report (widget key, element id)."""

    kind: ClassVar[str] = "figure"
    key: str
    figure: go.Figure = field(repr=False)


@dataclass(frozen=True)
class FigureRow:
    """Small figures side by side."""

    kind: ClassVar[str] = "figure_row"
    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class Metrics:
    """Headline numbers side by side: (label, value) pairs."""

    kind: ClassVar[str] = "metrics"
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Choice:
    """Blocks that depend on one choice among `options` (e.g. the reader of the confusion
    matrices), made by `show` for the chosen option only: the page lets its user choose, a
    static report shows the first option."""

    kind: ClassVar[str] = "choice"
    label: str
    key: str
    options: tuple[str, ...]
    show: Callable[[str], tuple[Block, ...]] = field(repr=False)

    @property
    def first(self) -> tuple[Block, ...]:
        return self.show(self.options[0])


Block = Heading | Paragraph | Caption | Note | Table | Figure | FigureRow | Metrics | Choice


def cell_text(value: object) -> str:
    """A table cell as both renderers print it: numbers to three decimals (small ones in
    scientific notation, no negative zero), integers whole, missing values empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isnan(number):
            return ""
        if math.isinf(number):
            return str(number)
        if number != 0 and abs(number) < 0.001:
            return f"{number:.1e}"
        return f"{number + 0.0:.3f}"
    return str(value)


def table(
    frame: pd.DataFrame, *, shown: int | None = None, cases: str | None = None, key: str = ""
) -> Table:
    """`frame` as a `Table` of text (`cell_text`); `cases` names the column holding each
    row's case id, for thumbnails."""
    rows = tuple(
        tuple(cell_text(value) for value in row) for row in frame.itertuples(index=False, name=None)
    )
    case_ids = tuple(int(c) for c in frame[cases]) if cases else ()
    return Table(
        columns=tuple(str(c) for c in frame.columns),
        rows=rows,
        shown=shown,
        case_ids=case_ids,
        key=key,
    )
