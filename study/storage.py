"""Content-addressed files of assets under VTT_DATA_DIR/assets (shareable between app servers)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from study import settings


class AssetStore:
    """Files named by the sha256 of their bytes; writing the same bytes twice is a no-op."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or settings.data_dir() / "assets"

    def path(self, sha256: str, suffix: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}{suffix}"

    def put(self, data: bytes, suffix: str) -> tuple[str, Path | None]:
        """Store `data`; returns its sha256 and the path when this call created the file."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256, suffix)
        if target.exists():
            return sha256, None
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a file and a crash leaves no debris.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
        return sha256, target

    def read(self, sha256: str, suffix: str) -> bytes:
        return self.path(sha256, suffix).read_bytes()
