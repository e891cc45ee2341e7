"""A case's images per viewport: one image for a single, paired or 2AFC viewport, the stack of
slices for a volume viewport."""

from __future__ import annotations

from study.models import Case, CaseAsset


def case_stacks(case: Case) -> dict[str, list[CaseAsset]]:
    """Each viewport name (in position order) with its rows in slice order."""
    stacks: dict[str, list[CaseAsset]] = {}
    for view in sorted(case.views, key=lambda view: view.position):
        stacks.setdefault(view.viewport, []).append(view)
    for stack in stacks.values():
        stack.sort(key=lambda view: view.slice)
    return stacks
