"""The report section of lesion localisation: what was scored and how, the readers' wAFROC
with the OR interval of their mean per case origin, each reader's wAFROC, AFROC and inferred
ROC AUC, and the wAFROC and FROC curves (`study.localisation_results`)."""

from __future__ import annotations

from study.localisation_plots import curve_figure
from study.localisation_results import LocalisationResults, OriginResult
from study.report.blocks import (
    Block,
    Choice,
    Figure,
    FigureRow,
    Heading,
    Note,
    Paragraph,
    table,
)


def _scored_text(results: LocalisationResults) -> str:
    tables = results.tables
    tolerance = tables.tolerance
    text = (
        f"Marks of '{tables.question}' scored against the lesion outlines: a mark within "
        f"{tolerance['mm']:g} mm of a lesion (within {tolerance['px']:g} pixels on images of "
        "unknown pixel spacing) localises it (LL), one LL per lesion (the highest rating); "
        "every other mark is a non-lesion localisation (NL)."
    )
    if tables.presence_only:
        text += (
            f" {len(tables.presence_only)} case(s) with a lesion but no known outline are scored "
            "for presence only and left out here."
        )
    if tables.no_truth:
        text += f" {len(tables.no_truth)} case(s) without lesion truth are left out."
    return text


def _origin_blocks(results: LocalisationResults, origin: OriginResult) -> list[Block]:
    blocks: list[Block] = [Heading(f"{origin.origin.capitalize()} cases", minor=True)]
    counted = (
        f"{origin.n_cases} case(s) read by all {len(origin.readers)} reader(s) "
        f"({origin.n_abnormal} with {origin.n_lesions} lesion(s))"
    )
    if origin.cases_unread:
        counted += f"; {origin.cases_unread} case(s) not yet read by every reader left out"
    if origin.result is None:
        return [*blocks, Note(f"{counted}. No FROC analysis: {origin.reason}.")]
    mean = origin.result.mrmc.rrrc.treatments[origin.origin]
    if mean.reason:
        interval = f"no interval ({mean.reason})"
    else:
        interval = f"95% CI {mean.low:.3f} to {mean.high:.3f}, df {mean.df:.1f}"
    blocks.append(
        Paragraph(
            f"{counted}. Readers' mean wAFROC {mean.fom:.3f} ({interval}; Obuchowski-Rockette, "
            "random readers and cases, Hillis df). 0.5 is the wAFROC of a reader who marks "
            "nothing; 1 finds every lesion above every false mark."
        )
    )
    rows = results.per_reader[results.per_reader["origin"] == origin.origin]
    blocks.append(
        table(
            rows.drop(columns="origin").rename(
                columns={
                    "wAFROC_low": "wAFROC 95% low",
                    "wAFROC_high": "wAFROC 95% high",
                    "HrAuc": "inferred ROC AUC",
                }
            ),
            key=f"froc-{origin.origin}",
        )
    )
    blocks.append(
        FigureRow(
            tuple(
                Figure(
                    f"{curve}-{origin.origin}", curve_figure(results.curves, curve, origin.origin)
                )
                for curve in ("wAFROC", "FROC", "LROC")
                if (
                    (results.curves["curve"] == curve) & (results.curves["origin"] == origin.origin)
                ).any()
            )
        )
    )
    return blocks


def localisation_blocks(results: LocalisationResults | None) -> tuple[Block, ...]:
    """The section's blocks; none when the study asks for no lesion marks."""
    if results is None:
        return ()
    blocks: list[Block] = [Paragraph(_scored_text(results))]
    if not results.origins:
        return (*blocks, Note("No case with lesion truth and known outlines was read."))
    for origin in results.origins:
        blocks += _origin_blocks(results, origin)
    blocks += [
        Heading("Marks on a case", minor=True),
        Choice(
            "Case",
            "froc-case",
            results.cases,
            lambda case: (Figure(f"froc-case-{case}", results.case_figure(case)),),
        ),
    ]
    return tuple(blocks)
