"""Tissues of the phantom and their MR properties.

Values are typical 3 T figures from the MR literature, rounded: T2 relaxation times, apparent
diffusion coefficients in 10^-6 mm^2/s (the units ADC maps are stored in), and relative proton
density.
They are the ground truth of every phantom image; `mri.py` turns them into signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np

Zone = Literal["PZ", "TZ"]


class Tissue(IntEnum):
    """Dominant tissue of a pixel, as stored in `PhantomPatient.tissue`."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    CORTICAL_BONE = 3
    MARROW = 4
    URINE = 5
    BLADDER_WALL = 6
    RECTAL_WALL = 7
    RECTAL_MUCOSA = 8
    RECTAL_CONTENT = 9
    PERIPHERAL_ZONE = 10
    TRANSITION_ZONE = 11
    STROMA = 12
    URETHRA = 13
    SEMINAL_FLUID = 14
    ARTERY = 15
    VEIN = 16
    LESION = 17


@dataclass(frozen=True)
class TissueProperties:
    """What an MR scanner sees of a tissue.

    `tse_t2_ms` is the apparent T2 in a turbo spin echo where it differs from the true one:
    J-coupling lengthens fat's, stimulated echoes lengthen muscle's. `texture` is the relative
    amplitude of fine structure (glands, fibres, stool) and `septa` the strength of thin dark
    strands (fibrous septa in fat, walls of seminal tubules; negative for bright ones, the
    fatty streaks in muscle); both follow the label map.
    """

    proton_density: float
    t2_ms: float
    adc: float
    fat: bool = False
    texture: float = 0.0
    septa: float = 0.0
    tse_t2_ms: float | None = None


PROPERTIES: dict[Tissue, TissueProperties] = {
    Tissue.AIR: TissueProperties(0.0, 1.0, 0.0),
    Tissue.FAT: TissueProperties(0.9, 80.0, 200.0, True, 0.05, 0.35, tse_t2_ms=200.0),
    Tissue.MUSCLE: TissueProperties(0.8, 35.0, 1550.0, texture=0.12, septa=-0.8, tse_t2_ms=58.0),
    Tissue.CORTICAL_BONE: TissueProperties(0.05, 8.0, 100.0),
    Tissue.MARROW: TissueProperties(0.85, 80.0, 400.0, True, 0.1, 0.3, tse_t2_ms=170.0),
    Tissue.URINE: TissueProperties(1.0, 1800.0, 2900.0),
    Tissue.BLADDER_WALL: TissueProperties(0.75, 50.0, 1500.0),
    Tissue.RECTAL_WALL: TissueProperties(0.75, 45.0, 1300.0, texture=0.05),
    Tissue.RECTAL_MUCOSA: TissueProperties(0.85, 75.0, 1700.0, texture=0.1),
    Tissue.RECTAL_CONTENT: TissueProperties(0.6, 110.0, 1800.0, texture=0.35),
    Tissue.PERIPHERAL_ZONE: TissueProperties(0.9, 170.0, 1800.0, texture=0.06),
    Tissue.TRANSITION_ZONE: TissueProperties(0.85, 95.0, 1250.0, texture=0.1),
    Tissue.STROMA: TissueProperties(0.75, 55.0, 1300.0),
    Tissue.URETHRA: TissueProperties(0.9, 300.0, 2200.0),
    Tissue.SEMINAL_FLUID: TissueProperties(1.0, 400.0, 2100.0, texture=0.1, septa=0.5),
    # Fast arterial flow leaves a spin-echo signal void; its ADC is high (perfusion).
    Tissue.ARTERY: TissueProperties(0.05, 10.0, 2500.0),
    Tissue.VEIN: TissueProperties(0.9, 250.0, 2200.0, texture=0.1, septa=0.4),
}

LESION_TEXTURE = 0.04  # tumours are more uniform than the tissue they replace


def texture_tables() -> tuple[np.ndarray, np.ndarray]:
    """(texture, septa) amplitude per `Tissue` value, for lookup by the label map."""
    texture = np.zeros(len(Tissue), dtype=np.float32)
    septa = np.zeros(len(Tissue), dtype=np.float32)
    for tissue, properties in PROPERTIES.items():
        texture[tissue], septa[tissue] = properties.texture, properties.septa
    texture[Tissue.LESION] = LESION_TEXTURE
    return texture, septa


# Nodules of benign prostatic hyperplasia: the "organised chaos" of the transition zone.
GLANDULAR_NODULE = TissueProperties(0.9, 130.0, 1400.0)
STROMAL_NODULE = TissueProperties(0.8, 80.0, 1150.0)

# Lesion contrast grows with PI-RADS: T2 shortens (relative to its zone) and ADC falls. The
# transition zone is already dark on T2W, so its tumours shorten T2 less.
LESION_T2_FACTOR: dict[Zone, dict[int, float]] = {
    "PZ": {3: 0.7, 4: 0.55, 5: 0.45},
    "TZ": {3: 0.78, 4: 0.68, 5: 0.6},
}
LESION_ADC = {3: 950.0, 4: 820.0, 5: 700.0}
# In-plane radius range (mm): PI-RADS 4 is < 15 mm across, PI-RADS 5 >= 15 mm (PI-RADS v2.1).
LESION_RADIUS_MM = {3: (3.5, 5.0), 4: (5.5, 7.4), 5: (8.0, 11.0)}
ZONE_TISSUE: dict[Zone, Tissue] = {"PZ": Tissue.PERIPHERAL_ZONE, "TZ": Tissue.TRANSITION_ZONE}


def lesion_properties(pirads: int, zone: Zone, adc_offset: float) -> TissueProperties:
    """A tumour of the given PI-RADS category in `zone`; `adc_offset` varies it per patient."""
    host = PROPERTIES[ZONE_TISSUE[zone]]
    return TissueProperties(
        proton_density=host.proton_density,
        t2_ms=host.t2_ms * LESION_T2_FACTOR[zone][pirads],
        adc=LESION_ADC[pirads] + adc_offset,
        texture=LESION_TEXTURE,
    )
