"""`python -m synth phantom`: write a cohort of phantom bi-parametric prostate MR patients."""

from __future__ import annotations

import argparse
from pathlib import Path

from synth.phantom import write_phantom
from synth.phantom.writer import SEQUENCES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "phantom",
        help="write phantom T2W/ADC/DWI patients (NIfTI volumes, 16-bit PNG slices, manifest)",
        description=(
            "Simulate prostate bi-parametric MR patients with known anatomy and lesions. Writes "
            "DIR/volumes/*.nii.gz, DIR/slices/*.png and DIR/manifest.csv (one row per slice, "
            "ready for `python -m study import`)."
        ),
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="new or empty output folder"
    )
    parser.add_argument("--patients", type=int, required=True, metavar="N")
    parser.add_argument(
        "--seed",
        type=int,
        required=True,
        metavar="S",
        help="patient k is the same for a seed whatever N is",
    )
    parser.add_argument(
        "--size", type=int, default=128, metavar="PX", help="pixels per side, 64-512 (default 128)"
    )
    parser.add_argument(
        "--slices",
        type=int,
        default=10,
        metavar="K",
        help="slices from apex to base, 3-64 (default 10)",
    )
    parser.add_argument(
        "--lesion-fraction",
        type=float,
        default=0.5,
        metavar="F",
        help="share of patients with a lesion, 0-1 (default 0.5)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    write_phantom(
        args.out,
        patients=args.patients,
        seed=args.seed,
        size=args.size,
        slices=args.slices,
        lesion_fraction=args.lesion_fraction,
        progress=True,
    )
    n_images = args.patients * args.slices * len(SEQUENCES)
    print(f"wrote {n_images} slices to {args.out}")
    return 0
