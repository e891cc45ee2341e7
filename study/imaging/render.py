"""Display renders: every asset becomes an 8-bit gray PNG of one fixed size and no metadata.

Blinding rests on this module: real and synthetic images take the same path (window, zoom, pad
to square, resize, quantise) and yield PNGs that differ only in their pixels, never in their
length. A compressed PNG's length follows its content (noise compresses worse than smooth
tissue), and a browser's developer tools show it: in the demo it told real from synthetic
images within a sequence. So `render_png` writes the PNG itself, uncompressed: the signature,
IHDR (8-bit gray, no interlace), one IDAT holding a zlib stream of stored deflate blocks of the
rows (filter byte 0 each), and IEND; no other chunk, so nothing can carry metadata. Its length is
a function of the size alone, 8 + 25 + 12 + 2 + n + 5 * ceil(n / 65535) + 4 + 12 bytes for
n = size * (size + 1) row bytes: 65,865 bytes at the default 256 px (n = 65,792, two blocks).
Pillow's encoder at compress_level=0 also stores, but how it splits blocks and IDAT chunks is
its own and zlib's buffering, not the format's.

>>> png = render_png(np.zeros((128, 84), np.float32), size=256)
>>> png[:8] == PNG_SIGNATURE, len(png)
(True, 65865)
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zlib

import numpy as np
from PIL import Image

from study.imaging.errors import ImagingError

# The default of the app's VTT_RENDER_SIZE. This package reads no settings: every render a study
# shows must have the one size of the app's setting, so the app passes it.
RENDER_SIZE = 256
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks a grayscale PNG needs; everything else is metadata.
PNG_IMAGE_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})
# The most a stored deflate block holds (its length field has 16 bits).
MAX_STORED_BLOCK = 0xFFFF
# zlib header: deflate with a 32 KiB window, "fastest" level; 0x7801 is a multiple of 31 (FCHECK).
ZLIB_STORED_HEADER = b"\x78\x01"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _as_image_2d(array: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(array, dtype=np.float32)
    if values.ndim != 2 or 0 in values.shape:
        raise ImagingError(f"cannot {what} an array of shape {values.shape}: it must be 2D")
    if not np.isfinite(values).all():
        raise ImagingError(f"cannot {what} an array with NaN or infinite values")
    return values


def _pad_square(values: np.ndarray) -> np.ndarray:
    """`values` centred on a square of zeros (the extra row or column goes bottom/right)."""
    rows, cols = values.shape
    side = max(rows, cols)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - rows) // 2, (side - cols) // 2
    square[top : top + rows, left : left + cols] = values
    return square


def _resize(square: np.ndarray, size: int) -> np.ndarray:
    if square.shape == (size, size):
        return square.copy()
    # Pillow's bilinear filter widens its support when shrinking, so downsizing averages over
    # the covered area (no aliasing) and upsizing interpolates; both are deterministic.
    image = Image.fromarray(np.ascontiguousarray(square, dtype=np.float32))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def fit_square(array: np.ndarray, size: int) -> np.ndarray:
    """`array` padded to a square with 0 (aspect kept), then resized to size x size, float32.

    >>> fit_square(np.ones((2, 4), np.float32), 4).tolist()[0]
    [0.0, 0.0, 0.0, 0.0]
    """
    if size < 1:
        raise ImagingError(f"cannot fit to size {size}: the size must be at least 1 pixel")
    return _resize(_pad_square(_as_image_2d(array, "fit")), size)


def strip_png_metadata(png: bytes) -> bytes:
    """`png` with only its image chunks (IHDR, PLTE, IDAT, IEND); pixels untouched."""
    if not png.startswith(PNG_SIGNATURE):
        raise ImagingError("not a PNG stream: the signature is missing")
    kept = [PNG_SIGNATURE]
    offset = len(PNG_SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        end = offset + 12 + length
        if png[offset + 4 : offset + 8] in PNG_IMAGE_CHUNKS:
            kept.append(png[offset:end])
        offset = end
    return b"".join(kept)


def png_bytes(image: Image.Image) -> bytes:
    """`image` as a compressed PNG without metadata chunks; identical input gives identical bytes.

    For stored files (canonical 16-bit PNGs), never for what a reader sees: the length of a
    compressed PNG follows its content (see `gray_png`).
    """
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return strip_png_metadata(buffer.getvalue())


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _stored_zlib(data: bytes) -> bytes:
    """Non-empty `data` as a zlib stream of stored (uncompressed) deflate blocks of at most
    65,535 bytes: 2 + len(data) + 5 per block + 4 bytes long, whatever the bytes are."""
    parts = [ZLIB_STORED_HEADER]
    for start in range(0, len(data), MAX_STORED_BLOCK):
        block = data[start : start + MAX_STORED_BLOCK]
        final = start + MAX_STORED_BLOCK >= len(data)
        # Header byte: BFINAL, BTYPE 00 (stored), then padding; LEN and its complement NLEN.
        parts.append(struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF))
        parts.append(block)
    parts.append(struct.pack(">I", zlib.adler32(data)))
    return b"".join(parts)


def gray_png(levels: np.ndarray) -> bytes:
    """An 8-bit gray PNG of `levels` (2D uint8) whose length depends on its shape alone.

    Signature, IHDR, one IDAT of stored deflate blocks holding the rows (each after filter
    byte 0), IEND: no compression, no metadata chunk; identical input gives identical bytes.
    """
    pixels = np.asarray(levels)
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or 0 in pixels.shape:
        raise ImagingError(
            f"cannot write a gray PNG of a {pixels.dtype} array of shape {pixels.shape}: "
            "it must be 2D uint8"
        )
    rows, cols = pixels.shape
    raw = np.zeros((rows, cols + 1), dtype=np.uint8)
    raw[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", cols, rows, 8, 0, 0, 0, 0)
    return b"".join(
        [
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", _stored_zlib(raw.tobytes())),
            _chunk(b"IEND", b""),
        ]
    )


def render_png(
    canonical: np.ndarray,
    *,
    size: int = RENDER_SIZE,
    window: tuple[float, float] | None = None,
    zoom: float = 1.0,
) -> bytes:
    """The display PNG of a canonical array: mode L, size x size, no metadata chunks, and a
    length that depends on `size` alone (`gray_png`).

    `window` = (center, width) in canonical units maps center - width/2 .. center + width/2 to
    black .. white. `zoom` >= 1 keeps the central 1/zoom of the (square-padded) image, resized
    back to `size`. Order: window, pad to square (black), zoom crop, resize, round to 8 bits.
    """
    if size < 1:
        raise ImagingError(f"cannot render at size {size}: the size must be at least 1")
    if not (math.isfinite(zoom) and zoom >= 1.0):
        raise ImagingError(f"zoom {zoom} is not allowed: use a zoom of 1 or more")
    values = _as_image_2d(canonical, "render")
    if window is not None:
        center, width = window
        if not (math.isfinite(center) and math.isfinite(width) and width > 0):
            raise ImagingError(
                f"window (center {center}, width {width}) is not allowed: the width must be > 0"
            )
        values = (values - np.float32(center - width / 2)) / np.float32(width)
    square = _pad_square(np.clip(values, 0.0, 1.0))
    side = square.shape[0]
    kept = max(1, round(side / zoom))
    start = (side - kept) // 2
    square = square[start : start + kept, start : start + kept]
    scaled = np.clip(_resize(square, size), 0.0, 1.0)
    # Round half up, the same for every asset.
    levels = np.floor(scaled * 255.0 + 0.5).astype(np.uint8)
    return gray_png(levels)
