"""The generator side of VTT Studio: phantom, conditional diffusion model, realism checks."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
