"""Unpack an uploaded archive (manifest plus images) safely, for import through the app."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from study.imaging.errors import VTTError


class UploadError(VTTError):
    """An uploaded file that is refused before anything is imported."""


MANIFEST_NAME = "manifest.csv"


def unpack_upload(name: str, data: bytes, target: Path, *, max_bytes: int) -> Path:
    """Write an uploaded .zip (or a bare manifest .csv) into `target`; returns the manifest path.

    Sizes are checked from the archive's directory before anything is extracted, and member
    names may not leave `target`.
    """
    if len(data) > max_bytes:
        raise UploadError(f"{name}: {len(data)} bytes is over the upload limit of {max_bytes}")
    target.mkdir(parents=True, exist_ok=True)
    if name.lower().endswith(".csv"):
        manifest = target / MANIFEST_NAME
        manifest.write_bytes(data)
        return manifest
    if not name.lower().endswith(".zip"):
        raise UploadError(f"{name}: upload a manifest .csv or a .zip holding {MANIFEST_NAME}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise UploadError(f"{name}: not a readable zip archive ({error})") from error
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        total = sum(m.file_size for m in members)
        if total > max_bytes:
            raise UploadError(
                f"{name}: unpacks to {total} bytes, over the upload limit of {max_bytes}"
            )
        root = target.resolve()
        for member in members:
            destination = (root / member.filename).resolve()
            if not destination.is_relative_to(root):
                raise UploadError(f"{name}: member {member.filename!r} would leave the upload")
        manifests = [m for m in members if Path(m.filename).name == MANIFEST_NAME]
        if len(manifests) != 1:
            raise UploadError(
                f"{name}: the archive must hold exactly one {MANIFEST_NAME} "
                f"(found {len(manifests)})"
            )
        archive.extractall(root)
    return root / manifests[0].filename
