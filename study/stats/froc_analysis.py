"""Obuchowski-Rockette analysis of an FROC figure of merit, as RJafroc 2.1.3's
`St(dataset, FOM, method = "OR")`: the FOM of every treatment x reader and its jackknife values
(`study.stats.froc_foms`) go through the same OR code as the ROC AUC
(`study.stats.mrmc.or_from_jackknife`: jackknife covariances, Hillis 2007 ddf).

`froc_json` is the `python -m study froc --json` object: the figure of merit per reader, and the
random-reader random-case test of equal treatment means under "or", in RJafroc's names (F, ndf,
ddf, p, the difference of the first two treatments with its SE, t and interval, treatment
means, mean squares ms, variance components var_comp, per-treatment intervals trt_ci).
On RJafroc's Thompson data it reproduces RJafroc to about 1e-12 (tests/study/stats/test_froc.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from study.stats.froc import FrocData
from study.stats.froc_foms import DESCRIPTIONS, FrocFom, froc_fom
from study.stats.mrmc import MrmcResult, format_report, or_from_jackknife

# The JSON and report name of each left-out case set.
JACKKNIFE_NAMES: dict[str, str] = {
    "all": "all_cases",
    "positive": "abnormal_cases",
    "negative": "normal_cases",
}


@dataclass(frozen=True)
class FrocResult:
    fom: FrocFom
    mrmc: MrmcResult
    n_lesions: int


def froc_analysis(data: FrocData, fom: str = "wAFROC", *, confidence: float = 0.95) -> FrocResult:
    """The figure of merit `fom` of `data` and its OR analyses (random readers and cases,
    fixed readers, fixed cases)."""
    figure = froc_fom(data, fom)
    result = or_from_jackknife(
        figure.values,
        figure.left_out,
        treatments=data.treatments,
        readers=data.readers,
        metric=figure.name,
        n_cases=len(data.cases),
        n_positive=int(data.abnormal.sum()),
        jackknife=JACKKNIFE_NAMES[figure.dropped],
        dropped=figure.dropped,
        confidence=confidence,
        bounds=figure.bounds,
    )
    return FrocResult(figure, result, len(data.truth.lesion_case))


def _number(value: float) -> float | None:
    """JSON has no nan or infinity: an undefined or unbounded value becomes null."""
    return float(value) if math.isfinite(value) else None


def froc_json(result: FrocResult) -> dict[str, object]:
    """The `python -m study froc --json` object (module docstring); numbers unrounded,
    undefined ones null with a `reason`. `diff*` are the first treatment minus the second when
    there are exactly two treatments (null otherwise); `differences` lists every pair."""
    mrmc = result.mrmc
    rrrc = mrmc.rrrc
    components = mrmc.components
    first = rrrc.differences[0] if len(mrmc.treatments) == 2 else None
    return {
        "fom": result.fom.name,
        "fom_value": float(mrmc.foms.mean()),
        "n_treatments": len(mrmc.treatments),
        "n_readers": len(mrmc.readers),
        "n_cases": mrmc.n_cases,
        "n_abnormal": mrmc.n_positive,
        "n_normal": mrmc.n_cases - mrmc.n_positive,
        "n_lesions": result.n_lesions,
        "jackknife": mrmc.jackknife,
        "n_jackknife": mrmc.n_jackknife,
        "per_reader": [
            {"treatment": treatment, "reader": reader, "fom": float(mrmc.foms[i, j])}
            for i, treatment in enumerate(mrmc.treatments)
            for j, reader in enumerate(mrmc.readers)
        ],
        "or": {
            "analysis": "RRRC",
            "alpha": 1 - mrmc.confidence,
            "F": _number(rrrc.statistic),
            "ndf": rrrc.df1 if len(mrmc.treatments) > 1 else None,
            "ddf": _number(rrrc.df2),
            "p": _number(rrrc.p),
            "reason": rrrc.reason,
            "diff_treatments": [first.first, first.second] if first else None,
            "diff": _number(first.estimate) if first else None,
            "diff_stderr": _number(first.se) if first else None,
            "diff_t": _number(first.statistic) if first else None,
            "diff_ci": [_number(first.low), _number(first.high)] if first else None,
            "differences": [
                {
                    "treatments": [d.first, d.second],
                    "diff": _number(d.estimate),
                    "stderr": _number(d.se),
                    "t": _number(d.statistic),
                    "df": _number(d.df),
                    "p": _number(d.p),
                    "ci": [_number(d.low), _number(d.high)],
                    "reason": d.reason,
                }
                for d in rrrc.differences
            ],
            "treatment_means": {
                name: float(mrmc.foms[i].mean()) for i, name in enumerate(mrmc.treatments)
            },
            "ms": {
                "T": _number(mrmc.anova.ms_t),
                "R": _number(mrmc.anova.ms_r),
                "TR": _number(mrmc.anova.ms_tr),
            },
            "var_comp": {
                "VarR": _number(components.var_r),
                "VarTR": _number(components.var_tr),
                "Cov1": _number(components.cov1),
                "Cov2": _number(components.cov2),
                "Cov3": _number(components.cov3),
                "Var": _number(components.var_error),
            },
            "trt_ci": [
                {
                    "treatment": name,
                    "estimate": _number(e.fom),
                    "stderr": _number(e.se),
                    "df": _number(e.df),
                    "ci": [_number(e.low), _number(e.high)],
                    "reason": e.reason,
                }
                for name, e in rrrc.treatments.items()
            ],
        },
    }


def format_froc_report(result: FrocResult, *, source: str = "") -> str:
    """A readable account of `froc_analysis`'s result (the OR report of `mrmc`)."""
    name = result.fom.name
    return format_report(
        result.mrmc,
        source=source,
        described=f"{name}, {DESCRIPTIONS[name]}; {result.n_lesions} lesions",
        classes=("abnormal", "normal"),
    )
