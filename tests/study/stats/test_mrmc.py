"""Obuchowski-Rockette MRMC against OR-DBM MRMC 2.51's printed output on the Van Dyke data,
plus brute-force checks of the jackknife shortcuts."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from study.stats import StatsError
from study.stats.mrmc import (
    MrmcResult,
    format_report,
    jackknife_covariance,
    jackknife_foms,
    mrmc_data,
    natural_order,
    obuchowski_rockette,
    or_from_jackknife,
    read_mrmc_csv,
    result_json,
)

NUMBER = re.compile(r"(?<![\w.])-?\d*\.?\d+")


@pytest.fixture(scope="module")
def reference(shared_data: Path) -> str:
    return (shared_data / "mrmc" / "vandyke_ordbm_reference.txt").read_text()


@pytest.fixture(scope="module")
def vandyke(shared_data: Path) -> MrmcResult:
    return obuchowski_rockette(read_mrmc_csv(shared_data / "mrmc" / "vandyke.csv"))


def section(text: str, start: str, end: str) -> str:
    """The reference text from the line holding `start` to the next line holding `end`."""
    begin = text.index(start)
    return text[begin : text.index(end, begin)]


def printed(text: str, label: str) -> list[str]:
    """Every number on the one line of `text` that starts with the pattern `label`."""
    lines = [line for line in text.splitlines() if re.match(rf"\s*{label}", line)]
    assert len(lines) == 1, f"{label!r} matches {len(lines)} lines"
    return NUMBER.findall(lines[0])


def agrees(value: float, shown: str) -> bool:
    """`value` rounds to the printed digits (within half a unit of the last printed place)."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return abs(value - float(shown)) <= 0.5 * 10**-decimals * (1 + 1e-9) + 1e-15


def check(values: list[float], shown: list[str]) -> None:
    assert len(values) == len(shown), f"{values} against {shown}"
    for value, text in zip(values, shown, strict=True):
        assert agrees(value, text), f"{value!r} does not print as {text}"


def test_reader_aucs_to_1e_8(vandyke: MrmcResult, reference: str) -> None:
    table = section(reference, "TREATMENT x READER AUC ESTIMATES", "TREATMENT AUC MEANS")
    for j in range(5):
        shown = printed(table, rf"{j + 1}\s")
        check([j + 1, *vandyke.foms[:, j]], shown)
        assert np.all(np.abs(vandyke.foms[:, j] - np.array(shown[1:], float)) < 1e-8)


def test_treatment_means_and_anova(vandyke: MrmcResult, reference: str) -> None:
    means = section(reference, "TREATMENT AUC MEANS", "TREATMENT AUC MEAN DIFFERENCES")
    for i in range(2):
        check([i + 1, vandyke.foms[i].mean()], printed(means, rf"{i + 1}\s"))
    differences = section(reference, "TREATMENT AUC MEAN DIFFERENCES", "ANOVA Tables")
    difference = vandyke.foms[0].mean() - vandyke.foms[1].mean()
    check([1, 2, difference], printed(differences, r"1 - 2"))
    anova = section(reference, "TREATMENT X READER ANOVA of AUCs", "READER ANOVAs")
    a = vandyke.anova
    check([a.ss_t, 1, a.ms_t], printed(anova, r"T\s"))
    check([a.ss_r, 4, a.ms_r], printed(anova, r"R\s"))
    check([a.ss_tr, 4, a.ms_tr], printed(anova, r"T\*R\s"))
    per_treatment = section(reference, "READER ANOVAs of AUCs for each", "Variance component")
    check([4, *a.ms_r_by_treatment.values()], printed(per_treatment, r"R\s"))


def test_variance_components(vandyke: MrmcResult, reference: str) -> None:
    table = section(reference, "Obuchowski-Rockette variance component", "Corresponding DBM")
    c = vandyke.components
    check([c.var_r], printed(table, r"Var\(R\)"))
    check([c.var_tr], printed(table, r"Var\(T\*R\)"))
    check([c.cov1, c.cov1 / c.var_error], printed(table, "COV1"))
    check([c.cov2, c.cov2 / c.var_error], printed(table, "COV2"))
    check([c.cov3, c.cov3 / c.var_error], printed(table, "COV3"))
    check([c.var_error], printed(table, r"Var\(Error\)"))


def test_random_readers_random_cases(vandyke: MrmcResult, reference: str) -> None:
    text = section(reference, "Analysis 1 (OR Analysis)", "Analysis 2 (OR Analysis)")
    rrrc = vandyke.rrrc
    check([1, vandyke.anova.ms_t, rrrc.statistic, rrrc.p], printed(text, r"Treatment\s+1"))
    check([rrrc.df2, rrrc.error_term], printed(text, "Error term  "))
    d = rrrc.differences[0]
    assert (d.first, d.second) == ("0", "1")
    check([1, 2, d.estimate, d.se, d.df, d.statistic, d.p, d.low, d.high], printed(text, "1 - 2"))
    for i, name in enumerate(vandyke.treatments):
        e = rrrc.treatments[name]
        cov2 = vandyke.cov2_by_treatment[name]
        check([i + 1, e.fom, e.se, e.df, e.low, e.high, cov2], printed(text, rf"{i + 1}\s+0\."))


def test_fixed_readers_random_cases(vandyke: MrmcResult, reference: str) -> None:
    text = section(reference, "Analysis 2 (OR Analysis)", "Analysis 3 (OR Analysis)")
    frrc = vandyke.frrc
    check([frrc.statistic, 1, frrc.p], printed(text, r"5\.\d+\s"))
    d = frrc.differences[0]
    check([1, 2, d.estimate, d.se, d.statistic, d.p, d.low, d.high], printed(text, "1 - 2"))
    errors = section(text, "Treatment  Var(Error)", "StdErr")
    for i, name in enumerate(vandyke.treatments):
        e = frrc.treatments[name]
        check([i + 1, e.fom, e.se, e.low, e.high], printed(text, rf"{i + 1}\s+0\.[89]"))
        variances = [vandyke.var_error_by_treatment[name], vandyke.cov2_by_treatment[name]]
        check([i + 1, *variances], printed(errors, rf"{i + 1}\s"))
    readers = section(text, "d) Single-reader", "Reader  Var(Error)")
    errors = section(text, "Reader  Var(Error)", "StdErr = sqrt[2*")
    for j, item in enumerate(vandyke.frrc_by_reader):
        d = item.comparison
        check(
            [j + 1, 1, 2, d.estimate, d.se, d.statistic, d.p, d.low, d.high],
            printed(readers, rf"{j + 1}\s+1 - 2"),
        )
        check([j + 1, item.var_error, item.cov1], printed(errors, rf"{j + 1}\s"))


def test_random_readers_fixed_cases(vandyke: MrmcResult, reference: str) -> None:
    text = section(reference, "Analysis 3 (OR Analysis)", "REFERENCES")
    rrfc = vandyke.rrfc
    check([1, vandyke.anova.ms_t, rrfc.statistic, rrfc.p], printed(text, r"Treatment\s+1"))
    check([rrfc.df2, rrfc.error_term], printed(text, r"T\*R\s"))
    d = rrfc.differences[0]
    check([1, 2, d.estimate, d.se, d.df, d.statistic, d.p, d.low, d.high], printed(text, "1 - 2"))
    for i, name in enumerate(vandyke.treatments):
        e = rrfc.treatments[name]
        ms_r = vandyke.anova.ms_r_by_treatment[name]
        check(
            [i + 1, e.fom, ms_r, e.se, e.df, e.low, e.high],
            printed(text, rf"{i + 1}\s+0\.[89]"),
        )


def test_json_carries_the_reference_numbers(vandyke: MrmcResult) -> None:
    result = result_json(vandyke)
    assert list(result) == [
        "metric",
        "n_readers",
        "n_cases",
        "n_positive",
        "jackknife",
        "n_jackknife",
        "treatments",
        "readers",
        "variance_components",
        "rrrc",
        "frrc",
        "rrfc",
    ]
    assert (result["n_readers"], result["n_cases"], result["n_positive"]) == (5, 114, 45)
    # AUC changes with every case: the default jackknife leaves out all 114.
    assert (result["jackknife"], result["n_jackknife"]) == ("varying_cases", 114)
    assert result["treatments"]["0"]["reason"] is None
    assert list(result["treatments"]) == ["0", "1"]
    assert agrees(result["treatments"]["0"]["df"], "12.74")
    assert agrees(result["readers"]["1"]["3"], "0.99935588")
    assert agrees(result["rrrc"]["F"], "4.46")
    assert agrees(result["rrrc"]["ddf"], "15.26")
    assert result["rrrc"]["differences"][0]["treatments"] == ["0", "1"]
    assert agrees(result["rrrc"]["differences"][0]["ci"][1], "0.00036")
    assert agrees(result["frrc"]["chi2"], "5.47595")
    assert result["frrc"]["df"] == 1
    assert result["rrfc"]["ddf"] == 4
    assert agrees(result["rrfc"]["F"], "8.70")


# ---- checks that need no reference file -------------------------------------------------


def random_study(readers: int, treatments: int, cases: int, seed: int) -> pd.DataFrame:
    """Binormal ratings on a five-point scale, every reader x treatment x case."""
    rng = np.random.default_rng(seed)
    truth = rng.random(cases) < 0.4
    truth[:2], truth[2:4] = True, False
    latent = truth * 1.2 + rng.normal(size=cases)
    rows = []
    for t, r in itertools.product(range(treatments), range(readers)):
        noisy = latent + 0.3 * t + rng.normal(scale=0.8, size=cases)
        ratings = np.digitize(noisy, [-0.5, 0.3, 0.9, 1.6]) + 1
        rows.append(
            pd.DataFrame(
                {
                    "reader": f"r{r}",
                    "treatment": f"m{t}",
                    "case": np.arange(cases),
                    "truth": truth.astype(int),
                    "rating": ratings,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_leave_one_out_aucs_match_brute_force() -> None:
    data = mrmc_data(random_study(3, 2, 40, seed=1))
    foms, left_out = jackknife_foms(data, "auc")
    keep = np.ones(40, bool)
    for i, j in itertools.product(range(2), range(3)):
        assert foms[i, j] == pytest.approx(roc_auc_score(data.truth, data.ratings[i, j]))
        for k in range(40):
            keep[:] = True
            keep[k] = False
            expected = roc_auc_score(data.truth[keep], data.ratings[i, j, keep])
            assert left_out[i, j, k] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("metric", ["sensitivity", "specificity"])
def test_binary_jackknife_variance_has_the_documented_closed_form(metric: str) -> None:
    data = mrmc_data(random_study(3, 2, 50, seed=2))
    foms, left_out = jackknife_foms(data, metric, threshold=3, jackknife="all_cases")
    positives = data.truth if metric == "sensitivity" else ~data.truth
    called = data.ratings >= 3 if metric == "sensitivity" else data.ratings < 3
    n1, c = int(positives.sum()), 50
    assert foms == pytest.approx(called[:, :, positives].mean(axis=2))
    # Leaving out a case of the other class leaves the figure unchanged.
    assert np.all(left_out[:, :, ~positives] == foms[:, :, None])
    variances = np.einsum("ijij->ij", jackknife_covariance(left_out))
    expected = (c - 1) / c * n1 * foms * (1 - foms) / (n1 - 1) ** 2
    assert variances == pytest.approx(expected, abs=1e-15)


def test_binary_metrics_run_end_to_end() -> None:
    data = mrmc_data(random_study(4, 2, 60, seed=3))
    result = obuchowski_rockette(data, "sensitivity", threshold=3)
    assert result.foms.shape == (2, 4)
    assert 0 <= result.rrrc.p <= 1
    assert result_json(result)["metric"] == "sensitivity"


def test_one_treatment_gives_single_treatment_intervals_only() -> None:
    data = mrmc_data(random_study(4, 1, 60, seed=4))
    result = obuchowski_rockette(data)
    assert math.isnan(result.rrrc.statistic)
    assert result.rrrc.differences == ()
    estimate = result.rrrc.treatments["m0"]
    assert estimate.low < estimate.fom < estimate.high
    as_json = result_json(result)
    assert as_json["rrrc"]["F"] is None and as_json["variance_components"]["var_tr"] is None


def test_row_order_and_extra_columns_do_not_matter() -> None:
    study = random_study(3, 2, 30, seed=5)
    shuffled = study.sample(frac=1, random_state=0).assign(site="A")
    first = obuchowski_rockette(mrmc_data(study))
    second = obuchowski_rockette(mrmc_data(shuffled))
    assert result_json(first) == result_json(second)


def test_natural_order_of_keys() -> None:
    assert natural_order(["10", "2", "1"]) == ["1", "2", "10"]
    assert natural_order(["b", "a", "10"]) == ["10", "a", "b"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="truth"), "missing column"),
        (lambda f: f.iloc[1:], "missing"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "again"),
        (lambda f: f.assign(truth=f["truth"].where(f.index != 3, 2)), "truth must be"),
        (lambda f: f.assign(rating=f["rating"].astype(object).where(f.index != 3, "x")), "numbers"),
        (lambda f: f.assign(truth=f["truth"].where(f.index != 30, 1 - f["truth"])), "both truth"),
    ],
)
def test_bad_data_is_refused_with_the_source_named(change, message: str) -> None:
    study = random_study(2, 2, 30, seed=6)
    with pytest.raises(StatsError, match=message) as error:
        mrmc_data(change(study), source="ratings.csv")
    assert "ratings.csv" in str(error.value)


def test_binary_metrics_need_a_threshold() -> None:
    data = mrmc_data(random_study(2, 2, 30, seed=7))
    with pytest.raises(StatsError, match="threshold"):
        obuchowski_rockette(data, "specificity")
    with pytest.raises(StatsError, match="threshold"):
        obuchowski_rockette(data, "auc", threshold=3)


# ---- which cases the jackknife leaves out (binary figures of merit) ----------------------


@pytest.mark.parametrize("metric", ["sensitivity", "specificity"])
def test_varying_cases_jackknife_leaves_out_only_the_cases_of_one_class(metric: str) -> None:
    data = mrmc_data(random_study(3, 2, 50, seed=8))
    foms, left_out = jackknife_foms(data, metric, threshold=3)
    varying = data.truth if metric == "sensitivity" else ~data.truth
    called = data.ratings >= 3 if metric == "sensitivity" else data.ratings < 3
    calls = called[:, :, varying]
    n1 = int(varying.sum())
    assert left_out.shape == (2, 3, n1)
    for k in range(n1):
        without = np.delete(calls, k, axis=2).mean(axis=2)
        assert left_out[:, :, k] == pytest.approx(without, abs=1e-15)
    # The positives-only jackknife variance is the binomial Se(1 - Se)/(n1 - 1).
    variances = np.einsum("ijij->ij", jackknife_covariance(left_out))
    assert variances == pytest.approx(foms * (1 - foms) / (n1 - 1), abs=1e-15)


@pytest.mark.parametrize(("metric", "positive"), [("sensitivity", 1), ("specificity", 0)])
def test_vandyke_binary_components_from_the_calls(
    shared_data: Path, metric: str, positive: int
) -> None:
    """Varying-cases covariances are the covariances (divided by n) of the 0/1 calls on the
    cases of one class, divided by n - 1; every-case ones are (c-1) n / (c (n-1)) times as
    large (module docstring)."""
    frame = pd.read_csv(shared_data / "mrmc" / "vandyke.csv")
    data = read_mrmc_csv(shared_data / "mrmc" / "vandyke.csv")
    varying = frame[frame["truth"] == positive].sort_values(["treatment", "reader", "case"])
    called = varying["rating"] >= 3 if positive else varying["rating"] < 3
    calls = called.to_numpy(float).reshape(2 * 5, -1)  # (treatment, reader) x case
    n, c = calls.shape[1], 114
    cov = (np.cov(calls, ddof=0) / (n - 1)).reshape(2, 5, 2, 5)
    same_reader = np.eye(5, dtype=bool)
    expected = {
        "var_error": np.mean([cov[i, j, i, j] for i in range(2) for j in range(5)]),
        "cov1": np.mean([cov[0, j, 1, j] for j in range(5)]),
        "cov2": np.mean([cov[i, :, i, :][~same_reader].mean() for i in range(2)]),
        "cov3": cov[0, :, 1, :][~same_reader].mean(),
    }
    result = obuchowski_rockette(data, metric, threshold=3)
    every_case = obuchowski_rockette(data, metric, threshold=3, jackknife="all_cases")
    assert (result.jackknife, result.dropped, result.n_jackknife) == (
        "varying_cases",
        "positive" if positive else "negative",
        n,
    )
    assert (every_case.jackknife, every_case.n_jackknife) == ("all_cases", 114)
    assert np.array_equal(result.foms, calls.mean(axis=1).reshape(2, 5))
    for name, value in expected.items():
        assert getattr(result.components, name) == pytest.approx(value, rel=1e-12, abs=1e-18)
        assert getattr(every_case.components, name) == pytest.approx(
            value * (c - 1) * n / (c * (n - 1)), rel=1e-12, abs=1e-18
        )
    # Hillis's F from these components and the treatment x reader mean squares.
    foms = result.foms
    ms_t = 5 * ((foms.mean(axis=1) - foms.mean()) ** 2).sum()
    interaction = foms - foms.mean(axis=1)[:, None] - foms.mean(axis=0)[None, :] + foms.mean()
    ms_tr = (interaction**2).sum() / 4
    error = ms_tr + 5 * max(expected["cov2"] - expected["cov3"], 0)
    assert result.rrrc.statistic == pytest.approx(ms_t / error, rel=1e-10)
    assert result.rrrc.df2 == pytest.approx(error**2 / (ms_tr**2 / 4), rel=1e-10)


def test_intervals_of_a_proportion_are_clipped_to_0_1(shared_data: Path) -> None:
    data = read_mrmc_csv(shared_data / "mrmc" / "vandyke.csv")
    result = obuchowski_rockette(data, "sensitivity", threshold=3)
    assert result.bounds == (0.0, 1.0)
    for analysis in (result.rrrc, result.rrfc):
        e = analysis.treatments["1"]
        unclipped_high = e.fom + stats.t.ppf(0.975, e.df) * e.se
        assert unclipped_high > 1 and e.high == 1.0
        assert e.low == pytest.approx(e.fom - stats.t.ppf(0.975, e.df) * e.se, abs=1e-15)
    assert result_json(result)["treatments"]["1"]["ci"][1] == 1.0


def test_zero_variance_gives_a_reason_instead_of_an_interval() -> None:
    study = random_study(3, 2, 30, seed=9)
    # Every reader calls every case positive: sensitivity 1 everywhere, nothing varies.
    data = mrmc_data(study.assign(rating=5))
    result = obuchowski_rockette(data, "sensitivity", threshold=3)
    assert np.all(result.foms == 1)
    for analysis in (result.rrrc, result.frrc, result.rrfc):
        assert analysis.reason is not None and analysis.reason.startswith("zero variance")
        assert math.isnan(analysis.p)
        for estimate in analysis.treatments.values():
            assert estimate.reason is not None and estimate.reason.endswith("no interval")
            assert math.isnan(estimate.low) and math.isnan(estimate.high) and estimate.se == 0
        (difference,) = analysis.differences
        assert difference.estimate == 0 and difference.reason is not None
    assert (
        "are all equal and do not vary together when a case is left out (Cov2 <= 0)"
        in result.rrrc.treatments["m0"].reason
    )
    as_json = result_json(result)
    assert as_json["treatments"]["m0"]["ci"] == [None, None]
    assert as_json["treatments"]["m0"]["reason"] == result.rrrc.treatments["m0"].reason
    assert as_json["rrrc"]["differences"][0]["reason"].startswith("zero variance")
    assert as_json["rrrc"]["reason"].endswith("no test")
    report = format_report(result)
    assert "nan" not in report and "n/a to n/a" not in report
    assert f"m0: 1.00000000; {result.rrrc.treatments['m0'].reason}" in report


def test_unknown_jackknife_option_is_refused() -> None:
    data = mrmc_data(random_study(2, 2, 30, seed=10))
    with pytest.raises(StatsError, match="varying_cases, all_cases"):
        obuchowski_rockette(data, "sensitivity", threshold=3, jackknife="positives")


def test_or_from_jackknife_checks_the_shapes() -> None:
    foms = np.full((2, 3), 0.5)
    with pytest.raises(StatsError, match=r"left-out values of shape \(2, 3, 10\)"):
        or_from_jackknife(
            foms,
            np.full((2, 3, 12), 0.5),
            treatments=["a", "b"],
            readers=["1", "2", "3"],
            metric="auc",
            n_cases=20,
            n_positive=10,
            jackknife="varying_cases",
            dropped="positive",
        )
