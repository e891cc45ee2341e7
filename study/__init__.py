"""VTT Studio: reader studies and Visual Turing Tests for real and synthetic images."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
