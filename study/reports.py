"""Results of a study as tables: everything the results page, the HTML report and the exports
show, assembled from the statistics of `study.stats` on the tidy answer frame.

`build_report(tidy)` computes every table once (`ResultTables`); a table whose statistic
cannot be computed for these answers (no confidence question, a single reader, ...) is left
empty and its note says why. `read_context` gathers what the methods paragraph describes
(readers, cases, design, questions, history), and `apply_filters` narrows the answers to a
subgroup before the tables are built. `study.report` lays these tables out.

Example:
    >>> Filters(sequences=("T2W",)).describe()
    'sequence T2W'
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from study.db import transaction
from study.design import (
    QuestionInfo,
    StudyEventInfo,
    StudySummary,
    list_studies,
    read_history,
    read_questions,
)
from study.imaging.errors import VTTError
from study.models import Case, QuestionKind, Reader, ReaderKind, Study, StudyAction
from study.phases import is_phased
from study.questions import answer_values
from study.simulate import is_simulated
from study.stats import StatsError
from study.stats.agreement import group_agreement, intra_reader_agreement, pairwise_agreement
from study.stats.calibration import DEFAULT_LEVELS, calibration_tables
from study.stats.crossing import CrossedBlock, crossed_block
from study.stats.equivalence import DEFAULT_MARGIN, MEAN_OF_READERS, equivalence_table
from study.stats.likert import likert_distribution, likert_real_vs_synthetic, likert_summary
from study.stats.mrmc import MrmcResult, mrmc_data, obuchowski_rockette
from study.stats.phase_change import PhaseChange, phase_change
from study.stats.roc import auc_table, mrmc_long_frame, ordinal_scores
from study.stats.tables import (
    BINARY_KINDS,
    POSITIVE_CLASS,
    binary_calls,
    lesion_accuracy_by_origin,
    metrics_table,
    per_reader_table,
    seed_table,
    seed_table_layout,
)

# study.plots takes the pooled row's name from this module.
from study.stats.tables import POOLED as POOLED


class ReportError(VTTError):
    """A report or export that cannot be made as asked; the message says what to change."""


KIND_TITLES: dict[str, str] = {
    "real_or_synthetic": "Real or synthetic",
    "lesion_present": "Lesion present",
    "which_is_real": "Which is real (2AFC)",
}
LESION_LABELS: dict[object, str] = {1: "with lesion", 0: "without lesion"}
LESION_UNKNOWN = "lesion unknown"
PRESENTATIONS: tuple[str, ...] = ("single", "paired", "2AFC", "volume")
# (table name, grouping keys after question_kind) of the subgroup metrics tables.
SUBGROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("by_sequence", ("sequence",)),
    ("by_sequence_lesion", ("sequence", "lesion")),
    ("by_origin", ("origin",)),
    ("by_presentation", ("presentation",)),
)
SUBGROUP_TITLES: dict[str, str] = {
    "by_sequence": "By sequence",
    "by_sequence_lesion": "By sequence and lesion status",
    "by_origin": "By origin (real or synthetic image)",
    "by_presentation": "By presentation (single, paired, 2AFC or volume)",
}
_SUBGROUP_KEYS: tuple[str, ...] = tuple(dict.fromkeys(k for _, keys in SUBGROUPS for k in keys))
# Question kinds whose agreement between and within readers is reported.
AGREEMENT_KINDS: tuple[str, ...] = (*BINARY_KINDS, "likert_realism", "pirads")
ORDINAL_KINDS: frozenset[str] = frozenset({"likert_realism", "confidence", "pirads"})


# --- the study being reported -------------------------------------------------------------


@dataclass(frozen=True)
class ReaderDescription:
    alias: str
    experience_years: float | None
    specialty: str
    kind: ReaderKind = ReaderKind.PERSON


@dataclass(frozen=True)
class StudyContext:
    """What the methods paragraph says about a study (no answers, no truth of single cases)."""

    id: int
    name: str
    status: str
    seed: int
    allow_revisit: bool
    feedback: str
    settings: dict[str, Any]
    readers: tuple[ReaderDescription, ...]
    cases: pd.DataFrame  # kind, sequence, origin, lesion, practice, repeat, cases
    questions: tuple[QuestionInfo, ...]
    history: tuple[StudyEventInfo, ...] = ()

    @property
    def simulated(self) -> bool:
        """The answers were made by simulated readers (`study.simulate`), not by people."""
        return is_simulated(self.settings)


def find_study(engine: Engine, key: str) -> StudySummary:
    """The study whose id (a number) or name is `key`; `ReportError` naming the known ones
    otherwise."""
    studies = list_studies(engine)
    wanted = key.strip()
    for study in studies:
        if wanted.isdigit() and study.id == int(wanted):
            return study
    for study in studies:
        if study.name == wanted:
            return study
    known = ", ".join(f"{s.name} (id {s.id})" for s in studies) or "none yet"
    raise ReportError(f"there is no study with id or name '{key}'; the studies are: {known}")


def study_context(engine: Engine, study_id: int) -> StudyContext:
    """The study's settings, readers, case composition, questions and history."""
    with transaction(engine) as session:
        return read_context(session, study_id)


def read_context(session: Session, study_id: int) -> StudyContext:
    """`study_context` inside the caller's transaction (a report reads the study in one)."""
    study = session.get(Study, study_id)
    if study is None:
        raise ReportError(f"there is no study with id {study_id}")
    readers = tuple(
        ReaderDescription(r.alias, r.experience_years, r.specialty, ReaderKind(r.kind))
        for r in session.scalars(
            select(Reader).where(Reader.study_id == study_id).order_by(Reader.alias)
        )
    )
    rows = session.execute(
        select(
            Case.kind,
            Case.sequence,
            Case.origin,
            Case.lesion,
            Case.practice,
            Case.repeat_of_id.is_not(None),
        )
        # A two-phase study's informed cases show the phase-1 images again: counted once.
        .where(Case.study_id == study_id, Case.phase == 1)
    ).all()
    columns = ["kind", "sequence", "origin", "lesion", "practice", "repeat"]
    cases = pd.DataFrame(
        [(str(k), s, str(o), lesion, bool(p), bool(r)) for k, s, o, lesion, p, r in rows],
        columns=columns,
    )
    cases["lesion"] = cases["lesion"].map(LESION_LABELS).fillna(LESION_UNKNOWN)
    composition = cases.groupby(columns, sort=True).size().rename("cases").reset_index()
    return StudyContext(
        id=study.id,
        name=study.name,
        status=str(study.status),
        seed=study.seed,
        allow_revisit=study.allow_revisit,
        feedback=str(study.feedback),
        settings=dict(study.settings or {}),
        readers=readers,
        cases=composition,
        questions=tuple(read_questions(study)),
        history=tuple(read_history(study)),
    )


# --- subgroups ----------------------------------------------------------------------------


def presentation(tidy: pd.DataFrame) -> pd.Series:
    """How each case was shown: 'paired' (two sequences side by side), '2AFC' (a real and a
    synthetic image to choose from), 'volume' (a stack of slices per sequence; frames without
    the column, e.g. imported from older exports, have none) or 'single'."""
    paired = tidy["paired"].fillna(False).astype(bool)
    two_afc = tidy["correct_side"].notna()
    volume = (
        tidy["volume"].fillna(False).astype(bool)
        if "volume" in tidy.columns
        else pd.Series(False, index=tidy.index)
    )
    return pd.Series(
        np.where(volume, "volume", np.where(paired, "paired", np.where(two_afc, "2AFC", "single"))),
        index=tidy.index,
    )


def lesion_label(tidy: pd.DataFrame) -> pd.Series:
    """'with lesion', 'without lesion' or 'lesion unknown' per row."""
    lesion = pd.to_numeric(tidy["lesion"], errors="coerce")
    return lesion.map(LESION_LABELS).fillna(LESION_UNKNOWN).astype(str)


@dataclass(frozen=True)
class Filters:
    """A subgroup of the answers; an empty choice keeps every value."""

    sequences: tuple[str, ...] = ()
    lesions: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    presentations: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    # 1 (uninformed) and/or 2 (informed) in a two-phase study.
    phases: tuple[str, ...] = ()
    # Machine readers' answers count as a reader's in the tables (they never enter the
    # readers' MRMC analysis, which compares the people with the machine instead).
    machines: bool = False

    def describe(self) -> str:
        """The filters in words ('all answers' when none is set)."""
        parts = [
            f"{name} {', '.join(values)}"
            for name, values in (
                ("sequence", self.sequences),
                ("lesion", self.lesions),
                ("origin", self.origins),
                ("presentation", self.presentations),
                ("reader", self.readers),
                ("phase", self.phases),
            )
            if values
        ]
        if self.machines:
            parts.append("machine readers included")
        return "; ".join(parts) or "all answers"


def filter_choices(tidy: pd.DataFrame) -> dict[str, list[str]]:
    """The values each filter can take in these answers."""
    return {
        "sequences": sorted(tidy["sequence"].dropna().astype(str).unique()),
        "lesions": [
            label
            for label in (*LESION_LABELS.values(), LESION_UNKNOWN)
            if label in set(lesion_label(tidy))
        ],
        "origins": sorted(tidy["origin"].dropna().astype(str).unique()),
        "presentations": [p for p in PRESENTATIONS if p in set(presentation(tidy))],
        "readers": sorted(tidy["reader"].dropna().astype(str).unique()),
        "phases": sorted(tidy["phase"].dropna().astype(str).unique()) if "phase" in tidy else [],
    }


def apply_filters(tidy: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The answers of the subgroup `filters` describes."""
    keep = pd.Series(True, index=tidy.index)
    if filters.sequences:
        keep &= tidy["sequence"].astype(str).isin(filters.sequences)
    if filters.lesions:
        keep &= lesion_label(tidy).isin(filters.lesions)
    if filters.origins:
        keep &= tidy["origin"].astype(str).isin(filters.origins)
    if filters.presentations:
        keep &= presentation(tidy).isin(filters.presentations)
    if filters.readers:
        keep &= tidy["reader"].astype(str).isin(filters.readers)
    if filters.phases:
        keep &= tidy["phase"].astype(str).isin(filters.phases)
    if not filters.machines and "machine" in tidy.columns:
        keep &= ~tidy["machine"].astype(bool)
    return tidy[keep]


# --- tables that the statistics modules do not make --------------------------------------


def fool_rate_table(tidy: pd.DataFrame) -> pd.DataFrame:
    """Per image (case) and realism question: how many readers it fooled.

    A reader is fooled by a synthetic image called real, by a real image called synthetic, and
    in a 2AFC case by picking the synthetic image as the real one. Columns: question_kind,
    case_id, case_public_id, sequence, origin, lesion, presentation, readers, called_real,
    called_synthetic (real_or_synthetic only), fooled, fool_rate; the most convincing first.
    """
    calls = binary_calls(tidy)
    calls = calls[calls["question_kind"].isin(["real_or_synthetic", "which_is_real"])].copy()
    columns = [
        "question_kind",
        "case_id",
        "case_public_id",
        "sequence",
        "origin",
        "lesion",
        "presentation",
        "readers",
        "called_real",
        "called_synthetic",
        "fooled",
        "fool_rate",
    ]
    if calls.empty:
        return pd.DataFrame([], columns=columns)
    calls["presentation"] = presentation(calls)
    calls["fooled"] = ~calls["correct"]
    is_call = calls["question_kind"] == "real_or_synthetic"
    calls["called_synthetic"] = (calls["called"] & is_call).astype(int)
    calls["called_real"] = (~calls["called"] & is_call).astype(int)
    if "case_public_id" not in calls.columns:
        calls["case_public_id"] = ""
    keys = ["question_kind", "case_id"]
    table = calls.groupby(keys, sort=True).agg(
        case_public_id=("case_public_id", "first"),
        sequence=("sequence", "first"),
        origin=("origin", "first"),
        lesion=("lesion", "first"),
        presentation=("presentation", "first"),
        readers=("reader", "nunique"),
        called_real=("called_real", "sum"),
        called_synthetic=("called_synthetic", "sum"),
        fooled=("fooled", "sum"),
    )
    table = table.reset_index()
    table["fool_rate"] = table["fooled"] / table["readers"]
    table = table.sort_values(
        ["question_kind", "fool_rate", "case_id"], ascending=[True, False, True]
    )
    return table[columns].reset_index(drop=True)


@dataclass(frozen=True)
class MrmcSummary:
    """OR MRMC of the AUC of real/synthetic calls rated with confidence (one treatment): the
    readers' mean AUC with the random-reader random-case single-treatment interval (Hillis
    ddf) and its t test against 0.5."""

    result: MrmcResult
    block: CrossedBlock
    fom: float
    se: float
    df: float
    low: float
    high: float
    t: float
    p_vs_chance: float
    table: pd.DataFrame = field(repr=False)

    @property
    def cases_used(self) -> int:
        return len(self.block.cases)


def mrmc_summary(tidy: pd.DataFrame, *, confidence: float = 0.95) -> MrmcSummary:
    """The OR analysis of the fully crossed block of readers and cases (an OR analysis needs
    every reader to have rated every case): the readers who rated every case, or the largest
    block when fewer than two did (`study.stats.crossing`); `block` names what was left out.

    Raises `StatsError` with fewer than two readers or without confidence ratings.
    """
    long = mrmc_long_frame(tidy)
    readers = long["reader"].nunique()
    if readers < 2:
        raise StatsError(
            f"an MRMC analysis needs at least two readers with confidence ratings, not {readers}"
        )
    block = crossed_block(long)
    kept = long["reader"].isin(block.readers) & long["case"].isin(block.cases)
    result = obuchowski_rockette(mrmc_data(long[kept]), "auc", confidence=confidence)
    estimate = result.rrrc.treatments[result.treatments[0]]
    t = (estimate.fom - 0.5) / estimate.se if estimate.se > 0 else math.nan
    if math.isnan(t) or math.isnan(estimate.df):
        p = math.nan
    elif math.isinf(estimate.df):
        p = float(2 * stats.norm.sf(abs(t)))
    else:
        p = float(2 * stats.t.sf(abs(t), estimate.df))
    rows = [
        {"reader": reader, "positive_class": POSITIVE_CLASS["real_or_synthetic"], "auc": auc}
        for reader, auc in zip(result.readers, result.foms[0], strict=True)
    ]
    rows.append(
        {
            "reader": "mean of readers (OR, random readers and cases)",
            "positive_class": POSITIVE_CLASS["real_or_synthetic"],
            "auc": estimate.fom,
            "se": estimate.se,
            "df": estimate.df,
            "auc_low": estimate.low,
            "auc_high": estimate.high,
            "t_vs_0.5": t,
            "p_vs_0.5": p,
        }
    )
    columns = ["reader", "positive_class", "auc", "se", "df", "auc_low", "auc_high"]
    table = pd.DataFrame(rows, columns=[*columns, "t_vs_0.5", "p_vs_0.5"])
    return MrmcSummary(
        result=result,
        block=block,
        fom=estimate.fom,
        se=estimate.se,
        df=estimate.df,
        low=estimate.low,
        high=estimate.high,
        t=t,
        p_vs_chance=p,
        table=table,
    )


def question_scale(questions: Sequence[QuestionInfo], kind: str) -> list[str] | None:
    """The stored answer values of the questions of `kind`, in scale order (the longest
    scale's when several questions of that kind differ); None when no question is of it."""
    scales = [
        answer_values(QuestionKind(kind), q.spec.options)
        for q in questions
        if q.spec.kind.value == kind
    ]
    return max(scales, key=len) if scales else None


def _agreement_tables(
    tidy: pd.DataFrame, questions: Sequence[QuestionInfo] = ()
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Pairwise Cohen, Fleiss and intra-reader agreement for every question kind answered
    (weighted linearly for ordinal ratings, on the question's whole scale when `questions`
    give it)."""
    pairs, groups, intra = [], [], []
    for kind, rows in tidy.groupby("question_kind", sort=True):
        if kind not in AGREEMENT_KINDS:
            continue
        weights = "linear" if kind in ORDINAL_KINDS else None
        labels = question_scale(questions, str(kind))
        pairs.append(pairwise_agreement(rows, str(kind), weights=weights, labels=labels))
        # Without a case that every reader answered there is no Fleiss kappa for this kind.
        with contextlib.suppress(StatsError):
            groups.append(pd.DataFrame([group_agreement(rows, str(kind))]))
        repeated = intra_reader_agreement(rows, str(kind), weights=weights, labels=labels)
        intra.append(repeated[repeated["n"] > 0])
    group_columns = ["question_kind", "n_readers", "n_cases", "percent_agreement", "fleiss_kappa"]

    def joined(frames: list[pd.DataFrame], columns: Sequence[str] | None = None) -> pd.DataFrame:
        frames = [frame for frame in frames if not frame.empty]
        if frames:
            return pd.concat(frames, ignore_index=True)
        return pd.DataFrame([], columns=list(columns or []))

    pair_columns = ["question_kind", "reader_a", "reader_b", "n", "percent_agreement", "kappa"]
    intra_columns = ["question_kind", "reader", "n", "percent_agreement", "kappa", "weights"]
    return (
        joined(pairs, [*pair_columns, "weights"]),
        joined(groups, group_columns),
        joined(intra, intra_columns),
    )


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultTables:
    """Every table of a study's results; `notes` says why a table is empty."""

    filters: Filters
    answers: int
    readers: tuple[str, ...]
    per_reader: pd.DataFrame
    equivalence: pd.DataFrame
    equivalence_notes: dict[str, str]
    margin: float
    subgroups: dict[str, pd.DataFrame]
    seed: pd.DataFrame
    seed_layout: pd.DataFrame
    lesion_by_origin: pd.DataFrame
    scores: pd.DataFrame
    auc: pd.DataFrame
    mrmc: MrmcSummary | None
    calibration: pd.DataFrame
    reliability: pd.DataFrame
    agreement_pairs: pd.DataFrame
    agreement_groups: pd.DataFrame
    agreement_intra: pd.DataFrame
    likert_distribution: pd.DataFrame
    likert_summary: pd.DataFrame
    likert_test: pd.DataFrame
    fool_rate: pd.DataFrame
    notes: dict[str, str]
    # A two-phase study: how the realism ratings changed once readers were told.
    phase_change: PhaseChange | None = None

    def has_seed_cells(self) -> bool:
        """Whether any cell of the seed study's Table 4.3 has readings."""
        return bool(len(self.seed)) and bool((self.seed["n"] > 0).any())

    def auc_gaps(self) -> str:
        """The readers whose AUC has no DeLong interval, and why, in words ('' if none)."""
        if self.auc.empty:
            return ""
        short = self.auc[(self.auc["n_positive"] < 2) | (self.auc["n_negative"] < 2)]
        if short.empty:
            return ""
        named = ", ".join(
            f"{row.reader} ({row.n_positive} synthetic, {row.n_negative} real)"
            for row in short.itertuples()
        )
        return (
            f"No interval for {named}: DeLong's variance needs at least two synthetic and two "
            "real images rated with confidence."
        )


def _likert_test(tidy: pd.DataFrame) -> pd.DataFrame:
    result = likert_real_vs_synthetic(tidy)
    return pd.DataFrame(
        [
            {
                "test": "Mann-Whitney U, real vs synthetic",
                "u": result.u,
                "p": result.p_value,
                "p_real_rated_higher": result.probability_greater,
            }
        ]
    )


def _attempt(name: str, notes: dict[str, str], compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    try:
        return compute()
    except StatsError as error:
        notes[name] = str(error)
        return pd.DataFrame()


def _confidence_levels(questions: Sequence[QuestionInfo]) -> int:
    """The number of levels of the study's confidence scale (`DEFAULT_LEVELS` without one)."""
    scale = question_scale(questions, QuestionKind.CONFIDENCE.value)
    return len(scale) if scale else DEFAULT_LEVELS


def build_report(
    tidy: pd.DataFrame,
    *,
    filters: Filters = Filters(),
    seed: int = 0,
    confidence: float = 0.95,
    margin: float = DEFAULT_MARGIN,
    questions: Sequence[QuestionInfo] = (),
) -> ResultTables:
    """Every results table of `tidy` (already filtered by `filters`, which the report names).

    `seed` seeds the bootstrap of the Likert means; `margin` is the study's equivalence
    margin; `questions` give the scales of ordinal questions (weighted kappa, calibration).
    """
    notes: dict[str, str] = {}
    tidy = tidy.assign(presentation=presentation(tidy))
    binary = tidy[tidy["question_kind"].isin(BINARY_KINDS)]
    per_reader = per_reader_table(binary, confidence=confidence)
    if per_reader.empty:
        notes["per_reader"] = "no answered real/synthetic, lesion or 2AFC question"
    equivalence = equivalence_table(binary, margin=margin, confidence=confidence)
    if equivalence.table.empty:
        notes["equivalence"] = "no real/synthetic or 2AFC question was answered"
    subgroups = {
        name: metrics_table(binary, by=["question_kind", *keys], confidence=confidence)
        for name, keys in SUBGROUPS
    }
    seed_cells = seed_table(binary, confidence=confidence)
    lesions = lesion_accuracy_by_origin(binary, confidence=confidence)
    # Each statistic gets the rows of the question kinds it reads (cheaper than the whole frame).
    # Machine readers have no confidence ratings: the ROC and MRMC analyses are the people's.
    people = ~tidy["machine"].astype(bool) if "machine" in tidy.columns else True
    rated = tidy[tidy["question_kind"].isin(["real_or_synthetic", "confidence"]) & people]
    scores = _attempt("roc", notes, lambda: ordinal_scores(rated))
    if "roc" not in notes and scores.empty:
        notes["roc"] = "no real/synthetic call was rated with a confidence question"
    auc = (
        _attempt("roc", notes, lambda: auc_table(rated, confidence=confidence))
        if not scores.empty
        else pd.DataFrame()
    )
    mrmc = None
    if not scores.empty:
        try:
            mrmc = mrmc_summary(rated, confidence=confidence)
        except StatsError as error:
            notes["mrmc"] = str(error)
    else:
        notes["mrmc"] = notes["roc"]
    calibration = reliability = pd.DataFrame()
    if not scores.empty:
        try:
            tables = calibration_tables(
                scores, levels=_confidence_levels(questions), interval=confidence
            )
            calibration, reliability = tables.summary, tables.bins
        except StatsError as error:
            notes["calibration"] = str(error)
    else:
        notes["calibration"] = notes["roc"]
    try:
        pairs, groups, intra = _agreement_tables(tidy, questions)
    except StatsError as error:
        notes["agreement"] = str(error)
        pairs = groups = intra = pd.DataFrame()
    if pairs.empty and "agreement" not in notes:
        notes["agreement"] = "agreement needs at least two readers who answered the same cases"
    likert = summary = test = pd.DataFrame()
    ratings = tidy[tidy["question_kind"] == "likert_realism"]
    if not ratings.empty:
        likert = _attempt("likert", notes, lambda: likert_distribution(ratings))
        summary = _attempt(
            "likert", notes, lambda: likert_summary(ratings, seed=seed, confidence=confidence)
        )
        test = _attempt("likert_test", notes, lambda: _likert_test(ratings))
    else:
        notes["likert"] = "the study asks no realism (Likert) question"
    change = None
    if "phase" in tidy.columns and (tidy["phase"] == 2).any():
        try:
            change = phase_change(ratings, confidence=confidence)
        except StatsError as error:
            notes["phases"] = str(error)
    return ResultTables(
        filters=filters,
        # Practice answers are not analysed, so they are not counted either.
        answers=int((~tidy["practice"].astype(bool)).sum()),
        readers=tuple(sorted(tidy["reader"].dropna().astype(str).unique())),
        per_reader=per_reader,
        equivalence=equivalence.table,
        # Per question kind: why the readers' mean is missing, or what it left out.
        equivalence_notes={**equivalence.left_out, **equivalence.notes},
        margin=margin,
        subgroups=subgroups,
        seed=seed_cells,
        seed_layout=seed_table_layout(seed_cells) if len(seed_cells) else pd.DataFrame(),
        lesion_by_origin=lesions,
        scores=scores,
        auc=auc,
        mrmc=mrmc,
        calibration=calibration,
        reliability=reliability,
        agreement_pairs=pairs,
        agreement_groups=groups,
        agreement_intra=intra,
        likert_distribution=likert,
        likert_summary=summary,
        likert_test=test,
        fool_rate=fool_rate_table(binary),
        notes=notes,
        phase_change=change,
    )


def report_tables(report: ResultTables) -> dict[str, pd.DataFrame]:
    """The report's tables by export name (empty ones left out), in reading order."""
    tables = {
        "per_reader": report.per_reader,
        "equivalence": report.equivalence,
        **report.subgroups,
        "seed_table_4_3": report.seed_layout,
        "seed_table_cells": report.seed,
        "lesion_real_vs_synthetic": report.lesion_by_origin,
        "auc_per_reader": report.auc,
        "mrmc_auc": report.mrmc.table if report.mrmc else pd.DataFrame(),
        "calibration": report.calibration,
        "reliability_bins": report.reliability,
        "agreement_pairs": report.agreement_pairs,
        "agreement_fleiss": report.agreement_groups,
        "agreement_intra_reader": report.agreement_intra,
        "likert_distribution": report.likert_distribution,
        "likert_summary": report.likert_summary,
        "likert_test": report.likert_test,
        "fool_rate": report.fool_rate,
        "phase_change_per_reader": (
            report.phase_change.per_reader if report.phase_change else pd.DataFrame()
        ),
        "phase_change": report.phase_change.summary if report.phase_change else pd.DataFrame(),
    }
    return {name: table for name, table in tables.items() if not table.empty}


# --- display ------------------------------------------------------------------------------


def _interval(estimate: float, low: float, high: float) -> str:
    if estimate is None or pd.isna(estimate):
        return "n/a"
    return f"{estimate:.3f} ({low:.3f}-{high:.3f})"


def p_text(value: float | None) -> str:
    """A p-value for reading: three decimals, '< 0.001' below, 'n/a' when missing."""
    if value is None or pd.isna(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def compact_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """A metrics table (`metrics_table`, `per_reader_table`) for reading: keys, positive
    class, n, and each rate as 'estimate (Wilson low-high)', the exact p against 0.5, d', c."""
    if table.empty:
        return table
    keys = [c for c in table.columns if c in ("question_kind", "reader", *_SUBGROUP_KEYS)]
    out = table[keys].copy()
    if "lesion" in out.columns:
        out["lesion"] = lesion_label(out)
    out["question_kind"] = out["question_kind"].map(KIND_TITLES).fillna(out["question_kind"])
    out["positive class"] = table["positive_class"]
    out["n"] = table["n"]
    out["accuracy (95% CI)"] = [
        _interval(e, lo, hi)
        for e, lo, hi in zip(
            table["accuracy"],
            table["accuracy_wilson_low"],
            table["accuracy_wilson_high"],
            strict=True,
        )
    ]
    out["p vs 0.5"] = table["accuracy_p_vs_chance"].map(p_text)
    for rate, label in (
        ("sensitivity", "sensitivity"),
        ("specificity", "specificity"),
        ("ppv", "PPV"),
        ("npv", "NPV"),
    ):
        out[label] = [
            _interval(e, lo, hi)
            for e, lo, hi in zip(
                table[rate], table[f"{rate}_wilson_low"], table[f"{rate}_wilson_high"], strict=True
            )
        ]
    # (+ 0.0 turns a rounded -0.0 into 0.0)
    out["d'"] = table["d_prime"].round(3) + 0.0
    out["c"] = table["criterion_c"].round(3) + 0.0
    return out.rename(columns={"question_kind": "question"})


def _range(low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return "n/a"
    return f"{low:.3f}-{high:.3f}"


def compact_equivalence(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of an equivalence table (`study.stats.equivalence.equivalence_table`) for
    reading: reader, n (cases), accuracy, its 90% and 95% intervals, the TOST p-value and the
    conclusion in words."""
    return pd.DataFrame(
        {
            "reader": table["reader"].astype(str),
            "n": table["n"].astype(int),
            "accuracy": table["accuracy"].round(3) + 0.0,
            "90% CI (TOST)": [
                _range(lo, hi) for lo, hi in zip(table["tost_low"], table["tost_high"], strict=True)
            ],
            "p (TOST)": table["p_tost"].map(p_text),
            "95% CI": [_range(lo, hi) for lo, hi in zip(table["low"], table["high"], strict=True)],
            "conclusion": table["conclusion"],
        }
    ).reset_index(drop=True)


RATE_COLUMNS: tuple[str, ...] = ("sensitivity", "specificity", "PPV", "NPV")


@dataclass(frozen=True)
class MetricsPart:
    """One question kind of a compact metrics table, cut in two narrow tables that fit a page:
    accuracy with its test and d'/c, and the four rates of the named positive class."""

    title: str
    accuracy: pd.DataFrame
    rates: pd.DataFrame


def metrics_parts(table: pd.DataFrame) -> list[MetricsPart]:
    """`compact_metrics(table)` per question kind, each cut in two narrow tables (the title
    names the question and its positive class, so the rows need not)."""
    compact = compact_metrics(table)
    if compact.empty:
        return []
    parts = []
    for (question, positive), rows in compact.groupby(["question", "positive class"], sort=False):
        keys = [c for c in rows.columns if c in ("reader", *_SUBGROUP_KEYS)]
        parts.append(
            MetricsPart(
                title=f"{question} (positive class: {positive})",
                accuracy=rows[[*keys, "n", "accuracy (95% CI)", "p vs 0.5", "d'", "c"]],
                rates=rows[[*keys, *RATE_COLUMNS]],
            )
        )
    return parts


# --- methods paragraph --------------------------------------------------------------------


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _share(value: object) -> str:
    return "any" if value is None else f"{float(value):.0%}"


def _blocks_text(settings: Mapping[str, Any]) -> str:
    parts = []
    for block in settings.get("blocks", []):
        kind = block.get("type", "")
        if kind == "PairedBlock":
            what = " + ".join(str(s) for s in block.get("sequences", ())) + " pairs"
        elif kind == "TwoAFCBlock":
            what = f"2AFC {block.get('sequence')} (a real and a synthetic image)"
        else:
            what = f"{block.get('sequence')} single images"
        synthetic = (
            "" if kind == "TwoAFCBlock" else f", {_share(block.get('synthetic_share'))} synthetic"
        )
        parts.append(
            f"{block.get('cases')} {what}{synthetic}, {_share(block.get('lesion_share'))} with a "
            "lesion"
        )
    return "; ".join(parts)


def _readers_text(context: StudyContext, answered: Collection[str]) -> str:
    readers = [r for r in context.readers if r.alias in answered] or list(context.readers)
    people = [r for r in readers if r.kind == ReaderKind.PERSON]
    visitors = len(readers) - len(people)
    described = []
    for reader in people:
        details = []
        if reader.experience_years is not None:
            details.append(f"{reader.experience_years:g} years")
        if reader.specialty:
            details.append(reader.specialty)
        described.append(reader.alias + (f" ({', '.join(details)})" if details else ""))
    years = [r.experience_years for r in people if r.experience_years is not None]
    experience = (
        f" Their experience ranged from {min(years):g} to {max(years):g} years."
        if len(years) > 1
        else ""
    )
    if context.simulated:
        return (
            f"Readers. The answers are simulated: {_count(len(people), 'simulated reader')} "
            f"({', '.join(r.alias for r in people)}) answered with VTT Studio's signal-detection "
            "model of a reader (study/simulate.py). No person read this study; its results "
            "only show what the analysis looks like."
        )
    text = "Readers. "
    if people:
        text += (
            f"{_count(len(people), 'reader')} read the cases blind to their origin: "
            f"{', '.join(described)}.{experience}"
        )
    if visitors:
        text += (
            (" " if people else "")
            + f"{_count(visitors, 'anonymous visitor')} signed in with the study's public code "
            "and read it blind to the origin of its images, each in a reading of their own."
        )
    return text


def _history_text(context: StudyContext) -> str:
    reopened = [e for e in context.history if e.action == StudyAction.REOPENED]
    if not reopened:
        return ""
    times = "; ".join(
        f"{e.at:%Y-%m-%d}"
        + (f" by {e.actor}" if e.actor else "")
        + (f" ({e.note})" if e.note else "")
        for e in reopened
    )
    return f" The study was closed and reopened: {times}."


# The statistics paragraph, one sentence per analysis, with what shows that it was made.
_ANALYSES: tuple[tuple[Callable[[ResultTables], bool], str], ...] = (
    (
        lambda r: not r.per_reader.empty,
        "Accuracy, sensitivity, specificity, PPV and NPV are given per reader and pooled, with "
        "the positive class named in every table (synthetic for real-or-synthetic questions, "
        "lesion for lesion questions), with Wilson 95% score intervals; accuracy also with the "
        "Clopper-Pearson exact interval and an exact two-sided binomial test against 0.5. Pooled "
        "figures count every reading as independent. Signal detection: d' and criterion c with "
        "the 1/(2N) correction for rates of 0 and 1.",
    ),
    (
        lambda r: not r.equivalence.empty,
        "Equivalence with chance: two one-sided tests (TOST; Schuirmann 1987) of each reader's "
        "real/synthetic accuracy against 0.5 plus or minus the study's margin at alpha 0.05, "
        "exact binomial (Clopper-Pearson): indistinguishable within the margin when the 90% "
        "interval lies inside 0.5 plus or minus the margin, distinguishable when the 95% "
        "interval excludes 0.5, inconclusive otherwise.",
    ),
    (
        lambda r: bool((r.equivalence["reader"] == MEAN_OF_READERS).any()),
        "The readers' mean accuracy was judged the same way, with its Obuchowski-Rockette "
        "interval (random readers and cases, Hillis df) on the readers who read every case.",
    ),
    (
        lambda r: not (r.agreement_pairs.empty and r.agreement_groups.empty),
        "Agreement: Cohen's kappa for every pair of readers (linearly weighted for ordinal "
        "ratings) and Fleiss' kappa.",
    ),
    (
        lambda r: not r.agreement_intra.empty,
        "Intra-reader agreement: Cohen's kappa between the two readings of repeated cases.",
    ),
    (
        lambda r: not r.likert_summary.empty,
        "Realism ratings (Likert 1-5): distributions for real and synthetic images, the "
        "Mann-Whitney U test, and means with percentile bootstrap intervals.",
    ),
    (
        lambda r: not r.auc.empty,
        "ROC: each real/synthetic call and its confidence c (1-5) give an ordinal score (c when "
        "called synthetic, -c when called real); empirical AUC per reader with the DeLong "
        "interval.",
    ),
    (
        lambda r: r.mrmc is not None,
        "Multi-reader multi-case: the Obuchowski-Rockette method with jackknife covariances and "
        "Hillis denominator degrees of freedom (random readers and cases), the readers' mean AUC "
        "with its single-treatment interval and a t test against 0.5, on the readers who rated "
        "every case (the largest fully crossed block when fewer than two did).",
    ),
    (
        lambda r: not r.calibration.empty,
        "Calibration of confidence: each confidence level stated a probability of being right "
        "(from 0.5 for the lowest level, guessing, to 1 for the highest, linearly), compared "
        "with the calls' correctness by the Brier score, the expected calibration error with one "
        "bin per confidence level, and reliability diagrams.",
    ),
    (
        lambda r: not r.lesion_by_origin.empty,
        "Lesion identification on real versus synthetic images: the difference in accuracy with "
        "Newcombe's hybrid score interval.",
    ),
)


def _statistics_text(report: ResultTables | None) -> str:
    """The analyses behind the tables `report` has (every analysis without a report)."""
    made = [text for ran, text in _ANALYSES if report is None or ran(report)]
    if not made:
        return "Statistics. None of the analyses could be made of these answers yet."
    return "Statistics. " + " ".join(made)


def methods_text(context: StudyContext, report: ResultTables | None = None) -> list[str]:
    """The methods section as paragraphs an author can adapt: readers (those who answered in
    `report`; all of the study's without one), cases, design, questions, and the statistics
    of the analyses `report` holds (every analysis without one)."""
    readers_text = _readers_text(context, report.readers if report else ())

    cases = context.cases
    main = cases[~cases["practice"] & ~cases["repeat"]]
    by_sequence = main.groupby("sequence")["cases"].sum()
    by_origin = main.groupby("origin")["cases"].sum()
    by_lesion = main.groupby("lesion")["cases"].sum()
    by_kind = main.groupby("kind")["cases"].sum()
    cases_text = (
        f"Cases. {_count(int(main['cases'].sum()), 'case')} were read: by sequence "
        + ", ".join(f"{s} {n}" for s, n in by_sequence.items())
        + "; by origin "
        + ", ".join(f"{o} {n}" for o, n in by_origin.items())
        + "; by lesion status "
        + ", ".join(f"{lesion} {n}" for lesion, n in by_lesion.items())
        + "; by presentation "
        + ", ".join(f"{k} {n}" for k, n in by_kind.items())
        + "."
    )

    practice = int(cases.loc[cases["practice"], "cases"].sum())
    repeats = int(cases.loc[cases["repeat"], "cases"].sum())
    blocks = _blocks_text(context.settings)
    design_text = (
        "Design. "
        + (
            f"Cases were drawn from the image library with exact balance ({blocks}). "
            if blocks
            else ""
        )
        + (
            f"{_count(practice, 'practice case')}, with the right answers shown after each, "
            "came first and are not analysed. "
            if practice
            else "There were no practice cases. "
        )
        + (
            f"{_count(repeats, 'case')} were shown a second time at the end, for intra-reader "
            "agreement only. "
            if repeats
            else ""
        )
        + (
            "The study had two phases: readers first read every case without being told that "
            "some images were synthetic, then, told, read the same images again in a new order "
            "and answered whether each was real or synthetic. "
            if is_phased(context.settings)
            else ""
        )
        + "Each reader saw the cases in an order of their own, shuffled with a seeded random "
        f"generator (study seed {context.seed}); "
        + (
            "answers could not be changed once a case was finished. "
            if not context.allow_revisit
            else "readers could go back and change answers. "
            if context.feedback == "none"
            else "readers could go back and change answers until they saw the truth; answers "
            "were final from then on, so no answer was given knowing the truth. "
        )
        + (
            "Readers saw no feedback on their answers while reading."
            if context.feedback == "none"
            else "Readers saw the truth and their score after the last case."
            if context.feedback == "at_end"
            else "Readers saw the truth after each case."
        )
        + _history_text(context)
    )
    questions_text = "Questions. " + " ".join(
        f"'{q.spec.wording}'" + (f" ({' / '.join(q.spec.options)})" if q.spec.options else "") + "."
        for q in context.questions
    )
    return [readers_text, cases_text, design_text, questions_text, _statistics_text(report)]
