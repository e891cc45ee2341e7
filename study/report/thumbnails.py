"""Thumbnails of cases for coordinators and analysts (the results name each image's origin):
a case's viewports side by side, rendered from the canonical arrays."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from study.models import Asset, Case, CaseAsset
from study.reading import Viewport
from study.rendering import render_viewport
from study.storage import AssetStore


def read_case_views(session: Session, study_id: int) -> dict[int, tuple[Viewport, ...]]:
    """Each case of a study and its viewports in order (what a thumbnail draws); a volume
    case's viewport shows its centre slice."""
    rows = session.execute(
        select(CaseAsset.case_id, CaseAsset.viewport, Asset.canonical_sha256)
        .join(Asset, Asset.id == CaseAsset.asset_id)
        .join(Case, Case.id == CaseAsset.case_id)
        .where(Case.study_id == study_id)
        .order_by(CaseAsset.case_id, CaseAsset.position, CaseAsset.slice)
    ).all()
    stacks: dict[int, dict[str, list[str]]] = {}
    for case_id, viewport, canonical_sha256 in rows:
        stacks.setdefault(case_id, {}).setdefault(viewport, []).append(canonical_sha256)
    return {
        case_id: tuple(
            Viewport(name, name, slices[len(slices) // 2]) for name, slices in viewports.items()
        )
        for case_id, viewports in stacks.items()
    }


def case_thumbnails(
    views: Mapping[int, Sequence[Viewport]],
    case_ids: Sequence[int],
    *,
    size: int = 96,
    store: AssetStore | None = None,
) -> dict[int, str]:
    """PNG data URLs of the cases `case_ids` (those `views` knows), their viewports side by
    side, each `size` pixels square."""
    urls = {}
    for case_id in dict.fromkeys(int(c) for c in case_ids):
        if case_id not in views:
            continue
        images = [
            Image.open(io.BytesIO(render_viewport(v, size=size, store=store)))
            for v in views[case_id]
        ]
        strip = Image.new("L", (size * len(images), size))
        for i, image in enumerate(images):
            strip.paste(image.convert("L"), (i * size, 0))
        buffer = io.BytesIO()
        strip.save(buffer, format="PNG")
        urls[case_id] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return urls
