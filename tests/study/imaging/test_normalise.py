"""One normalisation rule per sequence, per 2D slice, with exact expected values."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from study.imaging import NORMALISATION_RULES, ImagingError, Sequence, normalise

# 0 .. 200: numpy's linear percentiles fall on whole values: p0.5 = 1, p1 = 2, p99 = 198,
# p99.5 = 199.
RAMP = np.arange(201, dtype=np.float64).reshape(3, 67)


@pytest.mark.parametrize("sequence", [Sequence.T2W, Sequence.DWI, "t2", "hbv", "High-B"])
def test_percentile_window_half_to_99_and_a_half(sequence: Sequence | str) -> None:
    out = normalise(RAMP, sequence).ravel()

    assert out.dtype == np.float32
    assert out[0] == 0.0 and out[1] == 0.0
    assert out[100] == 0.5  # (100 - 1) / (199 - 1)
    assert out[199] == 1.0 and out[200] == 1.0
    assert out[50] == np.float32(49 / 198)


def test_other_uses_the_1_to_99_percentiles() -> None:
    out = normalise(RAMP, Sequence.OTHER).ravel()

    assert out[2] == 0.0 and out[198] == 1.0
    assert out[100] == 0.5  # (100 - 2) / (198 - 2)
    assert out[1] == 0.0 and out[200] == 1.0


def test_adc_fixed_physical_range() -> None:
    adc = np.array([[-10.0, 0.0, 750.0], [1500.0, 3000.0, 4500.0]])

    out = normalise(adc, "ADC")

    assert out.tolist() == [[0.0, 0.0, 0.25], [0.5, 1.0, 1.0]]


def test_adc_is_not_relative_to_the_slice() -> None:
    dark = np.array([[0.0, 300.0]])
    assert normalise(np.full((2, 2), 1500.0), Sequence.ADC).tolist() == [[0.5, 0.5], [0.5, 0.5]]

    assert normalise(dark, Sequence.ADC).tolist() == [[0.0, np.float32(0.1)]]
    assert normalise(dark, Sequence.T2W).tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize("sequence", [Sequence.T2W, Sequence.DWI, Sequence.OTHER])
def test_constant_slice_gives_zeros(sequence: Sequence) -> None:
    out = normalise(np.full((4, 5), 7.0), sequence)

    assert out.tolist() == np.zeros((4, 5)).tolist()
    assert out.dtype == np.float32


def test_non_finite_values_become_zero_and_are_ignored() -> None:
    values = np.array([[np.nan, 0.0, np.inf], [-np.inf, 100.0, 200.0]])

    out = normalise(values, Sequence.OTHER)

    # Percentiles of the finite values 0, 100, 200: p1 = 4, p99 = 196.
    assert out.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.5, 1.0]]
    assert normalise(np.full((2, 2), np.nan), Sequence.T2W).tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_stack_is_normalised_slice_by_slice() -> None:
    stack = np.stack([RAMP, RAMP * 10.0])

    out = normalise(stack, Sequence.T2W)

    assert out.shape == stack.shape
    assert np.array_equal(out[0], out[1])


def test_integer_input() -> None:
    out = normalise(RAMP.astype(np.uint16), Sequence.T2W)

    assert np.array_equal(out, normalise(RAMP, Sequence.T2W))


def test_bad_arguments() -> None:
    with pytest.raises(ImagingError, match="unknown sequence 'flair'"):
        normalise(RAMP, "flair")
    with pytest.raises(ImagingError, match=r"shape \(5,\): it is not 2D"):
        normalise(np.zeros(5), Sequence.T2W)


def test_every_sequence_has_one_documented_rule() -> None:
    assert set(NORMALISATION_RULES) == set(Sequence)
    for rule in NORMALISATION_RULES.values():
        assert rule.endswith(".") and rule.count(". ") == 0
    # The package re-exports the function `normalise`, which hides the module of that name.
    docstring = importlib.import_module("study.imaging.normalise").__doc__ or ""
    for needle in (
        "T2W: the 0.5th and 99.5th",
        "ADC: the fixed physical range 0 .. 3000",
        "DWI: the 0.5th and 99.5th",
        "other: the 1st and 99th",
    ):
        assert needle in docstring


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(1, 6)),
        elements=st.floats(-1e12, 1e12, allow_nan=False),
    ),
    sequence=st.sampled_from(list(Sequence)),
)
def test_output_is_float32_in_unit_range(values: np.ndarray, sequence: Sequence) -> None:
    out = normalise(values, sequence)

    assert out.dtype == np.float32
    assert out.shape == values.shape
    assert not np.isnan(out).any()
    assert out.min() >= 0.0 and out.max() <= 1.0
