"""Lesions of a label slice: the rule, connected lesions and their outlines."""

from __future__ import annotations

import numpy as np
import pytest

from study.imaging.errors import ImagingError
from study.imaging.lesions import (
    DEFAULT_MIN_LESION_VOXELS,
    LesionRule,
    find_lesions,
    is_positive,
    parse_lesion_labels,
)


def polygon_area(points: tuple[tuple[float, float], ...]) -> float:
    rows = np.array([p[0] for p in points])
    cols = np.array([p[1] for p in points])
    return abs(float(np.dot(rows, np.roll(cols, 1)) - np.dot(cols, np.roll(rows, 1)))) / 2


def test_the_default_rule_counts_every_label_and_ten_voxels():
    rule = LesionRule()
    assert (rule.min_voxels, rule.labels) == (DEFAULT_MIN_LESION_VOXELS, None) == (10, None)
    labels = np.zeros((8, 8), np.uint8)
    labels[0, :8] = 3
    labels[7, 0] = 1
    assert rule.describe() == "any label > 0"
    assert np.count_nonzero(labels) == 9 and not is_positive(labels, rule)
    labels[6, 0] = 1
    assert is_positive(labels, rule)
    assert not is_positive(labels, LesionRule(labels=frozenset({1})))
    assert LesionRule(labels=frozenset({5, 2})).describe() == "labels 2, 5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", None), (" ", None), ("2,3,4,5", {2, 3, 4, 5}), ("2 3, 3", {2, 3}), ("7", {7})],
)
def test_lesion_labels_are_read_from_text(text, expected):
    found = parse_lesion_labels(text)
    assert found == (None if expected is None else frozenset(expected))


@pytest.mark.parametrize(
    ("text", "problem"),
    [("2,x", "are not whole numbers"), ("0,2", "must be whole numbers of 1 or more"),
     ("-1", "must be whole numbers of 1 or more"), ("2.5", "are not whole numbers")],
)  # fmt: skip
def test_lesion_labels_that_are_no_labels_are_refused(text, problem):
    with pytest.raises(ImagingError, match=problem):
        parse_lesion_labels(text)


@pytest.mark.parametrize("count", [0, -3, 2.5, True])
def test_a_voxel_count_below_one_or_not_whole_is_refused(count):
    with pytest.raises(ImagingError, match="min_lesion_voxels"):
        LesionRule(min_voxels=count)


def test_lesions_are_connected_regions_of_one_label_with_closed_outlines():
    labels = np.zeros((12, 12), np.uint8)
    labels[1:4, 1:4] = 2
    labels[4, 4] = 2  # touches the square at a corner: the same lesion (8-connected)
    labels[8:11, 8:10] = 2
    labels[8:11, 5:7] = 4
    found = find_lesions(labels, LesionRule(min_voxels=1), spacing_mm=(0.5, 2.0))
    assert [(f.label, f.voxels, f.bbox) for f in found] == [
        (2, 10, (1, 1, 5, 5)),
        (2, 6, (8, 8, 11, 10)),
        (4, 6, (8, 5, 11, 7)),
    ]
    assert [f.area_mm2 for f in found] == [10.0, 6.0, 6.0]
    for lesion in found:
        assert lesion.outline[0] == lesion.outline[-1]
        # Marching squares cuts each corner by an eighth of a pixel.
        assert lesion.voxels - 1.5 < polygon_area(lesion.outline) < lesion.voxels
        r0, c0, r1, c1 = lesion.bbox
        for row, col in lesion.outline:
            assert r0 - 0.5 <= row <= r1 - 0.5 and c0 - 0.5 <= col <= c1 - 0.5


def test_a_lesion_with_a_hole_keeps_its_outer_outline_and_edges_are_closed():
    labels = np.zeros((7, 7), np.uint8)
    labels[0:5, 0:5] = 1
    labels[2, 2] = 0
    (ring,) = find_lesions(labels, LesionRule(min_voxels=1), spacing_mm=(1.0, 1.0))
    assert ring.voxels == 24 and ring.centroid == (2.0, 2.0)
    assert 23 < polygon_area(ring.outline) < 25
    assert min(p[0] for p in ring.outline) == -0.5


def test_labels_outside_the_rule_make_no_lesion():
    labels = np.zeros((6, 6), np.uint8)
    labels[1:4, 1:4] = 1
    assert find_lesions(labels, LesionRule(labels=frozenset({2})), spacing_mm=(1, 1)) == []
    (found,) = find_lesions(labels, LesionRule(), spacing_mm=(1, 1))
    assert found.to_json()["bbox"] == [1, 1, 4, 4]
    assert set(found.to_json()) == {"label", "voxels", "area_mm2", "centroid", "bbox", "outline"}
