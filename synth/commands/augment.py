"""`python -m synth augment`: does adding synthetic images help a lesion classifier?"""

from __future__ import annotations

import argparse
import json

from synth.contract import AugmentRequest, add_options, request_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        AugmentRequest.command,
        help="train a lesion classifier on real images, and on real plus synthetic ones",
        description=(
            "Split the real patients into folds; in each, train a slice-level lesion classifier "
            "on the other folds' real images, and on the same images plus the synthetic ones, "
            "for the same number of steps, and score both on the held-out real patients "
            "(accuracy, sensitivity, specificity, AUC). Prints each arm as mean +- sd over the "
            "folds, their paired difference with a 95% interval, and the folds. Refuses a fold "
            "that would test a patient the generator of the synthetic images was trained on."
        ),
    )
    add_options(parser, AugmentRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from synth.augment import augment, format_table
    from synth.progress import Progress, make_progress

    request = request_from_args(AugmentRequest, args)
    # Small CNNs gain little from many threads and the machine is often shared.
    torch.set_num_threads(min(2, torch.get_num_threads()))
    bar: Progress | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = make_progress(request.progress, total, "classifier", "augment")
        bar.update(done)

    augmentation = augment(request, progress)
    if bar is not None:
        bar.finish()
    print(json.dumps(augmentation.to_json()) if request.json else format_table(augmentation))
    return 0
