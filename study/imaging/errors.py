"""Errors a user can act on. Every message names the file and the problem."""


class VTTError(Exception):
    """Base of every error this project raises on purpose; its message is shown to the user."""


class ImagingError(VTTError):
    """An image file or folder that cannot be read, or that fails a safety check."""


class ManifestError(VTTError):
    """A manifest that is malformed; the message lists every bad row."""


def one_line(error: BaseException, limit: int = 200) -> str:
    """A library's error message folded onto one line and shortened, to quote inside ours.

    Our messages are one line per problem (a manifest error lists one per line), while
    libraries such as SimpleITK raise multi-line messages with C++ source locations.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
