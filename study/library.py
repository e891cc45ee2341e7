"""The asset library as the coordinator sees it: counts and filtered listings."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, func, select

from study.db import transaction
from study.models import Asset


def asset_counts(engine: Engine) -> pd.DataFrame:
    """Assets per sequence, origin and lesion status (lesion: 'yes', 'no' or 'unknown'), and
    how many of them took their truth from a lesion mask (`with_mask`)."""
    with transaction(engine) as session:
        rows = session.execute(
            select(
                Asset.sequence,
                Asset.origin,
                Asset.lesion,
                func.count(),
                func.count(Asset.mask_sha256),
            )
            .group_by(Asset.sequence, Asset.origin, Asset.lesion)
            .order_by(Asset.sequence, Asset.origin, Asset.lesion)
        ).all()
    lesion_label = {1: "yes", 0: "no", None: "unknown"}
    return pd.DataFrame(
        [(str(s), str(o), lesion_label[lesion], n, m) for s, o, lesion, n, m in rows],
        columns=["sequence", "origin", "lesion", "assets", "with_mask"],
    )
