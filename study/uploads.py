"""Unpack an uploaded archive (manifest plus images) safely, for import through the app."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from study.imaging.errors import VTTError, one_line


class UploadError(VTTError):
    """An uploaded file that is refused before anything is imported."""


MANIFEST_NAME = "manifest.csv"


def unpack_upload(name: str, data: bytes, target: Path, *, max_bytes: int) -> Path:
    """Write an uploaded .zip (or a bare manifest .csv) into `target`; returns the manifest path.

    Sizes are checked from the archive's directory before anything is extracted (and no member
    unpacks to more than its declared size: one that tries fails its CRC and is refused), and
    member names may not leave `target`. Every refusal is an UploadError.
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
    except Exception as error:  # zipfile raises many types on a damaged archive
        raise UploadError(f"{name}: not a readable zip archive ({one_line(error)})") from error
    with archive:
        if any(not m.filename for m in archive.infolist()):
            raise UploadError(f"{name}: the archive holds a member without a name; zip it again")
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
        encrypted = [m.filename for m in members if m.flag_bits & 0x1]
        if encrypted:
            raise UploadError(
                f"{name}: {', '.join(map(repr, encrypted))} encrypted; zip without a password"
            )
        written = {}
        for member in members:
            try:
                written[member.filename] = Path(archive.extract(member, root))
            except OSError as error:
                raise UploadError(
                    f"{name}: member {member.filename!r} cannot be written ({error.strerror}); "
                    "check that no file and folder share a name in the archive"
                ) from error
            except Exception as error:  # zipfile raises many types on a damaged archive
                # e.g. a bomb that understates its size: cut off there, it fails its CRC.
                raise UploadError(
                    f"{name}: member {member.filename!r} cannot be unpacked ({one_line(error)}); "
                    "the archive is damaged: zip the files again"
                ) from error
    return written[manifests[0].filename]
