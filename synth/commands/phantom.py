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
            "ready for `python -m study import`); with --layout picai, the public PI-CAI "
            "layout instead: DIR/images/<patient>/<patient>_<study>_{t2w,adc,hbv,sag,cor}.mha "
            "and DIR/labels/ (csPCa lesion label volumes, clinical_information/marksheet.csv), "
            "ready for `python -m study prepare-picai --images DIR/images --labels DIR/labels "
            "--out DIR`."
        ),
    )
    add_options(parser, PhantomRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    request = request_from_args(PhantomRequest, args)
    cohort = {
        "patients": request.patients,
        "seed": request.seed,
        "size": request.size,
        "slices": request.slices,
        "lesion_fraction": request.lesion_fraction,
        "progress": True,
    }
    if request.layout == "picai":
        from synth.phantom.picai import write_picai

        write_picai(request.out, **cohort)
        print(f"wrote {request.patients} patients in the PI-CAI layout to {request.out}")
        return 0

    from synth.phantom import write_phantom
    from synth.phantom.writer import SEQUENCES

    write_phantom(request.out, **cohort)
    n_images = request.patients * request.slices * len(SEQUENCES)
    print(f"wrote {n_images} slices to {request.out}")
    return 0
