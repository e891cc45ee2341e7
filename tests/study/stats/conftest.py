"""Builders of tidy answer frames for the statistics tests."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

TIDY_DEFAULTS: dict[str, object] = {
    "reader": "R1",
    "case_id": 1,
    "question_kind": "real_or_synthetic",
    "question_id": 1,
    "value": "real",
    "origin": "real",
    "sequence": "T2W",
    "lesion": 0,
    "paired": False,
    "practice": False,
    "repeat": False,
    "correct_side": pd.NA,
    "time_s": 4.0,
}


@pytest.fixture
def tidy_frame() -> Callable[[list[dict[str, object]]], pd.DataFrame]:
    """Build a tidy frame from partial rows; unnamed columns take `TIDY_DEFAULTS`."""

    def build(rows: list[dict[str, object]]) -> pd.DataFrame:
        return pd.DataFrame([{**TIDY_DEFAULTS, **row} for row in rows], columns=list(TIDY_DEFAULTS))

    return build
