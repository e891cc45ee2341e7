"""Questions: kinds, the values stored for their options, templates, and the right answers.

Stored answer values do not depend on the wording of the options, so the coordinator may reword
options while a study is a draft:

- real_or_synthetic: "real" | "synthetic" (options[0] means real, options[1] synthetic)
- lesion_present: "yes" | "no" (options[0] yes, options[1] no)
- which_is_real: "left" | "right" (options[0] left, options[1] right)
- likert_realism, confidence, pirads: "1" .. "k" for the k options, in order
- single_choice: the option itself; free_text: the text
- lesion_marks: a JSON list of marks, each rated 1 .. k on the k options (the rating scale,
  lowest first); see study.marks
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from study.imaging.errors import VTTError
from study.models import CaseKind, CaseOrigin, QuestionKind


class QuestionError(VTTError):
    """A question that cannot be asked or scored as its kind says."""


BINARY_VALUES: dict[QuestionKind, tuple[str, str]] = {
    QuestionKind.REAL_OR_SYNTHETIC: ("real", "synthetic"),
    QuestionKind.LESION_PRESENT: ("yes", "no"),
    QuestionKind.WHICH_IS_REAL: ("left", "right"),
}
ORDINAL_KINDS = frozenset(
    {QuestionKind.LIKERT_REALISM, QuestionKind.CONFIDENCE, QuestionKind.PIRADS}
)
ALL_CASE_KINDS: tuple[str, ...] = tuple(kind.value for kind in CaseKind)


@dataclass(frozen=True)
class QuestionSpec:
    kind: QuestionKind
    wording: str
    options: tuple[str, ...] = ()
    required: bool = True
    applies_to: tuple[str, ...] = ALL_CASE_KINDS
    # In a two-phase study (study.phases): asked in phase 1 (uninformed) or 2 (informed)
    # only; None asks it in every phase.
    phase: int | None = None


def answer_values(kind: QuestionKind, options: Sequence[str]) -> list[str]:
    """The values stored for each option of a question, in the order of its options."""
    if kind in BINARY_VALUES:
        return list(BINARY_VALUES[kind])
    if kind in ORDINAL_KINDS:
        return [str(i) for i in range(1, len(options) + 1)]
    if kind == QuestionKind.LESION_MARKS:
        # Marks are not a choice among options: the options are their rating scale.
        return []
    return list(options)


def check_question(spec: QuestionSpec) -> None:
    """Raise QuestionError unless the question can be asked and scored as its kind says."""
    if not spec.wording.strip():
        raise QuestionError("a question needs a wording")
    if spec.phase not in (None, 1, 2):
        raise QuestionError(
            f"'{spec.wording}': phase {spec.phase!r} is not 1 (uninformed), 2 (informed) or none"
        )
    unknown = set(spec.applies_to) - set(ALL_CASE_KINDS)
    if unknown or not spec.applies_to:
        raise QuestionError(
            f"'{spec.wording}': applies_to must name case kinds among {', '.join(ALL_CASE_KINDS)}"
        )
    if spec.kind == QuestionKind.FREE_TEXT:
        if spec.options:
            raise QuestionError(f"'{spec.wording}': a free-text question has no options")
        return
    if any(not option.strip() for option in spec.options):
        raise QuestionError(f"'{spec.wording}': options may not be empty")
    if len(set(spec.options)) != len(spec.options):
        raise QuestionError(f"'{spec.wording}': options must differ from each other")
    if spec.kind in BINARY_VALUES and len(spec.options) != 2:
        meaning = " and ".join(BINARY_VALUES[spec.kind])
        raise QuestionError(
            f"'{spec.wording}': a {spec.kind.value} question has exactly two options, "
            f"meaning {meaning} in that order"
        )
    if len(spec.options) < 2:
        raise QuestionError(f"'{spec.wording}': a choice needs at least two options")


LIKERT_5 = ("1", "2", "3", "4", "5")

TEMPLATES: dict[str, tuple[QuestionSpec, ...]] = {
    "Seed protocol": (
        QuestionSpec(
            QuestionKind.REAL_OR_SYNTHETIC,
            "Real or synthetic?",
            ("Real", "Synthetic"),
            applies_to=(CaseKind.SINGLE.value,),
        ),
        QuestionSpec(
            QuestionKind.LESION_PRESENT,
            "Suspected cancerous lesion (PI-RADS >= 3)?",
            ("Yes", "No"),
            applies_to=(CaseKind.SINGLE.value, CaseKind.PAIRED.value),
        ),
    ),
    "Realism rating": (
        QuestionSpec(
            QuestionKind.LIKERT_REALISM,
            "How realistic is this image? (1 = clearly artificial, 5 = indistinguishable "
            "from a real scan)",
            LIKERT_5,
            applies_to=(CaseKind.SINGLE.value, CaseKind.PAIRED.value),
        ),
        QuestionSpec(
            QuestionKind.CONFIDENCE,
            "How confident are you? (1 = guessing, 5 = certain)",
            LIKERT_5,
            applies_to=(CaseKind.SINGLE.value, CaseKind.PAIRED.value),
        ),
    ),
    "Lesion localisation": (
        QuestionSpec(
            QuestionKind.LESION_MARKS,
            "Click each suspected lesion and rate how sure you are (1 = barely suspicious, "
            "5 = certain); submit without marks if you see none.",
            LIKERT_5,
            applies_to=(CaseKind.SINGLE.value, CaseKind.PAIRED.value, CaseKind.VOLUME.value),
        ),
    ),
    "Informed and uninformed phases": (
        QuestionSpec(
            QuestionKind.LIKERT_REALISM,
            "How good is this image's quality? (1 = unusable, 5 = excellent)",
            LIKERT_5,
            applies_to=(CaseKind.SINGLE.value,),
        ),
        QuestionSpec(
            QuestionKind.LESION_PRESENT,
            "Suspected cancerous lesion (PI-RADS >= 3)?",
            ("Yes", "No"),
            applies_to=(CaseKind.SINGLE.value,),
            phase=1,
        ),
        QuestionSpec(
            QuestionKind.REAL_OR_SYNTHETIC,
            "Real or synthetic?",
            ("Real", "Synthetic"),
            applies_to=(CaseKind.SINGLE.value,),
            phase=2,
        ),
        QuestionSpec(
            QuestionKind.CONFIDENCE,
            "How confident are you? (1 = guessing, 5 = certain)",
            LIKERT_5,
            applies_to=(CaseKind.SINGLE.value,),
            phase=2,
        ),
    ),
    # Stacks of slices (3D VTT): the real-or-synthetic call is the scored one, with no
    # "unsure" option (an unsure answer would not score; the confidence rating says it).
    "Volumes": (
        QuestionSpec(
            QuestionKind.REAL_OR_SYNTHETIC,
            "Is this volume real or synthetic?",
            ("Real", "Synthetic"),
            applies_to=(CaseKind.VOLUME.value,),
        ),
        QuestionSpec(
            QuestionKind.LIKERT_REALISM,
            "How realistic is this volume? (1 = clearly artificial, 5 = indistinguishable "
            "from a real scan)",
            LIKERT_5,
            applies_to=(CaseKind.VOLUME.value,),
        ),
        QuestionSpec(
            QuestionKind.CONFIDENCE,
            "How confident are you? (1 = guessing, 5 = certain)",
            LIKERT_5,
            applies_to=(CaseKind.VOLUME.value,),
        ),
        QuestionSpec(
            QuestionKind.LESION_PRESENT,
            "Suspected cancerous lesion (PI-RADS >= 3) on any slice?",
            ("Yes", "No"),
            applies_to=(CaseKind.VOLUME.value,),
        ),
    ),
    # HYPE (study.exposure): the image is shown briefly, then masked; one call per case.
    "Timed exposure (HYPE)": (
        QuestionSpec(
            QuestionKind.REAL_OR_SYNTHETIC,
            "Was the image real or synthetic?",
            ("Real", "Synthetic"),
            applies_to=(CaseKind.SINGLE.value, CaseKind.PAIRED.value),
        ),
    ),
    "2AFC": (
        QuestionSpec(
            QuestionKind.WHICH_IS_REAL,
            "Which image is real?",
            ("Left", "Right"),
            applies_to=(CaseKind.TWO_AFC.value,),
        ),
    ),
}


def template_questions(name: str) -> tuple[QuestionSpec, ...]:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise QuestionError(
            f"no question template named '{name}'; choose one of {', '.join(TEMPLATES)}"
        ) from None


def expected_value(
    kind: QuestionKind, origin: CaseOrigin, lesion: int | None, real_viewport: str | None
) -> str | None:
    """The right stored value for a question on a case, or None when it has no truth.

    `real_viewport` is the viewport ("left" or "right") of the real image of a 2AFC case.
    """
    if kind == QuestionKind.REAL_OR_SYNTHETIC and origin != CaseOrigin.MIXED:
        return "real" if origin == CaseOrigin.REAL else "synthetic"
    if kind == QuestionKind.LESION_PRESENT and lesion is not None:
        return "yes" if lesion else "no"
    if kind == QuestionKind.WHICH_IS_REAL:
        return real_viewport
    return None


def option_label(kind: QuestionKind, options: Sequence[str], value: str) -> str:
    """The option a stored value stands for (the value itself when it is not an option; the
    number of marks for lesion marks)."""
    if kind == QuestionKind.LESION_MARKS:
        try:
            count = len(json.loads(value))
        except (ValueError, TypeError):
            return value
        return "no mark" if count == 0 else f"{count} mark" + ("" if count == 1 else "s")
    values = answer_values(kind, options)
    return options[values.index(value)] if value in values else value
