"""Coordinator: the blinding audit: do trivial cues of the display images give their origin away?"""

import pandas as pd
import streamlit as st

from pages import ui
from study.blinding import audit_assets, audit_figure
from study.design import list_studies
from study.imaging.errors import VTTError
from study.storage import AssetStore

ui.require(ui.Role.COORDINATOR)
engine = ui.engine()
st.title("Blinding audit")
st.markdown(
    "Readers must judge realism, not trivial cues. This audit trains a simple classifier "
    "(logistic regression, cross-validated with patients kept apart, seeded) on features of the "
    "images that need no reading, taken from exactly what a reader's browser receives: file "
    "size, brightness, contrast, gray-level histogram and the border. It runs on all images "
    "pooled and again within each sequence, since readers see one sequence at a time and a cue "
    "can cancel out when sequences are pooled. If it tells real from synthetic images apart "
    "beyond chance (permutation test) anywhere, readers might too."
)

studies = sorted(list_studies(engine), key=lambda s: s.id, reverse=True)
scope = st.selectbox(
    "Images",
    [None, *studies],
    format_func=lambda s: "Every image in the library" if s is None else f"Study: {s.name}",
    key="audit-scope",
)
study_id = scope.id if scope else None
if st.button("Run the audit", type="primary"):
    try:
        with st.spinner("Training and testing the classifier"):
            st.session_state["audit-result"] = (
                study_id,
                audit_assets(engine, AssetStore(), study_id=study_id),
            )
    except VTTError as error:
        st.error(str(error))

audited, result = st.session_state.get("audit-result", (None, None))
if result is not None and audited == study_id:
    pooled = result.pooled
    counts, auc_col, ci_col, p_col = st.columns(4)
    counts.metric("Images (real / synthetic)", f"{pooled.n_real} / {pooled.n_synthetic}")
    auc_col.metric("Out-of-fold AUC, pooled", "-" if pooled.auc is None else f"{pooled.auc:.3f}")
    ci_col.metric(
        "95% CI (DeLong)", "-" if pooled.ci is None else f"{pooled.ci[0]:.2f} - {pooled.ci[1]:.2f}"
    )
    p_col.metric(
        f"Permutation p ({result.permutations} permutations)",
        "-" if pooled.p_value is None else f"{pooled.p_value:.3f}",
    )
    if result.warning:
        # One warning per scope, so that each names the sequence (or the pooled images) it is about.
        for separation in result.separating:
            st.warning(separation.message)
    elif pooled.auc is None:
        st.info(result.message)
    else:
        st.success(result.message)
    st.subheader("Pooled and per sequence")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "images": separation.scope,
                    "real": separation.n_real,
                    "synthetic": separation.n_synthetic,
                    "AUC": separation.auc,
                    "95% CI (DeLong)": "-"
                    if separation.ci is None
                    else f"{separation.ci[0]:.2f} - {separation.ci[1]:.2f}",
                    "permutation p": separation.p_value,
                    "verdict": str(separation.verdict),
                }
                for separation in (pooled, *result.by_sequence)
            ]
        ),
        hide_index=True,
    )
    st.plotly_chart(audit_figure(result))
    st.subheader("Each feature alone")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "feature": feature.name,
                    "real mean, all sequences": feature.real_mean,
                    "synthetic mean, all sequences": feature.synthetic_mean,
                    **{
                        f"AUC alone, {separation.scope}": separation.features[j].auc
                        for separation in (pooled, *result.by_sequence)
                    },
                }
                for j, feature in enumerate(pooled.features)
            ]
        ),
        hide_index=True,
    )
