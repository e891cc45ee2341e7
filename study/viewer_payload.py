"""Pixel data for the reader's browser viewer: each viewport of a case as raw 16-bit samples.

The viewer (pages/viewer) does window/level, zoom, pan and slice scrolling in the browser, on the
canonical values themselves rather than on an 8-bit render, so none of it waits for the server.
It receives, per viewport, the viewport's slices one after the other, each the canonical array
fitted into a square of `side` pixels (`fit_square`: padded with 0 to a square, aspect kept,
resized bilinearly; the PNG renders take the same step) and quantised to 16 bits:

    sample = floor(clip(x, 0, 1) * 65535 + 0.5)   stored as uint16, little-endian, row-major

the rule `write_canonical_png` stores 16-bit canonical images with, so a canonical image that
came from a 16-bit PNG at this size arrives exactly as it was imported; the step of 1/65535 is
far below what a window of 8-bit gray levels can show (a window of width w shows steps of
w/255; w would have to be under 0.004 of the canonical range for two samples to fall on
different levels only through rounding).

Blinding: the payload is pixel samples and nothing else (no header, no metadata, no name, no
hash); the page gives it an opaque case id. Its length is 2 * side * side * slices bytes,
whatever the pixels are: it is not compressed, because a compressed length follows the content
(noise compresses worse than smooth tissue) and the browser's developer tools show it. Every
2D viewport of a study has the same length; stacks have the same length when they have the
same number of slices, which the study builder keeps equal between real and synthetic cases.

Speed: the samples of each stored canonical array are computed once per process and size and
kept in a bounded LRU cache (`SLICE_CACHE_SIZE` slices, 128 KiB each at the default 256 px),
and `prefetch_viewer_case` fills it with the reader's next case while they read this one, as
`study.rendering.prefetch_upcoming` does for the PNG renders.

>>> data = stack_samples([np.full((4, 2), 0.5, np.float32)], side=4)
>>> len(data), np.frombuffer(data, "<u2").reshape(4, 4)[1].tolist()
(32, [0, 32768, 32768, 0])
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from study import settings
from study.imaging.canonical import canonical_from_bytes
from study.imaging.errors import ImagingError
from study.imaging.render import fit_square
from study.reading import CaseView, Viewport, upcoming_viewports
from study.storage import AssetStore

SAMPLE_MAX = 65535
SAMPLE_DTYPE = np.dtype("<u2")
SLICE_CACHE_SIZE = 1024
# One thread for every session's preparing ahead: it only warms the cache, off the click's path.
_AHEAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vtt-viewer-ahead")


def slice_samples(canonical: np.ndarray, side: int) -> bytes:
    """One canonical 2D array as `side` x `side` uint16 little-endian samples (module doc)."""
    fitted = np.clip(fit_square(canonical, side), 0.0, 1.0)
    return np.floor(fitted * SAMPLE_MAX + 0.5).astype(SAMPLE_DTYPE).tobytes()


def stack_samples(slices: Sequence[np.ndarray], side: int) -> bytes:
    """A viewport's slices (one for a 2D image, several for a stack), in order, as the viewer
    receives them: `len(slices) * side * side` samples, 2 bytes each."""
    if len(slices) == 0:
        raise ImagingError("a viewport needs at least one slice; this one has none")
    return b"".join(slice_samples(canonical, side) for canonical in slices)


@dataclass(frozen=True)
class ViewportPixels:
    """What the viewer gets of one viewport: its caption (the viewport's name, e.g. "T2W" or
    "Left"), its number of slices and their samples."""

    label: str
    slices: int
    samples: bytes = field(repr=False)


@dataclass(frozen=True)
class ViewerCase:
    """A case for the viewer: its opaque public id, the side of every slice, its viewports."""

    key: str
    side: int
    viewports: tuple[ViewportPixels, ...]


@functools.lru_cache(maxsize=SLICE_CACHE_SIZE)
def _stored_slice(root: str, canonical_sha256: str, side: int) -> bytes:
    return slice_samples(
        canonical_from_bytes(AssetStore(Path(root)).read(canonical_sha256, ".npy")), side
    )


def stored_stack(
    canonical_sha256s: Sequence[str], *, size: int | None = None, store: AssetStore | None = None
) -> bytes:
    """`stack_samples` of stored canonical arrays (one per slice, in order), each slice
    computed once per process and size (the LRU cache)."""
    if len(canonical_sha256s) == 0:
        raise ImagingError("a viewport needs at least one slice; this one has none")
    root = str((store or AssetStore()).root)
    side = settings.render_size() if size is None else size
    return b"".join(_stored_slice(root, sha, side) for sha in canonical_sha256s)


def _viewport_slices(viewport: Viewport) -> tuple[str, ...]:
    """The stored canonical arrays of a viewport's slices, in order: a volume case's stack,
    or the one image of the other kinds."""
    return viewport.slice_sha256s or (viewport.canonical_sha256,)


def viewer_viewports(
    viewports: Sequence[Viewport], *, size: int | None = None, store: AssetStore | None = None
) -> tuple[ViewportPixels, ...]:
    """Every viewport's caption, number of slices and samples."""
    pixels = []
    for viewport in viewports:
        slices = _viewport_slices(viewport)
        samples = stored_stack(slices, size=size, store=store)
        pixels.append(ViewportPixels(viewport.label, len(slices), samples))
    return tuple(pixels)


def viewer_case(
    case: CaseView, *, size: int | None = None, store: AssetStore | None = None
) -> ViewerCase:
    """The viewer's data for a case the reader is shown: one side for every viewport. A timed
    case whose images were shown already gets zeros of the same length: only its mask is shown
    again."""
    side = settings.render_size() if size is None else size
    if case.shown:
        counts = [len(_viewport_slices(viewport)) for viewport in case.viewports]
        blank = tuple(
            ViewportPixels(viewport.label, count, bytes(2 * count * side * side))
            for viewport, count in zip(case.viewports, counts, strict=True)
        )
        return ViewerCase(case.public_id, side, blank)
    return ViewerCase(
        case.public_id, side, viewer_viewports(case.viewports, size=side, store=store)
    )


def _prepare_upcoming(
    engine: Engine, reader_id: int, public_id: str, size: int | None, store: AssetStore | None
) -> None:
    viewer_viewports(upcoming_viewports(engine, reader_id, public_id), size=size, store=store)


def prefetch_viewer_case(
    engine: Engine,
    reader_id: int,
    public_id: str,
    *,
    size: int | None = None,
    store: AssetStore | None = None,
) -> Future[None]:
    """Compute, in a background thread, the samples of the case the reader gets once
    `public_id` is answered; `viewer_case` then finds them in the cache.

    Only the cache changes: an error (a revoked code, a missing file) stays in the returned
    future, and `viewer_case` in the foreground reports it as it would have anyway.
    """
    return _AHEAD.submit(_prepare_upcoming, engine, reader_id, public_id, size, store)


def clear_viewer_cache() -> None:
    """Forget every cached slice (for cold-cache measurements and tests)."""
    _stored_slice.cache_clear()
