"""The patient split: the generator learns from one side, readers and the machine checks see
only the other (held out), and no patient is on both.

Patients are stratified by whether any of their chosen slices shows a lesion (by the mask, as
the importer will count it), shuffled with the seed within each stratum, and each stratum gives
`heldout_share` of its patients to the held-out side, but at least `minimum` (the augmentation
experiment's folds each need a held-out patient with a lesion) and never all of them (the
generator must learn both).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from study.reproduce.errors import ReproduceError

STRATA = (("with a lesion", True), ("without a lesion", False))


@dataclass(frozen=True)
class PatientSlices:
    """A patient's chosen T2W slices (every study of the patient) and how many show a lesion."""

    slices: int
    lesion_slices: int


@dataclass(frozen=True)
class PatientSplit:
    train: tuple[str, ...]
    heldout: tuple[str, ...]


def patient_slices(prepared: Mapping[str, Any]) -> dict[str, PatientSlices]:
    """Per patient, its T2W slices and lesion slices, as `prepare-picai` counted them from the
    masks (its summary's `by_patient`; ADC and DWI are shown on the T2W's slices, so they share
    its truth)."""
    by_patient = prepared["by_patient"]
    if any(counts["lesion_slices"] is None for counts in by_patient.values()):
        raise ReproduceError(
            "the prepared data have no lesion masks: the split and the seed study need each "
            "slice's lesion truth; give --labels"
        )
    return {
        patient: PatientSlices(counts["slices"], counts["lesion_slices"])
        for patient, counts in by_patient.items()
    }


def split_patients(
    lesion_slices: Mapping[str, int], *, heldout_share: float, minimum: int, seed: int
) -> PatientSplit:
    """Hold out `heldout_share` of the patients with and of those without lesion slices (at
    least `minimum` of each, at least one of each left to train on), chosen with `seed`.

    >>> split = split_patients(
    ...     {"a": 2, "b": 0, "c": 1, "d": 0, "e": 3, "f": 0}, heldout_share=0.2, minimum=1, seed=0
    ... )
    >>> len(split.heldout), sorted(set(split.train) | set(split.heldout)) == list("abcdef")
    (2, True)
    """
    if not 0 < heldout_share < 1:
        raise ReproduceError(f"the held-out share {heldout_share} is not in (0, 1)")
    train: list[str] = []
    heldout: list[str] = []
    for name, lesion in STRATA:
        patients = sorted(p for p, count in lesion_slices.items() if (count > 0) == lesion)
        if len(patients) < minimum + 1:
            raise ReproduceError(
                f"the data hold {len(patients)} patient(s) {name} on the chosen slices; the "
                f"split needs at least {minimum + 1}: {minimum} held out (one per fold of the "
                "augmentation experiment) and one for the generator to learn from. Give more "
                "patients"
            )
        random.Random(f"{seed}:split:{name}").shuffle(patients)
        count = min(max(minimum, round(heldout_share * len(patients))), len(patients) - 1)
        heldout += patients[:count]
        train += patients[count:]
    return PatientSplit(tuple(sorted(train)), tuple(sorted(heldout)))


def side_summary(
    patients: tuple[str, ...], slices: Mapping[str, PatientSlices]
) -> dict[str, int | list[str]]:
    """One side of the split as split.json records it."""
    return {
        "patients": list(patients),
        "lesion_patients": sum(slices[p].lesion_slices > 0 for p in patients),
        "t2w_slices": sum(slices[p].slices for p in patients),
        "t2w_lesion_slices": sum(slices[p].lesion_slices for p in patients),
    }
