"""Manifests the pipeline writes from others: a subset of a manifest's rows (the patients of one
side of the split), and several manifests merged into one (the synthetic sets). Rows are
copied as they are; only their file paths are rebased onto the new manifest's folder.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from pathlib import Path

from study.imaging.manifest import write_manifest

PATH_COLUMNS = ("path", "mask")


def read_rows(manifest: Path) -> list[dict[str, str]]:
    """The rows of a manifest as text, keyed by their (canonical, lower-case) column names."""
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        return [
            {key.strip().lower(): value for key, value in row.items() if key is not None}
            for row in csv.DictReader(handle)
        ]


def rebased(path_text: str, source: Path, target: Path) -> str:
    """A path of a manifest in folder `source` as a manifest in folder `target` must write it:
    relative when the file lies inside `target` (manifests refuse relative paths that leave
    their folder), absolute otherwise.

    >>> rebased("images/a.png", Path("/o/sample/t2w"), Path("/o/sample"))
    't2w/images/a.png'
    >>> rebased("../data/a.mha", Path("/o/prepare"), Path("/o/split"))
    '/o/data/a.mha'
    """
    if not path_text:
        return path_text
    path = Path(path_text)
    resolved = Path(_normal(path if path.is_absolute() else source / path))
    inside = resolved.is_relative_to(target)
    return resolved.relative_to(target).as_posix() if inside else resolved.as_posix()


def _normal(path: Path) -> str:
    """`path` with `..` folded away, without touching the file system (paths name files the
    manifest reader resolves itself)."""
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if len(parts) > 1:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return str(Path(*parts))


def _every(_row: dict[str, str]) -> bool:
    return True


def write_rows(
    target: Path, sources: Iterable[Path], keep: Callable[[dict[str, str]], bool] = _every
) -> int:
    """Write the rows of `sources` that `keep` accepts as the manifest `target`, their paths
    rebased; the number of rows written."""
    records = []
    for source in sources:
        for row in read_rows(source):
            if not keep(row):
                continue
            for column in PATH_COLUMNS:
                if row.get(column):
                    row[column] = rebased(row[column], source.parent, target.parent)
            records.append({key: value or None for key, value in row.items()})
    write_manifest(target, records)
    return len(records)
