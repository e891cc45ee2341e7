"""`python -m synth sample`: generate synthetic images and their manifest from a checkpoint."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from study.imaging.types import Lesion, Sequence, parse_lesion, parse_sequence


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sample",
        help="generate synthetic images from a prompt (and optionally T2W slices)",
        description=(
            "Generate --n images (per T2W row of --condition-manifest, when given) and write "
            "them losslessly as 16-bit PNGs with DIR/manifest.csv (origin=synthetic, "
            "intensity=canonical, full provenance), ready for `python -m study import`."
        ),
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="checkpoint folder")
    parser.add_argument(
        "--prompt", required=True, help='e.g. "A T2 image of a prostate with a lesion"'
    )
    parser.add_argument("--n", type=int, default=1, help="images (per conditioning row)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="image i gets seed + i")
    parser.add_argument(
        "--sampler",
        choices=("ddim", "dpmpp"),
        help="default: the checkpoint's own (a distilled student's), else dpmpp",
    )
    parser.add_argument(
        "--steps", type=int, help="default: the checkpoint's own, else 20 for dpmpp, 50 for ddim"
    )
    parser.add_argument(
        "--guidance",
        type=float,
        help="classifier-free guidance (default: the checkpoint's own, else 3)",
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu"
    )
    parser.add_argument(
        "--batch", type=int, default=64, help="images per network call on CUDA (CPU: one)"
    )
    parser.add_argument(
        "--condition-manifest",
        type=Path,
        help="manifest whose T2W slices condition the generated DWI/ADC images",
    )
    parser.add_argument(
        "--sequence", type=_sequence, help="T2W, ADC, DWI or other (default: from the prompt)"
    )
    parser.add_argument("--lesion", type=_lesion, help="1, 0 or unknown (default: from the prompt)")
    parser.add_argument("--progress", choices=("tqdm", "jsonl"), default="tqdm")
    parser.set_defaults(func=run)


def _sequence(text: str) -> Sequence:
    try:
        return parse_sequence(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _lesion(text: str) -> Lesion:
    try:
        return parse_lesion(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def run(args: argparse.Namespace) -> int:
    from synth.checkpoint import load_checkpoint
    from synth.progress import make_progress
    from synth.sample import DEFAULT_GUIDANCE, DEFAULT_SAMPLER, write_samples
    from synth.train import resolve_device

    device = resolve_device(args.device)
    model = load_checkpoint(args.checkpoint, device)
    recommended = model.recommended_sampling
    sampler = args.sampler or recommended.get("sampler", DEFAULT_SAMPLER)
    steps = args.steps
    if steps is None and sampler == recommended.get("sampler"):
        steps = recommended["steps"]
    guidance = (
        recommended.get("guidance", DEFAULT_GUIDANCE) if args.guidance is None else args.guidance
    )
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = make_progress(args.progress, total, "step", "sample")
        bar.update(done)

    manifest = write_samples(
        model,
        args.prompt,
        args.n,
        args.out,
        seed=args.seed,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        device=device,
        batch_size=args.batch,
        condition_manifest=args.condition_manifest,
        sequence=args.sequence,
        lesion=args.lesion,
        progress=progress,
    )
    with manifest.open(newline="") as stream:
        count = sum(1 for _ in csv.DictReader(stream))
    if bar is not None:
        bar.finish(images=count, manifest=str(manifest))
    print(f"wrote {count} images to {args.out}")
    return 0
