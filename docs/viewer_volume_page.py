"""A page with the reading room's viewer on one phantom patient's T2W and DWI volumes (20
slices each, normalised as the importer does), for the docs' screenshot of a stack being
scrolled (docs/make_reading_room_screenshots.py starts it with `streamlit run`).

Studies show one slice per viewport today; the viewer takes stacks already (study.viewer_payload
takes N slices per viewport), and this page shows how they read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts this folder on the path, not the repository's root (pages/ is not an
# installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pages import viewer
from study.imaging.normalise import normalise
from study.imaging.types import Sequence
from study.viewer_payload import ViewerCase, ViewportPixels, stack_samples
from synth.phantom import make_patient

SEED = 11
SLICES = 20
SIDE = 256


@st.cache_resource
def phantom_case() -> ViewerCase:
    patient = make_patient(SEED, size=128, n_slices=SLICES, lesion=True, pirads=5)
    viewports = []
    for sequence in (Sequence.T2W, Sequence.DWI):
        volume = normalise(patient.volume(sequence), sequence)
        viewports.append(ViewportPixels(sequence.value, SLICES, stack_samples(list(volume), SIDE)))
    return ViewerCase("phantom", SIDE, tuple(viewports))


st.set_page_config(page_title="Viewer", layout="wide")
st.html(viewer.ROOM_CSS)
viewer.show_case(phantom_case(), keys=[], actions={})
