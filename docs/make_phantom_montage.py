"""Draw docs/img/phantom_montage.png, the README's picture of the phantom.

Run: `python docs/make_phantom_montage.py`. Each row is one patient on the central slice of its
lesion: T2W, ADC and DWI without the lesion, the same three with it, and the ground truth
(prostate green, transition zone blue, lesion red) over T2W. The bottom row walks one patient's
T2W from apex to base. Slices are windowed the way the importer normalises them: T2W and DWI
from the 0.5th to the 99.5th percentile of the slice, ADC from 0 to 3000 x 10^-6 mm^2/s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from synth.phantom import PhantomPatient, make_patient

OUT = Path(__file__).resolve().parent / "img" / "phantom_montage.png"
TILE = 192
HEADER = 22
# (zone, PI-RADS) of the rows; each takes the first seed whose lesion matches.
ROWS = (("PZ", 5), ("TZ", 4), ("PZ", 3))
STRIP_SEED = 2
COLUMNS = ("T2W", "ADC", "DWI b1400", "T2W + lesion", "ADC + lesion", "DWI + lesion", "truth")


def window(image: np.ndarray, sequence: str) -> np.ndarray:
    if sequence == "ADC":
        low, high = 0.0, 3000.0
    else:
        low, high = np.percentile(image, [0.5, 99.5])
    return (np.clip((image - low) / max(high - low, 1e-6), 0, 1) * 255).astype(np.uint8)


def tile(gray: np.ndarray, size: int = TILE) -> Image.Image:
    return Image.fromarray(gray).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)


def truth(patient: PhantomPatient, k: int) -> Image.Image:
    """T2W with the outlines of the prostate, the transition zone and the lesion."""
    rgb = np.repeat(window(patient.t2w[k], "T2W")[..., None], 3, axis=2)
    for mask, colour in (
        (patient.prostate, (0, 220, 0)),
        (patient.tz, (60, 140, 255)),
        (patient.lesion, (255, 40, 40)),
    ):
        edge = mask[k] & ~ndimage.binary_erosion(mask[k])
        rgb[edge] = colour
    return Image.fromarray(rgb).resize((TILE, TILE), Image.Resampling.NEAREST)


def find_seed(zone: str, pirads: int) -> int:
    seed = 0
    while True:
        patient = make_patient(seed, lesion=True)
        if (patient.lesion_zone, patient.pirads) == (zone, pirads):
            return seed
        seed += 1


def main() -> None:
    strip_tile = TILE * len(COLUMNS) // 10
    height = HEADER + len(ROWS) * (TILE + HEADER) + HEADER + strip_tile
    canvas = Image.new("RGB", (TILE * len(COLUMNS), height), "black")
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(COLUMNS):
        draw.text((c * TILE + 6, 5), name, fill="white")

    top = HEADER
    for zone, pirads in ROWS:
        seed = find_seed(zone, pirads)
        sick = make_patient(seed, lesion=True)
        healthy = make_patient(seed, lesion=False)
        k = sick.lesion_slices[len(sick.lesion_slices) // 2]
        images = [
            (healthy.t2w, "T2W"),
            (healthy.adc, "ADC"),
            (healthy.dwi, "DWI"),
            (sick.t2w, "T2W"),
            (sick.adc, "ADC"),
            (sick.dwi, "DWI"),
        ]
        for c, (volume, sequence) in enumerate(images):
            canvas.paste(tile(window(volume[k], sequence)), (c * TILE, top))
        canvas.paste(truth(sick, k), (6 * TILE, top))
        label = f"seed {seed}, slice {k}: PI-RADS {pirads} lesion in the {zone}"
        draw.text((6, top + TILE + 5), label, fill="white")
        top += TILE + HEADER

    patient = make_patient(STRIP_SEED)
    draw.text((6, top + 5), f"seed {STRIP_SEED}: T2W from apex (left) to base", fill="white")
    top += HEADER
    for k in range(patient.n_slices):
        canvas.paste(tile(window(patient.t2w[k], "T2W"), strip_tile), (k * strip_tile, top))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(OUT, optimize=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
