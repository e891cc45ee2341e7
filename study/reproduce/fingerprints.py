"""Fingerprints: what decides whether a stage's outputs still follow from its inputs.

A stage's fingerprint is the sha256 of its name, its options and the digest of every input.
Files the pipeline made (manifests, checkpoints, results) are digested by their bytes (sha256),
so that a stage whose input was remade byte for byte is still skipped. The raw data folder is
digested by the name, size and modification time of every file instead: PI-CAI's images are
tens of GB, and reading them all on every run would cost minutes before any stage is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLOCK = 2**20


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(paths: Iterable[Path], root: Path) -> dict[str, str]:
    """{path relative to `root`: sha256} of each file."""
    return {path.relative_to(root).as_posix(): file_sha256(path) for path in paths}


@dataclass(frozen=True)
class Listing:
    """The files under some folders, digested by name, size and modification time."""

    digest: str
    files: int
    bytes: int


def folder_listing(folders: Iterable[Path]) -> Listing:
    """The listing of every file under `folders` (links followed, hidden entries skipped)."""
    digest, files, total = hashlib.sha256(), 0, 0
    for folder in folders:
        digest.update(f"{folder.resolve()}\0".encode())
        for path, names in _walk(folder):
            for name in names:
                status = (path / name).stat()
                relative = (path / name).relative_to(folder).as_posix()
                digest.update(f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
                files += 1
                total += status.st_size
    return Listing(digest.hexdigest(), files, total)


def _walk(folder: Path) -> Iterable[tuple[Path, list[str]]]:
    """(folder, sorted file names) of `folder` and its subfolders, in a fixed order."""
    for path, folders, names in os.walk(folder, followlinks=True):
        # Hidden entries (.git of picai_labels, .DS_Store) are not data.
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        yield Path(path), sorted(name for name in names if not name.startswith("."))


def stage_fingerprint(stage: str, options: Mapping[str, Any], inputs: Mapping[str, str]) -> str:
    """The sha256 of a stage's name, options and input digests (order-independent).

    >>> a = stage_fingerprint("train", {"steps": 10}, {"train.csv": "ab"})
    >>> a == stage_fingerprint("train", {"steps": 10}, {"train.csv": "ab"})
    True
    >>> a == stage_fingerprint("train", {"steps": 11}, {"train.csv": "ab"})
    False
    """
    document = {"stage": stage, "options": options, "inputs": inputs}
    text = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
