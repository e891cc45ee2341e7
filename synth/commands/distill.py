"""`python -m synth distill`: a few-step student of a trained generator, fast on a CPU."""

from __future__ import annotations

import argparse

from synth.contract import DistillRequest, add_options, request_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        DistillRequest.command,
        help="distil a trained generator into a few-step student",
        description=(
            "Sample the teacher's guided DPM-Solver++ trajectories for prompts and T2W "
            "conditions drawn from its training manifest, then train a student (initialised "
            "with the teacher's weights) to follow them in a few unguided DDIM steps. The "
            "student checkpoint records the sampler, steps and guidance it was made for."
        ),
    )
    add_options(parser, DistillRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth.distill import distill
    from synth.progress import make_progress

    request = request_from_args(DistillRequest, args)
    out = distill(
        request,
        make_progress(request.progress, request.trajectories, "trajectory", "teacher"),
        make_progress(request.progress, request.steps, "step", "student"),
    )
    print(f"saved the {request.student_steps}-step student to {out}")
    return 0
