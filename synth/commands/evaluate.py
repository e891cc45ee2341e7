"""`python -m synth evaluate`: machine realism checks of synthetic images against real ones."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from synth.evaluate import (
    DEFAULT_EPOCHS,
    DEFAULT_FOLDS,
    DEFAULT_LESION_FIELD,
    DEFAULT_LESION_SIZE,
    DEFAULT_SIZE,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="classifier two-sample test, memorisation and conditioning fidelity",
        description=(
            "Compare synthetic images with held-out real ones: a patient-split, cross-validated "
            "CNN tries to tell them apart (C2ST AUC with 95%% DeLong CI); with --train, each "
            "image's nearest training image by normalised cross-correlation flags likely "
            "copies; CNNs trained on real images (the training images when given, else most "
            "of the real patients) check that synthetic images show the lesion and sequence "
            "they were generated for, and are scored on real images they did not learn from "
            "for comparison."
        ),
    )
    parser.add_argument(
        "--real", type=Path, required=True, metavar="M1", help="manifest of held-out real images"
    )
    parser.add_argument(
        "--synthetic", type=Path, required=True, metavar="M2", help="manifest of synthetic images"
    )
    parser.add_argument(
        "--train", type=Path, metavar="M3", help="manifest of the generator's training images"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        metavar="PX",
        help=f"common image size in pixels (default {DEFAULT_SIZE})",
    )
    parser.add_argument(
        "--lesion-size",
        type=int,
        default=DEFAULT_LESION_SIZE,
        metavar="PX",
        help=f"image size the lesion classifier crops from (default {DEFAULT_LESION_SIZE})",
    )
    parser.add_argument(
        "--lesion-field",
        type=float,
        default=DEFAULT_LESION_FIELD,
        metavar="SHARE",
        help="centred share of each side the lesion classifier sees, where the prostate lies "
        f"(default {DEFAULT_LESION_FIELD}; 1 for the whole image)",
    )
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    parser.add_argument(
        "--folds", type=int, default=DEFAULT_FOLDS, help=f"C2ST folds (default {DEFAULT_FOLDS})"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"training epochs of each classifier (default {DEFAULT_EPOCHS})",
    )
    parser.add_argument("--progress", choices=("tqdm", "jsonl"), default="tqdm")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from synth.evaluate import evaluate, format_table
    from synth.progress import Progress, make_progress

    # Small CNNs gain little from many threads and the machine is often shared.
    torch.set_num_threads(min(2, torch.get_num_threads()))
    bar: Progress | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = make_progress(args.progress, total, "epoch", "evaluate")
        bar.update(done)

    evaluation = evaluate(
        args.real,
        args.synthetic,
        args.train,
        size=args.size,
        seed=args.seed,
        folds=args.folds,
        epochs=args.epochs,
        lesion_size=args.lesion_size,
        lesion_field=args.lesion_field,
        progress=progress,
    )
    if bar is not None:
        bar.finish()
    print(json.dumps(evaluation.to_json()) if args.json else format_table(evaluation))
    return 0
