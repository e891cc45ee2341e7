"""The viewer alone on a page, showing two linked stacks of generated slices: for the browser
test of scrolling and linking (test_viewer_browser.py) and for benchmarks/bench_viewer_browser.py.

    streamlit run tests/e2e/viewer_harness.py

Each slice k of N is a horizontal ramp (0 to 1 left to right in "T2W", 1 to 0 in "ADC") with a
square in the middle whose value is k / (N - 1), so the gray level at the centre of a viewport
tells which slice it shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import streamlit as st

# `streamlit run` puts this folder on the path, not the repository's root (pages/ is not an
# installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pages import viewer
from study.viewer_payload import ViewerCase, ViewportPixels, stack_samples

SLICES = 24
SIDE = 256
SOURCE = 128


def stack(ramp: np.ndarray) -> bytes:
    slices = []
    for k in range(SLICES):
        image = np.repeat(ramp[None, :], SOURCE, axis=0).astype(np.float32)
        image[48:80, 48:80] = k / (SLICES - 1)
        slices.append(image)
    return stack_samples(slices, SIDE)


@st.cache_resource
def harness_case() -> ViewerCase:
    ramp = np.linspace(0.0, 1.0, SOURCE)
    return ViewerCase(
        "harness",
        SIDE,
        (
            ViewportPixels("T2W", SLICES, stack(ramp)),
            ViewportPixels("ADC", SLICES, stack(1.0 - ramp)),
        ),
    )


st.set_page_config(page_title="Viewer", layout="wide")
viewer.show_case(harness_case(), keys=[], actions={})
