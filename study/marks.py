"""Lesion marks: the answer to a `lesion_marks` question.

A reader places zero or more marks on a case's images, each with a confidence rating on the
question's scale (its options, lowest first; stored as 1..k), and submits them as one answer.
No mark is an answer too: "I see no lesion".

Stored value: a JSON list, one object per mark, sorted by viewport, slice, row and column:

    [{"viewport": "image", "slice": 0, "row": 41.5, "col": 17.25, "rating": 4}, ...]

in canonical image coordinates: the pixel (row, col) of the canonical array as stored (row 0
at the top, pixel centres at whole numbers, so the image spans -0.5 .. rows - 0.5), and `slice`
the index in the viewport's stack (0 for a single image). The same marks always give the same
text, so an unchanged answer is not a new revision.

The browser never learns an image's size (real and synthetic images may differ in size): it
places marks on the square it shows, as fractions (u across, v down, 0..1) of that square, and
`from_display` maps them back the way `study.imaging.render.fit_square` made the square (the
image centred on a square of side max(rows, cols), then resized).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from study.imaging.errors import VTTError

# More marks than this on one case is not a reading but a scribble (or a forged request).
MAX_MARKS = 50


class MarkError(VTTError):
    """Marks that cannot be stored as a `lesion_marks` answer."""


@dataclass(frozen=True, order=True)
class Mark:
    viewport: str
    slice: int
    row: float
    col: float
    rating: int

    def to_json(self) -> dict[str, object]:
        return {
            "viewport": self.viewport,
            "slice": self.slice,
            "row": self.row,
            "col": self.col,
            "rating": self.rating,
        }


@dataclass(frozen=True)
class ViewportShape:
    """What marks on one viewport may address: its image size and number of slices."""

    rows: int
    cols: int
    slices: int = 1


def dump_marks(marks: Sequence[Mark]) -> str:
    """The stored text of `marks` (sorted; coordinates rounded to 1/100 pixel)."""
    rounded = sorted(
        Mark(m.viewport, m.slice, round(m.row, 2), round(m.col, 2), m.rating) for m in marks
    )
    return json.dumps([mark.to_json() for mark in rounded], separators=(",", ":"))


def _number(entry: Mapping[str, object], key: str, where: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MarkError(f"{where}: '{key}' must be a number, not {value!r}")
    return float(value)


def _whole(entry: Mapping[str, object], key: str, where: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MarkError(f"{where}: '{key}' must be a whole number, not {value!r}")
    return value


def load_marks(text: str, *, scale: int) -> list[Mark]:
    """The marks of a stored (or submitted) answer, checked: ratings 1..`scale`, at most
    MAX_MARKS marks, each with a viewport name, a slice >= 0 and finite coordinates."""
    try:
        entries = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raise MarkError("the marks are not a JSON list") from None
    if not isinstance(entries, list):
        raise MarkError("the marks are not a JSON list")
    if len(entries) > MAX_MARKS:
        raise MarkError(f"{len(entries)} marks on one case; at most {MAX_MARKS} are kept")
    marks = []
    for number, entry in enumerate(entries, start=1):
        where = f"mark {number}"
        if not isinstance(entry, dict):
            raise MarkError(f"{where} is not an object with viewport, slice, row, col, rating")
        viewport = entry.get("viewport")
        if not isinstance(viewport, str) or not viewport:
            raise MarkError(f"{where}: 'viewport' must name a viewport")
        slice_index = _whole(entry, "slice", where)
        rating = _whole(entry, "rating", where)
        if slice_index < 0:
            raise MarkError(f"{where}: slice {slice_index} is negative")
        if not 1 <= rating <= scale:
            raise MarkError(f"{where}: rating {rating} is outside the scale 1..{scale}")
        row, col = _number(entry, "row", where), _number(entry, "col", where)
        marks.append(Mark(viewport, slice_index, row, col, rating))
    return marks


def check_marks(marks: Sequence[Mark], shapes: Mapping[str, ViewportShape]) -> None:
    """Raise MarkError unless every mark lies on a slice of one of `shapes`' viewports."""
    for number, mark in enumerate(marks, start=1):
        shape = shapes.get(mark.viewport)
        if shape is None:
            raise MarkError(f"mark {number} is on a viewport this case does not show")
        if mark.slice >= shape.slices:
            raise MarkError(
                f"mark {number} is on slice {mark.slice + 1}; the viewport has {shape.slices}"
            )
        if not (-0.5 <= mark.row <= shape.rows - 0.5 and -0.5 <= mark.col <= shape.cols - 0.5):
            raise MarkError(f"mark {number} lies outside the image")


def from_display(u: float, v: float, shape: ViewportShape) -> tuple[float, float] | None:
    """Canonical (row, col) of the point at fractions (u across, v down) of the displayed
    square, or None where the square shows padding, not the image.

    >>> from_display(0.5, 0.5, ViewportShape(rows=4, cols=8))
    (1.5, 3.5)
    >>> from_display(0.5, 0.1, ViewportShape(rows=4, cols=8)) is None
    True
    """
    side = max(shape.rows, shape.cols)
    top, left = (side - shape.rows) // 2, (side - shape.cols) // 2
    row, col = v * side - 0.5 - top, u * side - 0.5 - left
    if -0.5 <= row <= shape.rows - 0.5 and -0.5 <= col <= shape.cols - 0.5:
        return row, col
    return None


def to_display(row: float, col: float, shape: ViewportShape) -> tuple[float, float]:
    """Fractions (u across, v down) of the displayed square where canonical (row, col) lies;
    the inverse of `from_display`."""
    side = max(shape.rows, shape.cols)
    top, left = (side - shape.rows) // 2, (side - shape.cols) // 2
    return (col + 0.5 + left) / side, (row + 0.5 + top) / side
