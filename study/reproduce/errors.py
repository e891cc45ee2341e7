"""The one error of `python -m study reproduce`."""

from __future__ import annotations

from study.imaging.errors import VTTError


class ReproduceError(VTTError):
    """A reproduction that cannot go on; the message names the stage or the file and what to do."""
