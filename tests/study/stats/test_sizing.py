"""Sizing from a pilot against RJafroc's documented numbers on the Van Dyke data (dataset02),
the identities that tie the sizing formulas to the OR analysis of `study.stats.mrmc`, a Monte
Carlo check of the one-treatment (Visual Turing Test) power, and accuracy's jackknife.

RJafroc's numbers, with the observed effect of treatment 0 minus treatment 1 (-0.043800322):
- vignette "Chapter 11, Vignette 4: RJafroc functions for ROC sample size estimation using ORH
  method" (RJafroc 1.2, 2019-10-31): SsPowerGivenJK(dataset02, J = 6, K = 251, ORH, RRRC)
  gives power 0.8005403, ncp 8.91, ddf 16.1, F 4.49; SsPowerTable(dataset02, ORH, RRRC) the
  table below; SsSampleSizeKGivenJ(dataset02, J = 10, ORH) 163 cases (power 0.8015625) for
  RRRC and 53 (0.8049666) for RRFC;
- tests/testthat of RJafroc 2.x ("after updating Ss routines from Hillis 2011 and 2018
  papers", where FRRC is a chi-square test): SsPowerGivenJK(dataset02, OR, J = 10) gives
  0.80541995 (RRRC, K = 165), 0.80091813 (FRRC, K = 131), 0.80496663 (RRFC, K = 53);
  SsPowerGivenJK(J = 6, K = 111) 0.5526116; SsSampleSizeKGivenJ(J = 6) 251 cases;
- the OR variance components of dataset02 as SsPowerGivenJK's example 4A prints them.
"""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from study.stats import StatsError, sizing
from study.stats.mrmc import MrmcData, mrmc_data, obuchowski_rockette, read_mrmc_csv
from study.stats.sizing import (
    NoVarianceError,
    PilotVariance,
    cases_needed,
    limit_power,
    power_curve,
    power_given,
    sizing_table,
    table_frame,
)
from study.stats.sizing_pilot import accuracy_jackknife, pilot_from_data, pilot_json

# The size of the observed effect (RJafroc squares it; here an effect is positive).
OBSERVED = 0.043800322
# SsPowerGivenJK's example 4A: the OR components of dataset02 (114 cases).
EXAMPLE_4A = PilotVariance(
    n_cases=114,
    n_treatments=2,
    var_r=math.nan,
    var_tr=0.00020040252,
    cov1=0.00034661371,
    cov2=0.00034407483,
    cov3=0.00023902837,
    var_error=0.00080228827,
)
# SsPowerTable(dataset02, FOM = "Wilcoxon", method = "ORH", option = "RRRC"): readers, cases,
# power (signif(power, 3)); RJafroc prints ">2000" and NA for 3 readers.
POWER_TABLE = """
4 1089 0.8    5 344 0.801   6 251 0.801   7 211 0.801   8 188 0.801   9 173 0.801
10 163 0.802  11 155 0.801  12 149 0.802  13 144 0.801  14 140 0.802  15 137 0.802
16 134 0.802  17 131 0.801  18 129 0.801  19 127 0.801  20 126 0.802  21 124 0.801
22 123 0.802  23 122 0.802  24 121 0.803  25 120 0.802  26 119 0.802  27 118 0.802
28 117 0.801  29 117 0.803  30 116 0.802  31 115 0.801  32 115 0.803  33 114 0.801
34 114 0.803  35 113 0.801  36 113 0.802  37 112 0.8    38 112 0.802  39 112 0.803
40 111 0.801  41 111 0.802  42 111 0.803  43 110 0.801  44 110 0.802  45 110 0.802
46 110 0.803  47 109 0.801  48 109 0.802  49 109 0.802  50 109 0.803  51 108 0.8
52 108 0.801  53 108 0.802  54 108 0.802  55 108 0.803  56 107 0.8    57 107 0.801
58 107 0.801  59 107 0.802  60 107 0.802  61 107 0.803  62 107 0.803  63 106 0.8
64 106 0.801  65 106 0.801  66 106 0.802  67 106 0.802  68 106 0.802  69 106 0.803
70 106 0.803  71 106 0.804  72 105 0.8    73 105 0.801  74 105 0.801  75 105 0.801
76 105 0.802  77 105 0.802  78 105 0.802  79 105 0.803  80 105 0.803  81 105 0.803
82 105 0.803  83 104 0.8    84 104 0.8    85 104 0.801  86 104 0.801  87 104 0.801
88 104 0.801  89 104 0.802  90 104 0.802  91 104 0.802  92 104 0.802  93 104 0.802
94 104 0.803  95 104 0.803  96 104 0.803  97 104 0.803  98 104 0.804  99 104 0.804
100 103 0.8
"""


def rounds_to(value: float, shown: str) -> bool:
    """`value` prints as `shown` to its digits (within half a unit of the last place)."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(value - float(shown)) <= 0.5 * 10**-decimals * (1 + 1e-9)


@pytest.fixture(scope="module")
def vandyke(shared_data: Path) -> MrmcData:
    return read_mrmc_csv(shared_data / "mrmc" / "vandyke.csv")


def test_docstring_examples_run() -> None:
    assert doctest.testmod(sizing).failed == 0


def test_power_given_j_and_k_as_rjafroc_prints_it() -> None:
    power = power_given(EXAMPLE_4A, readers=6, cases=251, effect=OBSERVED)
    assert rounds_to(power.power, "0.8005403")
    assert (f"{power.ncp:.3g}", f"{power.ddf:.3g}", f"{power.critical:.3g}") == (
        "8.91",
        "16.1",
        "4.49",
    )
    assert rounds_to(
        power_given(EXAMPLE_4A, readers=6, cases=111, effect=OBSERVED).power, "0.5526116"
    )
    # Fixed readers: a chi-square test (no denominator degrees of freedom).
    frrc = power_given(EXAMPLE_4A, readers=10, cases=131, effect=OBSERVED, generalization="frrc")
    assert math.isinf(frrc.ddf) and frrc.critical == pytest.approx(stats.chi2.ppf(0.95, 1))


def test_cases_needed_given_j_as_rjafroc_finds_them() -> None:
    rrrc = cases_needed(EXAMPLE_4A, readers=10, effect=OBSERVED)
    assert rrrc.cases == 163 and rounds_to(rrrc.power, "0.8015625")
    rrfc = cases_needed(EXAMPLE_4A, readers=10, effect=OBSERVED, generalization="rrfc")
    assert rrfc.cases == 53 and rounds_to(rrfc.power, "0.8049666")
    assert cases_needed(EXAMPLE_4A, readers=6, effect=OBSERVED).cases == 251
    # The smallest such K: one case fewer falls short.
    for needed in (
        rrrc,
        rrfc,
        cases_needed(EXAMPLE_4A, readers=10, effect=OBSERVED, generalization="frrc"),
    ):
        below = power_given(
            EXAMPLE_4A,
            readers=10,
            cases=needed.cases - 1,
            effect=OBSERVED,
            generalization=needed.generalization,
        )
        assert below.power < 0.8 <= needed.power


def test_power_table_is_rjafrocs() -> None:
    numbers = POWER_TABLE.split()
    expected = {
        int(j): (int(k), shown)
        for j, k, shown in zip(numbers[::3], numbers[1::3], numbers[2::3], strict=True)
    }
    rows = sizing_table(
        EXAMPLE_4A, effect=OBSERVED, readers=range(3, 101), generalizations=("rrrc",)
    )
    assert [row.readers for row in rows] == list(range(3, 101))
    # 3 readers: RJafroc gives up after 2000 cases; they cannot reach 0.8 at any number.
    assert rows[0].cases is None and "cannot reach power 0.8" in rows[0].reason
    assert limit_power(EXAMPLE_4A, readers=3, effect=OBSERVED) < 0.8
    for row in rows[1:]:
        cases, shown = expected[row.readers]
        assert (row.cases, f"{row.power:.3g}") == (cases, shown), row
    frame = table_frame(rows)
    assert list(frame.columns) == ["readers", "rrrc_cases", "rrrc_power"]
    assert frame["rrrc_cases"].isna().tolist() == [True] + [False] * 97
    assert frame.loc[frame["readers"] == 6, "rrrc_cases"].item() == 251


def test_pilot_from_the_van_dyke_data_has_rjafrocs_components(vandyke: MrmcData) -> None:
    pilot = pilot_from_data(vandyke, "auc", source="vandyke.csv")
    v = pilot.variance
    for value, shown in (
        (v.var_tr, "0.00020040252"),
        (v.cov1, "0.00034661371"),
        (v.cov2, "0.00034407483"),
        (v.cov3, "0.00023902837"),
        (v.var_error, "0.00080228827"),
    ):
        assert rounds_to(value, shown), (value, shown)
    assert (v.n_cases, v.n_treatments) == (114, 2)
    assert rounds_to(pilot.observed_effect, "-0.043800322")  # treatment 0 minus 1
    assert cases_needed(v, readers=10, effect=-pilot.observed_effect).cases == 163
    # RJafroc 2.x's tests give these to 8 digits, from the unrounded components.
    for generalization, cases, shown in (
        ("rrrc", 165, "0.80541995"),
        ("frrc", 131, "0.80091813"),
        ("rrfc", 53, "0.80496663"),
    ):
        value = power_given(
            v, readers=10, cases=cases, effect=OBSERVED, generalization=generalization
        ).power
        assert rounds_to(value, shown), (generalization, value, shown)
    document = pilot_json(pilot)
    assert document["n_readers"] == 5 and document["n_positive"] == 45
    assert document["variance_components"]["var_tr"] == v.var_tr


def test_at_the_pilots_own_size_sizing_gives_the_or_analysis_variances(
    vandyke: MrmcData,
) -> None:
    """With J and K of the pilot itself, den and ddf are the error terms and Hillis ddf of the OR
    analysis: sizing and the test it sizes agree (two treatments, and one)."""
    result = obuchowski_rockette(vandyke, "auc")
    pilot = pilot_from_data(vandyke, "auc").variance
    power = power_given(pilot, readers=5, cases=114, effect=0.05)
    assert power.ncp == pytest.approx(0.05**2 / result.rrrc.differences[0].se ** 2, rel=1e-12)
    assert power.ddf == pytest.approx(result.rrrc.df2, rel=1e-12)
    frrc = power_given(pilot, readers=5, cases=114, effect=0.05, generalization="frrc")
    assert frrc.ncp == pytest.approx(0.05**2 / result.frrc.differences[0].se ** 2, rel=1e-12)
    rrfc = power_given(pilot, readers=5, cases=114, effect=0.05, generalization="rrfc")
    assert rrfc.ncp == pytest.approx(0.05**2 / result.rrfc.differences[0].se ** 2, rel=1e-12)

    # One treatment: the test of the mean AUC against a fixed value (Hillis 2007).
    frame = pd.DataFrame(
        {
            "reader": np.repeat(vandyke.readers, len(vandyke.cases)),
            "treatment": "0",
            "case": np.tile(vandyke.cases, len(vandyke.readers)),
            "truth": np.tile(vandyke.truth.astype(int), len(vandyke.readers)),
            "rating": vandyke.ratings[0].ravel(),
        }
    )
    single = mrmc_data(frame)
    one = obuchowski_rockette(single, "auc")
    pilot = pilot_from_data(single, "auc").variance
    assert pilot.n_treatments == 1 and pilot.var_r > 0 and pilot.cov2 > 0
    estimate = one.rrrc.treatments["0"]
    power = power_given(pilot, readers=5, cases=114, effect=0.05)
    assert power.ncp == pytest.approx(0.05**2 / estimate.se**2, rel=1e-12)
    assert power.ddf == pytest.approx(estimate.df, rel=1e-12)
    frrc = power_given(pilot, readers=5, cases=114, effect=0.05, generalization="frrc")
    assert frrc.ncp == pytest.approx(0.05**2 / one.frrc.treatments["0"].se ** 2, rel=1e-12)
    rrfc = power_given(pilot, readers=5, cases=114, effect=0.05, generalization="rrfc")
    assert rrfc.ncp == pytest.approx(0.05**2 / one.rrfc.treatments["0"].se ** 2, rel=1e-12)
    assert rrfc.ddf == 4


@pytest.mark.parametrize(
    ("var_r", "var_error", "cov2", "readers", "cases", "effect"),
    [
        (0.002, 0.003, 0.001, 5, 60, 0.06),
        (0.0005, 0.004, 0.0015, 8, 100, 0.04),
        (0.004, 0.002, 0.0, 6, 40, 0.08),
    ],
)
def test_one_treatment_power_matches_a_simulation_of_the_test_it_sizes(
    var_r: float, var_error: float, cov2: float, readers: int, cases: int, effect: float
) -> None:
    """Simulate J readers' FOMs from the one-treatment OR model at K cases (reader effects,
    a shared case effect giving Cov2, own errors) and run Hillis's test against chance; its
    rejection rate is the predicted power up to the Satterthwaite approximation (random
    readers) or exactly (fixed readers)."""
    pilot = PilotVariance(40, 1, var_r, math.nan, math.nan, cov2, math.nan, var_error)
    scale, n = 40 / cases, 40_000
    rng = np.random.default_rng(11)
    reader = rng.normal(0, math.sqrt(var_r), (n, readers))
    shared = rng.normal(0, math.sqrt(scale * cov2), (n, 1))
    own = rng.normal(0, math.sqrt(scale * (var_error - cov2)), (n, readers))
    error = 0.5 + effect + shared + own
    fom = error + reader
    ms_r = fom.var(axis=1, ddof=1)
    term = ms_r + readers * scale * cov2
    ddf = term**2 / (ms_r**2 / (readers - 1))
    t2 = (fom.mean(axis=1) - 0.5) ** 2 / (term / readers)
    simulated = float((t2 > stats.f.ppf(0.95, 1, ddf)).mean())
    predicted = power_given(pilot, readers=readers, cases=cases, effect=effect).power
    assert simulated == pytest.approx(predicted, abs=0.015)
    z2 = (error.mean(axis=1) - 0.5) ** 2 / (scale * (var_error + (readers - 1) * cov2) / readers)
    simulated = float((z2 > stats.chi2.ppf(0.95, 1)).mean())
    predicted = power_given(
        pilot, readers=readers, cases=cases, effect=effect, generalization="frrc"
    ).power
    assert simulated == pytest.approx(predicted, abs=4 * math.sqrt(predicted * (1 - predicted) / n))


def test_accuracy_jackknife_leaves_out_each_case() -> None:
    rng = np.random.default_rng(3)
    truth = np.array([1, 1, 0, 0, 1, 0, 1, 0, 0, 1])
    rows = [
        {"reader": r, "treatment": "t", "case": c, "truth": truth[c], "rating": rng.integers(1, 6)}
        for r in ("a", "b", "c")
        for c in range(10)
    ]
    data = mrmc_data(pd.DataFrame(rows))
    accuracy, left_out = accuracy_jackknife(data, 3)
    correct = (data.ratings >= 3) == data.truth
    for j in range(3):
        assert accuracy[0, j] == correct[0, j].mean()
        for k in range(10):
            assert left_out[0, j, k] == pytest.approx(np.delete(correct[0, j], k).mean(), abs=1e-15)
    # The same components as the OR analysis of "sensitivity" of the correctness indicator
    # with every case positive (mrmc's own jackknife of a share of cases).
    pilot = pilot_from_data(data, "accuracy", threshold=3)
    indicator = MrmcData(
        correct.astype(float), np.ones(10, bool), data.treatments, data.readers, data.cases
    )
    reference = obuchowski_rockette(indicator, "sensitivity", threshold=1).components
    for name in ("var_r", "cov2", "var_error"):
        assert getattr(pilot.variance, name) == pytest.approx(getattr(reference, name), rel=1e-12)
    assert pilot.observed_effect == pytest.approx(accuracy.mean() - 0.5)


def test_power_curve_rises_with_cases_and_readers() -> None:
    curve = power_curve(EXAMPLE_4A, effect=0.05, readers=[5, 10], cases=[20, 100, 400])
    assert list(curve.columns) == ["readers", "cases", "power"]
    for readers, part in curve.groupby("readers"):
        assert part["power"].is_monotonic_increasing, readers
        assert (
            part["power"].iloc[1]
            == power_given(EXAMPLE_4A, readers=readers, cases=100, effect=0.05).power
        )
    assert (
        curve[curve["readers"] == 10]["power"].to_numpy()
        > curve[curve["readers"] == 5]["power"].to_numpy()
    ).all()


def test_no_reader_variance_makes_any_power_reachable() -> None:
    flat = PilotVariance(50, 1, -0.001, math.nan, math.nan, 0.0002, math.nan, 0.002)
    assert limit_power(flat, readers=2, effect=0.05) == 1.0
    needed = cases_needed(flat, readers=2, effect=0.05, power=0.9)
    assert needed.cases is not None and needed.power >= 0.9


def test_a_variance_term_positive_only_from_some_cases_on() -> None:
    """With fixed cases the term Var(T*R) + K*/K [Var(Error) - Cov1 - (Cov2 - Cov3)] may be
    negative for few cases (here below K* = 50): those numbers are skipped, and a term that is
    never positive leaves that generalization out of the table with its reason."""
    pilot = PilotVariance(50, 2, 0.003, 0.001, 0.0015, 0.0015, 0.0, 0.002)
    with pytest.raises(NoVarianceError, match="random readers, fixed cases with 6 readers at 40"):
        power_given(pilot, readers=6, cases=40, effect=0.1, generalization="rrfc")
    needed = cases_needed(pilot, readers=6, effect=0.1, generalization="rrfc")
    assert needed.cases > 50 and needed.power >= 0.8
    never = PilotVariance(50, 2, 0.003, -0.001, 0.0015, 0.0015, 0.0, 0.002)
    with pytest.raises(NoVarianceError, match="at any number of cases"):
        cases_needed(never, readers=6, effect=0.1, generalization="rrfc")
    rows = sizing_table(never, effect=0.1, readers=[6])
    assert [row.generalization for row in rows] == ["rrrc", "frrc", "rrfc"]
    assert rows[0].cases is not None and rows[1].cases is not None
    assert rows[2].cases is None and "no positive variance" in rows[2].reason


def test_bad_input_is_refused_with_a_reason() -> None:
    with pytest.raises(StatsError, match="effect to detect must be a positive number"):
        power_given(EXAMPLE_4A, readers=5, cases=100, effect=0)
    with pytest.raises(StatsError, match="target power must lie strictly between 0 and 1"):
        cases_needed(EXAMPLE_4A, readers=5, effect=0.05, power=1)
    with pytest.raises(StatsError, match="at least two readers"):
        cases_needed(EXAMPLE_4A, readers=1, effect=0.05)
    with pytest.raises(StatsError, match="alpha must lie strictly between 0 and 1"):
        power_given(EXAMPLE_4A, readers=5, cases=100, effect=0.05, alpha=0)
    with pytest.raises(StatsError, match="generalization is one of rrrc, frrc, rrfc"):
        power_given(EXAMPLE_4A, readers=5, cases=100, effect=0.05, generalization="rr")
    with pytest.raises(StatsError, match="at least two cases"):
        power_given(EXAMPLE_4A, readers=5, cases=1, effect=0.05)
    zero = PilotVariance(30, 2, 0.0, 0.0, 0.001, 0.0, 0.0, 0.001)
    with pytest.raises(StatsError, match="no positive variance"):
        power_given(zero, readers=5, cases=100, effect=0.05)
    three = PilotVariance(30, 3, 0.0, 0.0, 0.001, 0.0, 0.0, 0.002)
    with pytest.raises(StatsError, match="has 3 treatments"):
        power_given(three, readers=5, cases=100, effect=0.05)


def crossed(readers: int, treatments: list[str], cases: int) -> MrmcData:
    """Every reader rates every case under every treatment; ratings cycle through 0..4."""
    n = readers * len(treatments) * cases
    return mrmc_data(
        pd.DataFrame(
            {
                "reader": np.repeat([f"r{j}" for j in range(readers)], len(treatments) * cases),
                "treatment": np.tile(np.repeat(treatments, cases), readers),
                "case": np.tile(range(cases), readers * len(treatments)),
                "truth": np.tile([0, 1] * (cases // 2), readers * len(treatments)),
                "rating": np.arange(n) % 5,
            }
        )
    )


def test_a_pilot_needs_two_readers_at_most_two_treatments_and_a_threshold() -> None:
    with pytest.raises(StatsError, match=r"pilot\.csv: a pilot needs at least two readers"):
        pilot_from_data(crossed(1, ["t"], 6), "auc", source="pilot.csv")
    with pytest.raises(StatsError, match=r"has 3 \(x, y, z\): keep the two to compare"):
        pilot_from_data(crossed(2, ["x", "y", "z"], 4), "auc", source="pilot.csv")
    with pytest.raises(StatsError, match="accuracy needs a threshold"):
        pilot_from_data(crossed(2, ["t"], 4), "accuracy")
    with pytest.raises(StatsError, match="a threshold applies to accuracy, not to auc"):
        pilot_from_data(crossed(2, ["t"], 4), "auc", threshold=2)
