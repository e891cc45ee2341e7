"""Simulated readers: answers from a signal-detection model, for showing what results look like.

Nothing here stands in for a person in a real study: a study whose answers are simulated says
so in its settings (`SIMULATED_SETTING`), and every page, report and export of it says so too.

The model, per reader r and case i (seeded, reproducible):
- real or synthetic: evidence x = s_i * d_r / 2 + u_i + e, with s_i = +1 for a synthetic case
  and -1 for a real one, d_r the reader's d' (their skill), u_i ~ N(0, 0.5^2) a case effect
  shared by every reader (some images are harder than others, which is what makes readers
  agree), e ~ N(0, 1); the reader calls "synthetic" when x > c_r (their criterion), with
  confidence 1-5 growing with |x - c_r|;
- lesion present: the same model with the lesion as the signal and the reader's lesion d';
- realism (Likert 1-5): 3.6 for real and 3.1 for synthetic cases, plus the case effect and
  noise, rounded and clipped; ordinal questions of other kinds get the reader's confidence;
- which is real (2AFC): right with probability Phi(d' / sqrt 2), the two-interval rule.
Answers go through `record_answer`, so they are checked and stored like a person's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from sqlalchemy import Engine, select

from study.case_stacks import case_stacks
from study.db import transaction
from study.imaging.types import Origin
from study.marks import Mark, dump_marks
from study.models import (
    Assignment,
    Case,
    CaseKind,
    CaseOrigin,
    Question,
    QuestionKind,
    Reader,
    Study,
    StudyStatus,
)
from study.questions import answer_values
from study.reading import mark_informed, record_answer

SIMULATED_SETTING = "simulated_answers"
CASE_EFFECT_SD = 0.5


@dataclass(frozen=True)
class SimulatedReader:
    """A reader's skill: d' for telling synthetic from real, d' for lesions, and a criterion."""

    origin_d_prime: float
    lesion_d_prime: float
    criterion: float


def simulated_reader(rng: random.Random) -> SimulatedReader:
    return SimulatedReader(
        origin_d_prime=rng.uniform(0.2, 1.2),
        lesion_d_prime=rng.uniform(1.0, 2.2),
        criterion=rng.gauss(0.0, 0.3),
    )


def _call(evidence: float, criterion: float) -> tuple[bool, int]:
    """(positive?, confidence 1-5) of one decision."""
    confidence = 1 + min(4, math.floor(abs(evidence - criterion) / 0.45))
    return evidence > criterion, confidence


@dataclass(frozen=True)
class Spots:
    """Where a simulated reader may mark a case: its first viewport's name and size, the slice
    it marks on (in a volume, the slice where the outlined lesions are largest), and the
    centres (row, col) of the lesions outlined on that slice."""

    viewport: str
    rows: int
    cols: int
    lesions: tuple[tuple[float, float], ...]
    slice: int = 0


def _spots(case: Case) -> Spots | None:
    if not case.views:
        return None
    stack = next(iter(case_stacks(case).values()))
    view = max(stack, key=lambda v: sum(lesion["voxels"] for lesion in v.asset.lesions or ()))
    centres = tuple(tuple(lesion["centroid"]) for lesion in view.asset.lesions or ())
    return Spots(view.viewport, view.asset.rows, view.asset.cols, centres, view.slice)  # type: ignore[arg-type]


def _marks(reader: SimulatedReader, spots: Spots, scale: int, rng: random.Random) -> str:
    """Marks of one case: each outlined lesion found with probability Phi(d'/2), marked a
    pixel or two off its centre and rated by how clearly it was seen; false marks at random
    places (0, 1 or 2, rated low)."""
    marks = []
    for row, col in spots.lesions:
        evidence = reader.lesion_d_prime / 2 + rng.gauss(0, 1)
        if evidence > 0:
            rating = min(scale, 1 + math.floor(evidence / 0.5))
            marks.append(
                Mark(
                    spots.viewport,
                    spots.slice,
                    row + rng.gauss(0, 1),
                    col + rng.gauss(0, 1),
                    rating,
                )
            )
    for _ in range(sum(rng.random() < 0.3 for _ in range(2))):
        row = rng.uniform(-0.5, spots.rows - 0.5)
        col = rng.uniform(-0.5, spots.cols - 0.5)
        marks.append(
            Mark(spots.viewport, spots.slice, row, col, rng.randint(1, max(1, scale // 2)))
        )
    # A mark a pixel off a lesion at the image's edge stays on the image.
    return dump_marks(
        [
            Mark(
                m.viewport,
                m.slice,
                min(max(m.row, -0.5), spots.rows - 0.5),
                min(max(m.col, -0.5), spots.cols - 0.5),
                m.rating,
            )
            for m in marks
        ]
    )


def _answers(
    reader: SimulatedReader,
    case: Case,
    questions: list[Question],
    case_effect: float,
    real_side: str | None,
    spots: Spots | None,
    rng: random.Random,
) -> dict[int, str]:
    synthetic = 1.0 if case.origin == CaseOrigin.SYNTHETIC else -1.0
    origin_call, origin_confidence = _call(
        synthetic * reader.origin_d_prime / 2 + case_effect + rng.gauss(0, 1), reader.criterion
    )
    lesion = 1.0 if case.lesion == 1 else -1.0
    lesion_call, _ = _call(lesion * reader.lesion_d_prime / 2 + rng.gauss(0, 1), 0.0)
    realism = 3.6 - 0.25 * (synthetic + 1) - case_effect + rng.gauss(0, 0.8)
    answers: dict[int, str] = {}
    for question in questions:
        kind = QuestionKind(question.kind)
        if question.applies_to and CaseKind(case.kind).value not in question.applies_to:
            continue
        if question.phase not in (None, case.phase):
            continue
        values = answer_values(kind, question.options)
        if kind == QuestionKind.REAL_OR_SYNTHETIC:
            answers[question.id] = "synthetic" if origin_call else "real"
        elif kind == QuestionKind.LESION_PRESENT:
            answers[question.id] = "yes" if lesion_call else "no"
        elif kind == QuestionKind.LIKERT_REALISM:
            answers[question.id] = values[min(len(values), max(1, round(realism))) - 1]
        elif kind in (QuestionKind.CONFIDENCE, QuestionKind.PIRADS):
            answers[question.id] = values[min(len(values), origin_confidence) - 1]
        elif kind == QuestionKind.WHICH_IS_REAL and real_side in values:
            # Two-alternative forced choice: right with probability Phi(d' / sqrt 2).
            right = rng.random() < NormalDist().cdf(reader.origin_d_prime / math.sqrt(2))
            answers[question.id] = real_side if right else next(v for v in values if v != real_side)
        elif kind == QuestionKind.LESION_MARKS and spots is not None:
            answers[question.id] = _marks(reader, spots, len(question.options), rng)
        elif question.required and kind in (QuestionKind.SINGLE_CHOICE, QuestionKind.WHICH_IS_REAL):
            answers[question.id] = rng.choice(values)
    return answers


def simulate_answers(engine: Engine, study_id: int, *, seed: int) -> int:
    """Answer every case of an open study for each of its readers with a simulated reader of
    their own; marks the study as simulated. Returns the number of cases answered."""
    rng = random.Random(f"{seed}:simulate")
    with transaction(engine) as session:
        study = session.get(Study, study_id)
        if study is None or study.status != StudyStatus.OPEN:
            raise ValueError(f"study {study_id} is not an open study")
        study.settings = {**(study.settings or {}), SIMULATED_SETTING: True}
        questions = list(study.questions)
        cases = {case.id: case for case in study.cases}
        real_sides = {
            case.id: view.viewport
            for case in study.cases
            for view in case.views
            if case.kind == CaseKind.TWO_AFC and view.asset.origin == Origin.REAL
        }
        spots = {case.id: _spots(case) for case in study.cases}
        readers = list(session.scalars(select(Reader.id).where(Reader.study_id == study_id)))
        orders = {
            reader_id: list(
                session.scalars(
                    select(Assignment.case_id)
                    .where(Assignment.reader_id == reader_id)
                    .order_by(Assignment.position)
                )
            )
            for reader_id in readers
        }
    # Repeats share their original's effect: the same image is as hard the second time.
    effects: dict[int, float] = {}
    for case in sorted(cases.values(), key=lambda c: c.id):
        key = case.repeat_of_id or case.first_phase_id or case.id
        effects.setdefault(key, rng.gauss(0.0, CASE_EFFECT_SD))
    answered = 0
    informed: set[int] = set()
    for reader_id in readers:
        skill = simulated_reader(rng)
        for case_id in orders[reader_id]:
            case = cases[case_id]
            if case.phase == 2 and reader_id not in informed:
                # A two-phase study: the simulated reader is told before its second part.
                mark_informed(engine, reader_id)
                informed.add(reader_id)
            effect = effects[case.repeat_of_id or case.first_phase_id or case.id]
            values = _answers(
                skill, case, questions, effect, real_sides.get(case.id), spots.get(case.id), rng
            )
            record_answer(engine, reader_id, case.public_id, values, rng.uniform(6.0, 40.0))
            answered += 1
    return answered


def is_simulated(settings: dict | None) -> bool:
    """Whether a study's settings mark its answers as simulated."""
    return bool((settings or {}).get(SIMULATED_SETTING))
