"""FROC figures of merit (FOM) per treatment x reader, with their jackknife (leave one case
out) values, as RJafroc 2.1.3 defines them (Chakraborty 2017; `UtilFigureOfMerit`).

Notation: K1 normal and K2 abnormal cases, L lesions in all; an unmarked lesion or case counts
as rated -infinity, and psi(x, y) = 1 if x < y, 1/2 if x == y (so also for two unmarked ones),
0 otherwise. z_c is the highest NL rating on case c, y_l the LL rating of lesion l, w_l its
weight (the weights of a case sum to 1).

Pairwise figures (Wilcoxon-type), the jackknife leaves out every case:
- `wAFROC`: sum over normal n and lesions l of w_l psi(z_n, y_l) / (K1 K2).
- `AFROC`: sum over normal n and lesions l of psi(z_n, y_l) / (K1 L).
- `wAFROC1`, `AFROC1`: the same with n running over all K1 + K2 cases (their highest NL mark
  against every lesion, also the case's own), divided by (K1 + K2) K2 and (K1 + K2) L.
- `HrAuc`: the Wilcoxon AUC of the inferred ROC ratings, the highest rating on each case
  (normal: z_n; abnormal: the higher of z_a and its highest LL rating), abnormal against normal.
Counting figures, with the jackknife leaving out only the cases that enter the denominator:
- `MaxLLF`: LL marks / L (abnormal cases left out).
- `MaxNLF`: NL marks on normal cases / K1 (normal cases left out).
- `MaxNLFAllCases`: NL marks on all cases / (K1 + K2) (every case left out).
- `HrSe`: the share of abnormal cases with a mark (abnormal cases left out).
- `HrSp`: the share of normal cases without a mark (normal cases left out).

All of them are one of two forms, which give every leave-one-out value in closed form:
- Pairwise: theta = S / (|N| W), S = sum over comparison cases n in N and positive items p (a
  lesion, or for HrAuc an abnormal case) of w_p psi(z_n, y_p), W = sum of w_p. Leaving out case
  k removes its row of psi (when k is in N) and the columns of its items:
  theta_(k) = (S - row_k - col_k + own_k) / ((|N| - [k in N]) (W - w(k))), own_k being the
  pairs of k's own NL maximum with its own items (counted in both row_k and col_k).
- Ratio: theta = sum_k a_k / sum_k b_k over the left-out cases; theta_(k) = (A - a_k)/(B - b_k).
The old JAFROC names (`wJAFROC`, `JAFROC`, `wJAFROC1`, `JAFROC1`) are accepted as aliases.

References
- Chakraborty DP (2017). Observer Performance Methods for Diagnostic Imaging: Foundations,
  Modeling, and Applications with R-Based Examples. CRC Press.
- Chakraborty DP, Berbaum KS (2004). Observer studies involving detection and localization:
  modeling, analysis, and validation. Medical Physics 31:2313-2330 (JAFROC).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from study.stats import FROC_FOMS, StatsError
from study.stats.froc import FrocData
from study.stats.mrmc import Dropped

ALIASES: dict[str, str] = {
    "wJAFROC": "wAFROC",
    "JAFROC": "AFROC",
    "wJAFROC1": "wAFROC1",
    "JAFROC1": "AFROC1",
}
# The figures that are not proportions: an average number of marks per case.
UNBOUNDED: frozenset[str] = frozenset({"MaxNLF", "MaxNLFAllCases"})
DESCRIPTIONS: dict[str, str] = {
    "wAFROC": "weighted AFROC area (lesions, by weight, against the highest NL mark of each "
    "normal case)",
    "AFROC": "AFROC area (lesions against the highest NL mark of each normal case)",
    "wAFROC1": "weighted AFROC1 area (lesions, by weight, against the highest NL mark of every "
    "case)",
    "AFROC1": "AFROC1 area (lesions against the highest NL mark of every case)",
    "HrAuc": "ROC AUC of the highest rating on each case (inferred ROC)",
    "MaxLLF": "lesion localisation fraction (LL marks / lesions)",
    "MaxNLF": "NL marks per normal case",
    "MaxNLFAllCases": "NL marks per case",
    "HrSe": "share of abnormal cases with a mark (inferred sensitivity)",
    "HrSp": "share of normal cases without a mark (inferred specificity)",
}


@dataclass(frozen=True)
class FrocFom:
    """One figure of merit: `values[t, r]` and `left_out[t, r, k]`, the values with each of
    the k cases that `dropped` names left out in turn (in case order)."""

    name: str
    values: np.ndarray
    left_out: np.ndarray
    dropped: Dropped
    bounds: tuple[float, float] | None


def fom_name(name: str) -> str:
    """The canonical name of a figure of merit, aliases and any letter case accepted."""
    known = {n.lower(): n for n in FROC_FOMS} | {a.lower(): n for a, n in ALIASES.items()}
    if name.lower() not in known:
        raise StatsError(
            f"the FROC figure of merit is one of {', '.join(FROC_FOMS)} (or {', '.join(ALIASES)}), "
            f"not {name!r}"
        )
    return known[name.lower()]


def _psi(negative: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """psi[..., n, p] = 1 if negative[n] < positive[p], 1/2 if equal (also -inf, -inf)."""
    x, y = negative[..., :, None], positive[..., None, :]
    return (x < y) + 0.5 * (x == y)


def _pairwise(
    z: np.ndarray,
    comparison: np.ndarray,
    y: np.ndarray,
    owner: np.ndarray,
    weight: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Values and every-case leave-one-out values of S / (|N| W) (module docstring).

    `z[t, r, c]`: score of case c as a comparison case, used where `comparison[c]`;
    `y[t, r, p]`: score of positive item p, owned by case `owner[p]` with weight `weight[p]`.
    """
    cases = z.shape[-1]
    in_n = comparison.astype(float)
    owns = np.zeros((len(owner), cases))
    owns[np.arange(len(owner)), owner] = 1.0
    weighted = _psi(z, y) * weight  # [t, r, c, p]
    row = weighted.sum(axis=3)  # [t, r, c]: case c against every item
    per_item = np.einsum("trcp,c->trp", weighted, in_n)  # each item against all of N
    total = per_item.sum(axis=2)
    column = per_item @ owns  # [t, r, c]: the items of case c against all of N
    own = np.einsum("trcp,pc->trc", weighted, owns)  # case c against its own items
    n_size, w_size = in_n.sum(), weight.sum()
    w_case = weight @ owns
    values = total / (n_size * w_size)
    left_out = (total[..., None] - in_n * (row - own) - column) / (
        (n_size - in_n) * (w_size - w_case)
    )
    return values, left_out


def _ratio(
    numerator: np.ndarray, denominator: np.ndarray, dropped: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Values of sum a / sum b over the cases in `dropped`, and each of them left out."""
    a, b = numerator[..., dropped], denominator[dropped]
    total_a, total_b = a.sum(axis=-1), b.sum()
    return total_a / total_b, (total_a[..., None] - a) / (total_b - b)


def _needs(data: FrocData, name: str, normal: int, abnormal: int) -> None:
    k2 = int(data.abnormal.sum())
    k1 = len(data.cases) - k2
    if k1 < normal or k2 < abnormal or k1 + k2 < 2:
        raise StatsError(
            f"the jackknife of {name} needs at least {normal} normal and {abnormal} abnormal "
            f"cases, two in all; the truth has {k1} and {k2}"
        )


def _afroc(
    data: FrocData, name: str, *, weighted: bool, all_cases: bool
) -> tuple[np.ndarray, np.ndarray]:
    _needs(data, name, 0 if all_cases else 2, 2)
    truth = data.truth
    weight = truth.lesion_weight if weighted else np.ones(len(truth.lesion_case))
    comparison = np.ones(len(truth.cases), bool) if all_cases else ~truth.abnormal
    return _pairwise(data.nl_max, comparison, data.ll, truth.lesion_case, weight)


def _highest_rating(data: FrocData) -> np.ndarray:
    """The inferred ROC rating of each case: its highest mark, NL or LL (-inf: none)."""
    highest = data.nl_max.copy()
    np.maximum.at(highest, (..., data.truth.lesion_case), data.ll)
    return highest


def _hr_auc(data: FrocData) -> tuple[np.ndarray, np.ndarray]:
    _needs(data, "HrAuc", 2, 2)
    highest = _highest_rating(data)
    abnormal = np.flatnonzero(data.abnormal)
    return _pairwise(
        highest, ~data.abnormal, highest[..., abnormal], abnormal, np.ones(len(abnormal))
    )


def _lesions_marked(data: FrocData) -> np.ndarray:
    """LL marks per case [t, r, c]."""
    owns = np.zeros((len(data.truth.lesion_case), len(data.cases)))
    owns[np.arange(len(data.truth.lesion_case)), data.truth.lesion_case] = 1.0
    return np.isfinite(data.ll) @ owns


def _max_llf(data: FrocData) -> tuple[np.ndarray, np.ndarray]:
    _needs(data, "MaxLLF", 0, 2)
    return _ratio(_lesions_marked(data), data.truth.lesions.astype(float), data.abnormal)


def _max_nlf(data: FrocData) -> tuple[np.ndarray, np.ndarray]:
    _needs(data, "MaxNLF", 2, 0)
    ones = np.ones(len(data.cases))
    return _ratio(data.nl_count.astype(float), ones, ~data.abnormal)


def _max_nlf_all_cases(data: FrocData) -> tuple[np.ndarray, np.ndarray]:
    _needs(data, "MaxNLFAllCases", 0, 0)
    ones = np.ones(len(data.cases))
    return _ratio(data.nl_count.astype(float), ones, ones.astype(bool))


def _hr_se(data: FrocData) -> tuple[np.ndarray, np.ndarray]:
    _needs(data, "HrSe", 0, 2)
    marked = np.isfinite(_highest_rating(data)).astype(float)
    return _ratio(marked, np.ones(len(data.cases)), data.abnormal)


def _hr_sp(data: FrocData) -> tuple[np.ndarray, np.ndarray]:
    _needs(data, "HrSp", 2, 0)
    unmarked = np.isneginf(data.nl_max).astype(float)
    return _ratio(unmarked, np.ones(len(data.cases)), ~data.abnormal)


_FIGURES: dict[str, tuple[Callable[[FrocData], tuple[np.ndarray, np.ndarray]], Dropped]] = {
    "wAFROC": (lambda data: _afroc(data, "wAFROC", weighted=True, all_cases=False), "all"),
    "AFROC": (lambda data: _afroc(data, "AFROC", weighted=False, all_cases=False), "all"),
    "wAFROC1": (lambda data: _afroc(data, "wAFROC1", weighted=True, all_cases=True), "all"),
    "AFROC1": (lambda data: _afroc(data, "AFROC1", weighted=False, all_cases=True), "all"),
    "HrAuc": (_hr_auc, "all"),
    "MaxLLF": (_max_llf, "positive"),
    "MaxNLF": (_max_nlf, "negative"),
    "MaxNLFAllCases": (_max_nlf_all_cases, "all"),
    "HrSe": (_hr_se, "positive"),
    "HrSp": (_hr_sp, "negative"),
}


def froc_fom(data: FrocData, name: str = "wAFROC") -> FrocFom:
    """The figure of merit `name` (or an alias) of every treatment x reader, with its
    jackknife values (module docstring)."""
    canonical = fom_name(name)
    compute, dropped = _FIGURES[canonical]
    values, left_out = compute(data)
    bounds = None if canonical in UNBOUNDED else (0.0, 1.0)
    return FrocFom(canonical, values, left_out, dropped, bounds)
