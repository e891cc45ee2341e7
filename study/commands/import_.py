"""`python -m study import MANIFEST`: add images to the asset library (all or nothing)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The default of --min-lesion-voxels; study.imaging.lesions.DEFAULT_MIN_LESION_VOXELS says the
# same, and a test checks that they agree (imported there, `--help` would load numpy).
MIN_LESION_VOXELS = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import the images of a manifest CSV",
        description="Validate every row of MANIFEST, then import all of it or nothing. "
        "Prints 'added N assets' last.",
    )
    parser.add_argument("manifest", type=Path, help="CSV: path, origin, sequence, lesion, ...")
    parser.add_argument(
        "--min-lesion-voxels",
        type=_positive,
        default=MIN_LESION_VOXELS,
        metavar="N",
        help="a slice of a row with a mask shows a lesion when it holds at least N voxels of "
        f"lesion labels (default {MIN_LESION_VOXELS})",
    )
    parser.add_argument(
        "--lesion-labels",
        type=_labels,
        default=None,
        metavar="L,L,...",
        help="the mask labels that count as lesion, e.g. 2,3,4,5 for PI-CAI's ISUP >= 2 "
        "(default: every label > 0)",
    )
    parser.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range; use 1 or more")
    return value


def _labels(text: str) -> frozenset[int] | None:
    from study.imaging.errors import ImagingError
    from study.imaging.lesions import parse_lesion_labels

    try:
        return parse_lesion_labels(text)
    except ImagingError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


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
