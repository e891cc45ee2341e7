"""Two-phase studies: uninformed, then informed.

In phase 1 readers rate quality and diagnose without being told that some images are
synthetic; in phase 2, told, they answer real or synthetic (and may rate again) on the same
images in a new order. The study's settings say it has the second phase (`informed_phase`);
each of its cases has a phase-2 copy (`Case.phase` 2, `first_phase_id` the phase-1 case), read
after the whole of phase 1 (`study.reading.reading_order`), and each question may be limited to
one phase (`QuestionSpec.phase`). Readers are told between the phases (`INFORMED_TEXT`), once.

Rules (checked when a study is built and when its questions change):
- a question limited to phase 2 needs a study with the informed phase;
- in a two-phase study, a real-or-synthetic or 2AFC question is asked in phase 2 only (asked
  in phase 1 it would tell the readers what phase 1 must not);
- each phase asks at least one question.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from study.case_copies import copy_case
from study.imaging.errors import VTTError
from study.models import Case, QuestionKind
from study.questions import QuestionSpec

INFORMED_SETTING = "informed_phase"
REVEALING_KINDS = frozenset({QuestionKind.REAL_OR_SYNTHETIC, QuestionKind.WHICH_IS_REAL})
INFORMED_TEXT = (
    "You have finished the first part. Now that you know it: some of the images you have seen "
    "are synthetic, made by a computer. In this second part you will see the same images again, "
    "in a new order; for each, say whether you think it is real or synthetic."
)


class PhaseError(VTTError):
    """Questions and phases that do not make a two-phase study."""


def is_phased(settings: Mapping[str, Any] | None) -> bool:
    """Whether a study's settings give it the informed phase."""
    return bool((settings or {}).get(INFORMED_SETTING, False))


def check_phases(informed: bool, specs: Sequence[QuestionSpec]) -> None:
    """Raise PhaseError unless `specs` fit a study with (or without) the informed phase."""
    if not informed:
        late = [spec.wording for spec in specs if spec.phase == 2]
        if late:
            raise PhaseError(
                f"'{late[0]}' is asked in the informed phase (2), but the study has no informed "
                "phase"
            )
        return
    for spec in specs:
        if spec.kind in REVEALING_KINDS and spec.phase != 2:
            raise PhaseError(
                f"'{spec.wording}' would tell the readers about synthetic images in the "
                "uninformed phase: in a two-phase study it is asked in phase 2 only"
            )
    for phase, name in ((1, "uninformed"), (2, "informed")):
        if specs and not any(spec.phase in (None, phase) for spec in specs):
            raise PhaseError(f"no question is asked in phase {phase} ({name})")


def informed_copy(original: Case) -> Case:
    """The phase-2 case of a phase-1 case: the same images in the same viewports."""
    return copy_case(original, phase=2, first_phase_id=original.id)
