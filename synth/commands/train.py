"""`python -m synth train`: train the conditional diffusion model on a manifest."""

from __future__ import annotations

import argparse
import sys

from synth.contract import (
    CHECKPOINT_CONFIG,
    TrainRequest,
    add_options,
    read_checkpoint_info,
    request_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        TrainRequest.command,
        help="train the text- and image-conditioned diffusion model on a manifest",
        description=(
            "Train the conditional diffusion model on every slice of a manifest (phantom or "
            "real data). Writes EMA weights (safetensors), config.json, vocab.json and loss.csv "
            "to --out, and the state that --resume continues from to --out/resume/. "
            "Multi-GPU: accelerate launch -m synth train ..."
        ),
    )
    add_options(parser, TrainRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth.checkpoint import STATE_FILE
    from synth.progress import make_progress
    from synth.train import train

    request = request_from_args(TrainRequest, args)
    out = request.out
    fresh = not (out / CHECKPOINT_CONFIG).exists() and not (out / STATE_FILE).exists()
    if request.resume and fresh:
        print(f"nothing to resume in {out}: starting at step 0", file=sys.stderr)
    progress = make_progress(request.progress, request.steps, "step", "train")
    train(request, progress=progress)
    step = read_checkpoint_info(out).steps
    print(f"saved checkpoint at step {step} of {request.steps} to {out}")
    return 0
