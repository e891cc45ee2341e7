"""Study design: question templates, balanced case pools, question editing, opening and closing.

A study is built from imported assets in one transaction. Each block of the plan asks for an
exact number of cases per cell (origin x lesion) and per sequence; when the pool cannot give a
cell, nothing is created and `BalanceError` names every short cell. Choices are seeded
(`random.Random(f"{seed}:build")`), so the same pool and plan give the same study.

Questions are edited only while the study is a draft (`StudyFrozenError` afterwards); opening
the study creates every reader's seeded order of cases.
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from study.case_copies import copy_case
from study.db import transaction
from study.exposure import Exposure, ExposureError, check_exposure
from study.imaging.errors import VTTError
from study.imaging.types import Origin
from study.imaging.types import Sequence as ImageSequence
from study.localisation_study import LocalisationError, tolerances
from study.models import (
    Asset,
    Case,
    CaseAsset,
    CaseKind,
    CaseOrigin,
    Feedback,
    Question,
    QuestionKind,
    Reader,
    Study,
    StudyAction,
    StudyEvent,
    StudyStatus,
    utcnow,
)
from study.phases import INFORMED_SETTING, check_phases, informed_copy, is_phased
from study.questions import (
    ALL_CASE_KINDS,
    TEMPLATES,
    QuestionSpec,
    check_question,
)
from study.reading import create_assignments
from study.simulate import is_simulated
from study.stats import StatsError
from study.stats.equivalence import DEFAULT_MARGIN, check_margin
from study.stats.proportions import ci_halfwidth, sample_size_accuracy
from study.timed_cases import TIMED_QUESTIONS


class DesignError(VTTError):
    """A study plan or edit that cannot be carried out; the message says what to change."""


class BalanceError(DesignError):
    """The asset pool cannot give the exact balance asked for."""


class StudyFrozenError(DesignError):
    """A change that is only allowed while the study is a draft."""


# --- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolFilter:
    """Which assets may be drawn. Empty sets mean no restriction.

    `patients` keeps only assets of those patients; `exclude_patients` drops them.
    `known_lesion_only` drops assets whose lesion status is unknown.
    """

    origins: frozenset[Origin] = frozenset()
    patients: frozenset[str] = frozenset()
    exclude_patients: frozenset[str] = frozenset()
    known_lesion_only: bool = False

    def admits(self, asset: Asset) -> bool:
        return (
            (not self.origins or asset.origin in self.origins)
            and (not self.patients or asset.patient_id in self.patients)
            and asset.patient_id not in self.exclude_patients
            and (not self.known_lesion_only or asset.lesion is not None)
        )


@dataclass(frozen=True)
class SingleBlock:
    """`cases` single images of one sequence; shares are exact (e.g. 32 x 0.5 = 16 synthetic).

    lesion_share None draws without regard to lesion status. `exposure` (this and the paired
    and 2AFC blocks) shows each case's images for a limited time, then a mask (study.exposure).
    """

    sequence: ImageSequence
    cases: int
    synthetic_share: float = 0.5
    lesion_share: float | None = 0.5
    exposure: Exposure | None = None


@dataclass(frozen=True)
class PairedBlock:
    """Cases of two sequences of the same slice side by side (same pair_key, same origin)."""

    sequences: tuple[ImageSequence, ImageSequence] = (ImageSequence.T2W, ImageSequence.DWI)
    cases: int = 0
    synthetic_share: float = 0.5
    lesion_share: float | None = 0.5
    exposure: Exposure | None = None


@dataclass(frozen=True)
class TwoAFCBlock:
    """Two-alternative forced choice: a real and a synthetic image of one sequence side by side.

    Both images of a case share their lesion status; the real one is on the left in exactly half
    of the cases (one more on the right when `cases` is odd).
    """

    sequence: ImageSequence
    cases: int
    lesion_share: float | None = 0.5
    exposure: Exposure | None = None


AROUND = ("centre", "lesion")


@dataclass(frozen=True)
class VolumeBlock:
    """Cases of stacks of slices, one viewport per sequence, browsed with the wheel.

    A stack is every admitted slice of one origin and sequence with one stack key: the
    patient id, or the pair key where the patient id is empty (a generated stack: slices
    written with one pair key); its slices are ordered by slice_index, then by import order.
    The sequences of a case share their stack key and stack length. `slices` N shows N
    consecutive slices around the stack's centre (`around="centre"`) or around the middle of
    its lesion slices (`around="lesion"`; a stack without a lesion slice is cut around its
    centre); stacks shorter than N, and stacks with two slices at one slice_index (two
    series of one patient and sequence), cannot be drawn. `slices=None` shows whole stacks, which
    needs every stack the block may draw to have the same length (a study's cases are all the
    same size, so the viewer payload cannot tell them apart). The case has a lesion when any
    slice shown has one.
    """

    sequences: tuple[ImageSequence, ...] = (ImageSequence.T2W,)
    cases: int = 0
    slices: int | None = 5
    around: str = "centre"
    synthetic_share: float = 0.5
    lesion_share: float | None = 0.5


Block = SingleBlock | PairedBlock | TwoAFCBlock | VolumeBlock
_BLOCK_KIND = {
    SingleBlock: CaseKind.SINGLE,
    PairedBlock: CaseKind.PAIRED,
    TwoAFCBlock: CaseKind.TWO_AFC,
    VolumeBlock: CaseKind.VOLUME,
}
_BLOCK_PRIORITY = {VolumeBlock: 0, PairedBlock: 1, TwoAFCBlock: 2, SingleBlock: 3}


@dataclass(frozen=True)
class StudyPlan:
    name: str
    questions: tuple[QuestionSpec, ...]
    blocks: tuple[Block, ...]
    pool: PoolFilter = PoolFilter()
    description: str = ""
    instructions: str = ""
    seed: int = 0
    allow_revisit: bool = False
    feedback: Feedback = Feedback.NONE
    practice_cases: int = 0
    repeated_cases: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    equivalence_margin: float = DEFAULT_MARGIN
    target_halfwidth: float | None = None
    # A second, informed phase (study.phases): every case read again, told that some images
    # are synthetic, after the whole first phase.
    informed_phase: bool = False


# --- the analysis settings of a study ---------------------------------------------------------

MARGIN_SETTING = "equivalence_margin"
TARGET_SETTING = "target_halfwidth"


@dataclass(frozen=True)
class AnalysisSettings:
    """How a study's answers are judged, fixed when it is built (before any reading):

    - equivalence_margin: accuracy within 0.5 +- this margin counts as "indistinguishable"
      (the TOST of `study.stats.equivalence`), default 0.10;
    - target_halfwidth: the half-width of the 95% accuracy interval at which the Progress
      page says that enough cases were read, per reader and for the readers' mean; None
      (the default) sets no target.
    """

    equivalence_margin: float = DEFAULT_MARGIN
    target_halfwidth: float | None = None


def check_analysis_settings(margin: float, target_halfwidth: float | None) -> None:
    """`DesignError` unless 0 < margin < 0.5 and the target, if any, lies in (0, 0.5)."""
    try:
        check_margin(margin)
    except StatsError as error:
        raise DesignError(str(error)) from error
    if target_halfwidth is not None and not 0 < target_halfwidth < 0.5:
        raise DesignError(
            f"the target half-width of the accuracy interval must lie strictly between 0 and "
            f"0.5, not {target_halfwidth}"
        )


def analysis_settings(settings: dict[str, Any] | None) -> AnalysisSettings:
    """A study's analysis settings from its settings column (defaults for studies built
    before the settings existed)."""
    settings = settings or {}
    target = settings.get(TARGET_SETTING)
    return AnalysisSettings(
        equivalence_margin=float(settings.get(MARGIN_SETTING, DEFAULT_MARGIN)),
        target_halfwidth=None if target is None else float(target),
    )


def seed_protocol_plan(name: str = "Seed protocol", *, seed: int = 0, cases: int = 32) -> StudyPlan:
    """The seed study (Saeed et al.): T2W and ADC singles, and T2W-DWI pairs, each `cases`
    strong, half synthetic and half with lesions."""
    return StudyPlan(
        name=name,
        questions=TEMPLATES["Seed protocol"],
        blocks=(
            SingleBlock(ImageSequence.T2W, cases),
            SingleBlock(ImageSequence.ADC, cases),
            PairedBlock((ImageSequence.T2W, ImageSequence.DWI), cases),
        ),
        seed=seed,
    )


# --- drawing cases ----------------------------------------------------------------------------

Unit = tuple[Asset, ...]  # the assets of one case, in viewport order


@dataclass(frozen=True)
class _DrawnCase:
    kind: CaseKind
    viewports: tuple[tuple[str, Asset], ...]
    # The block's timed exposure (Case.exposure), None when untimed.
    exposure: dict[str, Any] | None = None


def _exact(count: int, share: float, what: str) -> int:
    value = count * share
    if not 0 <= share <= 1 or abs(value - round(value)) > 1e-9:
        raise BalanceError(
            f"{what}: {count} cases cannot be split exactly with a share of {share}; "
            f"choose a number of cases that the share divides"
        )
    return round(value)


def _lesion_label(lesion: int | None) -> str:
    return {1: "with lesion", 0: "without lesion"}.get(lesion, "lesion unknown")


def _cells(
    cases: int, synthetic_share: float, lesion_share: float | None, what: str
) -> dict[tuple[Origin, int | None], int]:
    """Exact counts per (origin, lesion); lesion None in a key means any lesion status."""
    synthetic = _exact(cases, synthetic_share, what)
    by_origin = {Origin.REAL: cases - synthetic, Origin.SYNTHETIC: synthetic}
    cells: dict[tuple[Origin, int | None], int] = {}
    for origin, count in by_origin.items():
        if lesion_share is None:
            cells[(origin, None)] = count
            continue
        with_lesion = _exact(count, lesion_share, f"{what}, {origin.value}")
        cells[(origin, 1)] = with_lesion
        cells[(origin, 0)] = count - with_lesion
    return {key: n for key, n in cells.items() if n}


def _case_lesion(assets: Iterable[Asset]) -> int | None:
    lesions = [asset.lesion for asset in assets]
    if 1 in lesions:
        return 1
    if lesions and all(lesion == 0 for lesion in lesions):
        return 0
    return None


def _case_origin(assets: Iterable[Asset]) -> CaseOrigin:
    origins = {asset.origin for asset in assets}
    if origins == {Origin.REAL}:
        return CaseOrigin.REAL
    if origins == {Origin.SYNTHETIC}:
        return CaseOrigin.SYNTHETIC
    return CaseOrigin.MIXED


def _unit_cell(unit: Unit) -> tuple[Origin | None, int | None]:
    origin = _case_origin(unit)
    return (Origin(origin.value) if origin != CaseOrigin.MIXED else None), _case_lesion(unit)


def _matches(unit: Unit, origin: Origin, lesion: int | None) -> bool:
    unit_origin, unit_lesion = _unit_cell(unit)
    return unit_origin == origin and (lesion is None or unit_lesion == lesion)


class _Pool:
    """The admitted assets not yet drawn, with the candidate units of each block kind."""

    def __init__(self, assets: Sequence[Asset]) -> None:
        self.assets = sorted(assets, key=lambda a: a.id)
        self.used: set[int] = set()

    def free(self, unit: Unit) -> bool:
        return not any(asset.id in self.used for asset in unit)

    def take(self, unit: Unit) -> None:
        self.used.update(asset.id for asset in unit)

    def singles(self, sequence: ImageSequence) -> list[Unit]:
        return [(a,) for a in self.assets if a.sequence == sequence and a.id not in self.used]

    def pairs(self, sequences: tuple[ImageSequence, ImageSequence]) -> list[Unit]:
        by_key: dict[str, dict[ImageSequence, Asset]] = defaultdict(dict)
        for asset in self.assets:
            if asset.pair_key and asset.sequence in sequences and asset.id not in self.used:
                # Several slices under one key and sequence: the first imported stands for it.
                by_key[asset.pair_key].setdefault(asset.sequence, asset)
        units = []
        for key in sorted(by_key):
            found = by_key[key]
            if all(s in found for s in sequences):
                unit = tuple(found[s] for s in sequences)
                if _case_origin(unit) != CaseOrigin.MIXED:
                    units.append(unit)
        return units

    def stacks(self, sequences: tuple[ImageSequence, ...]) -> list[tuple[tuple[Asset, ...], ...]]:
        """The stacks of every stack key that has all `sequences` of one length, one ordered
        tuple of slices per sequence (VolumeBlock says how stacks are formed); a stack of
        which any slice was drawn already is not offered again."""
        by_key: dict[tuple[Origin, str], dict[ImageSequence, list[Asset]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for asset in self.assets:
            key = asset.patient_id or asset.pair_key
            if key and asset.sequence in sequences:
                by_key[(asset.origin, key)][asset.sequence].append(asset)
        stacks = []
        for key in sorted(by_key):
            found = by_key[key]
            if not all(s in found for s in sequences) or not all(
                self.free(tuple(found[s])) for s in sequences
            ):
                continue
            ordered = tuple(
                tuple(sorted(found[s], key=lambda a: (a.slice_index is None, a.slice_index, a.id)))
                for s in sequences
            )
            if len({len(stack) for stack in ordered}) == 1 and not any(
                _repeats_a_slice(stack) for stack in ordered
            ):
                stacks.append(ordered)
        return stacks

    def volumes(self, block: VolumeBlock) -> list[Unit]:
        """The candidate units of a volume block: its slices of each sequence in turn."""
        if block.around not in AROUND:
            raise DesignError(
                f"a volume block shows slices around the 'centre' or the 'lesion', not "
                f"{block.around!r}"
            )
        if block.slices is not None and block.slices < 1:
            raise DesignError(f"a volume block cannot show {block.slices} slices per stack")
        stacks = self.stacks(block.sequences)
        if block.slices is None:
            lengths = sorted({len(stack[0]) for stack in stacks})
            if len(lengths) > 1:
                raise DesignError(
                    f"whole stacks of {'+'.join(s.value for s in block.sequences)} differ in "
                    f"length ({', '.join(map(str, lengths))} slices): every case of a study "
                    f"must show as many slices, so choose a number of slices per stack"
                )
        units = []
        for stack in stacks:
            window = _window(stack, block.slices, block.around)
            if window is not None:
                units.append(tuple(asset for slices in stack for asset in slices[window]))
        return units


def _repeats_a_slice(stack: tuple[Asset, ...]) -> bool:
    """Whether two slices of a stack have one slice_index: two series of one patient and
    sequence, whose order is unknown (such stacks are not drawn)."""
    indices = [asset.slice_index for asset in stack if asset.slice_index is not None]
    return len(set(indices)) != len(indices)


def _window(stack: tuple[tuple[Asset, ...], ...], slices: int | None, around: str) -> slice | None:
    """The positions of the slices shown (None when the stack is shorter than `slices`):
    N consecutive ones centred on the stack's centre, or on the middle of the slices with a
    lesion in any sequence; shifted to stay inside the stack."""
    length = len(stack[0])
    if slices is None:
        return slice(0, length)
    if length < slices:
        return None
    lesions = [i for i in range(length) if any(seq[i].lesion == 1 for seq in stack)]
    centre = (lesions[0] + lesions[-1]) // 2 if around == "lesion" and lesions else length // 2
    start = min(max(centre - slices // 2, 0), length - slices)
    return slice(start, start + slices)


def _volume_case(sequences: tuple[ImageSequence, ...], unit: Unit) -> _DrawnCase:
    per_viewport = len(unit) // len(sequences)
    return _DrawnCase(
        CaseKind.VOLUME,
        tuple(
            (sequence.value, asset)
            for i, sequence in enumerate(sequences)
            for asset in unit[i * per_viewport : (i + 1) * per_viewport]
        ),
    )


def _draw_cells(
    rng: random.Random,
    pool: _Pool,
    candidates: list[Unit],
    cells: dict[tuple[Origin, int | None], int],
    what: str,
    shortages: list[str],
) -> list[Unit]:
    drawn: list[Unit] = []
    for (origin, lesion), wanted in cells.items():
        matching = [u for u in candidates if pool.free(u) and _matches(u, origin, lesion)]
        label = f"{what} {origin.value}" + ("" if lesion is None else f" {_lesion_label(lesion)}")
        if len(matching) < wanted:
            shortages.append(
                f"{label}: need {wanted}, the pool has {len(matching)} (short by "
                f"{wanted - len(matching)})"
            )
            continue
        for unit in rng.sample(matching, wanted):
            pool.take(unit)
            drawn.append(unit)
    return drawn


def _draw_block(
    rng: random.Random, pool: _Pool, block: Block, shortages: list[str]
) -> list[_DrawnCase]:
    if block.cases < 0:
        raise DesignError(f"a block cannot ask for {block.cases} cases")
    if isinstance(block, SingleBlock):
        what = block.sequence.value
        cells = _cells(block.cases, block.synthetic_share, block.lesion_share, what)
        units = _draw_cells(rng, pool, pool.singles(block.sequence), cells, what, shortages)
        return [_DrawnCase(CaseKind.SINGLE, ((block.sequence.value, unit[0]),)) for unit in units]
    if isinstance(block, VolumeBlock):
        if not block.sequences or len(set(block.sequences)) != len(block.sequences):
            raise DesignError("a volume block needs one or more different sequences")
        what = "+".join(s.value for s in block.sequences) + " volumes"
        cells = _cells(block.cases, block.synthetic_share, block.lesion_share, what)
        units = _draw_cells(rng, pool, pool.volumes(block), cells, what, shortages)
        return [_volume_case(block.sequences, unit) for unit in units]
    if isinstance(block, PairedBlock):
        if len(set(block.sequences)) != 2:
            raise DesignError("a paired block needs two different sequences")
        what = "+".join(s.value for s in block.sequences) + " pairs"
        cells = _cells(block.cases, block.synthetic_share, block.lesion_share, what)
        units = _draw_cells(rng, pool, pool.pairs(block.sequences), cells, what, shortages)
        return [
            _DrawnCase(
                CaseKind.PAIRED,
                tuple((s.value, asset) for s, asset in zip(block.sequences, unit, strict=True)),
            )
            for unit in units
        ]
    what = f"2AFC {block.sequence.value}"
    lesion_cells = (
        {None: block.cases}
        if block.lesion_share is None
        else {
            1: _exact(block.cases, block.lesion_share, what),
            0: block.cases - _exact(block.cases, block.lesion_share, what),
        }
    )
    singles = pool.singles(block.sequence)
    halves: dict[Origin, list[Unit]] = {}
    for origin in (Origin.REAL, Origin.SYNTHETIC):
        cells = {(origin, lesion): n for lesion, n in lesion_cells.items() if n}
        halves[origin] = _draw_cells(rng, pool, singles, cells, what, shortages)
    if shortages:
        return []
    real_left = [True] * (block.cases // 2) + [False] * (block.cases - block.cases // 2)
    rng.shuffle(real_left)
    drawn = []
    for (real,), (synthetic,), left in zip(
        halves[Origin.REAL], halves[Origin.SYNTHETIC], real_left, strict=True
    ):
        pair = (real, synthetic) if left else (synthetic, real)
        drawn.append(_DrawnCase(CaseKind.TWO_AFC, (("left", pair[0]), ("right", pair[1]))))
    return drawn


def _practice_cells(rng: random.Random) -> list[tuple[Origin, int]]:
    """The (origin, lesion) each practice case is drawn from, in turn: any first, then its
    opposite in both (so two practice cases already show both answers of both questions),
    then the other two."""
    first = (rng.choice([Origin.REAL, Origin.SYNTHETIC]), rng.choice([0, 1]))
    opposite = (Origin.SYNTHETIC if first[0] == Origin.REAL else Origin.REAL, 1 - first[1])
    others = [(first[0], 1 - first[1]), (opposite[0], first[1])]
    rng.shuffle(others)
    return [first, opposite, *others]


def _draw_practice(rng: random.Random, pool: _Pool, plan: StudyPlan) -> list[_DrawnCase]:
    """Practice cases mirror the blocks in turn, drawn at random from what is left, and go
    through real and synthetic images with and without a lesion (where the pool has them)."""
    drawn: list[_DrawnCase] = []
    cells = _practice_cells(rng)
    for i in range(plan.practice_cases):
        block, _ = _mirrored(plan, i)
        if isinstance(block, TwoAFCBlock):
            reals = [u for u in pool.singles(block.sequence) if u[0].origin == Origin.REAL]
            fakes = [u for u in pool.singles(block.sequence) if u[0].origin == Origin.SYNTHETIC]
            if not reals or not fakes:
                raise BalanceError(
                    f"practice case {i + 1} (2AFC {block.sequence.value}): the pool has no "
                    f"unused real and synthetic pair left"
                )
            pair = [rng.choice(reals)[0], rng.choice(fakes)[0]]
            rng.shuffle(pair)
            pool.take(tuple(pair))
            drawn.append(_DrawnCase(CaseKind.TWO_AFC, (("left", pair[0]), ("right", pair[1]))))
            continue
        origin, lesion = cells[i % len(cells)]
        if isinstance(block, VolumeBlock):
            volumes = pool.volumes(block)
            if not volumes:
                raise BalanceError(
                    f"practice case {i + 1} ({'+'.join(s.value for s in block.sequences)} "
                    f"volume): the pool has no unused stack left after the study cases"
                )
            unit = rng.choice([u for u in volumes if _matches(u, origin, lesion)] or volumes)
            pool.take(unit)
            drawn.append(_volume_case(block.sequences, unit))
            continue
        if isinstance(block, SingleBlock):
            units = pool.singles(block.sequence)
            names = (block.sequence.value,)
            kind = CaseKind.SINGLE
        else:
            units = pool.pairs(block.sequences)
            names = tuple(s.value for s in block.sequences)
            kind = CaseKind.PAIRED
        if not units:
            raise BalanceError(
                f"practice case {i + 1} ({' + '.join(names)}): the pool has no unused "
                f"images left after the study cases"
            )
        unit = rng.choice([u for u in units if _matches(u, origin, lesion)] or units)
        pool.take(unit)
        drawn.append(_DrawnCase(kind, tuple(zip(names, unit, strict=True))))
    return drawn


def _new_case(study_id: int, drawn: _DrawnCase, *, practice: bool) -> Case:
    assets = [asset for _, asset in drawn.viewports]
    sequences = list(dict.fromkeys(str(asset.sequence) for asset in assets))
    case = Case(
        study_id=study_id,
        public_id=secrets.token_hex(8),
        kind=drawn.kind,
        origin=_case_origin(assets),
        lesion=_case_lesion(assets),
        sequence="+".join(sequences),
        practice=practice,
        exposure=drawn.exposure,
    )
    slices: dict[str, int] = defaultdict(int)
    views = []
    for i, (name, asset) in enumerate(drawn.viewports):
        views.append(CaseAsset(asset_id=asset.id, viewport=name, position=i, slice=slices[name]))
        slices[name] += 1
    case.views = views
    return case


def _mirrored(plan: StudyPlan, practice: int) -> tuple[Block, int]:
    """The block practice case number `practice` mirrors, with its number in the plan."""
    index = practice % len(plan.blocks)
    return plan.blocks[index], index


def _exposure_setting(block: Block, index: int) -> dict[str, Any] | None:
    """What the cases of the plan's block number `index` store as their exposure."""
    exposure = getattr(block, "exposure", None)
    return None if exposure is None else exposure.as_setting(index)


def _check_timed(plan: StudyPlan) -> None:
    """Timed blocks need what a timed case relies on: a required real/synthetic question (which
    is real, for 2AFC) to answer after the mask, no lesion marks (the images are gone), no going
    back and no second phase (either would show the images again)."""
    timed = [block for block in plan.blocks if getattr(block, "exposure", None) is not None]
    if not timed:
        return
    if plan.allow_revisit:
        raise DesignError(
            "readers cannot go back in a study with timed exposure: a timed case's images are "
            "shown once"
        )
    if plan.informed_phase:
        raise DesignError(
            "timed exposure and a second, informed phase cannot be combined: the second phase "
            "would show the timed images again"
        )
    for block in timed:
        try:
            check_exposure(block.exposure)
        except ExposureError as error:
            raise DesignError(str(error)) from None
        kind = _BLOCK_KIND[type(block)]
        asked = [spec for spec in plan.questions if kind.value in spec.applies_to]
        if not any(spec.kind == TIMED_QUESTIONS[kind] and spec.required for spec in asked):
            raise DesignError(
                f"a timed block of {kind.value} cases needs a required "
                f"'{TIMED_QUESTIONS[kind].value}' question: it is what the reader answers after "
                f"the mask"
            )
        if any(spec.kind == QuestionKind.LESION_MARKS for spec in asked):
            raise DesignError(
                f"lesion marks cannot be asked on timed {kind.value} cases: the images are "
                f"masked before the reader could mark them"
            )


def _check_phases(study: Study, questions: Sequence[QuestionInfo]) -> None:
    check_phases(is_phased(study.settings), [info.spec for info in questions])


def _plan_settings(plan: StudyPlan) -> dict[str, Any]:
    def block_settings(block: Block) -> dict[str, Any]:
        return {"type": type(block).__name__, **asdict(block)}

    pool = {
        "origins": sorted(plan.pool.origins),
        "patients": sorted(plan.pool.patients),
        "exclude_patients": sorted(plan.pool.exclude_patients),
        "known_lesion_only": plan.pool.known_lesion_only,
    }
    return {
        **plan.settings,
        "blocks": [block_settings(block) for block in plan.blocks],
        "pool": pool,
        "practice_cases": plan.practice_cases,
        "repeated_cases": plan.repeated_cases,
        MARGIN_SETTING: plan.equivalence_margin,
        TARGET_SETTING: plan.target_halfwidth,
        INFORMED_SETTING: plan.informed_phase,
    }


def _add_questions(session: Session, study: Study, specs: Sequence[QuestionSpec]) -> None:
    for spec in specs:
        check_question(spec)
    start = len(study.questions)
    for i, spec in enumerate(specs, start=start + 1):
        study.questions.append(
            Question(
                position=i,
                kind=spec.kind,
                wording=spec.wording.strip(),
                options=list(spec.options),
                required=spec.required,
                applies_to=list(spec.applies_to),
                phase=spec.phase,
            )
        )


def check_reading_settings(allow_revisit: bool, feedback: Feedback) -> None:
    """Refuse going back together with feedback after each case.

    A reader's answers to a case are final once they have seen its truth (the reading flow
    enforces it), so with feedback after each case there would be nothing to go back to. With
    feedback at the end, readers may go back until they open their score.
    """
    if allow_revisit and feedback == Feedback.EACH_CASE:
        raise DesignError(
            "readers who see the truth after each case cannot go back and change answers "
            "(answers are final once the truth is shown): choose feedback at the end, or do not "
            "let readers go back"
        )


def create_study(engine: Engine, plan: StudyPlan) -> int:
    """Build a draft study from the asset pool; returns its id. All or nothing."""
    if not plan.name.strip():
        raise DesignError("a study needs a name")
    check_reading_settings(plan.allow_revisit, plan.feedback)
    if not plan.blocks or all(block.cases == 0 for block in plan.blocks):
        raise DesignError("a study needs at least one block with cases")
    if plan.practice_cases < 0 or plan.repeated_cases < 0:
        raise DesignError("practice and repeated cases cannot be negative")
    check_analysis_settings(plan.equivalence_margin, plan.target_halfwidth)
    check_phases(plan.informed_phase, plan.questions)
    _check_timed(plan)
    try:
        tolerances(plan.settings)
    except LocalisationError as error:
        raise DesignError(str(error)) from None
    rng = random.Random(f"{plan.seed}:build")
    with transaction(engine) as session:
        if session.scalar(select(Study.id).where(Study.name == plan.name.strip())) is not None:
            raise DesignError(f"a study named '{plan.name.strip()}' exists already")
        pool = _Pool([a for a in session.scalars(select(Asset)) if plan.pool.admits(a)])
        shortages: list[str] = []
        # Pairs first, then 2AFC, then singles: singles could otherwise break up the pairs.
        order = sorted(enumerate(plan.blocks), key=lambda item: _BLOCK_PRIORITY[type(item[1])])
        drawn = [
            replace(case, exposure=_exposure_setting(block, index))
            for index, block in order
            for case in _draw_block(rng, pool, block, shortages)
        ]
        if shortages:
            raise BalanceError(
                "the asset pool cannot give the exact balance asked for:\n"
                + "\n".join(f"- {line}" for line in shortages)
            )
        practice = [
            replace(case, exposure=_exposure_setting(*_mirrored(plan, i)))
            for i, case in enumerate(_draw_practice(rng, pool, plan))
        ]
        main_count = len(drawn)
        if plan.repeated_cases > main_count:
            raise DesignError(
                f"{plan.repeated_cases} repeated cases asked for, but the study has only "
                f"{main_count} cases"
            )
        study = Study(
            name=plan.name.strip(),
            description=plan.description,
            instructions=plan.instructions,
            seed=plan.seed,
            allow_revisit=plan.allow_revisit,
            feedback=plan.feedback,
            settings=_plan_settings(plan),
        )
        session.add(study)
        session.flush()
        _add_questions(session, study, plan.questions)
        cases = [_new_case(study.id, item, practice=False) for item in drawn]
        cases += [_new_case(study.id, item, practice=True) for item in practice]
        session.add_all(cases)
        session.flush()
        for original in rng.sample(cases[:main_count], plan.repeated_cases):
            session.add(copy_case(original, repeat_of_id=original.id))
        if plan.informed_phase:
            session.add_all(informed_copy(original) for original in cases[:main_count])
        return study.id


def delete_study(engine: Engine, study_id: int) -> None:
    """Remove a draft study with its cases, questions and readers."""
    with transaction(engine) as session:
        study = _study(session, study_id)
        _require_draft(study, "deleted")
        session.delete(study)


def update_study(
    engine: Engine,
    study_id: int,
    *,
    description: str,
    instructions: str,
    allow_revisit: bool,
    feedback: Feedback,
) -> None:
    """Change a draft study's texts and reading settings."""
    check_reading_settings(allow_revisit, feedback)
    with transaction(engine) as session:
        study = _study(session, study_id)
        _require_draft(study, "changed")
        study.description = description
        study.instructions = instructions
        study.allow_revisit = allow_revisit
        study.feedback = feedback


# --- questions while a draft ------------------------------------------------------------------


def _study(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise DesignError(f"there is no study with id {study_id}")
    return study


def _require_draft(study: Study, action: str) -> None:
    if study.status != StudyStatus.DRAFT:
        raise StudyFrozenError(
            f"study '{study.name}' is {study.status.value}: its questions and cases are frozen "
            f"and cannot be {action}; copy it into a new study to change them"
        )


def add_questions(engine: Engine, study_id: int, specs: Sequence[QuestionSpec]) -> None:
    """Append questions (e.g. a template's) to a draft study."""
    with transaction(engine) as session:
        study = _study(session, study_id)
        _require_draft(study, "changed")
        _add_questions(session, study, specs)
        _check_phases(study, read_questions(study))


def update_question(engine: Engine, question_id: int, spec: QuestionSpec) -> None:
    """Change a question of a draft study (its kind, wording, options, required, applies_to)."""
    check_question(spec)
    with transaction(engine) as session:
        question = session.get(Question, question_id)
        if question is None:
            raise DesignError(f"there is no question with id {question_id}")
        _require_draft(question.study, "changed")
        question.kind = spec.kind
        question.wording = spec.wording.strip()
        question.options = list(spec.options)
        question.required = spec.required
        question.applies_to = list(spec.applies_to)
        question.phase = spec.phase
        _check_phases(question.study, read_questions(question.study))


def remove_question(engine: Engine, question_id: int) -> None:
    """Delete a question of a draft study; the others keep their order."""
    with transaction(engine) as session:
        question = session.get(Question, question_id)
        if question is None:
            raise DesignError(f"there is no question with id {question_id}")
        study = question.study
        _require_draft(study, "changed")
        study.questions.remove(question)
        session.flush()
        for i, remaining in enumerate(study.questions, start=1):
            remaining.position = -i  # two steps keep (study_id, position) unique throughout
        session.flush()
        for remaining in study.questions:
            remaining.position = -remaining.position


@dataclass(frozen=True)
class QuestionInfo:
    id: int
    position: int
    spec: QuestionSpec


def read_questions(study: Study) -> list[QuestionInfo]:
    """A study's questions, in order (inside the caller's transaction)."""
    return [
        QuestionInfo(
            q.id,
            q.position,
            QuestionSpec(
                QuestionKind(q.kind),
                q.wording,
                tuple(q.options),
                q.required,
                tuple(q.applies_to or ALL_CASE_KINDS),
                q.phase,
            ),
        )
        for q in study.questions
    ]


def study_questions(engine: Engine, study_id: int) -> list[QuestionInfo]:
    with transaction(engine) as session:
        return read_questions(_study(session, study_id))


# --- opening and closing ----------------------------------------------------------------------


def _record(study: Study, action: StudyAction, actor: str, note: str) -> None:
    study.events.append(StudyEvent(action=action, actor=actor.strip(), note=note.strip()))


def open_study(engine: Engine, study_id: int, *, actor: str = "", note: str = "") -> None:
    """Open a draft study to its readers; questions and cases are frozen from now on.

    Every reader added so far gets their seeded order of cases.
    """
    with transaction(engine) as session:
        study = _study(session, study_id)
        if study.status != StudyStatus.DRAFT:
            raise StudyFrozenError(f"study '{study.name}' is {study.status.value} already")
        if not study.questions:
            raise DesignError(f"study '{study.name}' has no questions: add some before opening")
        if not study.cases:
            raise DesignError(f"study '{study.name}' has no cases")
        kinds = {case.kind.value for case in study.cases}
        unasked = sorted(
            kind for kind in kinds if not any(kind in q.applies_to for q in study.questions)
        )
        if unasked:
            raise DesignError(
                f"study '{study.name}' has {', '.join(unasked)} cases that no question applies "
                f"to: add a question for them or change a question's case kinds"
            )
        study.status = StudyStatus.OPEN
        study.opened_at = utcnow()
        _record(study, StudyAction.OPENED, actor, note)
        session.flush()
        for reader in study.readers:
            create_assignments(session, study, reader)


def close_study(engine: Engine, study_id: int, *, actor: str = "", note: str = "") -> None:
    """Close an open study: no more answers are accepted."""
    with transaction(engine) as session:
        study = _study(session, study_id)
        if study.status != StudyStatus.OPEN:
            raise DesignError(
                f"study '{study.name}' is {study.status.value}; only an open study can be closed"
            )
        study.status = StudyStatus.CLOSED
        study.closed_at = utcnow()
        _record(study, StudyAction.CLOSED, actor, note)


def reopen_study(engine: Engine, study_id: int, *, actor: str = "", note: str = "") -> None:
    """Open a closed study again (readers may finish their reading); recorded in its history
    with who did it and why, and named in the report's methods."""
    with transaction(engine) as session:
        study = _study(session, study_id)
        if study.status != StudyStatus.CLOSED:
            raise DesignError(
                f"study '{study.name}' is {study.status.value}; only a closed study can be reopened"
            )
        study.status = StudyStatus.OPEN
        study.closed_at = None
        _record(study, StudyAction.REOPENED, actor, note)


@dataclass(frozen=True)
class StudyEventInfo:
    action: StudyAction
    actor: str
    note: str
    at: datetime


def read_history(study: Study) -> list[StudyEventInfo]:
    """When the study was opened, closed and reopened, by whom and why, oldest first (inside
    the caller's transaction)."""
    return [StudyEventInfo(StudyAction(e.action), e.actor, e.note, e.at) for e in study.events]


def study_history(engine: Engine, study_id: int) -> list[StudyEventInfo]:
    with transaction(engine) as session:
        return read_history(_study(session, study_id))


# --- what the coordinator sees ----------------------------------------------------------------


@dataclass(frozen=True)
class StudySummary:
    id: int
    name: str
    description: str
    instructions: str
    status: StudyStatus
    feedback: Feedback
    allow_revisit: bool
    cases: int
    practice_cases: int
    repeated_cases: int
    readers: int
    questions: int
    # The answers were made by simulated readers (the demo's results study), not by people.
    simulated: bool = False


def list_studies(engine: Engine) -> list[StudySummary]:
    with transaction(engine) as session:
        counts = {
            (study_id, practice, repeat): n
            for study_id, practice, repeat, n in session.execute(
                select(
                    Case.study_id,
                    Case.practice,
                    Case.repeat_of_id.is_not(None),
                    func.count(),
                )
                # A two-phase study's informed cases show the same images again.
                .where(Case.phase == 1)
                .group_by(Case.study_id, Case.practice, Case.repeat_of_id.is_not(None))
            )
        }
        readers = dict(
            session.execute(select(Reader.study_id, func.count()).group_by(Reader.study_id)).all()
        )
        questions = dict(
            session.execute(
                select(Question.study_id, func.count()).group_by(Question.study_id)
            ).all()
        )
        return [
            StudySummary(
                id=study.id,
                name=study.name,
                description=study.description,
                instructions=study.instructions,
                status=StudyStatus(study.status),
                feedback=Feedback(study.feedback),
                allow_revisit=study.allow_revisit,
                cases=counts.get((study.id, False, False), 0),
                practice_cases=counts.get((study.id, True, False), 0),
                repeated_cases=counts.get((study.id, False, True), 0),
                readers=readers.get(study.id, 0),
                questions=questions.get(study.id, 0),
                simulated=is_simulated(study.settings),
            )
            for study in session.scalars(select(Study).order_by(Study.id))
        ]


def study_summary(engine: Engine, study_id: int) -> StudySummary:
    for summary in list_studies(engine):
        if summary.id == study_id:
            return summary
    raise DesignError(f"there is no study with id {study_id}")


def study_composition(engine: Engine, study_id: int) -> list[dict[str, Any]]:
    """Cases per kind, sequence, origin and lesion, practice and repeats apart (coordinator)."""
    with transaction(engine) as session:
        rows = session.execute(
            select(
                Case.kind,
                Case.sequence,
                Case.origin,
                Case.lesion,
                Case.practice,
                Case.repeat_of_id.is_not(None),
                Case.phase,
                func.count(),
            )
            .where(Case.study_id == study_id)
            .group_by(
                Case.kind,
                Case.sequence,
                Case.origin,
                Case.lesion,
                Case.practice,
                Case.repeat_of_id.is_not(None),
                Case.phase,
            )
        ).all()
    role = {(True, False): "practice", (False, True): "repeat", (False, False): "study"}
    return sorted(
        (
            {
                "role": "informed phase" if phase == 2 else role[(bool(practice), bool(repeat))],
                "kind": str(kind),
                "sequence": sequence,
                "origin": str(origin),
                "lesion": _lesion_label(lesion),
                "cases": n,
            }
            for kind, sequence, origin, lesion, practice, repeat, phase, n in rows
        ),
        key=lambda row: tuple(str(v) for v in row.values()),
    )


@dataclass(frozen=True)
class PowerSummary:
    """What a study of this size can show about accuracy (exact binomial, alpha 0.05)."""

    cases: int
    ci_halfwidth: float
    cases_needed: int
    target_accuracy: float
    power: float
    per_sequence: dict[str, tuple[int, float]]


def power_summary(
    engine: Engine, study_id: int, *, target_accuracy: float = 0.60, power: float = 0.80
) -> PowerSummary:
    """Scored cases (not practice, not repeats), the 95% interval half-width at accuracy 0.5,
    and the cases needed to tell `target_accuracy` from 0.5 with `power`."""
    with transaction(engine) as session:
        rows = session.execute(
            select(Case.sequence, func.count())
            .where(
                Case.study_id == study_id,
                Case.practice.is_(False),
                Case.repeat_of_id.is_(None),
                Case.phase == 1,
            )
            .group_by(Case.sequence)
        ).all()
    per_sequence = {seq: (n, ci_halfwidth(n)) for seq, n in sorted(rows)}
    total = sum(n for _, n in rows)
    return PowerSummary(
        cases=total,
        ci_halfwidth=ci_halfwidth(total) if total else float("nan"),
        cases_needed=sample_size_accuracy(target_accuracy, 0.5, power, 0.05),
        target_accuracy=target_accuracy,
        power=power,
        per_sequence=per_sequence,
    )


def pool_counts(engine: Engine, pool: PoolFilter) -> list[dict[str, Any]]:
    """Admitted assets per sequence, origin and lesion: what a plan can draw from."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    with transaction(engine) as session:
        for asset in session.scalars(select(Asset)):
            if pool.admits(asset):
                counts[(str(asset.sequence), str(asset.origin), _lesion_label(asset.lesion))] += 1
    return [
        {"sequence": s, "origin": o, "lesion": lesion, "assets": n}
        for (s, o, lesion), n in sorted(counts.items())
    ]


def largest_fitting_cases(
    engine: Engine,
    blocks: Sequence[Block],
    pool: PoolFilter = PoolFilter(),
    *,
    cap: int = 32,
    step: int = 4,
) -> int:
    """The largest number of cases n (a multiple of `step`, at most `cap`) such that the pool
    gives every block n cases with its shares; 0 when not even `step` fit. The study builder
    offers it as the default, so that its first suggestion can be built."""
    with transaction(engine) as session:
        assets = [a for a in session.scalars(select(Asset)) if pool.admits(a)]
    order = sorted(blocks, key=lambda b: _BLOCK_PRIORITY[type(b)])
    for cases in range(cap - cap % step, 0, -step):
        trial = _Pool(assets)
        shortages: list[str] = []
        try:
            for block in order:
                _draw_block(random.Random(0), trial, replace(block, cases=cases), shortages)
        except BalanceError:
            continue
        if not shortages:
            return cases
    return 0


def patient_ids(engine: Engine) -> list[str]:
    """Every non-empty patient id of the library, for the pool filter."""
    with transaction(engine) as session:
        return list(
            session.scalars(
                select(Asset.patient_id)
                .where(Asset.patient_id != "")
                .distinct()
                .order_by(Asset.patient_id)
            )
        )
