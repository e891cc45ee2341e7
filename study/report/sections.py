"""The sections of a study's report, declared once and in order: the Results page shows them
as tabs, the HTML report one after another.

Each section makes its blocks from a `StudyReport`; a section with nothing to show (no
blocks) shows its note instead: the tables' own note under `note` when there is one (it says
which statistic these answers do not allow), `empty` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from study import plots
from study.report import figures
from study.report.blocks import (
    Block,
    Caption,
    Choice,
    Figure,
    FigureRow,
    Heading,
    Metrics,
    Note,
    Paragraph,
    table,
)
from study.report.hype import hype_blocks, hype_methods
from study.report.localisation import localisation_blocks
from study.report.machine import machine_blocks
from study.report.model import StudyReport
from study.reports import (
    KIND_TITLES,
    SUBGROUP_TITLES,
    MrmcSummary,
    compact_equivalence,
    methods_text,
    metrics_parts,
    p_text,
)
from study.stats.equivalence import MEAN_OF_READERS
from study.stats.tables import POOLED

FOOL_RATE_ROWS_SHOWN = 20
AGREEMENT_PAIRS_SHOWN = 200
RELIABILITY_ROWS_SHOWN = 60


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: Callable[[StudyReport], tuple[Block, ...]] = field(repr=False)
    empty: str
    note: str = ""  # the key of `ResultTables.notes` that says why the section is empty

    def content(self, report: StudyReport) -> tuple[Block, ...]:
        """The section's blocks, or its note when it has none."""
        return self.blocks(report) or (Note(report.tables.notes.get(self.note, self.empty)),)


def _metrics(metrics: pd.DataFrame) -> list[Block]:
    """Each question's metrics in two tables narrow enough for a page, titled with the
    question and its positive class."""
    blocks: list[Block] = []
    for part in metrics_parts(metrics):
        blocks += [Heading(part.title, minor=True), table(part.accuracy), table(part.rates)]
    return blocks


def _confusion(per_reader: pd.DataFrame, reader: str) -> tuple[Block, ...]:
    rows = per_reader[per_reader["reader"] == reader]
    if rows.empty:
        return (Note(f"{reader} answered no real/synthetic, lesion or 2AFC question here."),)
    return (
        FigureRow(
            tuple(
                Figure(f"confusion-{row['question_kind']}", plots.confusion_matrix(row))
                for _, row in rows.iterrows()
            )
        ),
    )


def _accuracy(report: StudyReport) -> tuple[Block, ...]:
    per_reader = report.tables.per_reader
    if per_reader.empty:
        return ()
    return (
        *_metrics(per_reader),
        *(
            Figure(f"forest-{kind}", plots.accuracy_forest(per_reader, kind))
            for kind in per_reader["question_kind"].unique()
        ),
        Heading("Confusion matrices"),
        Choice(
            "Reader",
            "confusion-reader",
            (POOLED, *report.tables.readers),
            lambda reader: _confusion(per_reader, reader),
        ),
    )


def _equivalence(report: StudyReport) -> tuple[Block, ...]:
    equivalence, margin = report.tables.equivalence, report.tables.margin
    if equivalence.empty:
        return ()
    blocks: list[Block] = [
        Caption(
            f"Two one-sided tests (TOST) of accuracy against 0.5 ± {margin:.2f} (the study's "
            f"margin) at alpha 0.05: indistinguishable within ±{margin:.2f} when the 90% "
            f"interval lies inside [{0.5 - margin:.2f}, {0.5 + margin:.2f}]; distinguishable "
            "when the 95% interval excludes 0.5; inconclusive otherwise. Readers: exact "
            "binomial (Clopper-Pearson); their mean: Obuchowski-Rockette, random readers and "
            "cases."
        )
    ]
    for kind in equivalence["question_kind"].unique():
        rows = equivalence[equivalence["question_kind"] == kind]
        blocks.append(Heading(KIND_TITLES.get(kind, kind), minor=True))
        mean = rows[rows["reader"] == MEAN_OF_READERS]
        if not mean.empty:
            row = mean.iloc[0]
            blocks.append(
                Metrics(
                    (
                        (f"Mean accuracy of {row['readers']} readers", f"{row['accuracy']:.3f}"),
                        ("90% CI (OR)", f"{row['tost_low']:.3f} to {row['tost_high']:.3f}"),
                        ("Conclusion", str(row["conclusion"])),
                    )
                )
            )
        blocks.append(table(compact_equivalence(rows)))
        if note := report.tables.equivalence_notes.get(kind):
            blocks.append(Caption(f"Readers' mean: {note}."))
        blocks.append(Figure(f"equivalence-{kind}", figures.equivalence_forest(equivalence, kind)))
    return tuple(blocks)


def _subgroups(report: StudyReport) -> tuple[Block, ...]:
    blocks: list[Block] = []
    for name, metrics in report.tables.subgroups.items():
        if not metrics.empty:
            blocks += [Heading(SUBGROUP_TITLES[name]), *_metrics(metrics)]
    return tuple(blocks)


def _mrmc(mrmc: MrmcSummary) -> tuple[Block, ...]:
    left_out = f"; {mrmc.block.describe()}" if mrmc.block.describe() else ""
    return (
        Metrics(
            (
                (f"Mean AUC of {len(mrmc.result.readers)} readers", f"{mrmc.fom:.3f}"),
                ("95% CI (Hillis ddf)", f"{mrmc.low:.3f} to {mrmc.high:.3f}"),
                ("p against 0.5", p_text(mrmc.p_vs_chance)),
            )
        ),
        Caption(
            f"SE {mrmc.se:.3f}, df {mrmc.df:.1f}, t = {mrmc.t:.2f}; {mrmc.cases_used} cases "
            f"read by each of the {len(mrmc.block.readers)} readers kept{left_out}."
        ),
        table(mrmc.table),
    )


def _roc(report: StudyReport) -> tuple[Block, ...]:
    tables = report.tables
    if tables.auc.empty and tables.mrmc is None:
        return ()
    blocks: list[Block] = []
    if tables.auc.empty:
        blocks.append(Note(tables.notes.get("roc", "No confidence ratings.")))
    else:
        blocks.append(table(tables.auc))
        if gaps := tables.auc_gaps():
            blocks.append(Caption(gaps))
        blocks += [
            Figure("roc", plots.roc_curves(tables.scores, tables.auc)),
            Figure("auc-forest", plots.auc_forest(tables.auc, tables.mrmc)),
        ]
    blocks.append(Heading("MRMC (Obuchowski-Rockette, random readers and cases)"))
    if tables.mrmc is None:
        blocks.append(Note(tables.notes.get("mrmc", "Not available.")))
    else:
        blocks += _mrmc(tables.mrmc)
    return tuple(blocks)


def _calibration(report: StudyReport) -> tuple[Block, ...]:
    tables = report.tables
    if tables.calibration.empty:
        return ()
    return (
        Caption(
            "Each confidence level states a probability of being right: 0.5 for the lowest "
            "(guessing), 1 for the highest (certain), linearly in between. Brier score: mean "
            "squared difference from being right (1) or wrong (0); ECE: expected calibration "
            "error, one bin per confidence level; overconfidence: mean stated probability "
            "minus accuracy."
        ),
        table(tables.calibration),
        Figure("reliability", figures.reliability_diagram(tables.reliability)),
        Heading("Each confidence level", minor=True),
        table(tables.reliability, shown=RELIABILITY_ROWS_SHOWN),
    )


def _agreement(report: StudyReport) -> tuple[Block, ...]:
    tables = report.tables
    if tables.agreement_pairs.empty and tables.agreement_intra.empty:
        return ()
    blocks: list[Block] = []
    if tables.agreement_pairs.empty:
        blocks.append(Note(tables.notes.get("agreement", "Not available.")))
    else:
        if not tables.agreement_groups.empty:
            blocks += [Heading("Fleiss' kappa"), table(tables.agreement_groups)]
        blocks += [
            Heading("Cohen's kappa per pair of readers"),
            table(tables.agreement_pairs, shown=AGREEMENT_PAIRS_SHOWN),
        ]
    blocks.append(Heading("Intra-reader agreement on repeated cases"))
    if tables.agreement_intra.empty:
        blocks.append(Note("No repeated case was read."))
    else:
        blocks.append(table(tables.agreement_intra))
    return tuple(blocks)


def _realism(report: StudyReport) -> tuple[Block, ...]:
    tables = report.tables
    if tables.likert_distribution.empty:
        return ()
    return (
        Figure("likert", plots.likert_histogram(tables.likert_distribution)),
        *(table(t) for t in (tables.likert_summary, tables.likert_test) if not t.empty),
    )


def _lesions(report: StudyReport) -> tuple[Block, ...]:
    lesions = report.tables.lesion_by_origin
    if lesions.empty:
        return ()
    return (table(lesions), Figure("lesions", plots.lesion_by_origin(lesions)))


def _seed_table(report: StudyReport) -> tuple[Block, ...]:
    if not report.tables.has_seed_cells():
        return ()
    return (
        Caption(
            "Table 4.3 of Saeed et al.: correct/read = accuracy (Wilson 95% interval), exact "
            "binomial p against 0.5."
        ),
        table(report.tables.seed_layout),
    )


def _fool_rate(report: StudyReport) -> tuple[Block, ...]:
    fool_rate = report.tables.fool_rate
    if fool_rate.empty:
        return ()
    return (
        Figure("fool-rate", plots.fool_rate_histogram(fool_rate)),
        table(fool_rate, shown=FOOL_RATE_ROWS_SHOWN, cases="case_id", key="fool"),
        Caption(
            "The most convincing images first (fooled: a synthetic image called real, a real "
            "one called synthetic, or the synthetic side picked in a 2AFC case)."
        ),
    )


def _methods(report: StudyReport) -> tuple[Block, ...]:
    return (
        Caption("A starting point for a paper's methods section; adapt it."),
        *(Paragraph(text) for text in methods_text(report.context, report.tables)),
        *hype_methods(report.hype),
    )


def _phases(report: StudyReport) -> tuple[Block, ...]:
    change = report.tables.phase_change
    if change is None:
        return ()
    return (
        Paragraph(
            "Every image was rated twice by each reader: first uninformed (phase 1, not told "
            "that some images are synthetic), then informed (phase 2, same images in a new "
            "order). Change = informed minus uninformed; per reader with the Wilcoxon "
            "signed-rank test, across readers (random) with a t interval of their mean "
            "changes; 'synthetic minus real' asks whether being told lowered the ratings of "
            "synthetic images more than those of real ones."
        ),
        table(change.summary, key="phase-change"),
        table(change.per_reader, key="phase-change-readers"),
        Figure("phase-change", figures.phase_change_slopes(change.per_reader)),
    )


SECTIONS: tuple[Section, ...] = (
    Section("accuracy", "Accuracy", _accuracy, "No readings.", note="per_reader"),
    Section(
        "equivalence",
        "Indistinguishable?",
        _equivalence,
        "No real/synthetic or 2AFC question was answered.",
        note="equivalence",
    ),
    Section(
        "hype",
        "Timed exposure (HYPE)",
        lambda report: hype_blocks(report.hype),
        "No timed case and no real/synthetic or 2AFC question was answered.",
    ),
    Section("subgroups", "Subgroups", _subgroups, "No readings.", note="per_reader"),
    Section("roc", "ROC and MRMC", _roc, "No confidence ratings.", note="roc"),
    Section(
        "calibration", "Calibration", _calibration, "No confidence ratings.", note="calibration"
    ),
    Section("agreement", "Agreement", _agreement, "Not available.", note="agreement"),
    Section("realism", "Realism", _realism, "No realism ratings.", note="likert"),
    Section("lesions", "Lesions: real vs synthetic", _lesions, "No lesion question was answered."),
    Section(
        "seed-table",
        "Seed study table",
        _seed_table,
        "This study has none of the seed study's tasks (T2W, ADC, T2W-DW pairs).",
    ),
    Section(
        "fool-rate", "Fool rate", _fool_rate, "No real/synthetic or 2AFC question was answered."
    ),
    Section("phases", "Phases", _phases, "The study has no informed phase.", note="phases"),
    Section(
        "localisation",
        "Lesion localisation",
        lambda report: localisation_blocks(report.localisation),
        "The study asks for no lesion marks.",
    ),
    Section(
        "machines",
        "Machine readers",
        machine_blocks,
        "No machine reader: `python -m study add-machine` imports one's scores.",
    ),
    Section("methods", "Methods", _methods, "No answers to describe."),
)
