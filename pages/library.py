"""Coordinator: what the asset library holds."""

import streamlit as st

from pages import ui
from study.library import asset_counts

ui.require(ui.Role.COORDINATOR)
st.title("Asset library")
counts = asset_counts(ui.engine())
if counts.empty:
    st.info("The library is empty: import images first.")
else:
    st.metric("Assets", int(counts["assets"].sum()))
    st.dataframe(
        counts.pivot_table(
            index=["sequence", "lesion"], columns="origin", values="assets", fill_value=0
        ),
        use_container_width=True,
    )
    masked = int(counts["with_mask"].sum())
    if masked:
        st.caption(
            f"{masked} of these assets took their lesion truth from a mask (with lesion "
            "outlines, kept for scoring and never shown to readers):"
        )
        st.dataframe(
            counts.pivot_table(
                index=["sequence", "lesion"], columns="origin", values="with_mask", fill_value=0
            ),
            use_container_width=True,
        )
