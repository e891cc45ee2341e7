"""Map physical values to the canonical range [0, 1]: one rule per sequence, per 2D slice.

The same rule applies to real and synthetic images, so that contrast cannot tell them apart:

- T2W: the 0.5th and 99.5th percentiles of the slice map to 0 and 1 (T2W signal has no
  physical unit; the percentiles ignore a few extreme pixels).
- ADC: the fixed physical range 0 .. 3000 x 10^-6 mm^2/s maps to 0 .. 1 (ADC is quantitative;
  a fixed window keeps values comparable across patients).
- DWI: the 0.5th and 99.5th percentiles map to 0 and 1 (high-b signal has no physical unit).
- other: the 1st and 99th percentiles map to 0 and 1.

Values outside the window are clipped. Under the percentile rules a slice whose window is empty
(a constant slice) becomes all zeros; ADC keeps its fixed mapping, which has no such case.
Non-finite input values become 0 and are left out of the percentiles. Percentiles are numpy's
default (linear interpolation).

>>> normalise(np.array([[0.0, 1500.0], [3000.0, 4500.0]]), "ADC").tolist()
[[0.0, 0.5], [1.0, 1.0]]
"""

from __future__ import annotations

import numpy as np

from study.imaging.errors import ImagingError
from study.imaging.types import Sequence, parse_sequence

NORMALISATION_RULES: dict[Sequence, str] = {
    Sequence.T2W: "The 0.5th to 99.5th percentile of each slice is mapped to [0, 1] and clipped.",
    Sequence.ADC: (
        "The fixed range 0 to 3000 x 10^-6 mm^2/s is mapped to [0, 1] and clipped "
        "(ADC maps must be in 10^-6 mm^2/s)."
    ),
    Sequence.DWI: "The 0.5th to 99.5th percentile of each slice is mapped to [0, 1] and clipped.",
    Sequence.OTHER: "The 1st to 99th percentile of each slice is mapped to [0, 1] and clipped.",
}

# (low, high) percentiles of the slice for relative sequences.
_PERCENTILES: dict[Sequence, tuple[float, float]] = {
    Sequence.T2W: (0.5, 99.5),
    Sequence.DWI: (0.5, 99.5),
    Sequence.OTHER: (1.0, 99.0),
}
# ADC window in 10^-6 mm^2/s: covers tumour (< 1000) to free water (~3000).
ADC_RANGE = (0.0, 3000.0)


def normalise(array: np.ndarray, sequence: Sequence | str) -> np.ndarray:
    """`array` mapped to [0, 1] by the rule of `sequence` (see NORMALISATION_RULES).

    `array` is one 2D slice, or a stack (..., rows, cols) normalised slice by slice.
    Returns float32 without NaN.
    """
    try:
        rule = sequence if isinstance(sequence, Sequence) else parse_sequence(sequence)
    except ValueError as e:
        raise ImagingError(f"cannot normalise: {e}") from e
    values = np.asarray(array, dtype=np.float64)
    if values.ndim < 2:
        raise ImagingError(f"cannot normalise an array of shape {values.shape}: it is not 2D")
    if values.size == 0:
        raise ImagingError(f"cannot normalise an array of shape {values.shape}: it is empty")
    slices = values.reshape(-1, *values.shape[-2:])
    out = np.stack([_normalise_slice(s, rule) for s in slices]).reshape(values.shape)
    return out.astype(np.float32)


def _normalise_slice(values: np.ndarray, rule: Sequence) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape)
    if rule == Sequence.ADC:
        low, high = ADC_RANGE
    else:
        low, high = np.percentile(values[finite], _PERCENTILES[rule])
    if not high > low:
        return np.zeros(values.shape)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0)
    return np.where(finite, scaled, 0.0)
