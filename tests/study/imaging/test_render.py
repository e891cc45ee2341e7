"""Display renders: fixed size, mode L, no metadata, deterministic, exact window and zoom, and a
byte length that depends on the size alone (a reader's browser must not learn origin from it)."""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from study.imaging import ImagingError, fit_square, render_png, sha256_bytes, strip_png_metadata
from study.imaging.load import MAX_IMAGE_PIXELS
from study.imaging.render import RENDER_SIZE, gray_png
from study.settings import SETTINGS

from .conftest import png_chunks


def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "L"
    return np.asarray(image)


def test_fit_square_pads_with_zeros_keeping_aspect() -> None:
    wide = fit_square(np.ones((2, 4), np.float32), 4)
    tall = fit_square(np.ones((3, 2), np.float32), 3)

    assert wide.dtype == np.float32
    assert wide.tolist() == [[0.0] * 4, [1.0] * 4, [1.0] * 4, [0.0] * 4]
    # An odd margin puts the extra column on the right.
    assert tall.tolist() == [[1.0, 1.0, 0.0]] * 3


def test_fit_square_resizes_smoothly_and_deterministically() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 84, dtype=np.float32), (128, 1))

    out = fit_square(ramp, 256)

    assert out.shape == (256, 256) and out.dtype == np.float32
    assert np.array_equal(out, fit_square(ramp.copy(), 256))
    assert out[:, :40].max() == 0.0  # the padding, 22 source columns scaled by 2
    assert fit_square(np.full((7, 7), 0.25, np.float32), 3).tolist() == [[0.25] * 3] * 3


def test_render_is_fixed_size_gray_without_metadata() -> None:
    canonical = np.random.default_rng(1).random((128, 84), dtype=np.float32)

    png = render_png(canonical, size=256)

    image = Image.open(io.BytesIO(png))
    assert (image.size, image.mode) == ((256, 256), "L")
    chunks = png_chunks(png)
    assert (chunks[0], set(chunks[1:-1]), chunks[-1]) == (b"IHDR", {b"IDAT"}, b"IEND")
    assert image.info == {}


def test_render_size_is_an_argument_never_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VTT_RENDER_SIZE", "64")

    def side(png: bytes) -> tuple[int, int]:
        return Image.open(io.BytesIO(png)).size

    assert side(render_png(np.zeros((5, 5), np.float32))) == (RENDER_SIZE, RENDER_SIZE)
    assert side(render_png(np.zeros((5, 5), np.float32), size=48)) == (48, 48)


def test_the_defaults_of_imaging_are_those_of_the_settings() -> None:
    defaults = {setting.name: setting.default for setting in SETTINGS}

    assert (RENDER_SIZE, MAX_IMAGE_PIXELS) == (256, 50_000_000)
    assert defaults["VTT_RENDER_SIZE"] == str(RENDER_SIZE)
    assert defaults["VTT_MAX_IMAGE_PIXELS"] == str(MAX_IMAGE_PIXELS)


def test_render_is_deterministic() -> None:
    canonical = np.random.default_rng(2).random((100, 90), dtype=np.float32)

    first = render_png(canonical, size=128, window=(0.4, 0.6), zoom=1.5)
    second = render_png(canonical.copy(), size=128, window=(0.4, 0.6), zoom=1.5)

    assert first == second


def test_quantisation_rounds_half_up() -> None:
    canonical = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)

    assert _pixels(render_png(canonical, size=2)).tolist() == [[0, 64], [128, 255]]


def test_window_maps_center_and_width_exactly() -> None:
    canonical = np.array([[0.0, 0.25], [0.5, 0.75]], np.float32)

    # center 0.5, width 0.5: 0.25 -> black, 0.75 -> white.
    png = render_png(canonical, size=2, window=(0.5, 0.5))

    assert _pixels(png).tolist() == [[0, 0], [128, 255]]


def test_padding_stays_black_under_any_window() -> None:
    canonical = np.full((2, 1), 0.5, np.float32)

    png = render_png(canonical, size=2, window=(0.0, 0.5))

    # The image column turns white (0.5 is above the window); the padding column stays black.
    assert _pixels(png).tolist() == [[255, 0], [255, 0]]


def test_zoom_crops_the_centre() -> None:
    canonical = np.zeros((8, 8), np.float32)
    canonical[2:6, 2:6] = 1.0
    canonical[3, 3] = 0.5

    zoomed = _pixels(render_png(canonical, size=4, zoom=2.0))

    assert zoomed.tolist() == [[255, 255, 255, 255], [255, 128, 255, 255], [255] * 4, [255] * 4]
    canonical[3, 3] = 1.0
    assert _pixels(render_png(canonical, size=8, zoom=2.0)).tolist() == [[255] * 8] * 8
    assert render_png(canonical, size=8, zoom=1.0) == render_png(canonical, size=8)


def test_zoom_acts_on_the_padded_square() -> None:
    canonical = np.ones((2, 4), np.float32)  # padded to 4 x 4 with black rows 0 and 3

    assert _pixels(render_png(canonical, size=2, zoom=2.0)).tolist() == [[255, 255]] * 2
    assert _pixels(render_png(canonical, size=4)).tolist() == [
        [0] * 4,
        [255] * 4,
        [255] * 4,
        [0] * 4,
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"window": (0.5, 0.0)}, r"window \(center 0.5, width 0.0\) is not allowed"),
        ({"window": (float("nan"), 0.5)}, "the width must be > 0"),
        ({"zoom": 0.5}, "zoom 0.5 is not allowed: use a zoom of 1 or more"),
        ({"zoom": float("inf")}, "zoom inf is not allowed"),
        ({"size": 0}, "cannot render at size 0"),
    ],
)
def test_bad_render_arguments(arguments: dict, message: str) -> None:
    with pytest.raises(ImagingError, match=message):
        render_png(np.zeros((4, 4), np.float32), **arguments)


def test_bad_arrays_are_refused() -> None:
    with pytest.raises(ImagingError, match="NaN or infinite"):
        render_png(np.array([[0.0, np.nan]], np.float32), size=4)
    with pytest.raises(ImagingError, match=r"shape \(2, 2, 2\): it must be 2D"):
        render_png(np.zeros((2, 2, 2), np.float32), size=4)
    with pytest.raises(ImagingError, match="size must be at least 1"):
        fit_square(np.zeros((2, 2), np.float32), 0)


def test_strip_png_metadata_keeps_only_image_chunks() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Patient", "ProstateX-0000")
    buffer = io.BytesIO()
    Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4)).save(
        buffer, format="PNG", pnginfo=info, dpi=(72, 72)
    )
    assert {b"tEXt", b"pHYs"} <= set(png_chunks(buffer.getvalue()))

    stripped = strip_png_metadata(buffer.getvalue())

    assert set(png_chunks(stripped)) == {b"IHDR", b"IDAT", b"IEND"}
    assert _pixels(stripped).tolist() == np.arange(16).reshape(4, 4).tolist()


def test_sha256_bytes() -> None:
    assert sha256_bytes(b"vtt") == hashlib.sha256(b"vtt").hexdigest()


def _contents(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Canonical arrays that a compressing encoder would write at very different lengths."""
    ramp = np.linspace(0.0, 1.0, 90, dtype=np.float32)
    return {
        "zeros": np.zeros((60, 60), np.float32),
        "ones": np.ones((60, 60), np.float32),
        "noise": rng.random((100, 70), dtype=np.float32),
        "gradient": np.outer(ramp, ramp[:50]),
        "checkerboard": (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32),
    }


@pytest.mark.parametrize("size", [1, 2, 7, 64, 181, 255, 256, 363])
def test_render_length_depends_on_the_size_alone(size: int) -> None:
    contents = _contents(np.random.default_rng(size))

    lengths = {
        name: len(render_png(canonical, size=size, window=window, zoom=zoom))
        for name, canonical in contents.items()
        for window, zoom in [(None, 1.0), ((0.3, 0.2), 1.0), (None, 3.0)]
    }

    assert len(set(lengths.values())) == 1, lengths


def test_render_length_at_256_px_follows_from_the_png_format() -> None:
    rows_bytes = 256 * (1 + 256)  # each row: filter byte 0, then 256 gray bytes
    stored_blocks = math.ceil(rows_bytes / 65535)  # a stored deflate block holds <= 65535 bytes
    # zlib header (2), each block's header byte + LEN + NLEN (5), the data, Adler-32 (4).
    zlib_stream = 2 + 5 * stored_blocks + rows_bytes + 4
    chunk = 4 + 4 + 4  # length, type, CRC around each chunk's data
    expected = 8 + (chunk + 13) + (chunk + zlib_stream) + chunk  # signature, IHDR, IDAT, IEND

    noise = np.random.default_rng(3).random((256, 256), dtype=np.float32)

    assert expected == 65865
    assert len(render_png(noise, size=256)) == expected
    assert len(render_png(np.zeros((256, 256), np.float32), size=256)) == expected


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (255, 256), (256, 256), (300, 200)])
def test_gray_png_decodes_to_the_same_pixels(shape: tuple[int, int]) -> None:
    # (255, 256) fills exactly one stored block: 255 rows of 257 bytes are 65535.
    levels = np.random.default_rng(4).integers(0, 256, shape, dtype=np.uint8)

    png = gray_png(levels)

    assert _pixels(png).tolist() == levels.tolist()
    assert png_chunks(png) == [b"IHDR", b"IDAT", b"IEND"]
    (idat_length,) = struct.unpack(">I", png[33:37])
    rows = zlib.decompress(png[41 : 41 + idat_length])
    assert rows == np.hstack([np.zeros((shape[0], 1), np.uint8), levels]).tobytes()
    assert gray_png(levels.copy()) == png


def test_gray_png_refuses_what_is_not_a_2d_byte_image() -> None:
    with pytest.raises(ImagingError, match="it must be 2D uint8"):
        gray_png(np.zeros((4, 4), np.uint16))
    with pytest.raises(ImagingError, match=r"shape \(0, 4\)"):
        gray_png(np.zeros((0, 4), np.uint8))
