"""`python -m synth phantom`: write a cohort of phantom bi-parametric prostate MR patients."""

from __future__ import annotations

import argparse

from synth.contract import PhantomRequest, add_options, request_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        PhantomRequest.command,
        help="write phantom T2W/ADC/DWI patients (NIfTI volumes, 16-bit PNG slices, manifest)",
        description=(
            "Simulate prostate bi-parametric MR patients with known anatomy and lesions. Writes "
            "DIR/volumes/*.nii.gz, DIR/slices/*.png and DIR/manifest.csv (one row per slice, "
            "ready for `python -m study import`)."
        ),
    )
    add_options(parser, PhantomRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth.phantom import write_phantom
    from synth.phantom.writer import SEQUENCES

    request = request_from_args(PhantomRequest, args)
    write_phantom(
        request.out,
        patients=request.patients,
        seed=request.seed,
        size=request.size,
        slices=request.slices,
        lesion_fraction=request.lesion_fraction,
        progress=True,
    )
    n_images = request.patients * request.slices * len(SEQUENCES)
    print(f"wrote {n_images} slices to {request.out}")
    return 0
