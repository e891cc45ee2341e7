"""A study's lesion marks, scored, as the tables of an FROC analysis.

For a study's `lesion_marks` question, every reader's marks on every case (practice and repeated
cases left out) are scored with `study.localisation.score_marks` against the case's truth:

- a case without a lesion (truth 0) is normal: every mark on it is an NL;
- a case with a lesion whose outline is known (an asset imported with a mask, or generated with
  the lesion-mask condition) is abnormal, with the lesions of its first image that has outlines
  (both images of a paired case show the same slice), each of weight 1/n;
- a volume case is abnormal with the lesions of its first viewport whose every slice has a
  mask: a lesion is the stack of its regions on consecutive slices
  (`study.localisation.volume_lesions`), and a mark localises it on the slice it was placed on;
- a case with a lesion but no outline (a synthetic image of a generator without the mask
  condition, a picture imported without a mask, a stack with a slice without one) is scored
  for presence only: it is left out of the FROC tables and counted, as is a case without
  lesion truth.

The tolerance comes from the study's settings: `localisation_tolerance_mm` (default 5 mm) where
the image's pixel spacing is known (an asset that records where it lies in the patient), and
`localisation_tolerance_px` (default 5 pixels) for pictures, whose spacing is unknown.

The tables have the columns of `python -m study froc`'s CSV files: marks `treatment, reader,
case, kind, lesion, rating` (treatment: the case's origin, real or synthetic, since real and
synthetic cases are different cases, each origin is its own FROC dataset) and truth `case,
truth, lesions, weights` (with the case's `treatment` too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from study.case_stacks import case_stacks
from study.db import transaction
from study.imaging.errors import VTTError
from study.imaging.lesions import lesion_regions
from study.imaging.mask import mask_from_bytes
from study.localisation import LesionTruth, Localisation, score_marks, volume_lesions
from study.marks import load_marks
from study.models import (
    Answer,
    Asset,
    Case,
    CaseAsset,
    CaseKind,
    Question,
    QuestionKind,
    Reader,
    Study,
)
from study.storage import AssetStore

DEFAULT_TOLERANCE_MM = 5.0
DEFAULT_TOLERANCE_PX = 5.0
MARK_COLUMNS = ("treatment", "reader", "case", "kind", "lesion", "rating")
TRUTH_COLUMNS = ("treatment", "case", "truth", "lesions", "weights")
POINT_COLUMNS = [
    "treatment",
    "reader",
    "case",
    "viewport",
    "slice",
    "row",
    "col",
    "kind",
    "lesion",
    "rating",
]


class LocalisationError(VTTError):
    """A study whose marks cannot be scored (no lesion_marks question)."""


@dataclass(frozen=True)
class LocalisationTables:
    question: str
    marks: pd.DataFrame
    truth: pd.DataFrame
    # Public ids of cases scored for presence only (a lesion without a known outline) and of
    # cases without lesion truth: both left out of the tables.
    presence_only: tuple[str, ...]
    no_truth: tuple[str, ...]
    # (reader, case) pairs answered: an FROC analysis needs every reader on every case.
    read: pd.DataFrame = field(repr=False)
    tolerance: dict[str, float] = field(default_factory=dict)
    # Every scored mark where it was placed: treatment, reader, case, viewport, slice, row,
    # col, kind, lesion, rating (for showing marks against the outlines).
    points: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


def tolerances(settings: Mapping[str, Any] | None) -> dict[str, float]:
    """The study's localisation tolerances: {'mm': .., 'px': ..}."""
    settings = settings or {}
    values = {
        "mm": float(settings.get("localisation_tolerance_mm", DEFAULT_TOLERANCE_MM)),
        "px": float(settings.get("localisation_tolerance_px", DEFAULT_TOLERANCE_PX)),
    }
    for unit, value in values.items():
        if not value >= 0:
            raise LocalisationError(f"the localisation tolerance in {unit} must be 0 or more")
    return values


def _spacing(asset: Asset) -> tuple[float, float] | None:
    return (asset.spacing_row_mm, asset.spacing_col_mm) if asset.plane is not None else None


def _slice_lesions(asset: Asset, store: AssetStore) -> list[tuple[int, np.ndarray]]:
    """(label, region) of each lesion of a slice with a mask, in the order of its outlines."""
    if not asset.lesions:
        return []
    labels = mask_from_bytes(store.read(asset.mask_sha256, ".npy"))
    found = [lesion["label"] for lesion in asset.lesions]
    return list(zip(found, lesion_regions(labels, found), strict=True))


def _truth(case: Case, store: AssetStore) -> LesionTruth | None:
    """The case's lesions on its first image (or stack) with outlines; None when there is
    none. The reference grid is that image's: the other viewports map onto it."""
    shapes = {view.viewport: (view.asset.rows, view.asset.cols) for view in case.views}
    if case.lesion == 0:
        return LesionTruth((), None, shapes)
    if case.kind == CaseKind.VOLUME:
        for stack in case_stacks(case).values():
            if all(view.asset.mask_sha256 for view in stack):
                slices = [_slice_lesions(view.asset, store) for view in stack]
                lesions = volume_lesions(slices)
                if lesions:
                    return LesionTruth(tuple(lesions), _spacing(stack[0].asset), shapes)
        return None
    for view in case.views:
        asset: Asset = view.asset
        if asset.mask_sha256 and asset.lesions:
            regions = [region for _, region in _slice_lesions(asset, store)]
            return LesionTruth(tuple(regions), _spacing(asset), shapes)
    return None


def localisation_tables(
    engine: Engine,
    study_id: int,
    *,
    question_id: int | None = None,
    store: AssetStore | None = None,
) -> LocalisationTables:
    """The scored marks and the truth of a study's lesion_marks question (the first one when
    `question_id` is None)."""
    store = store or AssetStore()
    with transaction(engine) as session:
        study = session.get(Study, study_id)
        if study is None:
            raise LocalisationError(f"there is no study {study_id}")
        questions = [
            q
            for q in session.scalars(
                select(Question).where(
                    Question.study_id == study_id, Question.kind == QuestionKind.LESION_MARKS
                )
            )
            if question_id is None or q.id == question_id
        ]
        if not questions:
            raise LocalisationError(f"study '{study.name}' asks no lesion_marks question")
        question = min(questions, key=lambda q: q.position)
        limits = tolerances(study.settings)
        cases = session.scalars(
            select(Case)
            .where(Case.study_id == study_id, Case.practice.is_(False), Case.repeat_of_id.is_(None))
            .options(selectinload(Case.views).selectinload(CaseAsset.asset))
            .order_by(Case.id)
        ).all()
        answers = session.execute(
            select(Reader.alias, Answer.case_id, Answer.value)
            .join(Reader, Reader.id == Answer.reader_id)
            .where(Answer.question_id == question.id)
            .order_by(Reader.id, Answer.case_id)
        ).all()
        by_case: dict[int, list[tuple[str, str]]] = {}
        for alias, case_id, value in answers:
            by_case.setdefault(case_id, []).append((alias, value))

        marks_rows, truth_rows, read_rows, points = [], [], [], []
        presence_only, no_truth = [], []
        for case in cases:
            if case.lesion is None:
                no_truth.append(case.public_id)
                continue
            truth = _truth(case, store)
            if truth is None:
                presence_only.append(case.public_id)
                continue
            treatment = str(case.origin)
            n = len(truth.regions)
            truth_rows.append(
                {
                    "treatment": treatment,
                    "case": case.public_id,
                    "truth": int(n > 0),
                    "lesions": n,
                    "weights": ";".join(repr(1 / n) for _ in range(n)),
                }
            )
            tolerance = limits["mm"] if truth.spacing_mm is not None else limits["px"]
            for alias, value in by_case.get(case.id, []):
                read_rows.append({"treatment": treatment, "reader": alias, "case": case.public_id})
                marks = load_marks(value, scale=len(question.options))
                for scored in score_marks(marks, truth, tolerance=tolerance):
                    points.append(
                        {
                            "treatment": treatment,
                            "reader": alias,
                            "case": case.public_id,
                            "viewport": scored.mark.viewport,
                            "slice": scored.mark.slice,
                            "row": scored.mark.row,
                            "col": scored.mark.col,
                            "kind": scored.kind.value,
                            "lesion": scored.lesion,
                            "rating": scored.mark.rating,
                        }
                    )
                    marks_rows.append(
                        {
                            "treatment": treatment,
                            "reader": alias,
                            "case": case.public_id,
                            "kind": scored.kind.value,
                            "lesion": scored.lesion
                            if scored.kind == Localisation.LESION
                            else np.nan,
                            "rating": scored.mark.rating,
                        }
                    )
        return LocalisationTables(
            question=question.wording,
            marks=pd.DataFrame(marks_rows, columns=list(MARK_COLUMNS)).astype({"lesion": "Int64"}),
            truth=pd.DataFrame(truth_rows, columns=list(TRUTH_COLUMNS)),
            presence_only=tuple(presence_only),
            no_truth=tuple(no_truth),
            read=pd.DataFrame(read_rows, columns=["treatment", "reader", "case"]),
            tolerance=limits,
            points=pd.DataFrame(points, columns=POINT_COLUMNS),
        )
