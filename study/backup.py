"""Whole-database backup and restore: one portable archive of every table and every asset file.

The archive is a zip file:

    manifest.json             format, schema revision, tables (rows, sha256), asset files (sha256)
    tables/<table>.json       {"columns": [...], "rows": [[...], ...]}, rows in primary-key order
    assets/<ab>/<sha256><ext> the stored files the assets table names (display PNG, canonical NPY)

Values are plain JSON: times as ISO 8601 in UTC, JSON columns as JSON, so an archive written
from SQLite restores into PostgreSQL and back. Every table is read in one snapshot (repeatable
read on PostgreSQL, one read transaction on SQLite), so an archive taken while readers answer is
consistent.

`restore_archive` rebuilds the same rows, primary keys included, into an empty database: every
table file and asset file is checked against its sha256 before anything is written, the rows go
in within one transaction, and asset files written by a restore that fails are removed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, DateTime, Engine, MetaData, Table, func, select, text
from sqlalchemy.exc import IntegrityError

from study.db import alembic_config
from study.imaging.errors import VTTError, one_line
from study.storage import AssetStore

FORMAT = "vtt-studio-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
VERSION_TABLE = "alembic_version"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SUFFIX = re.compile(r"\.[a-z0-9]{1,10}")
_INSERT_CHUNK = 1000
_READ_CHUNK = 1 << 20


class BackupError(VTTError):
    """An archive that cannot be written or restored; the message says what to do."""


@dataclass(frozen=True)
class RestoreResult:
    """What a restore put back: rows per table and asset files (`files_written` were new)."""

    schema_revision: str
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    files_written: int = 0


# --- values -----------------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    """A column value as JSON: times in UTC (naive ones, as SQLite returns them, are UTC)."""
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.isoformat()
    return value


def _from_json(value: Any, is_time: bool) -> Any:
    if is_time and isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    return value


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- schema -----------------------------------------------------------------------------------


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _data_tables(connection: Connection) -> list[Table]:
    """The database's own tables (as they are, not as this version's models say), parents
    before children."""
    tables = MetaData()
    tables.reflect(bind=connection)
    return [table for table in tables.sorted_tables if table.name != VERSION_TABLE]


def _primary_key_order(table: Table) -> list[Any]:
    return list(table.primary_key.columns) or list(table.columns)


# --- export -----------------------------------------------------------------------------------


def _asset_files(connection: Connection, tables: list[Table], store: AssetStore) -> list[Path]:
    """Every stored file the assets table names, each once; an error naming missing ones."""
    assets = next((t for t in tables if t.name == "assets"), None)
    if assets is None:
        return []
    hashes: set[str] = set()
    # Lesion masks came with revision 0005; an older database has no such column.
    mask = assets.c.get("mask_sha256")
    columns = [assets.c.canonical_sha256, assets.c.display_sha256]
    for row in connection.execute(select(*columns, *([mask] if mask is not None else []))):
        hashes.update(value for value in row if value)
    files, missing = [], []
    for sha256 in sorted(hashes):
        found = sorted(store.path(sha256, "").parent.glob(f"{sha256}.*"))
        if found:
            files.extend(found)
        else:
            missing.append(sha256)
    if missing:
        raise BackupError(
            f"{len(missing)} asset file(s) named by the database are not in {store.root} "
            f"(first: {missing[0]}); point VTT_DATA_DIR at the folder that holds them"
        )
    return files


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one moment of the database."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            if engine.dialect.name == "sqlite":
                # pysqlite opens a transaction only before writes; without this BEGIN every
                # SELECT would see the database as it is at that moment.
                connection.exec_driver_sql("BEGIN")
            yield connection


def export_archive(engine: Engine, out_path: Path, store: AssetStore) -> Path:
    """Write every table of the database and every asset file it names to one zip archive at
    `out_path` (replaced whole, never left half-written); returns the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with _snapshot(engine) as connection:
                revision = _current_revision(connection)
                if revision is None:
                    raise BackupError("the database has no schema yet: there is nothing to export")
                tables = _data_tables(connection)
                table_entries = {}
                for table in tables:
                    rows = [
                        [_to_json(value) for value in row]
                        for row in connection.execute(
                            select(table).order_by(*_primary_key_order(table))
                        )
                    ]
                    body = json.dumps(
                        {"columns": [c.name for c in table.columns], "rows": rows},
                        separators=(",", ":"),
                    ).encode()
                    name = f"tables/{table.name}.json"
                    archive.writestr(name, body)
                    table_entries[table.name] = {
                        "file": name,
                        "rows": len(rows),
                        "sha256": hashlib.sha256(body).hexdigest(),
                    }
                files = _asset_files(connection, tables, store)
                dialect = engine.dialect.name
            asset_entries = []
            for path in files:
                sha256 = _sha256_file(path)
                if sha256 != path.stem:
                    raise BackupError(
                        f"asset file {path} does not hold the bytes its name says "
                        f"(sha256 {sha256}): the asset folder is damaged"
                    )
                name = f"assets/{sha256[:2]}/{path.name}"
                archive.write(path, name)
                asset_entries.append({"file": name, "sha256": sha256, "bytes": path.stat().st_size})
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "created_at": datetime.now(UTC).isoformat(),
                "vtt_studio_version": package_metadata.version("vtt-studio"),
                "source_dialect": dialect,
                "schema_revision": revision,
                "table_order": [t.name for t in tables],
                "tables": table_entries,
                "assets": asset_entries,
            }
            archive.writestr(MANIFEST, json.dumps(manifest, indent=2))
        os.replace(partial, out_path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return out_path


# --- restore ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AssetEntry:
    member: str
    sha256: str
    suffix: str


def _read_manifest(archive: zipfile.ZipFile, source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except KeyError:
        raise BackupError(f"{source} is not a VTT Studio archive: it has no {MANIFEST}") from None
    except ValueError as error:
        raise BackupError(f"{source}: {MANIFEST} is not valid JSON ({error})") from error
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is not a VTT Studio archive (format {manifest.get('format')})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{source} is archive format {manifest.get('format_version')}; this version of "
            f"VTT Studio reads format {FORMAT_VERSION}"
        )
    return manifest


def _checked_tables(
    archive: zipfile.ZipFile, manifest: dict[str, Any], source: Path
) -> dict[str, dict[str, Any]]:
    """Every table file, read and checked against its sha256 and row count."""
    tables = {}
    for name in manifest["table_order"]:
        entry = manifest["tables"][name]
        try:
            body = archive.read(entry["file"])
        except KeyError:
            raise BackupError(
                f"{source} lacks {entry['file']}: the archive is incomplete"
            ) from None
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise BackupError(f"{source}: {entry['file']} is damaged (its sha256 differs)")
        content = json.loads(body)
        if len(content["rows"]) != entry["rows"]:
            raise BackupError(f"{source}: {entry['file']} has a different number of rows")
        tables[name] = content
    return tables


def _member_sha256(archive: zipfile.ZipFile, member: str) -> str:
    digest = hashlib.sha256()
    with archive.open(member) as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _checked_assets(
    archive: zipfile.ZipFile, manifest: dict[str, Any], source: Path
) -> list[_AssetEntry]:
    """Every asset file of the manifest, its bytes checked against its sha256 (and name)."""
    entries = []
    for item in manifest["assets"]:
        sha256, member = item["sha256"], item["file"]
        suffix = Path(member).name.removeprefix(sha256)
        if not _SHA256.fullmatch(sha256) or not _SUFFIX.fullmatch(suffix):
            raise BackupError(f"{source}: {member} is not a stored asset file name")
        try:
            actual = _member_sha256(archive, member)
        except KeyError:
            raise BackupError(f"{source} lacks {member}: the archive is incomplete") from None
        if actual != sha256:
            raise BackupError(f"{source}: {member} is damaged (its sha256 is {actual})")
        entries.append(_AssetEntry(member, sha256, suffix))
    return entries


def _prepare_schema(engine: Engine, revision: str, source: Path) -> None:
    """Bring an unversioned database to the archive's schema revision; refuse a database at
    another revision, or one that holds any row."""
    scripts = ScriptDirectory.from_config(alembic_config(engine))
    if scripts.get_revision(revision) is None:
        raise BackupError(
            f"{source} was written at schema revision {revision}, which this version of "
            "VTT Studio does not know: restore it with a newer version"
        )
    with engine.connect() as connection:
        current = _current_revision(connection)
    if current is None:
        command.upgrade(alembic_config(engine), revision)
    elif current != revision:
        raise BackupError(
            f"the database is at schema revision {current} but {source} was written at "
            f"{revision}: restore into a new, empty database"
        )
    with engine.connect() as connection:
        counts = {
            table.name: connection.scalar(select(func.count()).select_from(table))
            for table in _data_tables(connection)
        }
    filled = {name: count for name, count in counts.items() if count}
    if filled:
        listed = ", ".join(f"{name} ({count})" for name, count in sorted(filled.items()))
        raise BackupError(
            f"the database is not empty (rows in {listed}): a restore only goes into an empty "
            "database; point VTT_DATABASE_URL (or VTT_DATA_DIR) at a new one"
        )


def _insert_rows(connection: Connection, tables: dict[str, dict[str, Any]]) -> dict[str, int]:
    target = {table.name: table for table in _data_tables(connection)}
    unknown = sorted(set(tables) - set(target))
    if unknown:
        raise BackupError(f"the database has no table(s) {', '.join(unknown)} of the archive")
    counts = {}
    for name, content in tables.items():
        table = target[name]
        columns = content["columns"]
        missing = [c for c in columns if c not in table.c]
        if missing:
            raise BackupError(f"table {name} of the database lacks column(s) {', '.join(missing)}")
        times = [isinstance(table.c[c].type, DateTime) for c in columns]
        rows = [
            {c: _from_json(v, t) for c, v, t in zip(columns, row, times, strict=True)}
            for row in content["rows"]
        ]
        for start in range(0, len(rows), _INSERT_CHUNK):
            connection.execute(table.insert(), rows[start : start + _INSERT_CHUNK])
        counts[name] = len(rows)
        if connection.dialect.name == "postgresql":
            _advance_sequences(connection, table)
    return counts


def _advance_sequences(connection: Connection, table: Table) -> None:
    """Rows went in with their ids: move each serial column's sequence past the largest."""
    for column in table.primary_key.columns:
        sequence = connection.scalar(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": column.name},
        )
        if sequence is not None:
            connection.execute(
                text(
                    f"SELECT setval(:sequence, coalesce(max({column.name}), 1), "
                    f"max({column.name}) IS NOT NULL) FROM {table.name}"
                ),
                {"sequence": sequence},
            )


def _put_assets(
    archive: zipfile.ZipFile, entries: list[_AssetEntry], store: AssetStore, created: list[Path]
) -> None:
    """Store every asset file (one in memory at a time); `created` collects the new ones."""
    for entry in entries:
        data = archive.read(entry.member)
        existing = store.path(entry.sha256, entry.suffix)
        if existing.exists() and _sha256_file(existing) != entry.sha256:
            raise BackupError(
                f"{existing} is damaged (its bytes do not match its name): remove it and "
                "restore again"
            )
        sha256, made = store.put(data, entry.suffix)
        if sha256 != entry.sha256:
            raise BackupError(f"{entry.member} changed while it was restored")
        if made is not None:
            created.append(made)


def restore_archive(engine: Engine, archive: Path, store: AssetStore) -> RestoreResult:
    """Rebuild the database and asset files of `archive` into an empty database; all or
    nothing. An unversioned database is first migrated to the archive's schema revision and,
    once restored, to the newest one."""
    archive = Path(archive)
    try:
        bundle = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as error:
        raise BackupError(f"cannot open {archive} as an archive: {error}") from error
    with bundle:
        manifest = _read_manifest(bundle, archive)
        revision = manifest["schema_revision"]
        tables = _checked_tables(bundle, manifest, archive)
        assets = _checked_assets(bundle, manifest, archive)
        _prepare_schema(engine, revision, archive)
        created: list[Path] = []
        try:
            with engine.begin() as connection:
                rows = _insert_rows(connection, tables)
                _put_assets(bundle, assets, store, created)
        except BaseException as error:
            for path in created:
                path.unlink(missing_ok=True)
            if isinstance(error, IntegrityError):
                raise BackupError(
                    f"the rows of {archive} break a rule of the database, nothing was restored: "
                    f"{one_line(error.orig or error)}"
                ) from error
            raise
    command.upgrade(alembic_config(engine), "head")
    return RestoreResult(revision, rows, len(assets), len(created))
