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
    "display images that need no reading: file size, brightness, contrast, gray-level histogram "
    "and the border. If it tells real from synthetic images apart beyond chance (permutation "
    "test), readers might too."
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
    counts, auc_col, ci_col, p_col = st.columns(4)
    counts.metric("Images (real / synthetic)", f"{result.n_real} / {result.n_synthetic}")
    auc_col.metric("Out-of-fold AUC", "-" if result.auc is None else f"{result.auc:.3f}")
    ci_col.metric(
        "95% CI (DeLong)", "-" if result.ci is None else f"{result.ci[0]:.2f} - {result.ci[1]:.2f}"
    )
    p_col.metric(
        f"Permutation p ({result.permutations} permutations)",
        "-" if result.p_value is None else f"{result.p_value:.3f}",
    )
    if result.warning:
        st.warning(result.message)
    elif result.auc is None:
        st.info(result.message)
    else:
        st.success(result.message)
    st.plotly_chart(audit_figure(result))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "feature": s.name,
                    "real mean": s.real_mean,
                    "synthetic mean": s.synthetic_mean,
                    "AUC alone": s.auc,
                }
                for s in result.features
            ]
        ),
        hide_index=True,
    )
