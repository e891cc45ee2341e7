"""FROC, AFROC and wAFROC operating points: the area under each reader's (w)AFROC points is
RJafroc's figure of merit (Thompson data), and a hand-made reader gives the expected points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from study.stats.froc_curves import area, froc_curves, reader_curves


@pytest.fixture(scope="module")
def thompson(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    folder = shared_data / "froc" / "dataset05-thompson"
    marks = pd.read_csv(folder / "marks.csv", dtype=str, keep_default_na=False)
    marks["rating"] = marks["rating"].astype(float)
    truth = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
    return marks, truth, json.loads((folder / "reference.json").read_text())


@pytest.mark.parametrize("curve", ["AFROC", "wAFROC"])
def test_the_area_under_the_points_is_rjafrocs_figure_of_merit(thompson, curve):
    marks, truth, reference = thompson
    readers = [str(r) for r in range(1, 10)]
    curves = froc_curves(marks, truth, treatments=["1", "2"], readers=readers)
    for expected in reference["foms"][curve]:
        points = curves[
            (curves["curve"] == curve)
            & (curves["treatment"] == expected["treatment"])
            & (curves["reader"] == expected["reader"])
        ]
        assert area(points) == pytest.approx(expected["fom"], abs=1e-12)


def test_one_readers_points_by_hand():
    truth = pd.DataFrame(
        {
            "case": ["n1", "n2", "a1", "a2"],
            "truth": [0, 0, 1, 1],
            "lesions": [0, 0, 1, 2],
            "weights": ["", "", "", "0.75;0.25"],
        }
    )
    marks = pd.DataFrame(
        {
            "treatment": "T",
            "reader": "R",
            "case": ["n1", "n1", "a1", "a2", "a2"],
            "kind": ["NL", "NL", "LL", "LL", "NL"],
            "lesion": [None, None, 1, 2, None],
            "rating": [2.0, 1.0, 3.0, 2.0, 1.0],
        }
    )
    points = reader_curves(marks, truth, "T", "R")
    froc = points[points["curve"] == "FROC"][["x", "y"]].to_numpy().tolist()
    # z = 3: one LL of 3 lesions; z = 2: + the LL (a2, 2) and the NL (n1, 2); z = 1: + 2 NLs.
    assert froc == [[0.0, 0.0], [0.0, 1 / 3], [0.25, 2 / 3], [0.75, 2 / 3]]
    wafroc = points[points["curve"] == "wAFROC"][["x", "y"]].to_numpy().tolist()
    # Normal cases: n1's highest NL is 2, n2 unmarked. wLLF: a1 weight 1, a2's lesion 2 0.25.
    assert wafroc == [[0.0, 0.0], [0.0, 0.5], [0.5, 0.625], [0.5, 0.625], [1.0, 1.0]]
    afroc = points[points["curve"] == "AFROC"]
    assert area(afroc) == pytest.approx(
        # FPF steps to 0.5 at z = 2 with LLF 1/3 -> 2/3, then (0.5, 2/3) -> (1, 1).
        0.5 * (1 / 3 + 2 / 3) / 2 + 0.5 * (2 / 3 + 1) / 2
    )


def test_a_reader_without_marks_has_the_chance_line_only():
    truth = pd.DataFrame({"case": ["n", "a"], "truth": [0, 1], "lesions": [0, 1], "weights": ""})
    marks = pd.DataFrame(columns=["treatment", "reader", "case", "kind", "lesion", "rating"])
    points = reader_curves(marks, truth, "T", "R")
    afroc = points[points["curve"] == "AFROC"][["x", "y"]].to_numpy().tolist()
    assert afroc == [[0.0, 0.0], [1.0, 1.0]]
    assert area(points[points["curve"] == "wAFROC"]) == 0.5
    assert np.isinf(points["threshold"]).all()


def test_lroc_points_by_hand_when_every_abnormal_case_has_one_lesion():
    truth = pd.DataFrame(
        {
            "case": ["n1", "n2", "a1", "a2", "a3"],
            "truth": [0, 0, 1, 1, 1],
            "lesions": [0, 0, 1, 1, 1],
            "weights": "",
        }
    )
    # a1: its lesion rated 3, found; a2: its lesion rated 2 but an NL rated 4 on it, so the
    # case's highest mark is elsewhere (a wrong localisation); a3: unmarked.
    marks = pd.DataFrame(
        {
            "treatment": "T",
            "reader": "R",
            "case": ["n1", "a1", "a2", "a2"],
            "kind": ["NL", "LL", "LL", "NL"],
            "lesion": [None, 1, 1, None],
            "rating": [2.0, 3.0, 2.0, 4.0],
        }
    )
    points = reader_curves(marks, truth, "T", "R")
    lroc = points[points["curve"] == "LROC"][["x", "y"]].to_numpy().tolist()
    assert lroc == [[0.0, 0.0], [0.0, 0.0], [0.0, 1 / 3], [0.5, 1 / 3], [1.0, 1 / 3]]
    assert area(points[points["curve"] == "LROC"]) == pytest.approx(1 / 3)
    # With two lesions on a case there is no LROC.
    two = truth.assign(lesions=[0, 0, 1, 2, 1], weights=["", "", "", "0.5;0.5", ""])
    assert "LROC" not in set(reader_curves(marks, two, "T", "R")["curve"])
