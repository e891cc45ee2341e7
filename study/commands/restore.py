"""`python -m study restore FILE`: rebuild a database from `python -m study export --all`.

    python -m study restore backups/vtt-2025-01-31.zip

The database (VTT_DATABASE_URL, or SQLite under VTT_DATA_DIR) must be empty; asset files go
into VTT_DATA_DIR/assets. Every file of the archive is checked by sha256 first, and nothing is
kept when any step fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database libraries.
    from study.backup import restore_archive
    from study.db import make_engine
    from study.storage import AssetStore

    engine = make_engine()
    try:
        result = restore_archive(engine, args.archive, AssetStore())
    finally:
        engine.dispose()
    rows = sum(result.rows.values())
    print(
        f"restored {rows} rows in {len(result.rows)} tables "
        f"({result.rows.get('studies', 0)} studies, {result.rows.get('answers', 0)} answers) "
        f"and {result.files} asset files from {args.archive}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="rebuild an empty database from an archive of `export --all`",
        description="Check every file of ARCHIVE by sha256, then restore all its tables and "
        "asset files into the configured database, which must be empty. All or nothing.",
    )
    parser.add_argument("archive", type=Path, help="the .zip written by `export --all --out`")
    parser.set_defaults(func=run)
