"""A case shown again: the same images in the same viewports, under a new public id."""

from __future__ import annotations

import secrets
from typing import Any

from study.models import Case, CaseAsset


def copy_case(original: Case, **fields: Any) -> Case:
    """A new case of `original`'s study, kind, truth and images; `fields` set what differs
    (a repeat's `repeat_of_id`, an informed-phase copy's `phase` and `first_phase_id`)."""
    case = Case(
        study_id=original.study_id,
        public_id=secrets.token_hex(8),
        kind=original.kind,
        origin=original.origin,
        lesion=original.lesion,
        sequence=original.sequence,
        practice=False,
        exposure=original.exposure,
        **fields,
    )
    case.views = [
        CaseAsset(
            asset_id=view.asset_id, viewport=view.viewport, position=view.position, slice=view.slice
        )
        for view in original.views
    ]
    return case
