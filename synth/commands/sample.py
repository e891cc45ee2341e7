"""`python -m synth sample`: generate synthetic images and their manifest from a checkpoint."""

from __future__ import annotations

import argparse
import csv

from synth.contract import SampleRequest, add_options, read_checkpoint_info, request_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        SampleRequest.command,
        help="generate synthetic images from a prompt (and optionally T2W slices)",
        description=(
            "Generate --n images (per T2W row of --condition-manifest, when given) and write "
            "them losslessly as 16-bit PNGs with DIR/manifest.csv (origin=synthetic, "
            "intensity=canonical, full provenance), ready for `python -m study import`. "
            "Each image's lesion mask, when it has one (--lesion-mask, or the mask of its "
            "conditioning T2W slice), is written to DIR/masks/ and the manifest's mask column."
        ),
    )
    add_options(parser, SampleRequest)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synth.checkpoint import load_checkpoint
    from synth.progress import Progress, make_progress
    from synth.sample import write_samples
    from synth.train import resolve_device

    request = request_from_args(SampleRequest, args)
    sampling = request.sampling(read_checkpoint_info(request.checkpoint).sampling)
    device = resolve_device(request.device)
    model = load_checkpoint(request.checkpoint, device)
    bar: Progress | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = make_progress(request.progress, total, "step", "sample")
        bar.update(done)

    manifest = write_samples(
        model,
        request.prompt,
        request.n,
        request.out,
        seed=request.seed,
        sampler=sampling.sampler,
        steps=sampling.steps,
        guidance=sampling.guidance,
        device=device,
        batch_size=request.batch,
        condition_manifest=request.condition_manifest,
        sequence=request.sequence,
        lesion=request.lesion,
        progress=progress,
        lesion_mask=request.lesion_mask,
    )
    with manifest.open(newline="") as stream:
        count = sum(1 for _ in csv.DictReader(stream))
    if bar is not None:
        bar.finish(images=count, manifest=str(manifest))
    print(f"wrote {count} images to {request.out}")
    return 0
