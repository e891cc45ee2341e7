"""`python -m study import MANIFEST`: add images to the asset library (all or nothing)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.imaging.commandline import add_lesion_rule_options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import the images of a manifest CSV",
        description="Validate every row of MANIFEST, then import all of it or nothing. "
        "Prints 'added N assets' last.",
    )
    parser.add_argument("manifest", type=Path, help="CSV: path, origin, sequence, lesion, ...")
    add_lesion_rule_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: `--help` should not pay for the database and imaging libraries.
    from tqdm import tqdm

    from study.db import open_database
    from study.importer import import_manifest

    engine = open_database()
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            label = "reading" if stage == "load" else "storing"
            bars[stage] = tqdm(total=total, desc=label, unit="item", file=sys.stderr)
        bars[stage].n = done
        bars[stage].refresh()

    try:
        result = import_manifest(
            engine,
            args.manifest.resolve(),
            progress=progress,
            min_lesion_voxels=args.min_lesion_voxels,
            lesion_labels=args.lesion_labels,
        )
    finally:
        for bar in bars.values():
            bar.close()
    if result.unchanged:
        print(f"{result.unchanged} assets were already in the library")
    print(f"added {result.added} assets")
    return 0
