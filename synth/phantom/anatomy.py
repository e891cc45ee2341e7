"""The male pelvis at the level of the prostate, apex to base, with anatomy drawn at random.

Sizes are in millimetres and follow adult anatomy loosely: a gland 38-54 mm across and 34-46 mm
from apex to base, femoral heads about 45 mm across some 170 mm apart, a rectum behind the gland
and the bladder above it. Structures are painted back to front, so later ones cover earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from synth.phantom.canvas import VALUES, Box, Canvas, PerSlice, Wobble
from synth.phantom.mri import contrast
from synth.phantom.tissues import (
    GLANDULAR_NODULE,
    LESION_RADIUS_MM,
    STROMAL_NODULE,
    Tissue,
    Zone,
    lesion_properties,
)

FOV_MM = 220.0
CORTEX_MM = 1.8
LESION_ZONE_PZ_FRACTION = 0.7  # about 70 % of prostate cancers arise in the peripheral zone
# A slice shows the lesion when its cross-section is at least this share of the largest one.
LESION_VISIBLE_SHARE = 0.35
# Lesion centres lie at least this deep inside their zone.
LESION_DEPTH_MM = 3.0

Within = Callable[[Box], np.ndarray]


@dataclass(frozen=True)
class Body:
    """A rounded-rectangle outline (superellipse), flatter behind, lined with fat."""

    cy: float
    a: float
    b_ant: float
    b_post: float
    power: float
    fat_mm: float

    def inside_fat(self, canvas: Canvas) -> Within:
        """Weight of the body inside its subcutaneous fat: where muscles and bones may be."""
        weight = canvas.ellipse(
            canvas.full,
            0.0,
            self.cy,
            self.a - self.fat_mm,
            self.b_ant - self.fat_mm,
            b_post=self.b_post - 0.8 * self.fat_mm,
            power=self.power,
        )
        return lambda box: weight[:, box.rows, box.cols]


@dataclass(frozen=True)
class Gland:
    """The prostate per slice: centre, semi-axes (posterior one flatter), transition zone."""

    cx: float
    cy: np.ndarray
    a: np.ndarray
    b_ant: np.ndarray
    b_post: np.ndarray
    power: float
    angle: float
    length_mm: float
    tz_cy: np.ndarray
    tz_a: np.ndarray
    tz_b: np.ndarray


@dataclass(frozen=True)
class Zones:
    """Partial-volume weights of the gland and its transition zone, shape (K, N, N)."""

    gland: np.ndarray
    tz: np.ndarray


@dataclass(frozen=True)
class LesionPlan:
    """Everything random about a patient's lesion, drawn whether or not it is present."""

    present: bool
    pirads: int
    zone: Zone
    radius_mm: float
    aspect: tuple[float, float, float]
    angle: float
    wobble: Wobble
    t_centre: float
    position: float
    adc_offset: float


def _draw(
    canvas: Canvas,
    tissue: Tissue,
    cx: PerSlice,
    cy: PerSlice,
    a: PerSlice,
    b: PerSlice,
    *,
    within: Within | None = None,
    b_post: PerSlice | None = None,
    angle: float = 0.0,
    power: float = 2.0,
    wobble: Wobble = (),
) -> None:
    reach = max(
        float(np.max(a)), float(np.max(b)), float(np.max(0.0 if b_post is None else b_post))
    )
    present = (np.asarray(a) > 0) & (np.asarray(b) > 0)
    box = canvas.box(cx, cy, reach * (1 + sum(amp for _, amp, _ in wobble)), present)
    if box is None:
        return
    weight = canvas.ellipse(
        box, cx, cy, a, b, b_post=b_post, angle=angle, power=power, wobble=wobble
    )
    if within is not None:
        weight = np.minimum(weight, within(box))
    canvas.paint(box, weight, VALUES[tissue], tissue)


def _draw_bone(
    canvas: Canvas,
    cx: PerSlice,
    cy: PerSlice,
    a: PerSlice,
    b: PerSlice,
    angle: float = 0.0,
    wobble: Wobble = (),
) -> None:
    """Dark cortex around fatty marrow."""
    _draw(canvas, Tissue.CORTICAL_BONE, cx, cy, a, b, angle=angle, wobble=wobble)
    a, b = np.asarray(a) - CORTEX_MM, np.asarray(b) - CORTEX_MM
    _draw(canvas, Tissue.MARROW, cx, cy, a, b, angle=angle, wobble=wobble)


def _irregular(rng: np.random.Generator, strength: float) -> Wobble:
    """A few low harmonics that take the geometric perfection off an outline."""
    return tuple(
        (k, rng.uniform(0, strength) / np.sqrt(k - 1), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)
    )


def _ramp(t: np.ndarray, start: float, stop: float) -> np.ndarray:
    """0 at `start`, rising as a square root to 1 at `stop` (a structure coming into view);
    with `stop` < `start` it fades out going up instead."""
    return np.sqrt(np.clip((t - start) / (stop - start), 0.0, 1.0))


def draw_gland(rng: np.random.Generator, t: np.ndarray) -> Gland:
    """Gland size rises from a small apex to its widest just above mid-gland, then narrows."""
    u = rng.uniform
    cx, cy0 = u(-5, 5), u(-4, 10)
    a0 = u(19, 27)
    b0 = a0 * u(0.62, 0.8)
    flat = u(0.78, 0.92)
    tilt = u(0, 8)
    peak, apex, base_loss = u(0.55, 0.75), u(0.4, 0.55), u(0.05, 0.2)
    rising = apex + (1 - apex) * np.sin(0.5 * np.pi * np.minimum(t / peak, 1.0))
    falling = 1 - base_loss * (np.maximum(t - peak, 0.0) / (1 - peak)) ** 2
    scale = np.where(t < peak, rising, falling).astype(np.float32)
    cy = (cy0 - tilt * (t - 0.5)).astype(np.float32)
    a, b_ant = a0 * scale, b0 * scale
    # Benign hyperplasia makes the transition zone a larger share of the gland towards the base.
    tz_share = u(0.5, 0.8) * (0.35 + 0.65 * t)
    return Gland(
        cx=cx,
        cy=cy,
        a=a,
        b_ant=b_ant,
        b_post=b_ant * flat,
        power=u(2.0, 2.6),
        angle=u(-0.12, 0.12),
        length_mm=u(34, 46),
        tz_cy=cy - 0.22 * b_ant,
        tz_a=a * tz_share,
        tz_b=b_ant * tz_share * 0.75,
    )


def draw_body(rng: np.random.Generator) -> Body:
    """The body outline is the same on every slice: the slab is only about 4 cm thick."""
    u = rng.uniform
    a0 = u(112, 140)
    return Body(
        cy=u(-4, 4),
        a=a0,
        b_ant=u(78, 95),
        b_post=u(82, 100),
        power=u(2.3, 3.0),
        fat_mm=u(10, 22) + 0.35 * (a0 - 112),
    )


def paint_body(canvas: Canvas, body: Body) -> None:
    """Fat fills the body; muscles, bones and organs are painted into it."""
    weight = canvas.ellipse(
        canvas.full, 0.0, body.cy, body.a, body.b_ant, b_post=body.b_post, power=body.power
    )
    canvas.paint(canvas.full, weight, VALUES[Tissue.FAT], Tissue.FAT)


def paint_musculoskeletal(
    canvas: Canvas, rng: np.random.Generator, body: Body, gland: Gland
) -> None:
    """Hip, gluteal, obturator and abdominal-wall muscles; pubis, ischium, hips; femoral vessels."""
    u = rng.uniform
    t = canvas.grid.t
    inside = body.inside_fat(canvas)
    head_x, head_y, head_r = u(80, 92), float(np.mean(gland.cy)) + u(-20, -8), u(21, 25)
    shift = u(-3, 3)
    cy0, b0 = float(np.mean(gland.cy)), float(np.max(gland.b_ant))
    pubis_end, pubis = u(0.45, 0.65), (u(18, 24), u(7, 9), u(0.25, 0.45), u(12, 20))
    ischium_end = u(0.35, 0.5)
    acetabulum_start = u(0.45, 0.6)
    for side in (-1, 1):
        head_cx = side * (head_x + 6 * (1 - t)) + shift
        radius = head_r * (0.85 + 0.15 * t)
        _draw(
            canvas,
            Tissue.MUSCLE,
            head_cx + side * 4,
            head_y + 6,
            radius + 16,
            radius + 24,
            within=inside,
            wobble=_irregular(rng, 0.1),
        )
        _draw(
            canvas,
            Tissue.MUSCLE,
            side * u(50, 62),
            body.cy + 0.55 * body.b_post,
            u(40, 50),
            u(18, 24),
            angle=-side * u(0.5, 0.75),
            within=inside,
            wobble=_irregular(rng, 0.1),
        )
        _draw(
            canvas,
            Tissue.MUSCLE,
            gland.cx + side * (float(np.max(gland.a)) + u(14, 20)),
            cy0 + u(0, 8),
            u(28, 36),
            u(8, 12),
            angle=np.pi / 2 - side * u(0.15, 0.35),
            within=inside,
            wobble=_irregular(rng, 0.08),
        )
        _draw(
            canvas,
            Tissue.MUSCLE,
            side * u(20, 28),
            body.cy - body.b_ant + body.fat_mm + 6,
            u(16, 22),
            u(4, 6),
            angle=side * 0.1,
            within=inside,
            wobble=_irregular(rng, 0.1),
        )

        length, width, angle, gap = pubis
        below = _ramp(t, pubis_end, pubis_end - 0.2)
        _draw_bone(
            canvas,
            side * (1.5 + length * np.cos(angle)),
            cy0 - b0 - gap,
            length * below,
            width * below,
            angle=side * angle,
            wobble=_irregular(rng, 0.06),
        )
        below = _ramp(t, ischium_end, ischium_end - 0.2)
        _draw_bone(canvas, side * u(50, 60), cy0 + u(22, 32), u(9, 12) * below, u(13, 17) * below)
        above = _ramp(t, acetabulum_start, acetabulum_start + 0.25)
        _draw_bone(
            canvas,
            head_cx - side * 0.75 * radius,
            head_y,
            0.55 * radius * above,
            1.05 * radius * above,
        )
        _draw_bone(canvas, head_cx, head_y, radius, radius)

        artery_r, vein_r = u(3.5, 4.5), u(4.5, 6.0)
        vessel_y = head_y - radius - u(9, 13)
        for offset, r, tissue in ((6, artery_r, Tissue.ARTERY), (15, vein_r, Tissue.VEIN)):
            _draw(canvas, Tissue.FAT, head_cx - side * offset, vessel_y, r + 4, r + 4)
            _draw(canvas, tissue, head_cx - side * offset, vessel_y, r, r)


def paint_rectum(canvas: Canvas, rng: np.random.Generator, gland: Gland) -> None:
    """Levator ani sling, then the rectum behind the gland: wall, mucosa, stool and gas."""
    u = rng.uniform
    t = canvas.grid.t
    cx = gland.cx + u(-4, 4)
    a0 = u(15, 21)
    grow = 0.85 + 0.3 * t  # the ampulla widens towards the base
    a, b = a0 * grow, a0 * u(0.6, 0.8) * grow
    cy = gland.cy + gland.b_post + u(2, 5) + b
    distension = u(0.3, 1.0)
    gas = 0.0 if rng.random() < 0.3 else u(0.15, 0.7)

    # The levator ani slings from the pubis past the sides of the gland and behind the rectum.
    top = gland.cy - 0.3 * gland.b_ant
    sling_cy, sling_b = (top + cy + b) / 2, (cy + b - top) / 2 + u(4, 7)
    sling_a = np.maximum(gland.a, a) + u(6, 10)
    thickness = u(3, 4.5)
    box = canvas.box(cx, sling_cy, float(np.max(sling_a + sling_b)))
    if box is not None:
        outer = canvas.ellipse(box, cx, sling_cy, sling_a, sling_b)
        inner = canvas.ellipse(box, cx, sling_cy, sling_a - thickness, sling_b - thickness)
        sling = np.clip(outer - inner, 0.0, 1.0) * canvas.side_of(box, top, anterior=False)
        canvas.paint(box, sling, VALUES[Tissue.MUSCLE], Tissue.MUSCLE)

    shape = _irregular(rng, 0.06)
    _draw(canvas, Tissue.RECTAL_WALL, cx, cy, a, b, wobble=shape)
    _draw(canvas, Tissue.RECTAL_MUCOSA, cx, cy, a - 2.5, b - 2.5, wobble=shape)
    lumen_a, lumen_b = np.maximum(a - 4.5, 1.0) * distension, np.maximum(b - 4.5, 1.0) * distension
    _draw(canvas, Tissue.RECTAL_CONTENT, cx, cy, lumen_a, lumen_b, wobble=_irregular(rng, 0.15))
    box = canvas.box(cx, cy, float(np.max(lumen_a)))
    if gas > 0 and box is not None:
        # Supine, gas rises to the anterior (upper) side of the lumen.
        level = cy - lumen_b + 2 * lumen_b * gas
        weight = np.minimum(
            canvas.ellipse(box, cx, cy, lumen_a - 0.5, lumen_b - 0.5),
            canvas.side_of(box, level, anterior=True),
        )
        canvas.paint(box, weight, VALUES[Tissue.AIR], Tissue.AIR)


def paint_bladder(canvas: Canvas, rng: np.random.Generator, gland: Gland) -> None:
    """The bladder sits on the base: it comes into view over the upper slices, anterior."""
    u = rng.uniform
    grow = _ramp(canvas.grid.t, u(0.58, 0.8), 1.0)
    size = u(22, 48)  # filling
    a, b = size * grow, size * u(0.55, 0.75) * grow
    cx = gland.cx + u(-6, 6)
    cy = gland.cy - 0.5 * gland.b_ant - 0.8 * b
    shape = _irregular(rng, 0.05)
    _draw(canvas, Tissue.BLADDER_WALL, cx, cy, a, b, wobble=shape)
    _draw(canvas, Tissue.URINE, cx, cy, a - 3, b - 3, wobble=shape)


def paint_seminal_vesicles(canvas: Canvas, rng: np.random.Generator, gland: Gland) -> None:
    """Fluid-filled, bow-tie shaped, behind the base of the gland."""
    u = rng.uniform
    grow = _ramp(canvas.grid.t, u(0.72, 0.85), 1.0)
    for side in (-1, 1):
        _draw(
            canvas,
            Tissue.SEMINAL_FLUID,
            gland.cx + side * u(10, 14),
            gland.cy + 0.85 * gland.b_post,
            u(10, 14) * grow,
            u(3.5, 5) * grow,
            angle=-side * u(0.2, 0.5),
        )


def paint_gland(canvas: Canvas, rng: np.random.Generator, gland: Gland) -> Zones:
    """Venous plexus, neurovascular bundles, capsule, zones, hyperplastic nodules, urethra."""
    u = rng.uniform
    g = gland
    box = canvas.box(g.cx, g.cy, float(np.max(g.a)) * 1.4 + 6)
    assert box is not None, "the gland lies at the centre of the field of view"
    shape = _irregular(rng, 0.04)

    def outline(grow_mm: float) -> np.ndarray:
        return canvas.ellipse(
            box,
            g.cx,
            g.cy,
            g.a + grow_mm,
            g.b_ant + grow_mm,
            b_post=g.b_post + grow_mm,
            angle=g.angle,
            power=g.power,
            wobble=shape,
        )

    plexus = np.minimum(outline(3.5), canvas.side_of(box, g.cy + 0.2 * g.b_post, anterior=True))
    canvas.paint(box, plexus, VALUES[Tissue.VEIN], Tissue.VEIN)
    for side in (-1, 1):
        bundle = canvas.ellipse(box, g.cx + side * 0.72 * g.a, g.cy + 0.8 * g.b_post, 2.5, 2.5)
        canvas.paint(box, bundle, VALUES[Tissue.VEIN], Tissue.VEIN)
    canvas.paint(box, outline(0.8), VALUES[Tissue.STROMA], Tissue.STROMA)
    stack = canvas.labels.shape
    zones = Zones(np.zeros(stack, np.float32), np.zeros(stack, np.float32))
    zones.gland[box] = outline(0.0)
    canvas.paint(box, zones.gland[box], VALUES[Tissue.PERIPHERAL_ZONE], Tissue.PERIPHERAL_ZONE)
    zones.tz[box] = np.minimum(canvas.ellipse(box, g.cx, g.tz_cy, g.tz_a, g.tz_b), zones.gland[box])
    canvas.paint(box, zones.tz[box], VALUES[Tissue.TRANSITION_ZONE], Tissue.TRANSITION_ZONE)

    z = slice_z_mm(canvas.grid.t, g.length_mm)
    for _ in range(int(rng.integers(2, 8))):
        k_mid = int(np.argmin(np.abs(canvas.grid.t - u(0.3, 1.0))))
        cx = g.cx + u(-0.6, 0.6) * g.tz_a[k_mid]
        cy = g.tz_cy[k_mid] + u(-0.5, 0.5) * g.tz_b[k_mid]
        radius, depth = u(2.5, 7.0), u(3.0, 8.0)
        kind = GLANDULAR_NODULE if rng.random() < 0.5 else STROMAL_NODULE
        r = radius * np.sqrt(np.clip(1 - ((z - z[k_mid]) / depth) ** 2, 0.0, None))
        nodule_box = canvas.box(cx, cy, radius + 1.0, present=r > 0)
        if nodule_box is None:
            continue
        tz = zones.tz[nodule_box]
        outer = canvas.ellipse(nodule_box, cx, cy, r + 1.0, r * 0.85 + 1.0)
        nodule = canvas.ellipse(nodule_box, cx, cy, r, r * 0.85)
        capsule = np.minimum(np.clip(outer - nodule, 0, 1), tz)
        canvas.paint(nodule_box, capsule, VALUES[Tissue.STROMA], None)
        canvas.paint(nodule_box, np.minimum(nodule, tz), contrast(kind), None)

    canvas.paint(
        box, canvas.ellipse(box, g.cx, g.tz_cy, 2.6, 2.6), VALUES[Tissue.STROMA], Tissue.STROMA
    )
    canvas.paint(
        box, canvas.ellipse(box, g.cx, g.tz_cy, 1.1, 1.1), VALUES[Tissue.URETHRA], Tissue.URETHRA
    )
    return zones


def slice_z_mm(t: np.ndarray, length_mm: float) -> np.ndarray:
    """Slice positions along the gland axis, mm from mid-gland."""
    return (t - 0.5) * length_mm


def draw_lesion(rng: np.random.Generator, present: bool | None, pirads: int | None) -> LesionPlan:
    """Draw every lesion parameter in a fixed order, so toggling the lesion moves nothing else."""
    u = rng.uniform
    chance, grade, zone, size = rng.random(4)
    aspect = (u(0.85, 1.2), u(0.7, 1.0), u(0.9, 1.3))
    angle = u(0, np.pi)
    wobble = tuple((k, u(0.0, 0.12) / k * 2, u(0, 2 * np.pi)) for k in (2, 3, 5))
    t_centre, position, adc_offset = u(0.3, 0.75), rng.random(), u(-30, 30)
    grade_drawn = 3 + min(int(grade * 3), 2)
    category = pirads if pirads is not None else grade_drawn
    low, high = LESION_RADIUS_MM[category]
    return LesionPlan(
        present=chance < 0.5 if present is None else present,
        pirads=category,
        zone="PZ" if zone < LESION_ZONE_PZ_FRACTION else "TZ",
        radius_mm=low + size * (high - low),
        aspect=aspect,
        angle=angle,
        wobble=wobble,
        t_centre=t_centre,
        position=position,
        adc_offset=adc_offset,
    )


def paint_lesion(
    canvas: Canvas, plan: LesionPlan, gland: Gland, zones: Zones
) -> tuple[np.ndarray, Zone]:
    """Paint the tumour as an irregular ellipsoid clipped to its zone: (mask (K, N, N), zone).

    It is centred on a slice, at a pixel chosen deep inside its zone (posterior peripheral
    zone, or anterior transition zone, where most such tumours arise). Slices that cut only a
    sliver of it are left untouched, so every slice labelled with the lesion shows it. Where a
    coarse grid leaves no pixel of transition zone on that slice, the lesion goes to the
    peripheral zone.
    """
    g = canvas.grid
    k = min(int(plan.t_centre * g.n_slices), g.n_slices - 1)
    zone = plan.zone if np.any(zones.tz[k] >= 0.5) else "PZ"
    zone_weight = zones.tz if zone == "TZ" else np.clip(zones.gland - zones.tz, 0.0, 1.0)
    x, y = canvas.coords(canvas.full)
    inside = zone_weight[k] >= 0.5
    preferred = (y[0] > gland.cy[k]) if zone == "PZ" else (y[0] < gland.tz_cy[k])
    # The depth does not depend on the category, so every PI-RADS puts the lesion at one place.
    depth = max(1, round(LESION_DEPTH_MM / g.pixel_mm))
    deep = ndimage.binary_erosion(inside, iterations=depth)
    for candidates in (deep & preferred, inside & preferred, inside):
        rows, cols = np.nonzero(candidates)
        if len(rows):
            break
    pick = min(int(plan.position * len(rows)), len(rows) - 1)
    cx, cy = float(x[0, 0, cols[pick]]), float(y[0, rows[pick], 0])

    z = slice_z_mm(g.t, gland.length_mm)
    along, across, deep_z = plan.aspect
    section = np.sqrt(np.clip(1 - ((z - z[k]) / (plan.radius_mm * deep_z)) ** 2, 0.0, None))
    r = plan.radius_mm * section
    reach = plan.radius_mm * max(along, across) * (1 + sum(amp for _, amp, _ in plan.wobble))
    box = canvas.box(cx, cy, reach, present=r > 0)
    assert box is not None, "the lesion's centre slice holds it"
    weight = canvas.ellipse(
        box, cx, cy, r * along, r * across, angle=plan.angle, wobble=plan.wobble
    )
    weight = np.minimum(weight, zone_weight[box])
    area = np.count_nonzero(weight >= 0.5, axis=(1, 2))
    visible = area >= max(1.0, LESION_VISIBLE_SHARE * float(area.max()))
    weight = weight * visible[:, None, None]
    tissue = lesion_properties(plan.pirads, zone, plan.adc_offset)
    canvas.paint(box, weight, contrast(tissue), Tissue.LESION)
    mask = np.zeros(canvas.labels.shape, dtype=bool)
    mask[box] = weight >= 0.5
    return mask, zone


def texture_fields(
    rng: np.random.Generator, shape: tuple[int, int, int], pixel_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fine, septa, mottle): random structure of tissue, per slice.

    `fine` and `mottle` are unit-variance fields correlated over about 1 mm and 8 mm. Septa
    are the zero-crossings of a field correlated over 4 mm, about a pixel wide, kept where
    the mottle is positive so that they form scattered strands rather than a closed net.
    """
    white = rng.standard_normal((3, *shape), dtype=np.float32)
    fields = []
    for field, scale_mm in zip(white, (max(1.0, 0.7 * pixel_mm), 4.0, 8.0), strict=True):
        sigma = scale_mm / pixel_mm
        smooth = ndimage.gaussian_filter(field, sigma=(0, sigma, sigma), truncate=3.0)
        fields.append(smooth / smooth.std())
    fine, strands, mottle = fields
    width = np.clip(0.1 * pixel_mm, 0.05, 0.5)
    septa = np.exp(-((strands / width) ** 2)) * np.clip(mottle, 0.0, 1.0)
    return fine, septa, mottle
