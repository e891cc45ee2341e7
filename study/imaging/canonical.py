"""Canonical arrays (float32 in [0, 1]) on disk and in storage.

The generator learns and writes canonical arrays; they are imported with intensity=canonical
and never normalised a second time.

- `write_canonical_png`: 16-bit grayscale PNG, value round(x * 65535), no metadata chunks.
- `read_canonical`: 16-bit pictures / 65535, 8-bit / 255, float or bilevel pictures as they
  are; NIfTI and MetaImage go through `load_slices` (same orientation as every other volume)
  and must hold one slice. Values are clipped to [0, 1] after a sanity check.
- `canonical_to_bytes` / `canonical_from_bytes`: lossless .npy float32, for storage.

>>> array = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
>>> bool((canonical_from_bytes(canonical_to_bytes(array)) == array).all())
True
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from study.imaging.errors import ImagingError, one_line
from study.imaging.load import MAX_IMAGE_PIXELS, PICTURE_SUFFIXES, load_slices, read_picture
from study.imaging.render import png_bytes

# A sampler may overshoot [0, 1] a little, which is clipped; values further out mean the image
# is not on the canonical scale at all (for example raw scanner values).
CANONICAL_SLACK = 0.1


def as_canonical(array: np.ndarray, what: str) -> np.ndarray:
    """`array`, already on the canonical scale, checked and clipped to [0, 1] as float32.

    `what` names the image in the error raised when values lie far outside [0, 1].
    """
    values = np.asarray(array, dtype=np.float32)
    if values.size == 0:
        raise ImagingError(f"{what}: holds no pixels")
    if not np.isfinite(values).all():
        raise ImagingError(f"{what}: has NaN or infinite values; a canonical image has none")
    low, high = float(values.min()), float(values.max())
    if low < -CANONICAL_SLACK or high > 1.0 + CANONICAL_SLACK:
        raise ImagingError(
            f"{what}: values span {low:g} .. {high:g}, but canonical images lie in [0, 1]; "
            "import it with intensity=raw to normalise it"
        )
    return np.clip(values, 0.0, 1.0)


def read_canonical(path: Path, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """A generator output as a canonical float32 2D array in [0, 1], of at most `max_pixels`."""
    if path.name.lower().endswith(PICTURE_SUFFIXES):
        values, full_scale = read_picture(path, max_pixels=max_pixels)
        return as_canonical(values / np.float32(full_scale), str(path))
    slices = load_slices(path, slices="all", max_pixels=max_pixels)
    if len(slices) != 1:
        raise ImagingError(
            f"{path}: holds {len(slices)} slices; a canonical image file holds one 2D slice "
            "(list volumes in a manifest with 'slices' instead)"
        )
    return as_canonical(slices[0].array, str(path))


def write_canonical_png(array: np.ndarray, path: Path) -> None:
    """Write a canonical array as a 16-bit grayscale PNG (clipped to [0, 1]), deterministically."""
    values = np.asarray(array, dtype=np.float64)
    if values.ndim != 2 or 0 in values.shape:
        raise ImagingError(f"{path}: cannot write an array of shape {values.shape}: it is not 2D")
    if not np.isfinite(values).all():
        raise ImagingError(f"{path}: cannot write an array with NaN or infinite values")
    levels = np.floor(np.clip(values, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    path.write_bytes(png_bytes(Image.fromarray(levels)))


def canonical_to_bytes(array: np.ndarray) -> bytes:
    """A 2D canonical array as .npy bytes (float32, C order); identical input, identical bytes."""
    values = np.ascontiguousarray(array, dtype=np.float32)
    if values.ndim != 2:
        raise ImagingError(f"cannot store an array of shape {values.shape}: it is not 2D")
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


def canonical_from_bytes(data: bytes) -> np.ndarray:
    """The array that `canonical_to_bytes` stored, bit for bit."""
    try:
        values = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ImagingError(
            f"stored canonical array cannot be read ({one_line(e)}); it is damaged"
        ) from e
    if values.dtype != np.float32 or values.ndim != 2:
        raise ImagingError(
            f"stored canonical array is {values.dtype} of shape {values.shape}, "
            "not a 2D float32 array"
        )
    return values
