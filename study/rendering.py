"""Case images for the reader's browser, rendered from stored canonical arrays.

Real and synthetic images take exactly this path: the canonical array, `render_png` with the
reader's window/level and zoom, the same size for every viewport. Renders are cached per process
by (store, canonical sha256, window, zoom, size) in a bounded LRU cache, so an image shown again
is never encoded again; `prefetch_upcoming` fills the cache with the reader's next case while
they read the current one, so "Submit and next" finds its PNGs ready.
"""

from __future__ import annotations

import functools
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from study import settings
from study.imaging.canonical import canonical_from_bytes
from study.imaging.render import render_png
from study.reading import CaseView, Viewport, upcoming_viewports
from study.storage import AssetStore

Window = tuple[float, float]
RENDER_CACHE_SIZE = 512
# One thread for every session's rendering ahead: it only warms the cache, off the click's path.
_AHEAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vtt-render-ahead")


@functools.lru_cache(maxsize=RENDER_CACHE_SIZE)
def _render(
    root: str, canonical_sha256: str, window: Window | None, zoom: float, size: int
) -> bytes:
    canonical = canonical_from_bytes(AssetStore(Path(root)).read(canonical_sha256, ".npy"))
    return render_png(canonical, size=size, window=window, zoom=zoom)


def render_viewport(
    viewport: Viewport,
    *,
    window: Window | None = None,
    zoom: float = 1.0,
    size: int | None = None,
    store: AssetStore | None = None,
) -> bytes:
    """The PNG of one viewport (8-bit gray, no metadata), window = (center, width)."""
    root = (store or AssetStore()).root
    side = settings.render_size() if size is None else size
    return _render(str(root), viewport.canonical_sha256, window, float(zoom), side)


def render_case(
    case: CaseView,
    *,
    window: Window | None = None,
    zoom: float = 1.0,
    size: int | None = None,
    store: AssetStore | None = None,
) -> list[tuple[str, bytes]]:
    """(caption, PNG) per viewport; one window/level and zoom for every image of the case."""
    return [
        (
            viewport.label,
            render_viewport(viewport, window=window, zoom=zoom, size=size, store=store),
        )
        for viewport in case.viewports
    ]


def _render_upcoming(engine: Engine, reader_id: int, public_id: str, **options: Any) -> None:
    for viewport in upcoming_viewports(engine, reader_id, public_id):
        render_viewport(viewport, **options)


def prefetch_upcoming(
    engine: Engine,
    reader_id: int,
    public_id: str,
    *,
    window: Window | None = None,
    zoom: float = 1.0,
    size: int | None = None,
    store: AssetStore | None = None,
) -> Future[None]:
    """Render, in a background thread, the case the reader gets once `public_id` is answered,
    with this window and zoom, into the render cache; `render_case` then finds it ready.

    Only the cache changes: an error (a revoked code, a missing file) stays in the returned
    future, and the same render in the foreground reports it as it would have anyway.
    """
    return _AHEAD.submit(
        _render_upcoming,
        engine,
        reader_id,
        public_id,
        window=window,
        zoom=zoom,
        size=size,
        store=store,
    )


def clear_render_cache() -> None:
    """Forget every cached render (for cold-cache measurements)."""
    _render.cache_clear()
