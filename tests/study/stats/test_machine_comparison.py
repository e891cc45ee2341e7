"""Radiologists vs the machine (single-modality RRRC on the reader-minus-machine AUCs), checked
against a brute-force computation from the definitions on the Van Dyke data."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from study.stats import StatsError
from study.stats.machine_comparison import readers_vs_machine
from study.stats.mrmc import MrmcData, read_mrmc_csv


@pytest.fixture(scope="module")
def van_dyke(shared_data) -> MrmcData:
    return read_mrmc_csv(shared_data / "mrmc" / "vandyke.csv")


def one_treatment(data: MrmcData) -> MrmcData:
    return MrmcData(data.ratings[:1], data.truth, data.treatments[:1], data.readers, data.cases)


def brute_force(ratings: np.ndarray, machine: np.ndarray, truth: np.ndarray):
    """Differences d_j, their jackknife covariance, and the Hillis single-treatment test."""
    r, c = ratings.shape

    def aucs(keep):
        humans = [roc_auc_score(truth[keep], ratings[j, keep]) for j in range(r)]
        return np.array(humans) - roc_auc_score(truth[keep], machine[keep])

    d = aucs(np.ones(c, bool))
    left = np.array([aucs(np.arange(c) != k) for k in range(c)]).T  # r x c
    centred = left - left.mean(axis=1, keepdims=True)
    cov = (c - 1) / c * centred @ centred.T
    cov2 = np.mean([cov[a, b] for a, b in itertools.permutations(range(r), 2)])
    ms_r = d.var(ddof=1)
    error = ms_r + r * max(cov2, 0.0)
    se = math.sqrt(error / r)
    df = error**2 / (ms_r**2 / (r - 1))
    return d.mean(), se, df


def test_the_difference_and_its_test_match_the_definitions(van_dyke):
    humans = one_treatment(van_dyke)
    # The "machine": treatment 2's first reader, scoring the same cases.
    machine = van_dyke.ratings[1, 0].astype(float)
    result = readers_vs_machine(humans, machine)
    mean, se, df = brute_force(humans.ratings[0], machine, humans.truth)
    assert result.difference.fom == pytest.approx(mean, abs=1e-12)
    assert result.difference.se == pytest.approx(se, abs=1e-12)
    assert result.difference.df == pytest.approx(df, rel=1e-10)
    half = stats.t.ppf(0.975, df) * se
    assert (result.difference.low, result.difference.high) == pytest.approx(
        (mean - half, mean + half), abs=1e-12
    )
    assert result.t == pytest.approx(mean / se)
    assert result.p == pytest.approx(2 * stats.t.sf(abs(mean / se), df))
    assert result.machine_auc == pytest.approx(roc_auc_score(humans.truth, machine))
    assert result.reader_aucs.mean() - result.machine_auc == pytest.approx(mean)


def test_a_machine_needs_a_score_for_every_case(van_dyke):
    humans = one_treatment(van_dyke)
    with pytest.raises(StatsError, match="one finite score per case"):
        readers_vs_machine(humans, np.zeros(3))
    scores = np.zeros(len(humans.cases))
    scores[0] = np.nan
    with pytest.raises(StatsError, match="one finite score per case"):
        readers_vs_machine(humans, scores)
    with pytest.raises(StatsError, match="under one treatment"):
        readers_vs_machine(van_dyke, np.zeros(len(humans.cases)))
