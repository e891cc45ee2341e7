"""Radiologists vs the machine: the readers' mean AUC minus the machine's, readers random.

The machine is a fixed comparator (one algorithm, not a sample of readers), the radiologists a
random sample of readers, and the cases random. Each reader's difference from the machine,
d_j = AUC_j - AUC_machine, is one figure of merit per reader of a single "treatment"; its
leave-one-case-out values d_j(k) = AUC_j(k) - AUC_machine(k) carry the case variation of both.
The Obuchowski-Rockette single-treatment analysis of d (random readers and cases: standard
error sqrt[(MS(R) + r max(Cov2, 0)) / r] with Hillis's df, `study.stats.mrmc`) then tests
mean(d) = 0. This is the single-modality random-reader random-case ("1T-RRRC") analysis of
RJafroc's `StSignificanceTestingCadVsRad` (`avgDiffFom`, `ciAvgDiffFom`, `tstat`, `pval`):
Chakraborty DP (2017), Observer Performance Methods for Diagnostic Imaging, CRC Press, chapter
"Standalone CAD vs. radiologists".

AUCs are the empirical (trapezoidal) areas with synthetic as the positive class; a reader's
rating is the ordinal score of their call and confidence, the machine's its score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from study.stats import StatsError
from study.stats.mrmc import Estimate, MrmcData, jackknife_foms, or_from_jackknife


@dataclass(frozen=True)
class MachineComparison:
    readers: tuple[str, ...]
    reader_aucs: np.ndarray
    machine_auc: float
    # The readers' mean AUC minus the machine's, with its RRRC interval and test.
    difference: Estimate
    t: float
    p: float
    n_cases: int


def readers_vs_machine(
    humans: MrmcData, machine_scores: np.ndarray, *, confidence: float = 0.95
) -> MachineComparison:
    """Compare the readers of `humans` (one treatment, every reader on every case) with a
    machine that scored the same cases (`machine_scores`, in `humans.cases` order)."""
    if humans.ratings.shape[0] != 1:
        raise StatsError("readers are compared with the machine under one treatment")
    scores = np.asarray(machine_scores, dtype=float)
    if scores.shape != (len(humans.cases),) or not np.isfinite(scores).all():
        raise StatsError(
            f"the machine needs one finite score per case: {len(humans.cases)}, not "
            f"{scores.shape[0] if scores.ndim == 1 else scores.shape}"
        )
    reader_foms, reader_left = jackknife_foms(humans)
    machine = MrmcData(
        treatments=humans.treatments,
        readers=("machine",),
        cases=humans.cases,
        truth=humans.truth,
        ratings=scores[None, None, :],
    )
    machine_foms, machine_left = jackknife_foms(machine)
    differences = reader_foms - machine_foms[:, :1]
    left_out = reader_left - machine_left[:, :1, :]
    result = or_from_jackknife(
        differences,
        left_out,
        treatments=("readers minus machine",),
        readers=humans.readers,
        metric="auc difference",
        n_cases=len(humans.cases),
        n_positive=int(humans.truth.sum()),
        jackknife="all_cases",
        dropped="all",
        confidence=confidence,
        bounds=(-1.0, 1.0),
    )
    estimate = result.rrrc.treatments["readers minus machine"]
    if estimate.se > 0 and math.isfinite(estimate.df):
        t = estimate.fom / estimate.se
        p = float(2 * stats.t.sf(abs(t), estimate.df))
    else:
        t, p = math.nan, math.nan
    return MachineComparison(
        readers=humans.readers,
        reader_aucs=reader_foms[0],
        machine_auc=float(machine_foms[0, 0]),
        difference=estimate,
        t=t,
        p=p,
        n_cases=len(humans.cases),
    )
