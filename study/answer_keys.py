"""Keyboard keys for the answer options of a case's questions (the reading room's keyboard).

Each option of a choice question gets at most one key, shown on the choice:

- rating questions (Likert realism, confidence, PI-RADS) with at most nine options: the digits
  "1" .. "k", shared by every rating question of the case (the page gives a digit to the first
  rating question still unanswered);
- every other choice question: the first letter of the option's wording ("Real" R,
  "Synthetic" S, "Yes" Y, "No" N, "Left" L), upper case, unless an earlier option of the case
  has it, the page uses it (`RESERVED`: B goes back, I inverts the images), or the wording
  does not start with a letter A-Z; such an option gets no key ("").

Free-text and lesion-marks questions have no options to choose (marks are placed on the image,
their ratings keyed by the viewer) and get no keys. Keys follow the wording, not the stored
value, so a coordinator's rewording ("Genuine" for real) moves the key with the word the reader
sees.

>>> answer_keys([(QuestionKind.REAL_OR_SYNTHETIC, ("Real", "Synthetic")),
...              (QuestionKind.WHICH_IS_REAL, ("Left", "Right"))])
[('R', 'S'), ('L', '')]
"""

from __future__ import annotations

from collections.abc import Sequence

from study.models import QuestionKind
from study.questions import ORDINAL_KINDS

RESERVED = frozenset({"B", "I"})
DIGITS = "123456789"


def answer_keys(questions: Sequence[tuple[QuestionKind, Sequence[str]]]) -> list[tuple[str, ...]]:
    """The key of every option of every question, in order, given (kind, options) per
    question; "" where an option has no key, an empty tuple for a free-text or lesion-marks
    question."""
    taken: set[str] = set(RESERVED)
    keys: list[tuple[str, ...]] = []
    for kind, options in questions:
        if kind in (QuestionKind.FREE_TEXT, QuestionKind.LESION_MARKS):
            keys.append(())
        elif kind in ORDINAL_KINDS and len(options) <= len(DIGITS):
            keys.append(tuple(DIGITS[: len(options)]))
        else:
            letters = []
            for option in options:
                letter = option.strip()[:1].upper()
                if "A" <= letter <= "Z" and letter not in taken:
                    taken.add(letter)
                    letters.append(letter)
                else:
                    letters.append("")
            keys.append(tuple(letters))
    return keys
