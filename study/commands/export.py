"""`python -m study export`: a study's answers and results as files.

    python -m study export --study "Seed protocol" --out exports/
    python -m study export --study 3 --out exports/ --format csv,imrmc

Formats (default all but html): csv (answers.csv, tables/*.csv), xlsx (answers.xlsx,
tables.xlsx), parquet (answers.parquet), imrmc (ratings.imrmc for iMRMC), mrmc
(ratings_long.csv for `python -m study mrmc --csv`), html (report.html). Prints each written
file's path. The study is named by its id or its name.

    python -m study export --all --out backup.zip

writes the whole database and its asset files to one archive for `python -m study restore`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.export_formats import DEFAULT_FORMATS, FORMATS


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database and analysis libraries.
    from tqdm import tqdm

    from study.backup import export_archive
    from study.db import open_database
    from study.exports import export_study, parse_formats
    from study.reports import ReportError, find_study
    from study.storage import AssetStore

    if args.all:
        if args.study is not None or args.format:
            raise ReportError("--all archives the whole database: leave out --study and --format")
        print(export_archive(open_database(), args.out, AssetStore()))
        return 0
    # --study is checked here, not by argparse, so that a whole-database mode can do without.
    if args.study is None:
        raise ReportError("name the study to export with --study ID_OR_NAME")
    formats = parse_formats(args.format) if args.format else DEFAULT_FORMATS
    engine = open_database()
    study = find_study(engine, args.study)
    with tqdm(total=len(formats), desc="export", unit="format", file=sys.stderr) as bar:
        result = export_study(engine, study.id, args.out, formats, on_format=lambda _: bar.update())
    for path in result.files:
        print(path)
    for name, reason in result.skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    if args.format and result.skipped:
        raise ReportError(f"could not export {', '.join(result.skipped)} (see above)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a study's answers and results tables",
        description="Write a study's answers (CSV, XLSX, Parquet), its results tables (CSV, "
        "XLSX), its confidence ratings for MRMC software (.imrmc, long CSV) and its HTML "
        "report into a folder. Prints each file written.",
    )
    parser.add_argument("--study", metavar="ID_OR_NAME", help="the study's id or name")
    parser.add_argument(
        "--all",
        action="store_true",
        help="instead: write the whole database and its asset files to one archive, the file "
        "--out names (a .zip that `python -m study restore` rebuilds from)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="PATH",
        help="folder for the files (with --all: the archive file)",
    )
    parser.add_argument(
        "--format",
        metavar="LIST",
        help=f"comma-separated, among {', '.join(FORMATS)} "
        f"(default {','.join(DEFAULT_FORMATS)}; asked-for formats that cannot be written are "
        "an error, default ones are skipped with a note)",
    )
    parser.set_defaults(func=run)
