"""The report section of machine readers: each machine's AUC and accuracy, and the people
compared with it (`study.machine_results`)."""

from __future__ import annotations

from study.machine_results import MachineSummary, machine_table
from study.report.blocks import Block, Caption, Paragraph, table
from study.report.model import StudyReport


def _sentence(summary: MachineSummary) -> str:
    comparison = summary.comparison
    if comparison is None:
        return f"{summary.machine}: no comparison with the readers ({summary.note})."
    d = comparison.difference
    interval = f"no interval ({d.reason})" if d.reason else f"95% CI {d.low:.3f} to {d.high:.3f}"
    text = (
        f"{summary.machine}: the readers' mean AUC minus the machine's is {d.fom:+.3f} "
        f"({interval}; t = {comparison.t:.2f}, df {d.df:.1f}, p = {comparison.p:.3g}) on "
        f"{comparison.n_cases} cases and {len(comparison.readers)} readers."
    )
    if summary.note:
        text += f" The comparison {summary.note}."
    return text


def machine_blocks(report: StudyReport) -> tuple[Block, ...]:
    """The section's blocks; none without a machine reader."""
    if not report.machines:
        return ()
    blocks: list[Block] = [
        Paragraph(
            "A machine reader's scores (higher: more likely synthetic) give its ROC AUC with "
            "DeLong's interval; its calls at the import's threshold give its accuracy. "
            "Radiologists vs the machine is a random-reader, random-case analysis of the people "
            "with the "
            "machine as a fixed comparator: each reader's AUC minus the machine's, on the cases "
            "both rated, Obuchowski-Rockette single-treatment analysis with Hillis df (as "
            "RJafroc's StSignificanceTestingCadVsRad, method 1T-RRRC). Machine readers are left "
            "out of every other table unless the filter includes them."
        ),
        table(machine_table(report.machines), key="machines"),
    ]
    blocks += [Caption(_sentence(summary)) for summary in report.machines]
    return tuple(blocks)
