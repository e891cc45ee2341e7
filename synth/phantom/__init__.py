"""A procedural prostate bi-parametric MR phantom: images whose ground truth we fully control.

Each simulated patient has a body with fat and muscle, pelvic bones and femoral heads, a rectum
with gas, the bladder over the base, and a prostate with peripheral and transition zones and
urethra, over slices from apex to base; optionally a tumour with a PI-RADS 3-5 category. Three
co-registered sequences follow from tissue properties: T2W, ADC and high-b DWI. A cohort is
written in this project's layout (writer.py) or in the public PI-CAI dataset's (picai.py).
"""

from synth.phantom.patient import PhantomError, PhantomPatient, make_patient
from synth.phantom.tissues import Tissue
from synth.phantom.writer import write_phantom

__all__ = [
    "PhantomError",
    "PhantomPatient",
    "Tissue",
    "make_patient",
    "write_phantom",
]
