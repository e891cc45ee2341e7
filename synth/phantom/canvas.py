"""The drawing surface of the phantom: a slice stack painted back to front with partial volume.

Coordinates are millimetres from the centre of the field of view: x grows to the image right
(the patient's left, radiological convention) and y grows downwards (posterior). Every shape
parameter may be a scalar or one value per slice, so a whole stack is drawn in one vectorised
call, and only inside the shape's bounding box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from synth.phantom.mri import N_MAPS, contrast
from synth.phantom.tissues import PROPERTIES, Tissue

PerSlice = float | np.ndarray
# (harmonic, relative amplitude, phase) terms that make a contour irregular
Wobble = Sequence[tuple[int, float, float]]


@dataclass(frozen=True)
class Grid:
    size: int
    pixel_mm: float
    x: np.ndarray  # (N,) column centres, mm
    y: np.ndarray  # (N,) row centres, mm
    t: np.ndarray  # (K,) slice positions from apex (0) to base (1)

    @classmethod
    def make(cls, size: int, n_slices: int, fov_mm: float) -> Grid:
        pixel_mm = fov_mm / size
        centres = ((np.arange(size) - (size - 1) / 2) * pixel_mm).astype(np.float32)
        t = ((np.arange(n_slices) + 0.5) / n_slices).astype(np.float32)
        return cls(size, pixel_mm, centres, centres.copy(), t)

    @property
    def n_slices(self) -> int:
        return len(self.t)


class Box(NamedTuple):
    """Where a shape is drawn: the slices it appears on and its bounding rows and columns."""

    slices: slice
    rows: slice
    cols: slice


def per_slice(value: PerSlice, box: Box) -> np.ndarray:
    """A scalar or (K,) parameter, restricted to the box's slices, shaped to broadcast."""
    value = np.asarray(value, dtype=np.float32)
    if value.ndim:
        value = value[box.slices]
    return value.reshape(-1, 1, 1)


class Canvas:
    """Parameter maps (see `mri.N_MAPS`) and the dominant-tissue label of every pixel."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        shape = (grid.n_slices, grid.size, grid.size)
        self.maps = np.zeros((N_MAPS, *shape), dtype=np.float32)
        self.maps[:] = contrast(PROPERTIES[Tissue.AIR])[:, None, None, None]
        self.labels = np.zeros(shape, dtype=np.uint8)
        everywhere = slice(0, grid.size)
        self.full = Box(slice(0, grid.n_slices), everywhere, everywhere)

    def box(
        self, cx: PerSlice, cy: PerSlice, radius: float, present: np.ndarray | None = None
    ) -> Box | None:
        """The pixels within `radius` mm (plus an anti-aliasing margin) of any centre, on the
        slices from the first to the last where `present` (default: all)."""
        g = self.grid
        slices = slice(0, g.n_slices)
        if present is not None and np.ndim(present):
            (on,) = np.nonzero(present)
            if not len(on):
                return None
            slices = slice(int(on[0]), int(on[-1]) + 1)
        margin = radius + 2 * g.pixel_mm
        half = (g.size - 1) / 2

        def span(lo: float, hi: float) -> slice:
            start = max(0, int(np.floor(lo / g.pixel_mm + half)))
            stop = min(g.size, int(np.ceil(hi / g.pixel_mm + half)) + 1)
            return slice(start, max(start, stop))

        rows = span(float(np.min(cy)) - margin, float(np.max(cy)) + margin)
        cols = span(float(np.min(cx)) - margin, float(np.max(cx)) + margin)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return None
        return Box(slices, rows, cols)

    def coords(self, box: Box) -> tuple[np.ndarray, np.ndarray]:
        return self.grid.x[box.cols][None, None, :], self.grid.y[box.rows][None, :, None]

    def ellipse(
        self,
        box: Box,
        cx: PerSlice,
        cy: PerSlice,
        a: PerSlice,
        b: PerSlice,
        *,
        b_post: PerSlice | None = None,
        angle: float = 0.0,
        power: float = 2.0,
        wobble: Wobble = (),
    ) -> np.ndarray:
        """Partial-volume weight (0..1) of a (super)ellipse, shape (K, rows, cols).

        `a` lies along direction `angle` (radians, from +x towards +y), `b` across it;
        `b_post`, when given, replaces `b` on the +y side (a flatter posterior). The edge is
        anti-aliased over one pixel with the first-order distance (f - 1) / |grad f|. Slices
        where a semi-axis is not positive are empty.
        """
        x, y = self.coords(box)
        a, b = per_slice(a, box), per_slice(b, box)
        alive = (a > 0) & (b > 0)
        a, b = np.maximum(a, 1e-3), np.maximum(b, 1e-3)
        dx, dy = x - per_slice(cx, box), y - per_slice(cy, box)
        if angle:
            c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
            u, v = c * dx + s * dy, c * dy - s * dx
        else:
            u, v = dx, dy
        if b_post is not None:
            b = np.where(v > 0, np.maximum(per_slice(b_post, box), 1e-3), b)
        un, vn = u / a, v / b
        if power == 2.0:
            f = un * un + vn * vn
            grad = 2.0 * np.sqrt((un / a) ** 2 + (vn / b) ** 2)
        else:
            au, av = np.abs(un), np.abs(vn)
            f = au**power + av**power
            grad = power * np.sqrt((au ** (power - 1) / a) ** 2 + (av ** (power - 1) / b) ** 2)
        target: np.ndarray | float = 1.0
        if wobble:
            theta = np.arctan2(vn, un)
            radius = 1.0 + sum(amp * np.cos(k * theta + phase) for k, amp, phase in wobble)
            target = radius**power
        distance = (f - target) / np.maximum(grad, 1e-6)
        weight = np.clip(0.5 - distance / self.grid.pixel_mm, 0.0, 1.0)
        return weight * alive

    def side_of(self, box: Box, level: PerSlice, *, anterior: bool) -> np.ndarray:
        """Weight of the half-plane y < level (anterior) or y > level (posterior)."""
        _, y = self.coords(box)
        level = per_slice(level, box)
        distance = (y - level) if anterior else (level - y)
        return np.clip(0.5 - distance / self.grid.pixel_mm, 0.0, 1.0)

    def paint(
        self, box: Box, weight: np.ndarray, values: np.ndarray, tissue: Tissue | None
    ) -> None:
        """Blend `values` (one per map) in with `weight`; label pixels it now dominates."""
        block = self.maps[(slice(None), *box)]
        weight = np.broadcast_to(weight, block.shape[1:])
        block += weight[None] * (values[:, None, None, None] - block)
        if tissue is not None:
            self.labels[box][weight >= 0.5] = tissue


VALUES = {tissue: contrast(properties) for tissue, properties in PROPERTIES.items()}
