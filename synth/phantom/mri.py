"""From tissue properties to images: the signal equations and the acquisition model.

T2W is a turbo spin echo, S = PD exp(-TE/T2) (TR long enough to ignore T1, T2 the apparent one
of a turbo spin echo), acquired on the full grid. DWI is a fat-suppressed echo-planar diffusion
image at a high b-value, S = PD exp(-TE/T2) exp(-b ADC), and the ADC map comes from the same
acquisition: both are acquired on a matrix `LOWRES_FACTOR` times coarser (each low-resolution
pixel integrates the area it covers) and interpolated back to the grid with Keys' cubic kernel,
as scanners zero-fill. Magnitude images get Rician noise and a smooth receive-coil bias field;
the ADC map, a ratio of two such images, is free of the bias and gets Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from synth.phantom.tissues import TissueProperties

TE_T2W_MS = 100.0
TE_DWI_MS = 60.0
B_VALUE = 1400.0  # s/mm^2: PI-RADS v2.1 asks for a high b-value of at least 1400
FAT_SUPPRESSION = 0.01  # fraction of fat signal that spectral fat saturation leaves
LOWRES_FACTOR = 2.5  # DWI/ADC matrix is this many times coarser than the T2W

T2W_NOISE = 0.012  # noise standard deviation relative to a proton density of 1
DWI_NOISE = 0.0045  # high-b DWI has a low SNR: about 10 in the peripheral zone
ADC_NOISE_FRACTION = 0.1
ADC_NOISE_MAX = 250.0

# Signal units -> stored values: fills roughly 0..45000 of the 16-bit range, never clips.
T2W_UNITS = 30000.0
DWI_UNITS = 200000.0
UINT16_MAX = 65535.0

# Layout of the parameter maps that the anatomy paints.
T2W_MAP, DWI_MAP, ADC_MAP = range(3)
N_MAPS = 3


def contrast(tissue: TissueProperties) -> np.ndarray:
    """The painted values of a tissue: its T2W and DWI signals and its ADC."""
    t2w = tissue.proton_density * np.exp(-TE_T2W_MS / (tissue.tse_t2_ms or tissue.t2_ms))
    fat_left = FAT_SUPPRESSION if tissue.fat else 1.0
    s0 = tissue.proton_density * fat_left * np.exp(-TE_DWI_MS / tissue.t2_ms)
    dwi = s0 * np.exp(-B_VALUE * tissue.adc * 1e-6)
    return np.array([t2w, dwi, tissue.adc], dtype=np.float32)


def _keys_cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5): local, interpolating, smooth."""
    x = np.abs(x)
    near = (1.5 * x - 2.5) * x * x + 1.0
    far = ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return np.where(x <= 1.0, near, np.where(x < 2.0, far, 0.0))


@dataclass(frozen=True)
class Banded:
    """A banded matrix kept as `taps` (source index, weight) pairs per output row.

    Applying it along an axis takes a few gathers instead of a matrix product: exact about
    which pixels feed which, and free of BLAS threads (whose start-up dominates at this size).
    """

    index: np.ndarray  # (taps, rows)
    weight: np.ndarray  # (taps, rows)

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> Banded:
        taps = int(np.max(np.count_nonzero(matrix, axis=1)))
        index = np.zeros((taps, matrix.shape[0]), dtype=np.intp)
        weight = np.zeros((taps, matrix.shape[0]), dtype=np.float32)
        for row, values in enumerate(matrix):
            (columns,) = np.nonzero(values)
            index[: len(columns), row] = columns
            weight[: len(columns), row] = values[columns]
        return cls(index, weight)

    def apply(self, volume: np.ndarray, axis: int) -> np.ndarray:
        shape = (-1,) + (1,) * (-1 - axis)
        out = np.take(volume, self.index[0], axis=axis) * self.weight[0].reshape(shape)
        for index, weight in zip(self.index[1:], self.weight[1:], strict=True):
            out += np.take(volume, index, axis=axis) * weight.reshape(shape)
        return out


@lru_cache(maxsize=8)
def resampling_matrices(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(down, up): the separable acquisition (n x size) and interpolation (size x n) matrices."""
    n = max(8, round(size / LOWRES_FACTOR))
    factor = size / n
    # Low-resolution pixel j spans [j f, (j + 1) f) in grid pixels; it averages what it covers.
    start = np.arange(n)[:, None] * factor
    pixel = np.arange(size)[None, :]
    overlap = np.minimum(start + factor, pixel + 1) - np.maximum(start, pixel)
    down = np.clip(overlap, 0.0, None) / factor
    # Grid pixel centre i + 0.5 sits at low-resolution coordinate s; borders repeat the edge.
    s = (np.arange(size) + 0.5) / factor - 0.5
    base = np.floor(s).astype(int)
    up = np.zeros((size, n))
    rows = np.arange(size)
    for tap in (-1, 0, 1, 2):
        source = base + tap
        np.add.at(up, (rows, np.clip(source, 0, n - 1)), _keys_cubic(s - source))
    return down.astype(np.float32), up.astype(np.float32)


def acquisition_spread_px(size: int) -> int:
    """How far (in grid pixels, per axis) a change on the grid can reach in DWI and ADC."""
    down, up = resampling_matrices(size)
    reach = (up != 0).astype(np.float32) @ (down != 0).astype(np.float32)
    rows, cols = np.nonzero(reach)
    return int(np.max(np.abs(rows - cols)))


@lru_cache(maxsize=8)
def _resampling(size: int) -> tuple[Banded, Banded]:
    down, up = resampling_matrices(size)
    return Banded.from_dense(down), Banded.from_dense(up)


def lowres_shape(size: int) -> tuple[int, int]:
    down, _ = resampling_matrices(size)
    return down.shape[0], down.shape[0]


def acquire_lowres(volume: np.ndarray) -> np.ndarray:
    """(K, N, N) on the grid -> (K, n, n) as a coarse acquisition sees it."""
    down, _ = _resampling(volume.shape[-1])
    return down.apply(down.apply(volume, -1), -2)


def interpolate(lowres: np.ndarray, size: int) -> np.ndarray:
    """(K, n, n) -> (K, size, size) by cubic interpolation."""
    _, up = _resampling(size)
    return up.apply(up.apply(lowres, -1), -2)


def rician(signal: np.ndarray, sigma: float, real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    """Magnitude of the signal plus complex Gaussian noise (unit-variance `real`, `imag`)."""
    return np.sqrt((signal + sigma * real) ** 2 + (sigma * imag) ** 2)


def bias_field(
    rng: np.random.Generator, x: np.ndarray, y: np.ndarray, t: np.ndarray, half_fov: float
) -> np.ndarray:
    """A smooth multiplicative receive field, shape (K, N, N), about 1 at the centre.

    Pelvic phased-array coils lie on the belly and under the back, so the signal rises towards
    the anterior and posterior skin (the y^2 term); the rest is a random low-order tilt.
    """
    xn = (x / half_fov)[None, :]
    yn = (y / half_fov)[:, None]
    c = rng.uniform(-1.0, 1.0, size=4)
    in_plane = (
        rng.uniform(0.1, 0.3) * yn**2
        + rng.uniform(0.0, 0.15) * xn**2
        + 0.15 * c[0] * xn
        + 0.15 * c[1] * yn
        + 0.1 * c[2] * xn * yn
    )
    through_plane = 0.1 * c[3] * (t - 0.5)
    field = np.exp(in_plane)[None] * np.exp(through_plane)[:, None, None]
    return field.astype(np.float32)
