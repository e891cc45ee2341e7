"""The reading-room viewer: a Streamlit component in plain JavaScript (frontend/), served by the
app itself from this folder; no build step, nothing fetched from elsewhere.

The browser gets only pixel samples (`study.viewer_payload`: one bytes argument per viewport,
each of the same length for every 2D viewport), the viewports' captions, their number of slices,
the case's opaque public id, the page's answer keys and button labels, (for a lesion-marks
question) the rating scale and the reader's marks in fractions of the displayed square, and
(for a timed case) its exposure in milliseconds.
Window/level, zoom, pan and slice scrolling run in the browser (frontend/viewer.js).

Under `streamlit.testing`'s AppTest no component runs (it has no browser): `available()` is
False there, and the page shows the simple viewer (server-rendered PNGs and sliders).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from streamlit import config
from streamlit.components.v1 import declare_component

from study.viewer_payload import ViewerCase

FRONTEND = Path(__file__).resolve().parent / "frontend"
# The dark reading room (readers' pages only): injected by the reading page.
ROOM_CSS = Path(__file__).resolve().parent / "room.css"
# One key for every case, so the component (and its decoded images, its window) stays.
COMPONENT_KEY = "viewer"

_component = declare_component("viewer", path=str(FRONTEND))


def available() -> bool:
    """Whether the component can run: always in a browser, never under AppTest (which sets
    this option while it runs the script, through `streamlit.config.get_option`)."""
    return not config.get_option("global.appTest")


def show_case(
    case: ViewerCase,
    *,
    keys: Sequence[Sequence[str]],
    actions: Mapping[str, str],
    marks: Mapping[str, Any] | None = None,
    exposure: Mapping[str, Any] | None = None,
) -> Any:
    """The case's viewports in the viewer, with the page's keyboard; the component's value.

    `keys`: the answer key of every option of each choice question of the form, in the page's
    order; `actions`: the label of the button a key presses ("Enter", "B"). `marks`, for a case
    that asks for lesion marks: {"scale": k, "marks": [{viewport (index), slice, u, v,
    rating}]} (u, v: fractions of the displayed square); the value is then the reader's marks
    as {"case": the case's key, "marks": [...]} once they change (None before). `exposure`,
    for a timed case: {"ms": its exposure, "shown": whether it was shown already}; the value
    is then {"case": .., "shown_ms": the duration the images were on the screen} once the
    mask replaced them.
    """
    pixels = {f"pixels_{i}": viewport.samples for i, viewport in enumerate(case.viewports)}
    extra = {"marks": dict(marks)} if marks is not None else {}
    if exposure is not None:
        extra["exposure"] = dict(exposure)
    return _component(
        mode="viewer",
        case=case.key,
        side=case.side,
        labels=[viewport.label for viewport in case.viewports],
        slices=[viewport.slices for viewport in case.viewports],
        keys=[list(k) for k in keys],
        actions=dict(actions),
        key=COMPONENT_KEY,
        **extra,
        **pixels,
    )


def keyboard(*, keys: Sequence[Sequence[str]], actions: Mapping[str, str]) -> None:
    """The page's keyboard alone (no images, no height), beside the simple viewer and on the
    feedback after a case."""
    _component(
        mode="keys",
        keys=[list(k) for k in keys],
        actions=dict(actions),
        key=COMPONENT_KEY,
    )
