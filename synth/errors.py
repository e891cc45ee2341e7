"""Errors of the generator; `python -m synth` prints their message on one line and exits 1."""

from study.imaging.errors import VTTError


class SynthError(VTTError):
    """A training or sampling request that cannot be carried out; the message says what to do."""
