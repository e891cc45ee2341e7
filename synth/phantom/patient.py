"""One simulated patient: anatomy, optional lesion, and the three co-registered sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from study.imaging.errors import VTTError
from study.imaging.types import Sequence
from synth.phantom import mri
from synth.phantom.anatomy import (
    FOV_MM,
    draw_body,
    draw_gland,
    draw_lesion,
    paint_bladder,
    paint_body,
    paint_gland,
    paint_lesion,
    paint_musculoskeletal,
    paint_rectum,
    paint_seminal_vesicles,
    texture_fields,
)
from synth.phantom.canvas import Canvas, Grid
from synth.phantom.tissues import Zone, texture_tables

SIZE_RANGE = (64, 512)
SLICES_RANGE = (3, 64)
PIRADS_RANGE = (3, 5)
TEXTURE_TABLES = texture_tables()
MOTTLE = 0.05


class PhantomError(VTTError):
    """Phantom options out of range."""


@dataclass(frozen=True)
class PhantomPatient:
    """Images and ground truth of one phantom patient.

    Volumes are float32, indexed [slice, row, column]: slice 0 is the apex, row 0 anterior,
    column 0 the patient's right (radiological view). T2W and DWI are in arbitrary signal units
    that fit 16 bits; ADC is in 10^-6 mm^2/s. Masks are boolean on the same grid; `pz` and `tz`
    partition `prostate` (the urethra belongs to `tz`), and `lesion` lies inside its zone.
    `affine` maps (column, row, slice) voxel indices to RAS millimetres, as in NIfTI.
    `adc_acquired` and `dwi_acquired` are ADC and DWI as the coarse diffusion acquisition gives
    them, before interpolation to the grid: (K, n, n) pixels of `acquired_pixel_mm`, covering
    the same field of view.
    """

    seed: int
    t2w: np.ndarray
    adc: np.ndarray
    dwi: np.ndarray
    tissue: np.ndarray
    prostate: np.ndarray
    pz: np.ndarray
    tz: np.ndarray
    lesion: np.ndarray
    pirads: int | None
    lesion_zone: Zone | None
    pixel_mm: float
    slice_mm: float
    adc_acquired: np.ndarray
    dwi_acquired: np.ndarray

    @property
    def n_slices(self) -> int:
        return self.t2w.shape[0]

    @property
    def size(self) -> int:
        return self.t2w.shape[1]

    @property
    def affine(self) -> np.ndarray:
        """Columns run to the patient's left, rows posterior, slices superior (LPS order)."""
        half = (self.size - 1) / 2 * self.pixel_mm
        return np.array(
            [
                [-self.pixel_mm, 0.0, 0.0, half],
                [0.0, -self.pixel_mm, 0.0, half],
                [0.0, 0.0, self.slice_mm, -(self.n_slices - 1) / 2 * self.slice_mm],
                [0.0, 0.0, 0.0, 1.0],
            ]
        )

    @property
    def acquired_pixel_mm(self) -> float:
        """Pixel size of the diffusion acquisition (`adc_acquired`, `dwi_acquired`)."""
        return self.size * self.pixel_mm / self.adc_acquired.shape[-1]

    @property
    def lesion_slices(self) -> tuple[int, ...]:
        """Indices of the slices on which the lesion is visible (empty without a lesion)."""
        return tuple(int(k) for k in np.flatnonzero(self.lesion.any(axis=(1, 2))))

    def volume(self, sequence: Sequence) -> np.ndarray:
        volumes = {Sequence.T2W: self.t2w, Sequence.ADC: self.adc, Sequence.DWI: self.dwi}
        if sequence not in volumes:
            raise PhantomError(f"the phantom has no {sequence} sequence; use T2W, ADC or DWI")
        return volumes[sequence]


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise PhantomError(f"{name} must be from {low} to {high}, got {value}")


def make_patient(
    seed: int,
    *,
    size: int = 128,
    n_slices: int = 10,
    lesion: bool | None = None,
    pirads: int | None = None,
) -> PhantomPatient:
    """Simulate one patient; the same arguments always give the same arrays.

    `lesion=None` lets the seed decide (even odds); `pirads` forces the category of the lesion.
    Anatomy, lesion, texture and scanner noise come from separate streams of `seed`, so the
    same seed with and without the lesion differs only around the lesion.

    >>> patient = make_patient(7, size=64, n_slices=4, lesion=True, pirads=5)
    >>> patient.t2w.shape, patient.pirads, len(patient.lesion_slices) > 0
    ((4, 64, 64), 5, True)
    """
    check_range("size", size, *SIZE_RANGE)
    check_range("slices", n_slices, *SLICES_RANGE)
    if seed < 0:
        raise PhantomError(f"seed must be a non-negative integer, got {seed}")
    if pirads is not None:
        check_range("PI-RADS", pirads, *PIRADS_RANGE)
        if lesion is False:
            raise PhantomError("a PI-RADS category needs a lesion: pass lesion=True or None")
        lesion = True

    anatomy_rng, lesion_rng, texture_rng, scanner_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    grid = Grid.make(size, n_slices, FOV_MM)
    canvas = Canvas(grid)
    gland = draw_gland(anatomy_rng, grid.t)
    body = draw_body(anatomy_rng)
    paint_body(canvas, body)
    paint_musculoskeletal(canvas, anatomy_rng, body, gland)
    paint_rectum(canvas, anatomy_rng, gland)
    paint_bladder(canvas, anatomy_rng, gland)
    paint_seminal_vesicles(canvas, anatomy_rng, gland)
    zones = paint_gland(canvas, anatomy_rng, gland)

    prostate, tz = zones.gland >= 0.5, zones.tz >= 0.5

    plan = draw_lesion(lesion_rng, lesion, pirads)
    lesion_mask = np.zeros_like(prostate)
    lesion_zone: Zone | None = None
    if plan.present:
        lesion_mask, lesion_zone = paint_lesion(canvas, plan, gland, zones)

    t2w, adc, dwi, adc_acquired, dwi_acquired = _acquire(canvas, grid, texture_rng, scanner_rng)
    return PhantomPatient(
        seed=seed,
        t2w=t2w,
        adc=adc,
        dwi=dwi,
        tissue=canvas.labels,
        prostate=prostate,
        pz=prostate & ~tz,
        tz=tz,
        lesion=lesion_mask,
        pirads=plan.pirads if plan.present else None,
        lesion_zone=lesion_zone,
        pixel_mm=grid.pixel_mm,
        slice_mm=gland_slice_mm(gland.length_mm, n_slices),
        adc_acquired=adc_acquired,
        dwi_acquired=dwi_acquired,
    )


def gland_slice_mm(length_mm: float, n_slices: int) -> float:
    """The slices tile the gland from apex to base."""
    return length_mm / n_slices


def _acquire(
    canvas: Canvas, grid: Grid, texture_rng: np.random.Generator, scanner_rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Tissue maps -> (T2W, ADC, DWI) as stored: textured, biased, resampled and noisy; then
    ADC and DWI as acquired, before their interpolation to the grid."""
    maps = canvas.maps
    fine, septa, mottle = texture_fields(texture_rng, canvas.labels.shape, grid.pixel_mm)
    texture_amplitude, septa_amplitude = (table[canvas.labels] for table in TEXTURE_TABLES)
    fine *= texture_amplitude
    # Every tissue varies a little over centimetres (perfusion, fibre direction, coil loading).
    structure = np.exp(fine + MOTTLE * mottle) * (1.0 - septa_amplitude * septa)
    # Glandular, T2-bright tissue also diffuses more freely: ADC texture follows T2 texture.
    adc_object = maps[mri.ADC_MAP] * (1.0 + 0.4 * fine)

    shape, low_shape = canvas.labels.shape, (grid.n_slices, *mri.lowres_shape(grid.size))
    bias = mri.bias_field(scanner_rng, grid.x, grid.y, grid.t, FOV_MM / 2)
    t2w_sigma = float(mri.T2W_NOISE * scanner_rng.uniform(0.8, 1.3))
    dwi_sigma = float(mri.DWI_NOISE * scanner_rng.uniform(0.8, 1.3))
    t2w_noise = scanner_rng.standard_normal((2, *shape), dtype=np.float32)
    dwi_noise = scanner_rng.standard_normal((2, *low_shape), dtype=np.float32)
    adc_noise = scanner_rng.standard_normal(low_shape, dtype=np.float32)

    t2w = mri.rician(maps[mri.T2W_MAP] * structure * bias, t2w_sigma, *t2w_noise)
    dwi_low = mri.rician(
        mri.acquire_lowres(maps[mri.DWI_MAP] * structure * bias), dwi_sigma, *dwi_noise
    )
    dwi = mri.interpolate(dwi_low, grid.size)
    adc_low = mri.acquire_lowres(adc_object)
    sigma = np.minimum(mri.ADC_NOISE_FRACTION * adc_low, mri.ADC_NOISE_MAX)
    adc_low = np.maximum(adc_low + sigma * adc_noise, 0.0)
    adc = mri.interpolate(adc_low, grid.size)

    def stored(volume: np.ndarray, units: float) -> np.ndarray:
        return np.clip(volume * units, 0.0, mri.UINT16_MAX).astype(np.float32)

    return (
        stored(t2w, mri.T2W_UNITS),
        stored(adc, 1.0),
        stored(dwi, mri.DWI_UNITS),
        stored(adc_low, 1.0),
        stored(dwi_low, mri.DWI_UNITS),
    )
