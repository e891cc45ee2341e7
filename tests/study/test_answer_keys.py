"""Answer keys of the reading room: letters from the wording, digits for ratings, no clashes."""

from __future__ import annotations

from study.answer_keys import answer_keys
from study.models import QuestionKind
from study.questions import TEMPLATES


def test_the_seed_protocol_and_the_realism_rating_get_their_letters_and_digits():
    questions = [(q.kind, q.options) for q in TEMPLATES["Seed protocol"]]
    questions += [(q.kind, q.options) for q in TEMPLATES["Realism rating"]]
    assert answer_keys(questions) == [
        ("R", "S"),
        ("Y", "N"),
        ("1", "2", "3", "4", "5"),
        ("1", "2", "3", "4", "5"),
    ]


def test_taken_reserved_and_non_letters_get_no_key():
    questions = [
        (QuestionKind.WHICH_IS_REAL, ("Left", "Right")),
        (QuestionKind.REAL_OR_SYNTHETIC, ("Real", "Synthetic")),
        (QuestionKind.SINGLE_CHOICE, ("Benign", "Inflammation", "3 foci", "lesion", "Élevé")),
        (QuestionKind.FREE_TEXT, ()),
        # Ten ratings: more than the digits, so letters of the wording (none here).
        (QuestionKind.PIRADS, tuple(str(i) for i in range(1, 11))),
    ]
    assert answer_keys(questions) == [
        ("L", "R"),
        ("", "S"),
        ("", "", "", "", ""),
        (),
        ("",) * 10,
    ]
