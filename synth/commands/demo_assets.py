"""`python -m synth demo-assets`: rebuild the bundled demo generator and demo images."""

from __future__ import annotations

import argparse
from dataclasses import replace

from synth.contract import DemoAssetsRequest, add_options, request_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        DemoAssetsRequest.command,
        help="rebuild the bundled demo generator and demo images",
        description="Train the default model on a phantom cohort (resumable), then write the "
        "float16 demo checkpoint, held-out phantom images and the generator's images.",
    )
    add_options(parser, DemoAssetsRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth.demo_assets import build_demo_assets
    from synth.train import resolve_device

    request = request_from_args(DemoAssetsRequest, args)
    plan = replace(request, device=resolve_device(request.device))
    if build_demo_assets(plan):
        print(f"demo assets written to {plan.out}")
    else:
        print(f"training paused in {plan.work / 'checkpoint'}: run the same command to go on")
    return 0
