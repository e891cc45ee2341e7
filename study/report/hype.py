"""The report section of timed exposure (HYPE, `study.hype_results`): the results in plain
words, each reader's perceptual threshold and HYPE-time per staircase block with the
staircases drawn, the error rates untimed (HYPE-infinity) and at each fixed exposure, and how
faithfully the browsers showed the timed images."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from study.hype_plots import staircase_figure
from study.hype_results import HypeResults
from study.report.blocks import Block, Caption, Figure, Heading, Note, Paragraph, table
from study.reports import KIND_TITLES
from study.stats.hype import BOOTSTRAP_RESAMPLES

INTRODUCTION = (
    "HYPE (Zhou et al. 2019) asks how long a reader must see an image to tell real from "
    "synthetic, and how often they are wrong. In a staircase block each reader's exposure "
    "starts at the block's exposure and is one step shorter after a right answer and three "
    "steps longer after a wrong one, so it settles where the reader is right three times in "
    "four; the exposure a reader was shown most often (the mean of the tied ones) is their "
    "perceptual threshold, and HYPE-time is the mean of the readers' thresholds. "
    "HYPE-infinity is the error rate with no time limit. A longer HYPE-time, or an error rate "
    "nearer 50% (chance), means images that are harder to tell from real ones."
)
_STAIRCASE_METHODS = (
    "In staircase blocks each reader's threshold is the modal exposure of their trials (ties: "
    "the mean of the tied modes), with a percentile bootstrap interval over their trials; "
    "HYPE-time is the mean of the readers' thresholds with a percentile bootstrap interval over "
    "readers. "
)
_ERROR_METHODS = (
    "Error rates of real/synthetic calls, untimed (HYPE-infinity) and at each fixed exposure, "
    "are given per reader with exact Clopper-Pearson intervals and as the mean of the readers "
    "with a percentile bootstrap interval over readers, overall and on real and synthetic "
    "images apart. "
)
_BOOTSTRAP_METHODS = (
    f"Bootstraps: scipy.stats.bootstrap, {BOOTSTRAP_RESAMPLES} resamples, seeded with the "
    "study's seed."
)


def _ms(estimate: float, low: float, high: float) -> str:
    if math.isnan(low):
        return f"{estimate:g} (no interval)"
    return f"{estimate:g} ({low:g}-{high:g})"


def _rate(estimate: float, low: float, high: float) -> str:
    if math.isnan(estimate):
        return ""
    if math.isnan(low):
        return f"{estimate:.3f} (no interval)"
    return f"{estimate:.3f} ({low:.3f}-{high:.3f})"


def _cells(rows: pd.DataFrame, names: tuple[str, ...], text: Callable[..., str]) -> list[str]:
    """One text per row of `rows`, `text` applied to the row's values of `names`."""
    return [text(*values) for values in rows[list(names)].itertuples(index=False, name=None)]


def _whole(ms: float) -> str:
    return "" if math.isnan(ms) else f"{ms:g}"


def _count(wrong: int, n: int) -> str:
    return f"{wrong}/{n}" if n else ""


def _thresholds(results: HypeResults) -> pd.DataFrame:
    rows = results.thresholds
    return pd.DataFrame(
        {
            "block": rows["block"],
            "reader": rows["reader"],
            "right / trials": _cells(rows, ("right", "trials"), "{}/{}".format),
            "threshold ms (95% CI)": _cells(
                rows, ("threshold_ms", "threshold_low_ms", "threshold_high_ms"), _ms
            ),
            "longest ms": rows["max_ms"].map(_whole),
            "threshold": rows["outcome"],
        }
    )


def _hype_time(results: HypeResults) -> pd.DataFrame:
    rows = results.hype_time
    return pd.DataFrame(
        {
            "block": rows["block"],
            "readers": rows["readers"],
            "HYPE-time ms (95% CI)": _cells(
                rows, ("hype_time_ms", "hype_time_low_ms", "hype_time_high_ms"), _ms
            ),
            "thresholds not reached": rows["not_reached"],
            "longest ms": rows["max_ms"].map(_whole),
        }
    )


def _error_rates(results: HypeResults) -> pd.DataFrame:
    rows = results.error_rates
    columns: dict[str, object] = {
        "exposure": rows["exposure"],
        "question": rows["question_kind"].map(lambda kind: KIND_TITLES.get(kind, kind)),
        "reader": rows["reader"],
    }
    for suffix, title in (("", "all"), ("_real", "real"), ("_synthetic", "synthetic")):
        columns[f"{title}: wrong / n"] = _cells(rows, (f"wrong{suffix}", f"n{suffix}"), _count)
        columns[f"{title}: error rate (95% CI)"] = _cells(
            rows,
            (f"error_rate{suffix}", f"error_low{suffix}", f"error_high{suffix}"),
            _rate,
        )
    columns["interval"] = rows["interval"]
    return pd.DataFrame(columns)


def _shown(results: HypeResults) -> pd.DataFrame:
    return results.shown.rename(
        columns={
            "timed_cases": "timed cases",
            "measured": "measured",
            "median_abs_difference_ms": "median |shown - exposure| ms",
            "max_abs_difference_ms": "largest |shown - exposure| ms",
        }
    )


def hype_blocks(results: HypeResults | None) -> tuple[Block, ...]:
    """The section's blocks; none when the study has no timed case and no real/synthetic
    answer."""
    if results is None:
        return ()
    blocks: list[Block] = [
        Paragraph(INTRODUCTION),
        *(Paragraph(sentence) for sentence in results.summary()),
    ]
    if not results.thresholds.empty:
        blocks += [
            Heading("HYPE-time: perceptual thresholds"),
            Caption(
                "Threshold: the reader's modal exposure, with a 95% percentile bootstrap "
                "interval over their trials. Not reached: the staircase dwelt most at its "
                "longest exposure, so the reader could not tell the images apart even then. "
                "HYPE-time: the mean of the readers' thresholds, 95% bootstrap interval over "
                "readers; a threshold not reached counts at the longest exposure. Blocks are "
                "numbered in the order of the study's plan."
            ),
            table(_hype_time(results), key="hype-time"),
            table(_thresholds(results), key="hype-thresholds"),
            *(
                Figure(
                    f"hype-staircase-{block}",
                    staircase_figure(results.trials, results.thresholds, block),
                )
                for block in results.hype_time["block"]
            ),
        ]
    blocks.append(Heading("Error rates: untimed (HYPE-infinity) and at fixed exposures"))
    if results.error_rates.empty:
        blocks.append(Note("No real/synthetic call on an untimed or fixed-exposure case."))
    else:
        blocks += [
            Caption(
                "Share of wrong calls, overall and on real and synthetic images apart; 0.5 is "
                "chance. Readers: exact Clopper-Pearson intervals; their mean: percentile "
                "bootstrap over readers, counts summed."
            ),
            table(_error_rates(results), key="hype-error-rates"),
        ]
    if not results.shown.empty:
        blocks += [
            Heading("Shown durations"),
            Caption(
                "How long the readers' browsers showed the timed images against the exposure "
                "asked for (from the first painted frame to the frame that painted the mask)."
            ),
            table(_shown(results), key="hype-shown"),
        ]
    return tuple(blocks)


def hype_methods(results: HypeResults | None) -> tuple[Block, ...]:
    """The methods paragraph of the analyses these answers allowed (none without)."""
    if results is None or (results.thresholds.empty and results.error_rates.empty):
        return ()
    text = (_STAIRCASE_METHODS if not results.thresholds.empty else "") + (
        _ERROR_METHODS if not results.error_rates.empty else ""
    )
    return (Paragraph("Timed exposure (HYPE, Zhou et al. 2019). " + text + _BOOTSTRAP_METHODS),)
