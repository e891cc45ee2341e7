"""The truth of a case that its images carry: which side of a two-alternative case is real."""

from __future__ import annotations

from study.imaging.types import Origin
from study.models import Case, CaseKind


def real_side(case: Case) -> str | None:
    """For a two-alternative case, the viewport ('left'/'right') that shows the real image;
    None for other cases (and for a 2AFC case without exactly one real image)."""
    if case.kind != CaseKind.TWO_AFC:
        return None
    sides = [view.viewport for view in case.views if view.asset.origin == Origin.REAL]
    return sides[0] if len(sides) == 1 else None
