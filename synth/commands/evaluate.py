"""`python -m synth evaluate`: machine realism checks of synthetic images against real ones."""

from __future__ import annotations

import argparse
import json

from synth.contract import EvaluateRequest, add_options, request_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        EvaluateRequest.command,
        help="classifier two-sample test, memorisation and conditioning fidelity",
        description=(
            "Compare synthetic images with held-out real ones: a patient-split, cross-validated "
            "CNN tries to tell them apart (C2ST AUC with 95% DeLong CI); with --train, each "
            "image's nearest training image by normalised cross-correlation flags likely "
            "copies; CNNs trained on real images (the training images when given, else most "
            "of the real patients) check that synthetic images show the lesion and sequence "
            "they were generated for, and are scored on real images they did not learn from "
            "for comparison."
        ),
    )
    add_options(parser, EvaluateRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from synth.evaluate import evaluate, format_table, write_image_scores
    from synth.progress import Progress, make_progress

    request = request_from_args(EvaluateRequest, args)
    # Small CNNs gain little from many threads and the machine is often shared.
    torch.set_num_threads(min(2, torch.get_num_threads()))
    bar: Progress | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = make_progress(request.progress, total, "epoch", "evaluate")
        bar.update(done)

    evaluation = evaluate(
        request.real,
        request.synthetic,
        request.train,
        size=request.size,
        seed=request.seed,
        folds=request.folds,
        epochs=request.epochs,
        lesion_size=request.lesion_size,
        lesion_field=request.lesion_field,
        progress=progress,
    )
    if bar is not None:
        bar.finish()
    if request.scores is not None:
        write_image_scores(evaluation, request.scores)
    print(json.dumps(evaluation.to_json()) if request.json else format_table(evaluation))
    return 0
