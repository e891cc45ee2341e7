"""Lesion marks as answers and their scoring: LL within the tolerance of a lesion, NL otherwise,
one LL per lesion (the highest rating), tolerance in mm or pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from study.localisation import (
    LesionTruth,
    Localisation,
    distance_to_region,
    score_marks,
    volume_lesions,
)
from study.marks import (
    MAX_MARKS,
    Mark,
    MarkError,
    ViewportShape,
    check_marks,
    dump_marks,
    from_display,
    load_marks,
    to_display,
)
from study.models import QuestionKind
from study.questions import LIKERT_5, TEMPLATES, QuestionSpec, check_question


def mark(row: float, col: float, rating: int = 3, viewport: str = "image") -> Mark:
    return Mark(viewport, 0, row, col, rating)


def square(rows: int, cols: int, top: int, left: int, side: int) -> np.ndarray:
    region = np.zeros((rows, cols), bool)
    region[top : top + side, left : left + side] = True
    return region


def test_marks_round_trip_sorted_and_rounded():
    text = dump_marks([mark(10.123, 4.0, 2), mark(1.0, 2.0, 5)])
    assert json.loads(text) == [
        {"viewport": "image", "slice": 0, "row": 1.0, "col": 2.0, "rating": 5},
        {"viewport": "image", "slice": 0, "row": 10.12, "col": 4.0, "rating": 2},
    ]
    assert load_marks(text, scale=5) == [mark(1.0, 2.0, 5), mark(10.12, 4.0, 2)]
    assert dump_marks(load_marks(text, scale=5)) == text
    assert load_marks("[]", scale=5) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a JSON list"),
        ('{"row": 1}', "not a JSON list"),
        ("[1]", "mark 1 is not an object"),
        ('[{"slice": 0, "row": 1, "col": 1, "rating": 1}]', "'viewport' must name"),
        ('[{"viewport": "a", "slice": 0.5, "row": 1, "col": 1, "rating": 1}]', "'slice' must"),
        ('[{"viewport": "a", "slice": -1, "row": 1, "col": 1, "rating": 1}]', "negative"),
        ('[{"viewport": "a", "slice": 0, "row": 1, "col": 1, "rating": 6}]', "outside the scale"),
        ('[{"viewport": "a", "slice": 0, "row": 1, "col": 1, "rating": true}]', "'rating' must"),
        ('[{"viewport": "a", "slice": 0, "row": "1", "col": 1, "rating": 1}]', "'row' must"),
        ('[{"viewport": "a", "slice": 0, "row": 1, "col": NaN, "rating": 1}]', "'col' must"),
    ],
)
def test_bad_marks_are_refused_with_the_reason(text, message):
    with pytest.raises(MarkError, match=message):
        load_marks(text, scale=5)


def test_too_many_marks_are_refused():
    many = dump_marks([mark(1, i % 10) for i in range(MAX_MARKS + 1)])
    with pytest.raises(MarkError, match=f"at most {MAX_MARKS}"):
        load_marks(many, scale=5)


def test_marks_must_lie_on_a_shown_image():
    shapes = {"T2W": ViewportShape(rows=10, cols=20)}
    check_marks([Mark("T2W", 0, 9.5, -0.5, 1)], shapes)
    with pytest.raises(MarkError, match="viewport this case does not show"):
        check_marks([Mark("ADC", 0, 1, 1, 1)], shapes)
    with pytest.raises(MarkError, match="slice 2; the viewport has 1"):
        check_marks([Mark("T2W", 1, 1, 1, 1)], shapes)
    with pytest.raises(MarkError, match="outside the image"):
        check_marks([Mark("T2W", 0, 9.6, 1, 1)], shapes)


def test_display_fractions_map_to_canonical_pixels_and_back():
    # A 4 x 8 image is shown centred on an 8 x 8 square: rows 2..5 of the square.
    shape = ViewportShape(rows=4, cols=8)
    assert from_display(0.0, 0.25, shape) == (-0.5, -0.5)
    assert from_display(1.0, 0.75, shape) == (3.5, 7.5)
    assert from_display(0.5, 0.2, shape) is None
    for row, col in [(0.0, 0.0), (3.0, 7.0), (1.25, 4.5)]:
        u, v = to_display(row, col, shape)
        assert from_display(u, v, shape) == pytest.approx((row, col))


def test_distance_is_zero_inside_and_grows_outside_the_pixel_squares():
    region = square(10, 10, 4, 4, 2)  # pixels 4..5
    assert distance_to_region(4.5, 4.5, region, (1.0, 1.0)) == 0.0
    assert distance_to_region(3.5, 5.0, region, (1.0, 1.0)) == 0.0
    assert distance_to_region(2.5, 5.0, region, (1.0, 1.0)) == 1.0
    # 3 px left and 4 px below the edges: 5 px; with 0.5 mm pixels, 2.5 mm.
    assert distance_to_region(9.5, 0.5, region, (1.0, 1.0)) == 5.0
    assert distance_to_region(9.5, 0.5, region, (0.5, 0.5)) == 2.5
    assert distance_to_region(0, 0, np.zeros((3, 3), bool), (1.0, 1.0)) == np.inf


def test_a_mark_within_the_tolerance_is_the_lesions_localisation():
    truth = LesionTruth((square(20, 20, 5, 5, 3),), (0.5, 0.5), {"image": (20, 20)})
    # 2 px right of the lesion's edge = 1 mm.
    near, far = mark(6, 9.5), mark(6, 11.5)
    scored = score_marks([near, far], truth, tolerance=1.0)
    assert [(s.kind, s.lesion) for s in scored] == [
        (Localisation.LESION, 1),
        (Localisation.NON_LESION, None),
    ]
    assert [s.distance for s in scored] == [1.0, 2.0]
    assert score_marks([near], truth, tolerance=0.99)[0].kind == Localisation.NON_LESION


def test_two_marks_on_one_lesion_count_once_with_the_highest_rating():
    truth = LesionTruth((square(20, 20, 5, 5, 3),), None, {"image": (20, 20)})
    marks = [mark(6, 6, 2), mark(6, 7, 4), mark(5, 5, 4)]
    scored = score_marks(marks, truth, tolerance=0.0)
    # The two 4s tie: the one placed first takes the lesion.
    assert [(s.kind, s.lesion) for s in scored] == [
        (Localisation.NON_LESION, None),
        (Localisation.LESION, 1),
        (Localisation.NON_LESION, None),
    ]


def test_a_mark_near_two_lesions_takes_the_nearest_free_one():
    first, second = square(20, 20, 2, 2, 2), square(20, 20, 2, 8, 2)  # cols 2..3 and 8..9
    truth = LesionTruth((first, second), None, {"image": (20, 20)})
    between = mark(2.5, 6.0, 5)  # 2.5 px from the first lesion's edge, 1.5 px from the second's
    assert [s.lesion for s in score_marks([between], truth, tolerance=3)] == [2]
    on_second = mark(2.5, 8.5, 5)
    scored = score_marks([on_second, mark(2.5, 6.0, 3)], truth, tolerance=3)
    assert [s.lesion for s in scored] == [2, 1]


def test_every_mark_on_a_normal_case_is_a_non_lesion_localisation():
    truth = LesionTruth((), None, {"image": (8, 8)})
    scored = score_marks([mark(1, 1), mark(2, 2)], truth, tolerance=100)
    assert {s.kind for s in scored} == {Localisation.NON_LESION}
    assert all(s.distance == np.inf for s in scored)


def test_a_mark_on_a_viewport_of_another_size_maps_onto_the_reference_grid():
    # The lesion on a 40 x 40 T2W at rows/cols 20..23; an ADC shown beside it at 10 x 10.
    truth = LesionTruth((square(40, 40, 20, 20, 4),), None, {"T2W": (40, 40), "ADC": (10, 10)})
    on_adc = Mark("ADC", 0, 5.4, 5.4, 3)  # (5.4 + 0.5) * 4 - 0.5 = 23.1 on the T2W grid
    assert score_marks([on_adc], truth, tolerance=0)[0].lesion == 1
    assert score_marks([Mark("ADC", 0, 3.0, 3.0, 3)], truth, tolerance=0)[0].lesion is None


def test_a_negative_tolerance_is_refused():
    with pytest.raises(ValueError, match="0 or more"):
        score_marks([], LesionTruth((), None, {}), tolerance=-1)


def stack(slices: int, placed: dict[int, np.ndarray]) -> list[list[tuple[int, np.ndarray]]]:
    """A stack's lesions per slice, label 1: `placed` maps a slice to its region."""
    return [[(1, placed[index])] if index in placed else [] for index in range(slices)]


def test_a_lesion_across_slices_is_one_lesion_localised_on_any_of_its_slices():
    # Lesion 1 on slices 1 and 2 (its square moves a pixel between them, still touching);
    # lesion 2 on slice 4 alone, at the same place: a slice apart, it is another lesion.
    first, moved = square(20, 20, 5, 5, 3), square(20, 20, 6, 6, 3)
    regions = volume_lesions(stack(5, {1: first, 2: moved, 4: first}))
    assert [(r.shape, int(r.sum()), list(np.nonzero(r.any(axis=(1, 2)))[0])) for r in regions] == [
        ((5, 20, 20), 18, [1, 2]),
        ((5, 20, 20), 9, [4]),
    ]
    truth = LesionTruth(tuple(regions), None, {"T2W": (20, 20), "ADC": (20, 20)})
    marks = [
        Mark("T2W", 2, 8.0, 8.0, 4),  # on lesion 1's second slice: its LL
        Mark("ADC", 1, 5.0, 5.0, 2),  # lesion 1 again, on the other slice and viewport: NL
        Mark("T2W", 0, 6.0, 6.0, 5),  # where the lesions lie, but on a slice without one
        Mark("T2W", 4, 6.0, 6.0, 3),  # lesion 2
        Mark("T2W", 7, 6.0, 6.0, 5),  # beyond the stack
    ]
    scored = score_marks(marks, truth, tolerance=0)
    assert [(s.kind.value, s.lesion) for s in scored] == [
        ("LL", 1),
        ("NL", None),
        ("NL", None),
        ("LL", 2),
        ("NL", None),
    ]
    assert [s.distance for s in scored] == [0.0, 0.0, np.inf, 0.0, np.inf]
    # The tolerance reaches across the plane, not into the next slice.
    assert score_marks([Mark("T2W", 2, 9.5, 6.0, 3)], truth, tolerance=1.0)[0].lesion == 1
    assert score_marks([Mark("T2W", 3, 7.0, 7.0, 3)], truth, tolerance=100.0)[0].lesion is None


def test_regions_of_two_labels_are_two_lesions_even_where_they_touch():
    first, second = square(10, 10, 2, 2, 2), square(10, 10, 4, 4, 2)
    regions = volume_lesions([[(1, first), (2, second)], [(2, first)]])
    assert [int(r.sum()) for r in regions] == [4, 8]
    assert volume_lesions([[], []]) == []


def test_marks_may_be_asked_on_every_kind_of_case():
    check_question(QuestionSpec(QuestionKind.LESION_MARKS, "Mark the lesions", LIKERT_5))
    assert "volume" in TEMPLATES["Lesion localisation"][0].applies_to
