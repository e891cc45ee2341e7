"""Errors a user can act on. Every message names the file and the problem."""


class VTTError(Exception):
    """Base of every error this project raises on purpose; its message is shown to the user."""


class ImagingError(VTTError):
    """An image file or folder that cannot be read, or that fails a safety check."""


class ManifestError(VTTError):
    """A manifest that is malformed; the message lists every bad row."""
